//! The role processes: one end of one measurement each, like libzmq's local_thr / remote_thr.
//!
//! Protocol with the driver (`zbench suite`), one JSON object per stdout line:
//! - `{"event":"bound"}` once a binding role listens;
//! - `{"event":"ready"}` once a receiving role has its first message (so traffic flows);
//! - the driver then writes `go <start_unix_ns> <end_unix_ns>` to the role's stdin; a control
//!   thread sleeps until `start`, snapshots the role's counters and the allocation counter,
//!   sleeps until `end`, snapshots again and prints `{"event":"result", ...}` for that window;
//! - closing stdin (or `exit`) ends the process.
//!
//! The socket loops therefore never look at the clock (except REQ, which times every round
//! trip): a receiver only stores its running counts into atomics the control thread reads.

use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::alloc;
use crate::impls::{BenchSocket, Kind, R};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    PushPull,
    PubSub,
    DealerRouter,
}

impl Pattern {
    pub fn parse(s: &str) -> R<Pattern> {
        match s {
            "pushpull" => Ok(Pattern::PushPull),
            "pubsub" => Ok(Pattern::PubSub),
            "dealerrouter" => Ok(Pattern::DealerRouter),
            _ => Err(format!("unknown pattern {s:?} (pushpull, pubsub, dealerrouter)")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Pattern::PushPull => "pushpull",
            Pattern::PubSub => "pubsub",
            Pattern::DealerRouter => "dealerrouter",
        }
    }
    pub fn sender_kind(self) -> Kind {
        match self {
            Pattern::PushPull => Kind::Push,
            Pattern::PubSub => Kind::Pub,
            Pattern::DealerRouter => Kind::Dealer,
        }
    }
    pub fn receiver_kind(self) -> Kind {
        match self {
            Pattern::PushPull => Kind::Pull,
            Pattern::PubSub => Kind::Sub,
            Pattern::DealerRouter => Kind::Router,
        }
    }
    /// Which end binds: the PUB for PUB/SUB, the receiver otherwise (as local_thr does).
    pub fn sender_binds(self) -> bool {
        self == Pattern::PubSub
    }
}

/// What a role process was asked to do.
#[derive(Clone, Debug)]
pub struct RoleArgs {
    pub pattern: Pattern,
    pub size: usize,
    pub endpoint: String,
    pub bind: bool,
    pub subs: usize,
    /// PUB/SUB pacing through shared memory (see [`Pace`]): the file, this SUB's first slot, the
    /// number of slots the PUB waits for, and how far the PUB may run ahead of the slowest SUB.
    pub pace: Option<String>,
    pub pace_slot: usize,
    pub pace_slots: usize,
    pub credit: u64,
}

/// Credit-based pacing of a PUB by its SUBs, so that PUB/SUB throughput can be measured without
/// loss: each SUB stores `last sequence number + 1` into its own cache line of a shared file on
/// every message; the PUB runs at most `credit` messages ahead of the slowest SUB (default 500,
/// half the default SNDHWM: libzmq returns pipe credit to the writer every HWM/2 messages, so a
/// paced PUB never reaches its high-water mark).
pub struct Pace {
    map: memmap2::MmapMut,
    slots: usize,
}

impl Pace {
    pub const SLOT: usize = 64;

    pub fn open(path: &str, slots: usize) -> R<Pace> {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: the file is only ever accessed through atomics, by cooperating processes.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapMut::map_mut(&f) }.map_err(|e| e.to_string())?;
        if map.len() < slots * Self::SLOT {
            return Err(format!("{path}: too small for {slots} slots"));
        }
        Ok(Pace { map, slots })
    }

    pub fn slot(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.slots);
        // SAFETY: in bounds (checked above), 64-byte aligned (the map is page aligned), and
        // AtomicU64 has the layout of u64.
        #[allow(unsafe_code)]
        unsafe {
            &*(self.map.as_ptr().add(i * Self::SLOT) as *const AtomicU64)
        }
    }

    /// The slowest SUB's next expected sequence number, once every SUB has reported.
    fn min(&self) -> Option<u64> {
        let mut m = u64::MAX;
        for i in 0..self.slots {
            let v = self.slot(i).load(Relaxed);
            if v == 0 {
                return None;
            }
            m = m.min(v);
        }
        Some(m)
    }
}

pub fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

// ---------------------------------------------------------------------------------------------
// Counters shared between a socket loop and the control thread

#[repr(align(64))]
#[derive(Default)]
pub struct Slot {
    msgs: AtomicU64,
    lost: AtomicU64,
    bad: AtomicU64,
}

pub struct Counters {
    slots: Vec<Slot>,
}

impl Counters {
    pub fn new(n: usize) -> Arc<Counters> {
        Arc::new(Counters { slots: (0..n.max(1)).map(|_| Slot::default()).collect() })
    }
    fn sum(&self) -> (u64, u64, u64) {
        self.slots.iter().fold((0, 0, 0), |(m, l, b), s| {
            (m + s.msgs.load(Relaxed), l + s.lost.load(Relaxed), b + s.bad.load(Relaxed))
        })
    }
}

/// Follows the sequence numbers senders stamp into the first 8 octets of each body.
#[derive(Default)]
struct Seq {
    last: Option<u64>,
    msgs: u64,
    lost: u64,
    bad: u64,
}

impl Seq {
    #[inline]
    fn on(&mut self, body: &[u8], size: usize, slot: &Slot, report: Option<&AtomicU64>) {
        self.msgs += 1;
        if body.len() != size || body.len() < 8 {
            self.bad += 1;
            slot.bad.store(self.bad, Relaxed);
        } else {
            let s = u64::from_le_bytes(body[..8].try_into().unwrap_or([0; 8]));
            if let Some(l) = self.last {
                if s > l + 1 {
                    self.lost += s - l - 1;
                    slot.lost.store(self.lost, Relaxed);
                } else if s <= l {
                    self.bad += 1;
                    slot.bad.store(self.bad, Relaxed);
                }
            }
            self.last = Some(s);
            if let Some(r) = report {
                r.store(s + 1, Relaxed);
            }
        }
        slot.msgs.store(self.msgs, Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// The control thread

/// 0 before the window, 1 inside it, 2 after it.
pub static PHASE: AtomicU8 = AtomicU8::new(0);
/// The driver has said `go` (every peer is connected).
pub static GO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static WINDOW_RESULT: Mutex<Option<Value>> = Mutex::new(None);

fn sleep_until_unix_ns(t: u128) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    if t > now {
        std::thread::sleep(Duration::from_nanos((t - now) as u64));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterWindow {
    /// Print the result and exit the process.
    PrintExit,
    /// Print the result and go on (REP: the REQ may still be waiting for a reply).
    PrintContinue,
    /// Leave the result for the socket loop to print (REQ adds its percentiles).
    Handover,
}

/// The CPU time this process has used (every thread), in seconds: user and system, from
/// `/proc/self/stat` (clock ticks, 10 ms here); 0 where that file is missing.
fn process_cpu_s() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (0.0, 0.0) };
    // The fields after the command name's closing parenthesis; utime and stime are the 12th and
    // 13th of them (fields 14 and 15 of proc(5)).
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return (0.0, 0.0) };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) as f64 / 100.0, ticks(12) as f64 / 100.0)
}

/// This process's threads, summed: voluntary and involuntary context switches (`/proc/self/task/
/// */status`: each voluntary one is a sleep, waiting for something) and the time they spent
/// runnable but waiting for a CPU (`schedstat`'s second field, ns). Zeros where the files are
/// missing.
fn process_switches() -> (u64, u64, u64) {
    let mut t = (0, 0, 0);
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return t };
    for task in dir.flatten() {
        let p = task.path();
        if let Ok(status) = std::fs::read_to_string(p.join("status")) {
            for l in status.lines() {
                let n = |v: &str| v.trim().parse::<u64>().unwrap_or(0);
                if let Some(v) = l.strip_prefix("voluntary_ctxt_switches:") {
                    t.0 += n(v);
                } else if let Some(v) = l.strip_prefix("nonvoluntary_ctxt_switches:") {
                    t.1 += n(v);
                }
            }
        }
        if let Ok(ss) = std::fs::read_to_string(p.join("schedstat")) {
            t.2 += ss.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    t
}

fn spawn_control(role: &'static str, counters: Arc<Counters>, size: usize, after: AfterWindow) {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split_whitespace().collect();
                match parts.as_slice() {
                    ["go", start, end] => {
                        let (Ok(start), Ok(end)) = (start.parse::<u128>(), end.parse::<u128>()) else { continue };
                        GO.store(true, Release);
                        sleep_until_unix_ns(start);
                        let t0 = Instant::now();
                        let c0 = counters.sum();
                        let a0 = alloc::snapshot();
                        let cpu0 = process_cpu_s();
                        let sw0 = process_switches();
                        PHASE.store(1, Release);
                        sleep_until_unix_ns(end);
                        let c1 = counters.sum();
                        let a1 = alloc::snapshot();
                        let cpu1 = process_cpu_s();
                        let sw1 = process_switches();
                        let dt = t0.elapsed().as_secs_f64();
                        let msgs = c1.0 - c0.0;
                        let allocs = a1.0 - a0.0;
                        let v = json!({
                            "event": "result",
                            "role": role,
                            "msgs": msgs,
                            "secs": dt,
                            "rate": msgs as f64 / dt,
                            "mbps": (msgs as f64) * (size as f64) / dt / 1e6,
                            "lost": c1.1 - c0.1,
                            "bad": c1.2 - c0.2,
                            "allocs": allocs,
                            "cpu_s": (cpu1.0 + cpu1.1) - (cpu0.0 + cpu0.1),
                            "sys_s": cpu1.1 - cpu0.1,
                            "vcsw": sw1.0.saturating_sub(sw0.0),
                            "nvcsw": sw1.1.saturating_sub(sw0.1),
                            "runq_wait_ns": sw1.2.saturating_sub(sw0.2),
                            "alloc_bytes": a1.1 - a0.1,
                            "allocs_per_msg": if msgs > 0 { allocs as f64 / msgs as f64 } else { 0.0 },
                            "total_msgs": c1.0,
                        });
                        match after {
                            AfterWindow::PrintExit => {
                                emit(v);
                                std::process::exit(0);
                            }
                            AfterWindow::PrintContinue => emit(v),
                            AfterWindow::Handover => {
                                *WINDOW_RESULT.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
                            }
                        }
                        PHASE.store(2, Release);
                    }
                    ["exit"] => std::process::exit(0),
                    _ => {}
                }
            }
            std::process::exit(0);
        })
        .expect("spawn control thread");
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Throughput

pub async fn recv<S: BenchSocket>(a: RoleArgs) -> R<()> {
    let mut s = S::open(a.pattern.receiver_kind()).await?;
    if a.pattern == Pattern::PubSub {
        s.subscribe_all().await?;
    }
    if a.bind {
        s.bind(&a.endpoint).await?;
        emit(json!({"event": "bound"}));
    } else {
        s.connect(&a.endpoint).await?;
    }
    let counters = Counters::new(1);
    spawn_control("recv", counters.clone(), a.size, AfterWindow::PrintExit);
    let slot = &counters.slots[0];
    let pace = match &a.pace {
        Some(p) => Some(Pace::open(p, a.pace_slot + 1)?),
        None => None,
    };
    let report = pace.as_ref().map(|p| p.slot(a.pace_slot));
    let mut seq = Seq::default();
    let m = s.recv().await?;
    seq.on(S::body(&m), a.size, slot, report);
    drop(m);
    emit(json!({"event": "ready"}));
    loop {
        let m = s.recv().await?;
        seq.on(S::body(&m), a.size, slot, report);
    }
}

pub async fn send<S: BenchSocket>(a: RoleArgs) -> R<()> {
    let mut s = S::open(a.pattern.sender_kind()).await?;
    if a.bind {
        s.bind(&a.endpoint).await?;
        emit(json!({"event": "bound"}));
    } else {
        s.connect(&a.endpoint).await?;
    }
    let counters = Counters::new(1);
    spawn_control("send", counters.clone(), a.size, AfterWindow::PrintExit);
    let slot = &counters.slots[0];
    let mut buf = payload(a.size.max(8));
    let mut seq: u64 = 0;
    let is_pub = a.pattern == Pattern::PubSub;
    let pace = match &a.pace {
        Some(p) => Some(Pace::open(p, a.pace_slots)?),
        None => None,
    };
    let mut limit = 0u64;
    let mut gentle = is_pub;
    loop {
        if gentle && seq.is_multiple_of(100) {
            // Until the driver says go (every SUB connected and receiving), a PUB sends about
            // 100 messages per millisecond: enough for the SUBs to become ready, little enough
            // to leave the library time to accept a hundred connections.
            if GO.load(Acquire) {
                gentle = false;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if let Some(p) = &pace {
            if seq >= limit && !gentle {
                let mut spins = 0u32;
                let mut last_min = 0;
                let mut stalled = Instant::now();
                loop {
                    match p.min() {
                        Some(m) => {
                            limit = m + a.credit;
                            if seq < limit {
                                break;
                            }
                            if m != last_min {
                                last_min = m;
                                stalled = Instant::now();
                            } else if stalled.elapsed() > Duration::from_millis(2) {
                                // No SUB progress for 2 ms: what is missing was dropped (libzmq, for one,
                                // drops below its HWM: it applies returned pipe credit lazily); grant another credit.
                                if std::env::var_os("ZBENCH_DEBUG").is_some() {
                                    eprintln!("pace: stalled at seq {seq}, slowest SUB at {m}");
                                }
                                limit = seq + a.credit;
                                break;
                            }
                        }
                        None => {
                            limit = seq + 100;
                            break;
                        }
                    }
                    // Let the library's own tasks flush, then back off a little.
                    tokio::task::yield_now().await;
                    spins += 1;
                    if spins > 8 {
                        std::thread::sleep(Duration::from_micros(20));
                    }
                }
            }
        }
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        match s.send(S::make(&buf[..a.size.max(8)])).await {
            Ok(()) => {
                seq += 1;
                slot.msgs.store(seq, Relaxed);
                // A PUB never waits, so a publishing loop never yields on its own; on a
                // current-thread runtime it would starve the library's own tasks. Every
                // implementation gets the same yield.
                if is_pub && seq.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Latency

pub async fn rep<S: BenchSocket>(a: RoleArgs) -> R<()> {
    let mut s = S::open(Kind::Rep).await?;
    s.bind(&a.endpoint).await?;
    emit(json!({"event": "bound"}));
    let counters = Counters::new(1);
    spawn_control("rep", counters.clone(), a.size, AfterWindow::PrintContinue);
    let slot = &counters.slots[0];
    let mut n = 0u64;
    loop {
        let m = s.recv().await?;
        s.send(m).await?;
        n += 1;
        slot.msgs.store(n, Relaxed);
    }
}

pub async fn req<S: BenchSocket>(a: RoleArgs) -> R<()> {
    let mut s = S::open(Kind::Req).await?;
    s.connect(&a.endpoint).await?;
    let counters = Counters::new(1);
    spawn_control("req", counters.clone(), a.size, AfterWindow::Handover);
    let slot = &counters.slots[0];
    let buf = payload(a.size);
    let mut rtts: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut n = 0u64;
    let mut bad = 0u64;
    loop {
        let t = Instant::now();
        s.send(S::make(&buf)).await?;
        let m = s.recv().await?;
        let rtt = t.elapsed().as_nanos() as u64;
        if S::body(&m).len() != a.size {
            bad += 1;
        }
        drop(m);
        n += 1;
        slot.msgs.store(n, Relaxed);
        if n == 1 {
            emit(json!({"event": "ready"}));
        }
        match PHASE.load(Acquire) {
            0 => {}
            1 => rtts.push(rtt),
            _ => {
                let Some(mut v) = WINDOW_RESULT.lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
                rtts.sort_unstable();
                let q = |p: f64| -> f64 {
                    if rtts.is_empty() {
                        return 0.0;
                    }
                    let i = ((rtts.len() as f64 - 1.0) * p).round() as usize;
                    rtts[i.min(rtts.len() - 1)] as f64 / 1000.0
                };
                let mean = rtts.iter().sum::<u64>() as f64 / rtts.len().max(1) as f64 / 1000.0;
                v["rtts"] = json!(rtts.len());
                v["p50_us"] = json!(q(0.5));
                v["p90_us"] = json!(q(0.9));
                v["p99_us"] = json!(q(0.99));
                v["p999_us"] = json!(q(0.999));
                v["max_us"] = json!(rtts.last().map_or(0.0, |&x| x as f64 / 1000.0));
                v["mean_us"] = json!(mean);
                v["bad"] = json!(bad);
                emit(v);
                std::process::exit(0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fan-out: many SUB sockets in one process

pub async fn fsub<S: BenchSocket + 'static>(a: RoleArgs) -> R<()> {
    let k = a.subs.max(1);
    let counters = Counters::new(k);
    spawn_control("fsub", counters.clone(), a.size, AfterWindow::PrintExit);
    let started = Arc::new(AtomicUsize::new(0));
    let local = tokio::task::LocalSet::new();
    let pace = match &a.pace {
        Some(p) => Some(Arc::new(Pace::open(p, a.pace_slot + k)?)),
        None => None,
    };
    // Connect one after the other (as an application opening many sockets would), then
    // receive on all of them concurrently.
    let mut socks = Vec::with_capacity(k);
    for _ in 0..k {
        let mut s = S::open(Kind::Sub).await?;
        s.subscribe_all().await?;
        s.connect(&a.endpoint).await?;
        socks.push(s);
    }
    for (i, mut s) in socks.into_iter().enumerate() {
        let counters = counters.clone();
        let started = started.clone();
        let a = a.clone();
        let pace = pace.clone();
        local.spawn_local(async move {
            let run = async {
                let slot = &counters.slots[i];
                let report = pace.as_ref().map(|p| p.slot(a.pace_slot + i));
                let mut seq = Seq::default();
                let m = s.recv().await?;
                seq.on(S::body(&m), a.size, slot, report);
                drop(m);
                if started.fetch_add(1, AcqRel) + 1 == k {
                    emit(json!({"event": "ready"}));
                }
                loop {
                    let m = s.recv().await?;
                    seq.on(S::body(&m), a.size, slot, report);
                }
                #[allow(unreachable_code)]
                R::Ok(())
            };
            if let Err(e) = run.await {
                eprintln!("fsub {i}: {e}");
                std::process::exit(1);
            }
        });
    }
    local.await;
    Ok(())
}

/// libzmq's SUB sockets are synchronous: one thread polls all of them, as a libzmq
/// application with many sockets would.
pub fn fsub_libzmq(a: RoleArgs) -> R<()> {
    let k = a.subs.max(1);
    let counters = Counters::new(k);
    spawn_control("fsub", counters.clone(), a.size, AfterWindow::PrintExit);
    let ctx = zmq::Context::new();
    let mut socks = Vec::with_capacity(k);
    for _ in 0..k {
        let s = ctx.socket(zmq::SUB).map_err(|e| e.to_string())?;
        s.set_subscribe(b"").map_err(|e| e.to_string())?;
        s.connect(&a.endpoint).map_err(|e| e.to_string())?;
        socks.push(s);
    }
    let pace = match &a.pace {
        Some(p) => Some(Pace::open(p, a.pace_slot + k)?),
        None => None,
    };
    let mut seqs: Vec<Seq> = (0..k).map(|_| Seq::default()).collect();
    let mut started = 0usize;
    let mut msg = zmq::Message::new();
    loop {
        let mut items: Vec<zmq::PollItem> = socks.iter().map(|s| s.as_poll_item(zmq::POLLIN)).collect();
        zmq::poll(&mut items, -1).map_err(|e| e.to_string())?;
        let ready: Vec<usize> = items.iter().enumerate().filter(|(_, it)| it.is_readable()).map(|(i, _)| i).collect();
        drop(items);
        for i in ready {
            // Drain what is queued on this socket.
            while socks[i].recv(&mut msg, zmq::DONTWAIT).is_ok() {
                if msg.get_more() {
                    continue;
                }
                let first = seqs[i].msgs == 0;
                seqs[i].on(&msg, a.size, &counters.slots[i], pace.as_ref().map(|p| p.slot(a.pace_slot + i)));
                if first {
                    started += 1;
                    if started == k {
                        emit(json!({"event": "ready"}));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections: a ROUTER with many idle peers

pub async fn router<S: BenchSocket>(a: RoleArgs) -> R<()> {
    let mut s = S::open(Kind::Router).await?;
    s.bind(&a.endpoint).await?;
    emit(json!({"event": "bound", "pid": std::process::id()}));
    let counters = Counters::new(1);
    spawn_control("router", counters, 0, AfterWindow::PrintContinue);
    loop {
        let _ = s.recv().await?;
    }
}

/// Idle DEALER peers that speak just enough ZMTP 3.1 (NULL mechanism) to be handshaken peers of
/// the ROUTER under test, and nothing more: every implementation faces the same peers.
pub fn peers(a: RoleArgs) -> R<()> {
    use std::net::TcpStream;
    let addr = a
        .endpoint
        .strip_prefix("tcp://")
        .ok_or_else(|| format!("peers: only tcp endpoints, not {}", a.endpoint))?
        .to_string();
    let mut hello = Vec::with_capacity(64 + 30);
    hello.extend_from_slice(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1]);
    let mut mech = [0u8; 20];
    mech[..4].copy_from_slice(b"NULL");
    hello.extend_from_slice(&mech);
    hello.push(0); // as-server
    hello.extend_from_slice(&[0u8; 31]);
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    hello.push(0x04);
    hello.push(body.len() as u8);
    hello.extend_from_slice(&body);

    let total = a.subs;
    let mut conns: Vec<TcpStream> = Vec::with_capacity(total);
    const WAVE: usize = 50;
    while conns.len() < total {
        let wave = WAVE.min(total - conns.len());
        let mut fresh = Vec::with_capacity(wave);
        for _ in 0..wave {
            let mut c = connect_retry(&addr)?;
            c.write_all(&hello).map_err(|e| e.to_string())?;
            fresh.push(c);
        }
        for mut c in fresh {
            c.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
            let mut greeting = [0u8; 64];
            c.read_exact(&mut greeting).map_err(|e| format!("greeting: {e}"))?;
            if greeting[0] != 0xFF || greeting[9] != 0x7F {
                return Err("peer: bad greeting".into());
            }
            // The peer's READY command.
            let mut flags = [0u8; 1];
            c.read_exact(&mut flags).map_err(|e| e.to_string())?;
            let len = if flags[0] & 0x02 != 0 {
                let mut l = [0u8; 8];
                c.read_exact(&mut l).map_err(|e| e.to_string())?;
                u64::from_be_bytes(l) as usize
            } else {
                let mut l = [0u8; 1];
                c.read_exact(&mut l).map_err(|e| e.to_string())?;
                l[0] as usize
            };
            let mut cmd = vec![0u8; len];
            c.read_exact(&mut cmd).map_err(|e| e.to_string())?;
            if flags[0] & 0x04 == 0 || !cmd.starts_with(b"\x05READY") {
                return Err("peer: expected READY".into());
            }
            conns.push(c);
        }
    }
    emit(json!({"event": "ready", "conns": conns.len()}));
    // Idle until the driver closes stdin.
    let mut sink = String::new();
    let _ = std::io::stdin().read_to_string(&mut sink);
    drop(conns);
    Ok(())
}

fn connect_retry(addr: &str) -> R<std::net::TcpStream> {
    let mut last = String::new();
    for _ in 0..50 {
        match std::net::TcpStream::connect(addr) {
            Ok(c) => return Ok(c),
            Err(e) => {
                last = e.to_string();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Err(format!("connect {addr}: {last}"))
}

/// `zbench pair`: both ends of PUSH→PULL or DEALER→ROUTER in this one process, on one runtime,
/// exactly `count` messages, then exit. For instruction counts under callgrind
/// (`scripts/bench-instr.sh`), which need a fixed amount of work rather than a time window: the
/// cost per message is the difference of two counts over the difference of their messages, so
/// the set-up and tear-down cancel out.
pub async fn pair<S: BenchSocket>(role: RoleArgs, count: u64) -> R<()> {
    if role.pattern == Pattern::PubSub {
        return Err("pair: pushpull or dealerrouter (a PUB drops until its SUB has subscribed)".into());
    }
    // Under `--curve` the binding end is the server, the connecting end the client.
    let curve = crate::curve::side().is_some();
    let mut rx = S::open(role.pattern.receiver_kind()).await?;
    rx.bind(&role.endpoint).await?;
    if curve {
        crate::curve::set(Some(crate::curve::Side::Client));
    }
    let mut tx = S::open(role.pattern.sender_kind()).await?;
    tx.connect(&role.endpoint).await?;
    let body = vec![0x5a; role.size];
    let send = async {
        for _ in 0..count {
            tx.send(S::make(&body)).await?;
        }
        Ok::<_, String>(())
    };
    let recv = async {
        for i in 0..count {
            let m = rx.recv().await?;
            if S::body(&m).len() != role.size {
                return Err(format!("message {i}: {} octets, sent {}", S::body(&m).len(), role.size));
            }
        }
        Ok(())
    };
    let (a, b) = tokio::join!(send, recv);
    a.and(b)?;
    println!("{}", json!({"event": "pair", "messages": count}));
    Ok(())
}
