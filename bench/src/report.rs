//! `RESULTS.md` and `chart.svg` from the suite's records: medians over the repetitions, and
//! ratios of ours to the best of the peers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::impls::Impl;
use crate::suite::Config;

const THROUGHPUT_TARGET: f64 = 1.2;
const LATENCY_TARGET: f64 = 0.8;

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Median and half the range relative to the median (the spread of the repetitions).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub med: f64,
    pub spread: f64,
    pub n: usize,
}

fn stat(mut v: Vec<f64>) -> Option<Stat> {
    let n = v.len();
    let med = median(&mut v)?;
    let (lo, hi) = (v[0], v[n - 1]);
    let spread = if med > 0.0 { (hi - lo) / 2.0 / med } else { 0.0 };
    Some(Stat { med, spread, n })
}

fn collect<'a>(records: &'a [Value], f: impl Fn(&Value) -> bool + 'a) -> impl Iterator<Item = &'a Value> + 'a {
    records.iter().filter(move |r| r["ok"] == true && f(r))
}

fn stat_of(records: &[Value], imp: Impl, key: &str, f: impl Fn(&Value) -> bool) -> Option<Stat> {
    stat(collect(records, |r| r["impl"] == imp.name() && f(r)).filter_map(|r| r[key].as_f64()).collect())
}

/// CPU time per message of one end of a throughput run (`role`: "recv" or "send"), in ns: its
/// process's user + system time in the window (every thread) ÷ the messages it counted.
fn cpu_ns(r: &Value, role: &str) -> Option<f64> {
    let end = &r["detail"][role];
    let msgs = end["msgs"].as_f64().filter(|&n| n > 0.0)?;
    Some(end["cpu_s"].as_f64()? * 1e9 / msgs)
}

/// The share of that time spent in the kernel (system time), in %; runs before it was recorded
/// have none.
fn sys_pct(r: &Value, role: &str) -> Option<f64> {
    let end = &r["detail"][role];
    let cpu = end["cpu_s"].as_f64().filter(|&c| c > 0.0)?;
    Some(end["sys_s"].as_f64()? * 100.0 / cpu)
}

pub fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0} k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_size(s: u64) -> String {
    if s >= 1024 && s.is_multiple_of(1024) {
        format!("{} KiB", s / 1024)
    } else {
        format!("{s} B")
    }
}

fn spread(s: &Stat) -> String {
    if s.n > 1 {
        format!(" ±{:.0}%", s.spread * 100.0)
    } else {
        String::new()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

/// One row of the chart: a label, ours relative to the best peer ("higher is better" already
/// applied), and the target for that row.
pub struct Bar {
    label: String,
    adv: f64,
    target: f64,
}

/// The peers ours is compared with: not ours, nor ours at another revision (`zmtp@REV`).
fn peers(cfg: &Config) -> Vec<Impl> {
    cfg.impls.iter().copied().filter(|&i| i != Impl::Zmtp && i.rev().is_none()).collect()
}

/// Ours at other revisions in this run (`--impls zmtp,zmtp@REV`).
fn older(cfg: &Config) -> Vec<Impl> {
    cfg.impls.iter().copied().filter(|i| i.rev().is_some()).collect()
}

/// The same-run A/B of ours against ours at other revisions: per flavour, each throughput row's
/// rate and each latency row's p50, with new ÷ old.
fn ab_markdown(cfg: &Config, records: &[Value]) -> String {
    let mut o = String::new();
    let old = older(cfg);
    if old.is_empty() || !cfg.impls.contains(&Impl::Zmtp) {
        return o;
    }
    let _ = writeln!(
        o,
        "## A/B: ours against ours at other revisions, same run
"
    );
    let _ = writeln!(
        o,
        "`zmtp@REV` is this harness built against that revision's `zmtp/` (scripts/bench.sh), run alternating with \
         the others in every case. Throughput: messages/s at the receiver, new ÷ old (above 1: the current code is \
         faster). Latency: REQ/REP p50 in µs, new ÷ old (below 1: the current code is faster).\n"
    );
    for rt in &cfg.rts {
        let recs = of_flavour(records, rt);
        let rows = throughput_rows(cfg, &recs);
        let lat: Vec<(String, usize)> = cfg
            .lat_transports
            .iter()
            .flat_map(|t| cfg.lat_sizes.iter().map(move |&s| (t.clone(), s)))
            .filter(|(t, s)| collect(&recs, |r| lat_match(r, t, *s, false)).next().is_some())
            .collect();
        if rows.is_empty() && lat.is_empty() {
            continue;
        }
        let _ = writeln!(o, "### {}\n", flavour_name(cfg, rt));
        let _ = write!(o, "| row | {} |", Impl::Zmtp.label());
        for i in &old {
            let _ = write!(o, " {} | new ÷ old |", i.label());
        }
        let _ = write!(o, "\n|---|---:|");
        for _ in &old {
            let _ = write!(o, "---:|---:|");
        }
        let _ = writeln!(o);
        let mut line = |label: String, key: &str, f: &dyn Fn(&Value) -> bool, fmt: &dyn Fn(f64) -> String| {
            let new = stat_of(&recs, Impl::Zmtp, key, f);
            let _ = write!(o, "| {label} | {} |", new.map_or("—".into(), |s| format!("{}{}", fmt(s.med), spread(&s))));
            for &i in &old {
                match (stat_of(&recs, i, key, f), new) {
                    (Some(s), Some(n)) if s.med > 0.0 => {
                        let _ = write!(o, " {}{} | **{:.2}** |", fmt(s.med), spread(&s), n.med / s.med);
                    }
                    (Some(s), _) => {
                        let _ = write!(o, " {}{} | — |", fmt(s.med), spread(&s));
                    }
                    (None, _) => {
                        let _ = write!(o, " — | — |");
                    }
                }
            }
            let _ = writeln!(o);
        };
        for row in &rows {
            line(row_label(row), "rate", &|r: &Value| row_match(r, row), &fmt_rate);
        }
        for (t, size) in &lat {
            let label = format!("REQ/REP {} {t} p50 (µs)", fmt_size(*size as u64));
            line(label, "p50_us", &|r: &Value| lat_match(r, t, *size, false), &|x| format!("{x:.0}"));
        }
        let _ = writeln!(o);
    }
    o
}

/// Best peer for a higher-is-better metric.
fn best_high(cfg: &Config, stats: &BTreeMap<Impl, Stat>) -> Option<(Impl, f64)> {
    peers(cfg).into_iter().filter_map(|i| stats.get(&i).map(|s| (i, s.med))).max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Best peer for a lower-is-better metric.
fn best_low(cfg: &Config, stats: &BTreeMap<Impl, Stat>) -> Option<(Impl, f64)> {
    peers(cfg)
        .into_iter()
        .filter_map(|i| stats.get(&i).map(|s| (i, s.med)))
        .filter(|x| x.1 > 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// The latency rows: each size, and after it the same with ours spinning before it sleeps
/// (`recv_spin`), if the run has such records.
fn lat_rows(cfg: &Config, records: &[Value]) -> Vec<(usize, bool)> {
    let spun = collect(records, |r| r["kind"] == "spin_latency").next().is_some();
    cfg.lat_sizes.iter().flat_map(|&s| [(s, false), (s, true)]).filter(|&(_, spin)| spun || !spin).collect()
}

/// Whether a record belongs to a latency row: ours plain or, on a spin row, with `recv_spin`
/// (kind `spin_latency`); the peers' plain runs on both.
fn lat_match(r: &Value, transport: &str, size: usize, spin: bool) -> bool {
    let kind = if spin && r["impl"] == Impl::Zmtp.name() { "spin_latency" } else { "latency" };
    r["kind"] == kind && r["transport"] == transport && r["size"] == size
}

fn lat_label(records: &[Value], transport: &str, size: usize, spin: bool) -> String {
    let base = format!("REQ/REP {} {transport}", fmt_size(size as u64));
    if !spin {
        return base;
    }
    let us = collect(records, |r| r["kind"] == "spin_latency").find_map(|r| r["recv_spin_us"].as_u64()).unwrap_or(0);
    format!("{base}, ours with recv_spin {us} µs")
}

/// A throughput row: pattern, PUB/SUB mode ("" for the others), transport, size.
type Row = (String, String, String, u64);

fn throughput_rows(cfg: &Config, records: &[Value]) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in &cfg.patterns {
        let modes = if p.name() == "pubsub" { cfg.pubsub_modes.clone() } else { vec![String::new()] };
        for m in &modes {
            for t in &cfg.transports {
                for &s in &cfg.sizes {
                    let row = (p.name().to_string(), m.clone(), t.clone(), s as u64);
                    if collect(records, |r| row_match(r, &row)).next().is_some() {
                        rows.push(row);
                    }
                }
            }
        }
    }
    rows
}

fn row_match(r: &Value, row: &Row) -> bool {
    r["kind"] == "throughput"
        && r["pattern"] == row.0.as_str()
        && r["mode"].as_str().unwrap_or("") == row.1
        && r["transport"] == row.2.as_str()
        && r["size"] == row.3
}

fn row_label(row: &Row) -> String {
    let mode = if row.1.is_empty() { String::new() } else { format!(" ({})", row.1) };
    format!("{}{mode} {} {}", pattern_label(&row.0), fmt_size(row.3), row.2)
}

fn pattern_label(p: &str) -> &'static str {
    match p {
        "pushpull" => "PUSH→PULL",
        "pubsub" => "PUB→SUB",
        "dealerrouter" => "DEALER→ROUTER",
        _ => "?",
    }
}

pub fn markdown(cfg: &Config, records: &[Value], m: &Value, elapsed: Duration, cmdline: &str) -> String {
    let mut o = String::new();
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let _ = writeln!(o, "# zmtp against libzmq, zmq.rs and OMQ.rs\n");
    let _ = writeln!(
        o,
        "Generated by `zbench {cmdline}` (`scripts/bench.sh`) on {} in {:.0} s. Each end of each measurement is its \
         own OS process; implementations alternate within each case (order rotated per repetition); cells are \
         **medians of {} repetitions** (± is half the range, relative to the median). Ratio = ours / best peer. \
         Targets: throughput ≥ {THROUGHPUT_TARGET}×, latency ≤ {LATENCY_TARGET}×. The machine is shared and noisy: \
         absolute numbers move between runs, the ratios less so.\n",
        s(&m["date"]),
        elapsed.as_secs_f64(),
        cfg.reps
    );
    let _ = writeln!(o, "| machine | |\n|---|---|");
    let _ = writeln!(o, "| nproc | {} |", m["nproc"]);
    let _ = writeln!(o, "| CPU | {} |", s(&m["cpu"]));
    let _ = writeln!(o, "| kernel | {} |", s(&m["kernel"]));
    let _ = writeln!(o, "| memory | {} |", s(&m["mem"]));
    let _ = writeln!(o, "| rustc | {} |", s(&m["rustc"]));
    let _ = writeln!(o, "| zmtp (ours) | {} |", s(&m["zmtp"]));
    let _ = writeln!(o, "| libzmq | {} |", s(&m["libzmq"]));
    let _ = writeln!(o, "| zmq.rs (`zeromq`) | {} |", s(&m["zeromq"]));
    let _ = writeln!(o, "| OMQ.rs (`omq-tokio`) | {} |", s(&m["omq"]));
    let _ = writeln!(o, "| tokio | {} |", s(&m["tokio"]));
    for i in older(cfg) {
        let _ = writeln!(o, "| {} | {} |", i.label(), s(&m["ab"][i.name()]));
    }
    let flavours: Vec<String> = cfg.rts.iter().map(|rt| flavour_name(cfg, rt)).collect();
    let _ = writeln!(
        o,
        "\nSetup: the tokio implementations (ours, zmq.rs, OMQ.rs with its socket driver on the caller's runtime) run on \
         each tokio runtime flavour in turn ({}), each end in its own process; libzmq uses its default context (one I/O \
         thread, the same whatever the flavour: measured once per repetition and compared with every flavour) and \
         default options everywhere (HWM 1000; zmq.rs has no HWM option: its queues hold 100,000 messages per peer). \
         Every message is built from a byte slice per send (each library's own constructor), with a sequence \
         number in its first 8 octets so receivers count loss. Window {} ms after {} ms of warm-up, measured at the \
         receiver.\n",
        flavours.join("; "),
        cfg.window.as_millis(),
        cfg.warmup.as_millis()
    );
    // Ours / best peer per row and flavour, side by side.
    let per_rt: Vec<(String, Vec<Bar>)> =
        cfg.rts.iter().map(|rt| (rt.clone(), bars(cfg, &of_flavour(records, rt)))).collect();
    if per_rt.iter().any(|(_, b)| !b.is_empty()) {
        let _ = writeln!(o, "## Summary: ours / best peer, per runtime flavour\n");
        let _ = writeln!(
            o,
            "Throughput and fan-out: ours ÷ best peer (target ≥ {THROUGHPUT_TARGET}); latency: best ÷ ours (so higher is better \
             everywhere; target ≥ {:.2}, i.e. ours ≤ {LATENCY_TARGET}× the best); memory: best ÷ ours.\n",
            1.0 / LATENCY_TARGET
        );
        let _ = write!(o, "| row |");
        for rt in &cfg.rts {
            let _ = write!(o, " {} |", flavour_short(rt));
        }
        let _ = writeln!(o);
        let _ = write!(o, "|---|");
        for _ in &cfg.rts {
            let _ = write!(o, "---:|");
        }
        let _ = writeln!(o);
        for (label, cells) in merge_bars(&per_rt) {
            let _ = write!(o, "| {label} |");
            for c in cells {
                match c {
                    Some((adv, target)) => {
                        let _ = write!(o, " {adv:.2} {} |", verdict(adv >= target));
                    }
                    None => {
                        let _ = write!(o, " — |");
                    }
                }
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(o);
    }
    o.push_str(&ab_markdown(cfg, records));
    for rt in &cfg.rts {
        let recs = of_flavour(records, rt);
        let _ = writeln!(o, "# {}\n", flavour_name(cfg, rt));
        tables(&mut o, cfg, &recs);
    }

    let failed: Vec<&Value> = records.iter().filter(|r| r["ok"] == false).collect();
    if !failed.is_empty() {
        let _ = writeln!(o, "## Failed runs\n");
        for r in failed {
            let _ = writeln!(
                o,
                "- {} {} [{}] {} {} {} rep {}: {}",
                s(&r["kind"]),
                s(&r["impl"]),
                s(&r["rt"]),
                s(&r["pattern"]),
                r["size"],
                s(&r["transport"]),
                r["rep"],
                s(&r["error"])
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## Notes\n");
    let _ = writeln!(
        o,
        "- libzmq loses messages in paced PUB→SUB although the PUB never has more than the credit outstanding: it \
         applies the pipe credit returned by its I/O thread (every HWM/2 messages) only when the application thread \
         next processes its command mailbox (throttled), so the pipe looks full and whole bursts are dropped. The \
         harness then waits 2 ms for the SUB before granting new credit, which is why libzmq's paced rates are low.\n\
         - zmq.rs has no high-water mark: 100,000 messages per peer queue up, so its senders grow (4.7 GB at 64 KiB) \
         and its PUB drops nothing within a 1 s window.\n\
         - Absolute rates move ±20–40% between runs on this shared machine; compare ratios within one run.\n"
    );
    let _ = writeln!(o, "![ratios to the best peer](chart.svg)\n");
    let _ = writeln!(o, "Raw records (one JSON object per run): `results.jsonl`.");
    o
}

/// "current-thread runtime" / "multi-threaded runtime (N workers)".
fn flavour_name(cfg: &Config, rt: &str) -> String {
    if rt == "mt" {
        format!("Multi-threaded tokio runtime ({} workers)", cfg.workers)
    } else {
        "Current-thread tokio runtime".to_string()
    }
}

fn flavour_short(rt: &str) -> &'static str {
    if rt == "mt" {
        "multi-threaded"
    } else {
        "current-thread"
    }
}

/// The records of one runtime flavour, with libzmq's (its own I/O thread) in every flavour.
/// Records from before flavours were recorded count as current-thread.
fn of_flavour(records: &[Value], rt: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["impl"] == Impl::Libzmq.name() || r["rt"].as_str().unwrap_or("ct") == rt)
        .cloned()
        .collect()
}

/// A row of ratios: its label, and per flavour (ratio, target) when measured.
type FlavourRow = (String, Vec<Option<(f64, f64)>>);

/// Rows by label in first-seen order, with each flavour's (ratio, target).
fn merge_bars(per_rt: &[(String, Vec<Bar>)]) -> Vec<FlavourRow> {
    let mut rows: Vec<FlavourRow> = Vec::new();
    for (k, (_, bars)) in per_rt.iter().enumerate() {
        for b in bars {
            let i = match rows.iter().position(|r| r.0 == b.label) {
                Some(i) => i,
                None => {
                    rows.push((b.label.clone(), vec![None; per_rt.len()]));
                    rows.len() - 1
                }
            };
            rows[i].1[k] = Some((b.adv, b.target));
        }
    }
    rows
}

/// The tables of one flavour: throughput, latency, fan-out, connections, allocations, system calls.
fn tables(o: &mut String, cfg: &Config, records: &[Value]) {
    let impls = cfg.impls.clone();
    let header = |o: &mut String, first: &str, extra: &str| {
        let _ = write!(o, "| {first} |");
        for i in &impls {
            let _ = write!(o, " {} |", i.label());
        }
        let _ = writeln!(o, "{extra}");
        let _ = write!(o, "|---|");
        for _ in &impls {
            let _ = write!(o, "---:|");
        }
        let n_extra = extra.matches('|').count();
        for _ in 0..n_extra {
            let _ = write!(o, "---|");
        }
        let _ = writeln!(o);
    };

    // Throughput
    let rows = throughput_rows(cfg, records);
    if !rows.is_empty() {
        let _ = writeln!(o, "### Throughput (messages/s at the receiver, MB/s)\n");
        let _ = writeln!(
            o,
            "PUB→SUB (paced): the PUB runs at most {} messages ahead of the SUB (credit through shared memory), so \
             nothing is dropped and the rate is the pair's lossless throughput. PUB→SUB (flood): the PUB sends as fast \
             as it can; the cell adds the share of messages lost (dropped at the high-water mark, counted from \
             sequence numbers).\n",
            cfg.credit
        );
        header(o, "case", " best peer | ours / best | ≥1.2× |");
        for row in &rows {
            let p = &row.0;
            let f = |r: &Value| row_match(r, row);
            let mut stats = BTreeMap::new();
            let _ = write!(o, "| {} |", row_label(row));
            for &i in &impls {
                match stat_of(records, i, "rate", f) {
                    Some(st) => {
                        let mb = stat_of(records, i, "mbps", f).map_or(0.0, |x| x.med);
                        let mut cell = format!("{}{} ({:.0} MB/s)", fmt_rate(st.med), spread(&st), mb);
                        if p == "pubsub" || stat_of(records, i, "loss_pct", f).is_some_and(|x| x.med > 0.0) {
                            let loss = stat_of(records, i, "loss_pct", f).map_or(0.0, |x| x.med);
                            cell += &format!(" loss {loss:.0}%");
                        }
                        if i == Impl::Zmtp {
                            cell = format!("**{cell}**");
                        }
                        let _ = write!(o, " {cell} |");
                        stats.insert(i, st);
                    }
                    None => {
                        let _ = write!(o, " — |");
                    }
                }
            }
            row_tail_high(o, cfg, &stats, THROUGHPUT_TARGET);
        }
        let _ = writeln!(o);
    }

    // Latency
    let lat: Vec<&Value> = collect(records, |r| r["kind"] == "latency").collect();
    if !lat.is_empty() {
        let _ = writeln!(o, "### Latency (REQ/REP round trip, µs: p50 / p99 / p99.9)\n");
        header(o, "case", " best peer p50 / p99 | ours / best p50 | ours / best p99 | ≤0.8× |");
        for t in &cfg.lat_transports {
            for (size, spin) in lat_rows(cfg, records) {
                let f = |r: &Value| lat_match(r, t, size, spin);
                let _ = write!(o, "| {} |", lat_label(records, t, size, spin));
                let mut p50 = BTreeMap::new();
                let mut p99 = BTreeMap::new();
                for &i in &impls {
                    let a = stat_of(records, i, "p50_us", f);
                    let b = stat_of(records, i, "p99_us", f);
                    let c = stat_of(records, i, "p999_us", f);
                    match (a, b, c) {
                        (Some(a), Some(b), Some(c)) => {
                            let mut cell = format!("{:.0} / {:.0} / {:.0}", a.med, b.med, c.med);
                            if i == Impl::Zmtp {
                                cell = format!("**{cell}**");
                            }
                            let _ = write!(o, " {cell} |");
                            p50.insert(i, a);
                            p99.insert(i, b);
                        }
                        _ => {
                            let _ = write!(o, " — |");
                        }
                    }
                }
                let b50 = best_low(cfg, &p50);
                let b99 = best_low(cfg, &p99);
                let ours50 = p50.get(&Impl::Zmtp).map(|s| s.med);
                let ours99 = p99.get(&Impl::Zmtp).map(|s| s.med);
                match (b50, b99, ours50, ours99) {
                    (Some(b50), Some(b99), Some(u50), Some(u99)) => {
                        let r50 = u50 / b50.1;
                        let r99 = u99 / b99.1;
                        let _ = writeln!(
                            o,
                            " {} {:.0} / {} {:.0} | {:.2} | {:.2} | {} |",
                            b50.0.label(),
                            b50.1,
                            b99.0.label(),
                            b99.1,
                            r50,
                            r99,
                            verdict(r50 <= LATENCY_TARGET && r99 <= LATENCY_TARGET)
                        );
                    }
                    _ => {
                        let _ = writeln!(o, " — | — | — | — |");
                    }
                }
            }
        }
        let _ = writeln!(o);
    }

    o.push_str(&curve_markdown(cfg, records));

    // Fan-out
    let fan: Vec<&Value> = collect(records, |r| r["kind"] == "fanout").collect();
    if !fan.is_empty() {
        let _ = writeln!(
            o,
            "### Fan-out (one PUB, {} messages, to N SUB sockets spread over up to 4 processes; aggregate messages/s delivered, loss)\n",
            fmt_size(cfg.fanout_size as u64)
        );
        header(o, "case", " best peer | ours / best | ≥1.2× |");
        for mode in &cfg.pubsub_modes {
            for &subs in &cfg.fanout_subs {
                let f = |r: &Value| r["kind"] == "fanout" && r["subs"] == subs && r["mode"] == mode.as_str();
                let _ = write!(o, "| PUB → {subs} SUB ({mode}) |");
                let mut stats = BTreeMap::new();
                for &i in &impls {
                    match stat_of(records, i, "rate", f) {
                        Some(st) => {
                            let loss = stat_of(records, i, "loss_pct", f).map_or(0.0, |x| x.med);
                            let mut cell = format!("{}{} loss {loss:.0}%", fmt_rate(st.med), spread(&st));
                            if i == Impl::Zmtp {
                                cell = format!("**{cell}**");
                            }
                            let _ = write!(o, " {cell} |");
                            stats.insert(i, st);
                        }
                        None => {
                            let _ = write!(o, " — |");
                        }
                    }
                }
                row_tail_high(o, cfg, &stats, THROUGHPUT_TARGET);
            }
        }
        let _ = writeln!(o);
        // What caps the rate when both sides share the machine's cores: CPU per delivery.
        if fan.iter().any(|r| r["pub_cpu_ns_per_delivery"].is_number()) {
            let _ = writeln!(
                o,
                "CPU per delivered message, ns: the PUB process / all SUB processes (user + system time over the window, 10 ms ticks; medians). Lower is better.\n"
            );
            header(o, "case", "");
            for mode in &cfg.pubsub_modes {
                for &subs in &cfg.fanout_subs {
                    let f = |r: &Value| r["kind"] == "fanout" && r["subs"] == subs && r["mode"] == mode.as_str();
                    let _ = write!(o, "| PUB → {subs} SUB ({mode}) |");
                    for &i in &impls {
                        let p = stat_of(records, i, "pub_cpu_ns_per_delivery", f);
                        let q = stat_of(records, i, "sub_cpu_ns_per_delivery", f);
                        match (p, q) {
                            (Some(p), Some(q)) => {
                                let _ = write!(o, " {:.0} / {:.0} |", p.med, q.med);
                            }
                            _ => {
                                let _ = write!(o, " — |");
                            }
                        }
                    }
                    let _ = writeln!(o);
                }
            }
            let _ = writeln!(o);
        }
    }

    // Connections
    let conns: Vec<&Value> = collect(records, |r| r["kind"] == "conns").collect();
    if !conns.is_empty() {
        let _ = writeln!(
            o,
            "### Connections (ROUTER with {} idle handshaken DEALER peers; resident memory per connection)\n",
            cfg.conns
        );
        let _ = writeln!(o, "KiB of VmRSS per connection, from the ROUTER process's RSS after 50 warm-up peers and after all of them (peers are minimal ZMTP clients in separate processes, the same for every implementation). Lower is better.\n");
        header(o, "case", " best peer | ours / best |");
        let f = |r: &Value| r["kind"] == "conns";
        let _ = write!(o, "| KiB per connection |");
        let mut stats = BTreeMap::new();
        for &i in &impls {
            match stat_of(records, i, "kib_per_conn", f) {
                Some(st) => {
                    let rss = stat_of(records, i, "rss_full_kib", f).map_or(0.0, |x| x.med);
                    let mut cell = format!("{:.1} (RSS {:.1} MiB)", st.med, rss / 1024.0);
                    if i == Impl::Zmtp {
                        cell = format!("**{cell}**");
                    }
                    let _ = write!(o, " {cell} |");
                    stats.insert(i, st);
                }
                None => {
                    let _ = write!(o, " — |");
                }
            }
        }
        match (best_low(cfg, &stats), stats.get(&Impl::Zmtp)) {
            (Some(b), Some(u)) => {
                let _ = writeln!(o, " {} {:.1} | {:.2} |", b.0.label(), b.1, u.med / b.1);
            }
            _ => {
                let _ = writeln!(o, " — | — |");
            }
        }
        let _ = writeln!(o);
    }

    // CPU per message
    if rows.iter().any(|row| collect(records, |r| row_match(r, row) && cpu_ns(r, "recv").is_some()).next().is_some()) {
        let _ =
            writeln!(o, "### CPU per message (each process's user + system time in the window ÷ its messages, ns)\n");
        let _ = writeln!(
            o,
            "Receiver / sender, every thread of the process (libzmq's I/O thread, a runtime's workers), and \
             the share of it in the kernel (system time: system calls, context switches, wake-ups). Both \
             processes share the machine's cores, so where they keep them busy the rate is about the cores \
             ÷ (receiver + sender): a figure that load and the VM's wake-ups distort less than the rate.\n"
        );
        let _ = write!(o, "| case |");
        for i in &impls {
            let _ = write!(o, " {} |", i.label());
        }
        let _ = writeln!(o);
        let _ = write!(o, "|---|");
        for _ in &impls {
            let _ = write!(o, "---:|");
        }
        let _ = writeln!(o);
        for row in &rows {
            let f = |r: &Value| row_match(r, row);
            let _ = write!(o, "| {} |", row_label(row));
            for &i in &impls {
                let of = |role| {
                    stat(collect(records, |r| r["impl"] == i.name() && f(r)).filter_map(|r| cpu_ns(r, role)).collect())
                };
                let (a, b) = (of("recv"), of("send"));
                let sys = |role| {
                    stat(collect(records, |r| r["impl"] == i.name() && f(r)).filter_map(|r| sys_pct(r, role)).collect())
                };
                let _ = match (a, b, sys("recv"), sys("send")) {
                    (Some(a), Some(b), Some(sa), Some(sb)) => {
                        write!(o, " {:.0} / {:.0} (sys {:.0}% / {:.0}%) |", a.med, b.med, sa.med, sb.med)
                    }
                    (Some(a), Some(b), ..) => write!(o, " {:.0} / {:.0} |", a.med, b.med),
                    _ => write!(o, " — |"),
                };
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(o);
    }

    // Allocations
    if !rows.is_empty() || !lat.is_empty() {
        let _ = writeln!(
            o,
            "### Allocations per message (Rust allocator, measured window; libzmq's C `malloc` is not counted)\n"
        );
        let _ = writeln!(o, "Receiver / sender. The sender's count includes building the message from a slice (one allocation for the body in every Rust library at these sizes, except OMQ.rs's inline small messages).\n");
        let rust: Vec<Impl> = impls.iter().copied().filter(|&i| i != Impl::Libzmq).collect();
        let _ = write!(o, "| case |");
        for i in &rust {
            let _ = write!(o, " {} recv / send |", i.label());
        }
        let _ = writeln!(o);
        let _ = write!(o, "|---|");
        for _ in &rust {
            let _ = write!(o, "---:|");
        }
        let _ = writeln!(o);
        for row in rows.iter().filter(|r| r.2 == "tcp") {
            let f = |r: &Value| row_match(r, row);
            let _ = write!(o, "| {} |", row_label(row));
            for &i in &rust {
                let a = stat_of(records, i, "recv_allocs_per_msg", f);
                let b = stat_of(records, i, "send_allocs_per_msg", f);
                let _ = write!(
                    o,
                    " {} / {} |",
                    a.map_or("—".into(), |x| format!("{:.2}", x.med)),
                    b.map_or("—".into(), |x| format!("{:.2}", x.med))
                );
            }
            let _ = writeln!(o);
        }
        for &size in &cfg.lat_sizes {
            let f = |r: &Value| r["kind"] == "latency" && r["transport"] == "tcp" && r["size"] == size;
            let _ = write!(o, "| REQ/REP {} tcp (per round trip: REP / REQ) |", fmt_size(size as u64));
            for &i in &rust {
                let a = stat_of(records, i, "rep_allocs_per_rtt", f);
                let b = stat_of(records, i, "req_allocs_per_rtt", f);
                let _ = write!(
                    o,
                    " {} / {} |",
                    a.map_or("—".into(), |x| format!("{:.2}", x.med)),
                    b.map_or("—".into(), |x| format!("{:.2}", x.med))
                );
            }
            let _ = writeln!(o);
        }
        for mode in &cfg.pubsub_modes {
            for &subs in &cfg.fanout_subs {
                let f = |r: &Value| r["kind"] == "fanout" && r["subs"] == subs && r["mode"] == mode.as_str();
                if collect(records, f).next().is_none() {
                    continue;
                }
                let _ = write!(o, "| fan-out 1→{subs} {mode} (per delivered msg: SUB / per sent msg: PUB) |");
                for &i in &rust {
                    let a = stat_of(records, i, "sub_allocs_per_msg", f);
                    let b = stat_of(records, i, "pub_allocs_per_msg", f);
                    let _ = write!(
                        o,
                        " {} / {} |",
                        a.map_or("—".into(), |x| format!("{:.2}", x.med)),
                        b.map_or("—".into(), |x| format!("{:.2}", x.med))
                    );
                }
                let _ = writeln!(o);
            }
        }
        let _ = writeln!(o);
    }

    // Syscalls
    let sys: Vec<&Value> = collect(records, |r| r["kind"] == "syscalls" || r["kind"] == "syscalls_lat").collect();
    if !sys.is_empty() {
        let _ = writeln!(
            o,
            "### System calls per message (perf tracepoints on each process during the window; one extra run each)\n"
        );
        let _ = writeln!(o, "| case | impl | rate in this run | receiver: total (main calls) | sender: total (main calls) |\n|---|---|---:|---|---|");
        for r in &sys {
            let imp: Impl = r["impl"].as_str().unwrap_or("zmtp").parse().unwrap_or(Impl::Zmtp);
            let (case, rate, a, b) = if r["kind"] == "syscalls" {
                (
                    format!("PUSH→PULL {} tcp", fmt_size(r["size"].as_u64().unwrap_or(0))),
                    format!("{} msg/s", fmt_rate(r["rate"].as_f64().unwrap_or(0.0))),
                    &r["recv_syscalls"],
                    &r["send_syscalls"],
                )
            } else {
                (
                    format!("REQ/REP {} tcp (per round trip; REP / REQ)", fmt_size(r["size"].as_u64().unwrap_or(0))),
                    format!("p50 {:.0} µs", r["p50_us"].as_f64().unwrap_or(0.0)),
                    &r["rep_syscalls"],
                    &r["req_syscalls"],
                )
            };
            let _ = writeln!(o, "| {case} | {} | {rate} | {} | {} |", imp.label(), fmt_sys(a), fmt_sys(b));
        }
        let _ = writeln!(o);
    }
}

fn fmt_sys(v: &Value) -> String {
    let Some(m) = v.as_object() else { return "—".into() };
    let total = m.get("total").and_then(Value::as_f64).unwrap_or(0.0);
    let mut parts: Vec<(&String, f64)> =
        m.iter().filter(|(k, _)| k.as_str() != "total").filter_map(|(k, v)| v.as_f64().map(|x| (k, x))).collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let detail: Vec<String> =
        parts.iter().filter(|p| p.1 >= 0.005).take(4).map(|(k, x)| format!("{k} {x:.3}")).collect();
    format!("**{total:.3}** ({})", detail.join(", "))
}

fn row_tail_high(o: &mut String, cfg: &Config, stats: &BTreeMap<Impl, Stat>, target: f64) {
    match (best_high(cfg, stats), stats.get(&Impl::Zmtp)) {
        (Some(b), Some(u)) => {
            let r = u.med / b.1;
            let _ = writeln!(o, " {} {} | {:.2} | {} |", b.0.label(), fmt_rate(b.1), r, verdict(r >= target));
        }
        _ => {
            let _ = writeln!(o, " — | — | — |");
        }
    }
}

/// A CURVE row: its label, whether it is a latency row, and which records it takes.
type CurveCase = (String, bool, Box<dyn Fn(&Value) -> bool>);

/// The CURVE section's rows.
fn curve_cases(cfg: &Config, records: &[Value]) -> Vec<CurveCase> {
    let mut v: Vec<CurveCase> = Vec::new();
    for &size in &cfg.curve_sizes {
        v.push((
            format!("CURVE PUSH→PULL {} tcp", fmt_size(size as u64)),
            false,
            Box::new(move |r: &Value| r["kind"] == "curve_throughput" && r["size"] == size),
        ));
    }
    for &size in &cfg.curve_lat_sizes {
        v.push((
            format!("CURVE REQ/REP {} tcp p50", fmt_size(size as u64)),
            true,
            Box::new(move |r: &Value| r["kind"] == "curve_latency" && r["size"] == size),
        ));
    }
    // The same with ours spinning before it sleeps (`recv_spin`), if the run has such records:
    // ours from those, the peers from their plain runs.
    let spun = collect(records, |r| r["kind"] == "spin_curve_latency");
    if let Some(us) = spun.filter_map(|r| r["recv_spin_us"].as_u64()).next() {
        for &size in &cfg.curve_lat_sizes {
            v.push((
                format!("CURVE REQ/REP {} tcp p50, ours with recv_spin {us} µs", fmt_size(size as u64)),
                true,
                Box::new(move |r: &Value| {
                    let kind = if r["impl"] == Impl::Zmtp.name() { "spin_curve_latency" } else { "curve_latency" };
                    r["kind"] == kind && r["size"] == size
                }),
            ));
        }
    }
    v
}

/// CURVE rows: the same PUSH→PULL and REQ/REP cases with CURVE on both ends (the binding end is
/// the server), for the implementations that have it.
fn curve_markdown(cfg: &Config, records: &[Value]) -> String {
    let mut o = String::new();
    if collect(records, |r| r["mechanism"] == "curve").next().is_none() {
        return o;
    }
    let impls: Vec<Impl> = cfg.impls.iter().copied().filter(|&i| crate::curve::supported(i)).collect();
    let _ = writeln!(
        o,
        "### CURVE (PUSH→PULL messages/s at the receiver; REQ/REP round trip p50 / p99 µs)\n\n\
         Both ends use CURVE (libzmq through libsodium; ours and OMQ.rs pure Rust); the binding end is the server. \
         zmq.rs has no CURVE.\n"
    );
    let _ = write!(o, "| case |");
    for i in &impls {
        let _ = write!(o, " {} |", i.label());
    }
    let _ = writeln!(o, " best peer | ours / best | target |");
    let _ = writeln!(o, "|---|{}---|---|---|", "---:|".repeat(impls.len()));
    for (label, latency, f) in curve_cases(cfg, records) {
        let key = if latency { "p50_us" } else { "rate" };
        let _ = write!(o, "| {label} |");
        let mut stats = BTreeMap::new();
        for &i in &impls {
            match stat_of(records, i, key, &f) {
                Some(st) => {
                    let mut cell = if latency {
                        let p99 = stat_of(records, i, "p99_us", &f).map_or(0.0, |x| x.med);
                        format!("{:.0} / {p99:.0}", st.med)
                    } else {
                        let mb = stat_of(records, i, "mbps", &f).map_or(0.0, |x| x.med);
                        format!("{}{} ({mb:.0} MB/s)", fmt_rate(st.med), spread(&st))
                    };
                    if i == Impl::Zmtp {
                        cell = format!("**{cell}**");
                    }
                    let _ = write!(o, " {cell} |");
                    stats.insert(i, st);
                }
                None => {
                    let _ = write!(o, " — |");
                }
            }
        }
        let best = if latency { best_low(cfg, &stats) } else { best_high(cfg, &stats) };
        match (best, stats.get(&Impl::Zmtp)) {
            (Some(b), Some(u)) => {
                let r = u.med / b.1;
                let (ok, target) =
                    if latency { (r <= LATENCY_TARGET, "≤0.8×") } else { (r >= THROUGHPUT_TARGET, "≥1.2×") };
                let best = if latency { format!("{:.0} µs", b.1) } else { fmt_rate(b.1) };
                let _ = writeln!(o, " {} {best} | {r:.2} | {target} {} |", b.0.label(), verdict(ok));
            }
            _ => {
                let _ = writeln!(o, " — | — | — |");
            }
        }
    }
    let _ = writeln!(o);
    o
}

/// The chart's rows: ours relative to the best peer, oriented so that higher is better.
pub fn bars(cfg: &Config, records: &[Value]) -> Vec<Bar> {
    let mut out = Vec::new();
    for row in throughput_rows(cfg, records) {
        let f = |r: &Value| row_match(r, &row);
        let stats: BTreeMap<Impl, Stat> =
            cfg.impls.iter().filter_map(|&i| stat_of(records, i, "rate", f).map(|s| (i, s))).collect();
        if let (Some(b), Some(u)) = (best_high(cfg, &stats), stats.get(&Impl::Zmtp)) {
            out.push(Bar { label: row_label(&row), adv: u.med / b.1, target: THROUGHPUT_TARGET });
        }
    }
    for t in &cfg.lat_transports {
        for (size, spin) in lat_rows(cfg, records) {
            for (key, name) in [("p50_us", "p50"), ("p99_us", "p99")] {
                let f = |r: &Value| lat_match(r, t, size, spin);
                let stats: BTreeMap<Impl, Stat> =
                    cfg.impls.iter().filter_map(|&i| stat_of(records, i, key, f).map(|s| (i, s))).collect();
                if let (Some(b), Some(u)) = (best_low(cfg, &stats), stats.get(&Impl::Zmtp)) {
                    if u.med > 0.0 {
                        out.push(Bar {
                            label: format!("{} {name} (best/ours)", lat_label(records, t, size, spin)),
                            adv: b.1 / u.med,
                            target: 1.0 / LATENCY_TARGET,
                        });
                    }
                }
            }
        }
    }
    for mode in &cfg.pubsub_modes {
        for &subs in &cfg.fanout_subs {
            let f = |r: &Value| r["kind"] == "fanout" && r["subs"] == subs && r["mode"] == mode.as_str();
            let stats: BTreeMap<Impl, Stat> =
                cfg.impls.iter().filter_map(|&i| stat_of(records, i, "rate", f).map(|s| (i, s))).collect();
            if let (Some(b), Some(u)) = (best_high(cfg, &stats), stats.get(&Impl::Zmtp)) {
                out.push(Bar {
                    label: format!("fan-out PUB→{subs} SUB ({mode})"),
                    adv: u.med / b.1,
                    target: THROUGHPUT_TARGET,
                });
            }
        }
    }
    let f = |r: &Value| r["kind"] == "conns";
    let stats: BTreeMap<Impl, Stat> =
        cfg.impls.iter().filter_map(|&i| stat_of(records, i, "kib_per_conn", f).map(|s| (i, s))).collect();
    if let (Some(b), Some(u)) = (best_low(cfg, &stats), stats.get(&Impl::Zmtp)) {
        if u.med > 0.0 {
            out.push(Bar { label: "memory per connection (best/ours)".into(), adv: b.1 / u.med, target: 1.0 });
        }
    }
    for (label, latency, f) in curve_cases(cfg, records) {
        let key = if latency { "p50_us" } else { "rate" };
        let stats: BTreeMap<Impl, Stat> =
            cfg.impls.iter().filter_map(|&i| stat_of(records, i, key, &f).map(|s| (i, s))).collect();
        let best = if latency { best_low(cfg, &stats) } else { best_high(cfg, &stats) };
        if let (Some(b), Some(u)) = (best, stats.get(&Impl::Zmtp)) {
            let (adv, target) =
                if latency { (b.1 / u.med, 1.0 / LATENCY_TARGET) } else { (u.med / b.1, THROUGHPUT_TARGET) };
            out.push(Bar { label: if latency { format!("{label} (best/ours)") } else { label }, adv, target });
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A horizontal bar chart, drawn by hand: one group per row, one bar per runtime flavour.
pub fn svg(cfg: &Config, records: &[Value]) -> String {
    let per_rt: Vec<(String, Vec<Bar>)> =
        cfg.rts.iter().map(|rt| (rt.clone(), bars(cfg, &of_flavour(records, rt)))).collect();
    let rows = merge_bars(&per_rt);
    let k = per_rt.len().max(1);
    let bar_h = 13.0;
    let row_h = bar_h * k as f64 + 8.0;
    let left = 290.0;
    let plot_w = 560.0;
    let top = 50.0 + 18.0 * k as f64;
    let width = left + plot_w + 70.0;
    let plot_bottom = top + row_h * rows.len() as f64;
    let height = plot_bottom + 40.0;
    let max = rows.iter().flat_map(|r| r.1.iter().flatten().map(|c| c.0)).fold(2.0f64, f64::max).min(4.0);
    let max = (max * 2.0).ceil() / 2.0;
    let x = |v: f64| left + v.min(max) / max * plot_w;
    // Each flavour's bars drawn solid or lighter; the colour says whether the target is met.
    let opacity = |i: usize| if i == 0 { 1.0 } else { 0.55 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">zmtp relative to the best peer (higher is better; green: target met)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="38" fill="#555">throughput/fan-out: ours ÷ best; latency and memory: best ÷ ours. Dashed: target (1.2× throughput, 1.25× = 0.8 latency).</text>"##
    );
    for (i, (rt, _)) in per_rt.iter().enumerate() {
        let y = 44.0 + 18.0 * i as f64;
        let name = if rt == "mt" {
            format!("multi-threaded runtime ({} workers) for the tokio implementations", cfg.workers)
        } else {
            "current-thread runtime for the tokio implementations".to_string()
        };
        let _ = writeln!(
            s,
            r##"<rect x="10" y="{y:.1}" width="24" height="{bar_h}" fill="#2e9e44" fill-opacity="{}"/><text x="40" y="{:.1}">{}: {}</text>"##,
            opacity(i),
            y + bar_h * 0.8,
            i + 1,
            esc(&name)
        );
    }
    // Grid
    let mut g = 0.0;
    while g <= max + 1e-9 {
        let gx = x(g);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{plot_bottom:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{g:.1}×</text>"##,
            plot_bottom + 16.0
        );
        g += 0.5;
    }
    for (r, (label, cells)) in rows.iter().enumerate() {
        let y0 = top + row_h * r as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y0 + row_h / 2.0 + 4.0,
            esc(label)
        );
        for (i, c) in cells.iter().enumerate() {
            let Some((adv, target)) = *c else { continue };
            let y = y0 + 4.0 + bar_h * i as f64;
            let color = if adv >= target {
                "#2e9e44"
            } else if adv >= 1.0 {
                "#e0a030"
            } else {
                "#d04040"
            };
            let w = (x(adv) - left).max(1.0);
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{color}" fill-opacity="{}"/>"#,
                y + 1.0,
                bar_h - 2.0,
                opacity(i)
            );
            let tx = x(target);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{y:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="3,2"/>"##,
                y + bar_h
            );
            let more = if adv > max { "→" } else { "" };
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">{}: {adv:.2}×{more}</text>"#,
                left + w + 4.0,
                y + bar_h * 0.8,
                i + 1
            );
        }
    }
    let x1 = x(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{x1:.1}" y1="{top}" x2="{x1:.1}" y2="{plot_bottom:.1}" stroke="#000" stroke-width="1.5"/>"##
    );
    let _ = writeln!(s, "</svg>");
    s
}
