//! `zbench suite`: the driver. Spawns the role processes (this same binary), runs every case for
//! every implementation in turn (alternating, the order rotated each repetition), collects the
//! JSON results and writes `results.jsonl`, `RESULTS.md` and `chart.svg`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::impls::{Impl, ALL_IMPLS, R};
use crate::roles::Pattern;
use crate::{report, Args};

pub struct Config {
    pub quick: bool,
    pub impls: Vec<Impl>,
    pub reps: usize,
    pub warmup: Duration,
    pub window: Duration,
    pub patterns: Vec<Pattern>,
    pub sizes: Vec<usize>,
    pub transports: Vec<String>,
    pub lat_sizes: Vec<usize>,
    pub lat_transports: Vec<String>,
    pub fanout_subs: Vec<usize>,
    pub fanout_size: usize,
    pub conns: usize,
    pub conn_reps: usize,
    pub sections: Vec<String>,
    pub syscalls: bool,
    /// Tokio runtime flavours the Rust implementations run on, each in every case: "ct"
    /// (current-thread) and "mt" (multi-threaded, `workers` worker threads). libzmq has its own
    /// I/O thread and runs once per case, compared with both.
    pub rts: Vec<String>,
    pub workers: usize,
    /// PUB/SUB and fan-out: "paced" (credit from the SUBs, lossless), "flood" (as fast as the PUB
    /// can, loss counted), or both.
    pub pubsub_modes: Vec<String>,
    pub credit: u64,
    /// The CURVE section: PUSH→PULL sizes and REQ/REP sizes, over tcp.
    pub curve_sizes: Vec<usize>,
    pub curve_lat_sizes: Vec<usize>,
    /// The latency section runs ours a second time with `Options::recv_spin` set to this many µs
    /// (0: not), recorded as kind `spin_latency` and compared with the same peers' runs.
    pub lat_spin_us: u64,
    pub out: PathBuf,
}

fn list<T: std::str::FromStr>(s: &str) -> R<Vec<T>> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse().map_err(|_| format!("bad list item {x:?}")))
        .collect()
}

impl Config {
    fn from_args(a: &Args) -> R<Config> {
        let quick = a.flag("quick");
        let impls = match a.get("impls") {
            Some(s) => s.split(',').map(str::parse).collect::<R<Vec<Impl>>>()?,
            None => ALL_IMPLS.to_vec(),
        };
        let patterns = match a.get("patterns") {
            Some(s) => s.split(',').map(Pattern::parse).collect::<R<Vec<_>>>()?,
            None => vec![Pattern::PushPull, Pattern::PubSub, Pattern::DealerRouter],
        };
        let default_sizes = "16,256,4096,65536";
        let out = match a.get("out") {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        };
        let sections = a
            .get("sections")
            .unwrap_or("throughput,latency,fanout,conns,curve,syscalls")
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>();
        Ok(Config {
            quick,
            impls,
            reps: a.num("reps", if quick { 1 } else { 3 })?,
            warmup: Duration::from_millis(a.num("warmup-ms", if quick { 200 } else { 300 })?),
            window: Duration::from_millis(a.num("window-ms", if quick { 500 } else { 1000 })?),
            patterns,
            sizes: list(a.get("sizes").unwrap_or(if quick { "16,256,4096" } else { default_sizes }))?,
            transports: list(a.get("transports").unwrap_or(if quick { "tcp" } else { "tcp,ipc" }))?,
            lat_sizes: list(a.get("lat-sizes").unwrap_or("16,4096"))?,
            lat_transports: list(a.get("lat-transports").unwrap_or("tcp"))?,
            fanout_subs: list(a.get("fanout-subs").unwrap_or("1,10,100"))?,
            fanout_size: a.num("fanout-size", 256)?,
            conns: a.num("conns", if quick { 200 } else { 1000 })?,
            conn_reps: a.num("conn-reps", if quick { 1 } else { 3 })?,
            syscalls: sections.iter().any(|s| s == "syscalls") && which("perf"),
            sections,
            rts: {
                let rts: Vec<String> = list(a.get("rt").unwrap_or("ct,mt"))?;
                if let Some(bad) = rts.iter().find(|r| *r != "ct" && *r != "mt") {
                    return Err(format!("--rt {bad}: ct or mt"));
                }
                rts
            },
            workers: a.num("workers", std::thread::available_parallelism().map_or(2, |n| n.get()))?,
            pubsub_modes: list(a.get("pubsub").unwrap_or("paced"))?,
            credit: a.num("credit", 500)?,
            curve_sizes: list(a.get("curve-sizes").unwrap_or(if quick { "16,65536" } else { "16,256,65536" }))?,
            curve_lat_sizes: list(a.get("curve-lat-sizes").unwrap_or("16"))?,
            lat_spin_us: a.num("lat-spin-us", 50)?,
            out,
        })
    }
    fn has(&self, s: &str) -> bool {
        self.sections.iter().any(|x| x == s)
    }
}

fn which(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd} >/dev/null")).status().is_ok_and(|s| s.success())
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

// ---------------------------------------------------------------------------------------------
// Child processes

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    name: String,
    /// The thread forwarding its stdout lines; it ends at the pipe's end.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The role processes of one run, and their stdout lines.
struct Hub {
    procs: Vec<Proc>,
    tx: mpsc::Sender<(usize, String)>,
    rx: mpsc::Receiver<(usize, String)>,
    stash: VecDeque<(usize, Value)>,
}

impl Hub {
    fn new() -> Hub {
        let (tx, rx) = mpsc::channel();
        Hub { procs: Vec::new(), tx, rx, stash: VecDeque::new() }
    }

    fn spawn(&mut self, role: &str, args: &[String]) -> R<usize> {
        let driver = std::env::current_exe().map_err(|e| e.to_string())?;
        // A `zmtp@REV` runs in that revision's own build of this harness, as `--impl zmtp`.
        let mut args = args.to_vec();
        let mut exe = driver.clone();
        if let Some(i) = args.iter().position(|a| a == "--impl") {
            if let Some(Ok(imp)) = args.get(i + 1).map(|v| v.parse::<Impl>()) {
                let (e, name) = imp.role_exe(&driver);
                if !e.exists() {
                    return Err(format!(
                        "{}: not built (scripts/bench.sh --impls {} builds it)",
                        e.display(),
                        imp.name()
                    ));
                }
                exe = e;
                args[i + 1] = name.into();
            }
        }
        let mut child = Command::new(exe)
            .arg(role)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {role}: {e}"))?;
        let idx = self.procs.len();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let tx = self.tx.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((idx, line)).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        self.procs.push(Proc { child, stdin, name: role.to_string(), reader: Some(reader) });
        Ok(idx)
    }

    fn pid(&self, idx: usize) -> u32 {
        self.procs[idx].child.id()
    }

    fn say(&mut self, idx: usize, line: &str) {
        if let Some(stdin) = self.procs[idx].stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Waits for `event` from process `idx`.
    fn wait(&mut self, idx: usize, event: &str, timeout: Duration) -> R<Value> {
        if let Some(pos) = self.stash.iter().position(|(i, v)| *i == idx && v["event"] == event) {
            return Ok(self.stash.remove(pos).map(|(_, v)| v).unwrap_or(Value::Null));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let status = self.procs[idx].child.try_wait().ok().flatten();
                return Err(format!(
                    "timed out waiting for {event:?} from {} ({})",
                    self.procs[idx].name,
                    status.map_or("still running".to_string(), |s| s.to_string())
                ));
            }
            match self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok((i, line)) => {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        eprintln!("  [{}] {line}", self.procs[i].name);
                        continue;
                    };
                    if i == idx && v["event"] == event {
                        return Ok(v);
                    }
                    self.stash.push_back((i, v));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // A role that died will never answer.
                    if let Ok(Some(st)) = self.procs[idx].child.try_wait() {
                        // Drain what it printed before dying: its reader thread may not have
                        // forwarded its last lines yet (a loaded machine), so wait for the pipe's
                        // end first.
                        if let Some(reader) = self.procs[idx].reader.take() {
                            let _ = reader.join();
                        }
                        while let Ok((i, line)) = self.rx.try_recv() {
                            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                                if i == idx && v["event"] == event {
                                    return Ok(v);
                                }
                                self.stash.push_back((i, v));
                            }
                        }
                        return Err(format!("{} exited ({st}) before {event:?}", self.procs[idx].name));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err("hub closed".into()),
            }
        }
    }

    fn finish(&mut self) {
        for p in &mut self.procs {
            p.stdin.take();
            let _ = p.child.kill();
        }
        for p in &mut self.procs {
            let _ = p.child.wait();
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints and /proc

fn endpoint(transport: &str) -> R<String> {
    match transport {
        "tcp" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            Ok(format!("tcp://127.0.0.1:{port}"))
        }
        "ipc" => {
            let n = next_ipc();
            let path = format!("/tmp/zbench-{}-{n}.ipc", std::process::id());
            let _ = std::fs::remove_file(&path);
            Ok(format!("ipc://{path}"))
        }
        other => Err(format!("unknown transport {other:?}")),
    }
}

fn next_ipc() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A zeroed shared file of `slots` pacing slots (see `roles::Pace`).
fn pace_file(slots: usize) -> R<String> {
    let path = format!("/dev/shm/zbench-{}-{}.pace", std::process::id(), next_ipc());
    let f = std::fs::File::create(&path).map_err(|e| format!("{path}: {e}"))?;
    f.set_len((slots.max(1) * crate::roles::Pace::SLOT) as u64).map_err(|e| e.to_string())?;
    Ok(path)
}

fn cleanup_endpoint(ep: &str) {
    if let Some(path) = ep.strip_prefix("ipc://") {
        let _ = std::fs::remove_file(path);
    }
}

/// VmRSS of a process, in KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Syscall counting with perf's tracepoints (no hardware counters needed)

const SYSCALLS: &[&str] = &[
    "read",
    "readv",
    "recvfrom",
    "recvmsg",
    "write",
    "writev",
    "sendto",
    "sendmsg",
    "epoll_wait",
    "epoll_pwait",
    "futex",
    "poll",
    "ppoll",
    "sched_yield",
];

/// Starts `perf stat` on `pid` at `start` for `dur`; the handle yields {syscall: count}.
fn perf_syscalls(pid: u32, start: u128, dur: Duration) -> std::thread::JoinHandle<Option<BTreeMap<String, u64>>> {
    std::thread::spawn(move || {
        let now = now_ns();
        if start > now {
            std::thread::sleep(Duration::from_nanos((start - now) as u64));
        }
        let mut cmd = Command::new("perf");
        cmd.arg("stat").arg("-x,").arg("-e").arg("raw_syscalls:sys_enter");
        for s in SYSCALLS {
            cmd.arg("-e").arg(format!("syscalls:sys_enter_{s}"));
        }
        cmd.arg("-p").arg(pid.to_string()).arg("--").arg("sleep").arg(format!("{:.3}", dur.as_secs_f64()));
        let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() < 3 {
                continue;
            }
            let Ok(n) = f[0].trim().parse::<u64>() else { continue };
            let name = f[2].trim();
            let key = if name == "raw_syscalls:sys_enter" {
                "total".to_string()
            } else if let Some(s) = name.strip_prefix("syscalls:sys_enter_") {
                s.to_string()
            } else {
                continue;
            };
            m.insert(key, n);
        }
        if m.is_empty() {
            None
        } else {
            Some(m)
        }
    })
}

fn per_msg(counts: Option<BTreeMap<String, u64>>, msgs: u64, secs_window: f64, secs_perf: f64) -> Value {
    let Some(c) = counts else { return Value::Null };
    // Scale the perf window to the role's window (they differ by the perf start-up time).
    let scale = if secs_perf > 0.0 { secs_window / secs_perf } else { 1.0 };
    let mut o = serde_json::Map::new();
    for (k, v) in c {
        if v > 0 && msgs > 0 {
            o.insert(k, json!(v as f64 * scale / msgs as f64));
        }
    }
    Value::Object(o)
}

// ---------------------------------------------------------------------------------------------
// The runs

pub struct Driver {
    pub cfg: Config,
    pub records: Vec<Value>,
    done: usize,
    total: usize,
    started: Instant,
    log: std::fs::File,
    /// The runtime flavour of the run in progress ("ct" or "mt"; libzmq ignores it).
    rt: String,
    /// The runs now going are the CURVE section's: roles get `--curve`, records say so.
    curve: bool,
    /// The run now going is ours with `recv_spin` of this many µs (0: none): the roles get
    /// `--recv-spin-us`, the record is kind `spin_latency`.
    spin_us: u64,
}

impl Driver {
    fn role_args(&self, imp: Impl, ep: &str, extra: &[(&str, String)]) -> Vec<String> {
        let mut v = vec![
            "--impl".into(),
            imp.name().into(),
            "--endpoint".into(),
            ep.into(),
            "--rt".into(),
            self.rt.clone(),
            "--workers".into(),
            self.cfg.workers.to_string(),
        ];
        if self.curve {
            v.push("--curve".into());
        }
        if self.spin_us > 0 {
            v.push("--recv-spin-us".into());
            v.push(self.spin_us.to_string());
        }
        for (k, val) in extra {
            v.push(format!("--{k}"));
            if !val.is_empty() {
                v.push(val.clone());
            }
        }
        v
    }

    /// The flavour a record is filed under: libzmq's own I/O thread is "native", compared with
    /// the tokio implementations on every flavour.
    fn rt_of(&self, v: &Value) -> String {
        if v["impl"] == Impl::Libzmq.name() {
            "native".into()
        } else {
            self.rt.clone()
        }
    }

    /// Progress label suffix: the flavour, for the tokio implementations.
    fn rt_tag(&self, imp: Impl) -> String {
        if imp == Impl::Libzmq {
            String::new()
        } else if self.spin_us > 0 {
            format!(" [{}, recv_spin {} µs]", self.rt, self.spin_us)
        } else {
            format!(" [{}]", self.rt)
        }
    }

    fn go_window(&self) -> (u128, u128) {
        let start = now_ns() + self.cfg.warmup.as_nanos();
        (start, start + self.cfg.window.as_nanos())
    }

    fn progress(&mut self, what: &str, summary: &str) {
        self.done += 1;
        let el = self.started.elapsed().as_secs();
        eprintln!("[{:>3}/{}] {:>4}s  {what:<44} {summary}", self.done, self.total, el);
    }

    fn record(&mut self, mut v: Value) {
        v["rt"] = json!(self.rt_of(&v));
        if self.curve {
            v["mechanism"] = json!("curve");
            let kind = format!("curve_{}", v["kind"].as_str().unwrap_or(""));
            v["kind"] = json!(kind);
        }
        if self.spin_us > 0 {
            v["recv_spin_us"] = json!(self.spin_us);
            let kind = format!("spin_{}", v["kind"].as_str().unwrap_or(""));
            v["kind"] = json!(kind);
        }
        let _ = writeln!(self.log, "{v}");
        self.records.push(v);
    }

    #[allow(clippy::too_many_arguments)]
    fn throughput(
        &mut self,
        imp: Impl,
        pattern: Pattern,
        mode: &str,
        size: usize,
        transport: &str,
        rep: usize,
        perf: bool,
    ) -> Value {
        let base = json!({"kind": if perf {"syscalls"} else {"throughput"}, "impl": imp.name(), "pattern": pattern.name(),
            "mode": mode, "size": size, "transport": transport, "rep": rep});
        let mut pace_path: Option<String> = None;
        let r = (|| -> R<Value> {
            let ep = endpoint(transport)?;
            let mut hub = Hub::new();
            let extra = [("pattern", pattern.name().to_string()), ("size", size.to_string())];
            let mut args = self.role_args(imp, &ep, &extra);
            if mode == "paced" {
                let p = pace_file(1)?;
                args.extend([
                    "--pace".into(),
                    p.clone(),
                    "--pace-slots".into(),
                    "1".into(),
                    "--credit".into(),
                    self.cfg.credit.to_string(),
                ]);
                pace_path = Some(p);
            }
            let mut bind_args = args.clone();
            bind_args.push("--bind".into());
            let (recv, send) = if pattern.sender_binds() {
                let s = hub.spawn("send", &bind_args)?;
                hub.wait(s, "bound", Duration::from_secs(10))?;
                (hub.spawn("recv", &args)?, s)
            } else {
                let r = hub.spawn("recv", &bind_args)?;
                hub.wait(r, "bound", Duration::from_secs(10))?;
                (r, hub.spawn("send", &args)?)
            };
            let ready = hub.wait(recv, "ready", Duration::from_secs(20));
            if let Err(e) = ready {
                cleanup_endpoint(&ep);
                return Err(e);
            }
            let (start, end) = self.go_window();
            let perf_dur = self.cfg.window.saturating_sub(Duration::from_millis(100));
            let perfs = perf.then(|| {
                (
                    perf_syscalls(hub.pid(recv), start + 50_000_000, perf_dur),
                    perf_syscalls(hub.pid(send), start + 50_000_000, perf_dur),
                )
            });
            let go = format!("go {start} {end}");
            hub.say(recv, &go);
            hub.say(send, &go);
            let to = self.cfg.window + self.cfg.warmup + Duration::from_secs(10);
            let rr = hub.wait(recv, "result", to);
            let sr = hub.wait(send, "result", Duration::from_secs(3)).unwrap_or(Value::Null);
            hub.finish();
            cleanup_endpoint(&ep);
            let rr = rr?;
            let mut out = json!({"recv": rr, "send": sr});
            if let Some((pr, ps)) = perfs {
                let w = self.cfg.window.as_secs_f64();
                let pd = perf_dur.as_secs_f64();
                let rmsgs = out["recv"]["msgs"].as_u64().unwrap_or(0);
                out["recv_syscalls"] = per_msg(pr.join().ok().flatten(), rmsgs, w, pd);
                out["send_syscalls"] = per_msg(ps.join().ok().flatten(), rmsgs, w, pd);
            }
            Ok(out)
        })();
        if let Some(p) = pace_path {
            let _ = std::fs::remove_file(p);
        }
        let mut v = base;
        match r {
            Ok(o) => {
                let rate = o["recv"]["rate"].as_f64().unwrap_or(0.0);
                let lost = o["recv"]["lost"].as_u64().unwrap_or(0);
                let msgs = o["recv"]["msgs"].as_u64().unwrap_or(0);
                let loss = if lost + msgs > 0 { lost as f64 / (lost + msgs) as f64 * 100.0 } else { 0.0 };
                let mut summary =
                    format!("{:>10.0} msg/s {:>8.1} MB/s", rate, o["recv"]["mbps"].as_f64().unwrap_or(0.0));
                if pattern == Pattern::PubSub {
                    summary += &format!("  loss {loss:.1}%");
                }
                if let Some(s) = o["recv_syscalls"]["total"].as_f64() {
                    summary += &format!(
                        "  syscalls/msg recv {s:.3} send {:.3}",
                        o["send_syscalls"]["total"].as_f64().unwrap_or(0.0)
                    );
                }
                v["ok"] = json!(true);
                v["rate"] = json!(rate);
                v["mbps"] = o["recv"]["mbps"].clone();
                v["loss_pct"] = json!(loss);
                v["bad"] = o["recv"]["bad"].clone();
                v["recv_allocs_per_msg"] = o["recv"]["allocs_per_msg"].clone();
                v["send_allocs_per_msg"] = if o["send"]["msgs"].as_u64().unwrap_or(0) > 0 {
                    json!(o["send"]["allocs"].as_f64().unwrap_or(0.0) / o["send"]["msgs"].as_f64().unwrap_or(1.0))
                } else {
                    Value::Null
                };
                v["send_rate"] = o["send"]["rate"].clone();
                for k in ["recv_syscalls", "send_syscalls"] {
                    if !o[k].is_null() {
                        v[k] = o[k].clone();
                    }
                }
                v["detail"] = o;
                self.progress(
                    &format!(
                        "{} {}{} {}B {transport} {}{} #{rep}",
                        v["kind"].as_str().unwrap_or(""),
                        pattern.name(),
                        if mode.is_empty() { String::new() } else { format!("({mode})") },
                        size,
                        imp.name(),
                        self.rt_tag(imp)
                    ),
                    &summary,
                );
            }
            Err(e) => {
                v["ok"] = json!(false);
                v["error"] = json!(e);
                self.progress(
                    &format!(
                        "throughput {} {}B {transport} {}{} #{rep}",
                        pattern.name(),
                        size,
                        imp.name(),
                        self.rt_tag(imp)
                    ),
                    &format!("FAILED: {e}"),
                );
            }
        }
        self.record(v.clone());
        v
    }

    fn latency(&mut self, imp: Impl, size: usize, transport: &str, rep: usize, perf: bool) -> Value {
        let base = json!({"kind": if perf {"syscalls_lat"} else {"latency"}, "impl": imp.name(), "size": size, "transport": transport, "rep": rep});
        let r = (|| -> R<Value> {
            let ep = endpoint(transport)?;
            let mut hub = Hub::new();
            let args = self.role_args(imp, &ep, &[("size", size.to_string())]);
            let mut bind_args = args.clone();
            bind_args.push("--bind".into());
            let rep_p = hub.spawn("rep", &bind_args)?;
            hub.wait(rep_p, "bound", Duration::from_secs(10))?;
            let req_p = hub.spawn("req", &args)?;
            hub.wait(req_p, "ready", Duration::from_secs(20))?;
            let (start, end) = self.go_window();
            let perf_dur = self.cfg.window.saturating_sub(Duration::from_millis(100));
            let perfs = perf.then(|| {
                (
                    perf_syscalls(hub.pid(req_p), start + 50_000_000, perf_dur),
                    perf_syscalls(hub.pid(rep_p), start + 50_000_000, perf_dur),
                )
            });
            let go = format!("go {start} {end}");
            hub.say(rep_p, &go);
            hub.say(req_p, &go);
            let to = self.cfg.window + self.cfg.warmup + Duration::from_secs(10);
            let rq = hub.wait(req_p, "result", to);
            let rp = hub.wait(rep_p, "result", Duration::from_secs(2)).unwrap_or(Value::Null);
            hub.finish();
            cleanup_endpoint(&ep);
            let mut out = json!({"req": rq?, "rep": rp});
            if let Some((pq, pp)) = perfs {
                let w = self.cfg.window.as_secs_f64();
                let pd = perf_dur.as_secs_f64();
                let n = out["req"]["msgs"].as_u64().unwrap_or(0);
                out["req_syscalls"] = per_msg(pq.join().ok().flatten(), n, w, pd);
                out["rep_syscalls"] = per_msg(pp.join().ok().flatten(), n, w, pd);
            }
            Ok(out)
        })();
        let mut v = base;
        match r {
            Ok(o) => {
                let q = &o["req"];
                for k in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "rtts"] {
                    v[k] = q[k].clone();
                }
                v["ok"] = json!(true);
                v["req_allocs_per_rtt"] = q["allocs_per_msg"].clone();
                v["rep_allocs_per_rtt"] = o["rep"]["allocs_per_msg"].clone();
                for k in ["req_syscalls", "rep_syscalls"] {
                    if !o[k].is_null() {
                        v[k] = o[k].clone();
                    }
                }
                let mut summary = format!(
                    "p50 {:>7.1} µs  p99 {:>7.1} µs  p99.9 {:>7.1} µs  ({} rtts)",
                    q["p50_us"].as_f64().unwrap_or(0.0),
                    q["p99_us"].as_f64().unwrap_or(0.0),
                    q["p999_us"].as_f64().unwrap_or(0.0),
                    q["rtts"]
                );
                if let Some(s) = o["req_syscalls"]["total"].as_f64() {
                    summary += &format!(
                        "  syscalls/rtt req {s:.2} rep {:.2}",
                        o["rep_syscalls"]["total"].as_f64().unwrap_or(0.0)
                    );
                }
                v["detail"] = o;
                self.progress(
                    &format!(
                        "{} {}B {transport} {}{} #{rep}",
                        v["kind"].as_str().unwrap_or(""),
                        size,
                        imp.name(),
                        self.rt_tag(imp)
                    ),
                    &summary,
                );
            }
            Err(e) => {
                v["ok"] = json!(false);
                v["error"] = json!(e);
                self.progress(
                    &format!("latency {}B {transport} {}{} #{rep}", size, imp.name(), self.rt_tag(imp)),
                    &format!("FAILED: {e}"),
                );
            }
        }
        self.record(v.clone());
        v
    }

    fn fanout(&mut self, imp: Impl, subs: usize, mode: &str, rep: usize) -> Value {
        let size = self.cfg.fanout_size;
        let base = json!({"kind": "fanout", "impl": imp.name(), "subs": subs, "mode": mode, "size": size, "transport": "tcp", "rep": rep});
        let mut pace_path: Option<String> = None;
        let r = (|| -> R<Value> {
            let ep = endpoint("tcp")?;
            let mut hub = Hub::new();
            let mut pub_args = self.role_args(
                imp,
                &ep,
                &[("pattern", "pubsub".into()), ("size", size.to_string()), ("bind", String::new())],
            );
            if mode == "paced" {
                let p = pace_file(subs)?;
                pub_args.extend([
                    "--pace".into(),
                    p.clone(),
                    "--pace-slots".into(),
                    subs.to_string(),
                    "--credit".into(),
                    self.cfg.credit.to_string(),
                ]);
                pace_path = Some(p);
            }
            let pub_p = hub.spawn("send", &pub_args)?;
            hub.wait(pub_p, "bound", Duration::from_secs(10))?;
            // SUBs spread over a few processes: 1 → 1, 10 → 2, 100 → 4.
            let nproc = subs.div_ceil(5).clamp(1, 4);
            let mut sub_ps = Vec::new();
            let mut slot = 0;
            for i in 0..nproc {
                let k = subs / nproc + usize::from(i < subs % nproc);
                let mut args = self.role_args(imp, &ep, &[("subs", k.to_string()), ("size", size.to_string())]);
                if let Some(p) = &pace_path {
                    args.extend(["--pace".into(), p.clone(), "--pace-slot".into(), slot.to_string()]);
                }
                slot += k;
                sub_ps.push(hub.spawn("fsub", &args)?);
            }
            for &p in &sub_ps {
                hub.wait(p, "ready", Duration::from_secs(40))?;
            }
            let (start, end) = self.go_window();
            // The PUB's system calls per message sent (with the syscalls section).
            let perf_dur = self.cfg.window.saturating_sub(Duration::from_millis(100));
            let perf = self.cfg.syscalls.then(|| perf_syscalls(hub.pid(pub_p), start + 50_000_000, perf_dur));
            let go = format!("go {start} {end}");
            hub.say(pub_p, &go);
            for &p in &sub_ps {
                hub.say(p, &go);
            }
            let to = self.cfg.window + self.cfg.warmup + Duration::from_secs(10);
            let mut results = Vec::new();
            for &p in &sub_ps {
                results.push(hub.wait(p, "result", to)?);
            }
            let pr = hub.wait(pub_p, "result", Duration::from_secs(3)).unwrap_or(Value::Null);
            hub.finish();
            let mut out = json!({"subs": results, "pub": pr});
            if let Some(ps) = perf {
                let msgs = out["pub"]["msgs"].as_u64().unwrap_or(0);
                out["pub_syscalls"] =
                    per_msg(ps.join().ok().flatten(), msgs, self.cfg.window.as_secs_f64(), perf_dur.as_secs_f64());
            }
            Ok(out)
        })();
        if let Some(p) = pace_path {
            let _ = std::fs::remove_file(p);
        }
        let mut v = base;
        match r {
            Ok(o) => {
                let mut rate = 0.0;
                let mut lost = 0u64;
                let mut msgs = 0u64;
                let mut allocs = 0.0;
                let mut sub_cpu = 0.0;
                for s in o["subs"].as_array().into_iter().flatten() {
                    sub_cpu += s["cpu_s"].as_f64().unwrap_or(0.0);
                    rate += s["rate"].as_f64().unwrap_or(0.0);
                    lost += s["lost"].as_u64().unwrap_or(0);
                    msgs += s["msgs"].as_u64().unwrap_or(0);
                    allocs += s["allocs"].as_f64().unwrap_or(0.0);
                }
                let loss = if lost + msgs > 0 { lost as f64 / (lost + msgs) as f64 * 100.0 } else { 0.0 };
                v["ok"] = json!(true);
                v["rate"] = json!(rate);
                v["loss_pct"] = json!(loss);
                v["pub_rate"] = o["pub"]["rate"].clone();
                v["pub_allocs_per_msg"] = o["pub"]["allocs_per_msg"].clone();
                v["sub_allocs_per_msg"] = json!(if msgs > 0 { allocs / msgs as f64 } else { 0.0 });
                v["pub_syscalls_per_msg"] = o["pub_syscalls"].clone();
                // CPU per message delivered, each side (processes' user + system time over the
                // window, 10 ms ticks): on 2 cores shared by both sides, what caps the rate.
                if msgs > 0 {
                    let pub_cpu = o["pub"]["cpu_s"].as_f64().unwrap_or(0.0);
                    v["pub_cpu_ns_per_delivery"] = json!(pub_cpu * 1e9 / msgs as f64);
                    v["sub_cpu_ns_per_delivery"] = json!(sub_cpu * 1e9 / msgs as f64);
                }
                let summary = format!(
                    "{:>10.0} msg/s delivered (all subs)  loss {loss:.1}%  pub {:.0} msg/s",
                    rate,
                    o["pub"]["rate"].as_f64().unwrap_or(0.0)
                );
                v["detail"] = o;
                self.progress(
                    &format!("fanout({mode}) 1→{subs} {size}B tcp {}{} #{rep}", imp.name(), self.rt_tag(imp)),
                    &summary,
                );
            }
            Err(e) => {
                v["ok"] = json!(false);
                v["error"] = json!(e);
                self.progress(
                    &format!("fanout({mode}) 1→{subs} {size}B tcp {}{} #{rep}", imp.name(), self.rt_tag(imp)),
                    &format!("FAILED: {e}"),
                );
            }
        }
        self.record(v.clone());
        v
    }

    fn conns(&mut self, imp: Impl, n: usize, rep: usize) -> Value {
        let base = json!({"kind": "conns", "impl": imp.name(), "conns": n, "rep": rep});
        const WARM: usize = 50;
        const PER_PROC: usize = 2000;
        let r = (|| -> R<Value> {
            let ep = endpoint("tcp")?;
            let mut hub = Hub::new();
            let mut router_args = self.role_args(imp, &ep, &[]);
            router_args.push("--bind".into());
            let router = hub.spawn("router", &router_args)?;
            hub.wait(router, "bound", Duration::from_secs(10))?;
            std::thread::sleep(Duration::from_millis(200));
            let pid = hub.pid(router);
            let rss_idle = vm_rss_kib(pid).ok_or("no VmRSS")?;
            let warm = hub.spawn("peers", &["--count".into(), WARM.to_string(), "--endpoint".into(), ep.clone()])?;
            hub.wait(warm, "ready", Duration::from_secs(30))?;
            std::thread::sleep(Duration::from_millis(300));
            let rss_warm = vm_rss_kib(pid).ok_or("no VmRSS")?;
            let t = Instant::now();
            let mut ps = Vec::new();
            let mut left = n;
            while left > 0 {
                let k = left.min(PER_PROC);
                left -= k;
                ps.push(hub.spawn("peers", &["--count".into(), k.to_string(), "--endpoint".into(), ep.clone()])?);
            }
            for &p in &ps {
                hub.wait(p, "ready", Duration::from_secs(120))?;
            }
            let connect_secs = t.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_millis(500));
            let rss_full = vm_rss_kib(pid).ok_or("no VmRSS")?;
            let threads = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse::<u64>().ok())
            });
            hub.finish();
            Ok(json!({"rss_idle_kib": rss_idle, "rss_warm_kib": rss_warm, "rss_full_kib": rss_full,
                "connect_secs": connect_secs, "threads": threads}))
        })();
        let mut v = base;
        match r {
            Ok(o) => {
                let per =
                    (o["rss_full_kib"].as_f64().unwrap_or(0.0) - o["rss_warm_kib"].as_f64().unwrap_or(0.0)) / n as f64;
                v["ok"] = json!(true);
                v["kib_per_conn"] = json!(per);
                v["rss_full_kib"] = o["rss_full_kib"].clone();
                v["rss_idle_kib"] = o["rss_idle_kib"].clone();
                let summary = format!(
                    "{per:>7.2} KiB/conn  (RSS idle {} KiB, {} conns {} KiB, connected in {:.2}s)",
                    o["rss_idle_kib"],
                    n + WARM,
                    o["rss_full_kib"],
                    o["connect_secs"].as_f64().unwrap_or(0.0)
                );
                v["detail"] = o;
                self.progress(&format!("conns {n} {}{} #{rep}", imp.name(), self.rt_tag(imp)), &summary);
            }
            Err(e) => {
                v["ok"] = json!(false);
                v["error"] = json!(e);
                self.progress(&format!("conns {n} {}{} #{rep}", imp.name(), self.rt_tag(imp)), &format!("FAILED: {e}"));
            }
        }
        self.record(v.clone());
        v
    }
}

/// The runs of one case: every tokio implementation on every runtime flavour, libzmq once
/// (it brings its own I/O thread).
fn runs(impls: &[Impl], rts: &[String]) -> Vec<(Impl, String)> {
    let mut v = Vec::new();
    for &imp in impls {
        if imp == Impl::Libzmq {
            v.push((imp, rts.first().cloned().unwrap_or_else(|| "ct".into())));
        } else {
            v.extend(rts.iter().map(|rt| (imp, rt.clone())));
        }
    }
    v
}

/// The runs of one case in the order used for repetition `rep`: rotated, so no one always runs
/// first (or right after the same neighbour), and the flavours of one implementation alternate
/// with the others, so noise hits them alike.
fn rotated(impls: &[Impl], rts: &[String], rep: usize) -> Vec<(Impl, String)> {
    let mut v = runs(impls, rts);
    if !v.is_empty() {
        let k = rep % v.len();
        v.rotate_left(k);
    }
    v
}

pub fn run(a: &Args) -> R<()> {
    let cfg = Config::from_args(a)?;
    std::fs::create_dir_all(&cfg.out).map_err(|e| e.to_string())?;
    let n_impl = runs(&cfg.impls, &cfg.rts).len();
    let mut total = 0;
    let modes_of = |p: Pattern| -> Vec<String> {
        if p == Pattern::PubSub {
            cfg.pubsub_modes.clone()
        } else {
            vec![String::new()]
        }
    };
    if cfg.has("throughput") {
        let cases: usize = cfg.patterns.iter().map(|&p| modes_of(p).len()).sum();
        total += cases * cfg.sizes.len() * cfg.transports.len() * n_impl * cfg.reps;
    }
    if cfg.has("latency") {
        total += cfg.lat_sizes.len() * cfg.lat_transports.len() * n_impl * cfg.reps;
        if cfg.lat_spin_us > 0 && cfg.impls.contains(&Impl::Zmtp) {
            total += cfg.lat_sizes.len() * cfg.lat_transports.len() * cfg.rts.len() * cfg.reps;
        }
    }
    if cfg.has("fanout") {
        total += cfg.fanout_subs.len() * cfg.pubsub_modes.len() * n_impl * cfg.reps;
    }
    if cfg.has("conns") {
        total += n_impl * cfg.conn_reps;
    }
    if cfg.has("curve") {
        let curve_impls: Vec<Impl> = cfg.impls.iter().copied().filter(|&i| crate::curve::supported(i)).collect();
        let n_curve = runs(&curve_impls, &cfg.rts).len();
        total += (cfg.curve_sizes.len() + cfg.curve_lat_sizes.len()) * n_curve * cfg.reps;
        if cfg.lat_spin_us > 0 && curve_impls.contains(&Impl::Zmtp) {
            total += cfg.curve_lat_sizes.len() * cfg.rts.len() * cfg.reps;
        }
    }
    let sys_cases: Vec<usize> = if cfg.quick { vec![16, 4096] } else { vec![16, 256, 4096, 65536] };
    if cfg.syscalls {
        total += (sys_cases.len() + 1) * n_impl;
    }
    let log_path = cfg.out.join("results.jsonl");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut machine = machine_info();
    // Ours at other revisions: the commit each was built from (scripts/bench.sh writes it).
    for imp in cfg.impls.iter().filter(|i| i.rev().is_some()) {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = imp
            .role_exe(&exe)
            .0
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("ab").join(format!("zmtp-{}", imp.rev().unwrap_or(""))));
        let commit = dir.and_then(|d| std::fs::read_to_string(d.join("COMMIT")).ok()).unwrap_or_default();
        machine["ab"][imp.name()] = json!(format!("git {}", commit.trim()));
    }
    eprintln!(
        "zbench suite: {total} runs, {} reps, window {} ms after {} ms warm-up; {}",
        cfg.reps,
        cfg.window.as_millis(),
        cfg.warmup.as_millis(),
        machine["cpu"].as_str().unwrap_or("")
    );
    if cfg.sections.iter().any(|s| s == "syscalls") && !cfg.syscalls {
        eprintln!("(perf not found: no syscall counts)");
    }
    let rt = cfg.rts.first().cloned().unwrap_or_else(|| "ct".into());
    let mut d =
        Driver { cfg, records: Vec::new(), done: 0, total, started: Instant::now(), log, rt, curve: false, spin_us: 0 };
    let _ = writeln!(d.log, "{}", json!({"kind": "machine", "info": machine}));

    if d.cfg.has("throughput") {
        for &pattern in &d.cfg.patterns.clone() {
            let modes = if pattern == Pattern::PubSub { d.cfg.pubsub_modes.clone() } else { vec![String::new()] };
            for mode in modes {
                for transport in d.cfg.transports.clone() {
                    for &size in &d.cfg.sizes.clone() {
                        for rep in 0..d.cfg.reps {
                            for (imp, rt) in rotated(&d.cfg.impls, &d.cfg.rts, rep) {
                                if transport == "ipc" && !imp.supports_ipc() {
                                    continue;
                                }
                                d.rt = rt;
                                d.throughput(imp, pattern, &mode, size, &transport, rep, false);
                            }
                        }
                    }
                }
            }
        }
    }
    if d.cfg.has("latency") {
        for transport in d.cfg.lat_transports.clone() {
            for &size in &d.cfg.lat_sizes.clone() {
                for rep in 0..d.cfg.reps {
                    for (imp, rt) in rotated(&d.cfg.impls, &d.cfg.rts, rep) {
                        d.rt = rt;
                        d.latency(imp, size, &transport, rep, false);
                        // Ours again, spinning before it sleeps (`Options::recv_spin`), next to
                        // the run without.
                        if imp == Impl::Zmtp && d.cfg.lat_spin_us > 0 {
                            d.spin_us = d.cfg.lat_spin_us;
                            d.latency(imp, size, &transport, rep, false);
                            d.spin_us = 0;
                        }
                    }
                }
            }
        }
    }
    if d.cfg.has("fanout") {
        for mode in d.cfg.pubsub_modes.clone() {
            for &subs in &d.cfg.fanout_subs.clone() {
                for rep in 0..d.cfg.reps {
                    for (imp, rt) in rotated(&d.cfg.impls, &d.cfg.rts, rep) {
                        d.rt = rt;
                        d.fanout(imp, subs, &mode, rep);
                    }
                }
            }
        }
    }
    if d.cfg.has("conns") {
        let n = d.cfg.conns;
        for rep in 0..d.cfg.conn_reps {
            for (imp, rt) in rotated(&d.cfg.impls, &d.cfg.rts, rep) {
                d.rt = rt;
                d.conns(imp, n, rep);
            }
        }
    }
    if d.cfg.has("curve") {
        // The same cases under CURVE, for the implementations that have it.
        d.curve = true;
        let impls: Vec<Impl> = d.cfg.impls.iter().copied().filter(|&i| crate::curve::supported(i)).collect();
        for &size in &d.cfg.curve_sizes.clone() {
            for rep in 0..d.cfg.reps {
                for (imp, rt) in rotated(&impls, &d.cfg.rts, rep) {
                    d.rt = rt;
                    d.throughput(imp, Pattern::PushPull, "", size, "tcp", rep, false);
                }
            }
        }
        for &size in &d.cfg.curve_lat_sizes.clone() {
            for rep in 0..d.cfg.reps {
                for (imp, rt) in rotated(&impls, &d.cfg.rts, rep) {
                    d.rt = rt;
                    d.latency(imp, size, "tcp", rep, false);
                    // Ours again with `recv_spin`, as in the plaintext latency section.
                    if imp == Impl::Zmtp && d.cfg.lat_spin_us > 0 {
                        d.spin_us = d.cfg.lat_spin_us;
                        d.latency(imp, size, "tcp", rep, false);
                        d.spin_us = 0;
                    }
                }
            }
        }
        d.curve = false;
    }
    if d.cfg.syscalls {
        for &size in &sys_cases {
            for (imp, rt) in runs(&d.cfg.impls, &d.cfg.rts) {
                d.rt = rt;
                d.throughput(imp, Pattern::PushPull, "", size, "tcp", 0, true);
            }
        }
        for (imp, rt) in runs(&d.cfg.impls, &d.cfg.rts) {
            d.rt = rt;
            d.latency(imp, 16, "tcp", 0, true);
        }
    }
    let elapsed = d.started.elapsed();
    let cmdline = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let _ = writeln!(d.log, "{}", json!({"kind": "end", "elapsed": elapsed.as_secs_f64(), "cmdline": cmdline}));
    write_report(&d.cfg, &d.records, &machine, elapsed, &cmdline)?;
    eprintln!("done in {:.0} s", elapsed.as_secs_f64());
    println!("raw:     {}", log_path.display());
    Ok(())
}

fn write_report(cfg: &Config, records: &[Value], machine: &Value, elapsed: Duration, cmdline: &str) -> R<()> {
    let md = report::markdown(cfg, records, machine, elapsed, cmdline);
    let svg = report::svg(cfg, records);
    let md_path = cfg.out.join("RESULTS.md");
    let svg_path = cfg.out.join("chart.svg");
    std::fs::write(&md_path, md).map_err(|e| e.to_string())?;
    std::fs::write(&svg_path, svg).map_err(|e| e.to_string())?;
    println!("results: {}", md_path.display());
    println!("chart:   {}", svg_path.display());
    Ok(())
}

/// `zbench report [suite options]`: rewrites RESULTS.md and chart.svg from `results.jsonl` (give
/// the same layout options as the suite had, e.g. `--quick`).
pub fn report_only(a: &Args) -> R<()> {
    let cfg = Config::from_args(a)?;
    let path = cfg.out.join("results.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut machine = Value::Null;
    let mut elapsed = Duration::ZERO;
    let mut cmdline = String::from("suite");
    let mut records = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        match v["kind"].as_str() {
            Some("machine") => machine = v["info"].clone(),
            Some("end") => {
                elapsed = Duration::from_secs_f64(v["elapsed"].as_f64().unwrap_or(0.0));
                cmdline = v["cmdline"].as_str().unwrap_or("suite").to_string();
            }
            _ => records.push(v),
        }
    }
    write_report(&cfg, &records, &machine, elapsed, &cmdline)
}

// ---------------------------------------------------------------------------------------------
// Machine information

fn lock_versions() -> HashMap<String, String> {
    let mut m = HashMap::new();
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap_or_default();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                m.insert(n, v.trim_matches('"').to_string());
            }
        }
    }
    m
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn machine_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).to_string());
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|s| s.trim().to_string());
    let (maj, min, pat) = zmq::version();
    let v = lock_versions();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = manifest.parent().unwrap_or(manifest).display().to_string();
    let git = sh(&format!("cd '{repo}' && git rev-parse --short HEAD 2>/dev/null"));
    let dirty = sh(&format!("cd '{repo}' && git status --porcelain -- zmtp 2>/dev/null | head -1"));
    json!({
        "nproc": nproc,
        "cpu": cpu.unwrap_or_default(),
        "kernel": kernel,
        "mem": mem,
        "rustc": sh("rustc --version"),
        "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
        "zmtp": format!("{} (git {}{})", v.get("zmtp").cloned().unwrap_or_default(), git, if dirty.is_empty() { "" } else { ", zmtp/ modified" }),
        "libzmq": format!("{maj}.{min}.{pat} (crate zmq {})", v.get("zmq").cloned().unwrap_or_default()),
        "zeromq": v.get("zeromq").cloned().unwrap_or_default(),
        "omq": format!("{} (omq-proto {})", v.get("omq-tokio").cloned().unwrap_or_default(), v.get("omq-proto").cloned().unwrap_or_default()),
        "tokio": v.get("tokio").cloned().unwrap_or_default(),
    })
}
