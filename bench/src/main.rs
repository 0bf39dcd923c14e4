//! `zbench`: zmtp against libzmq, zmq.rs and OMQ.rs, each end of a measurement in its own OS
//! process. See `bench/README.md`.
//!
//! ```text
//! zbench suite [--quick] [...]                       the driver: runs everything, writes the report
//! zbench recv  --impl I --pattern P --size N --endpoint E [--bind]
//! zbench send  --impl I --pattern P --size N --endpoint E [--bind]
//! zbench rep   --impl I --endpoint E
//! zbench req   --impl I --size N --endpoint E
//! zbench fsub  --impl I --subs K --size N --endpoint E
//! zbench router --impl I --endpoint E
//! zbench peers --count K --endpoint E
//! zbench pair  --impl I --pattern P --size N --endpoint E --count M   both ends, M messages (callgrind)
//! ```
//! Role processes print JSON lines and take `go <start_ns> <end_ns>` on stdin (see `roles`).

mod alloc;
mod curve;
mod impls;
mod report;
mod roles;
mod suite;

use std::collections::HashMap;

use impls::{Impl, Libzmq, Omq, Zeromq, Zmtp, R};
use roles::{Pattern, RoleArgs};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// `--key value` and `--flag` arguments.
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    pub fn parse(args: &[String]) -> R<Args> {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let Some(k) = args[i].strip_prefix("--") else {
                return Err(format!("unexpected argument {:?}", args[i]));
            };
            if let Some((k, v)) = k.split_once('=') {
                map.insert(k.to_string(), v.to_string());
                i += 1;
            } else if i + 1 < args.len() && !args[i + 1].starts_with("--") {
                map.insert(k.to_string(), args[i + 1].clone());
                i += 2;
            } else {
                map.insert(k.to_string(), String::new());
                i += 1;
            }
        }
        Ok(Args { map })
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }
    pub fn str_or(&self, k: &str, d: &str) -> String {
        self.get(k).unwrap_or(d).to_string()
    }
    pub fn num<T: std::str::FromStr>(&self, k: &str, d: T) -> R<T> {
        match self.get(k) {
            None => Ok(d),
            Some(v) => v.parse().map_err(|_| format!("--{k}: not a number: {v:?}")),
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let Some(cmd) = argv.get(1).cloned() else {
        eprintln!("usage: zbench <suite|recv|send|rep|req|fsub|router|peers> [--options]; see bench/README.md");
        std::process::exit(2);
    };
    let res = Args::parse(&argv[2..]).and_then(|a| run(&cmd, &a));
    if let Err(e) = res {
        eprintln!("zbench {cmd}: {e}");
        std::process::exit(1);
    }
}

fn run(cmd: &str, a: &Args) -> R<()> {
    if cmd == "suite" {
        return suite::run(a);
    }
    if cmd == "report" {
        return suite::report_only(a);
    }
    if cmd == "alloc-check" {
        return alloc_check();
    }
    if cmd == "caps" {
        let c = impls::Caps::OF_THIS_BUILD;
        println!("{}", serde_json::json!({"curve": c.curve, "recv_spin": c.recv_spin}));
        return Ok(());
    }
    let role = RoleArgs {
        pattern: Pattern::parse(&a.str_or("pattern", "pushpull"))?,
        size: a.num("size", 16usize)?,
        endpoint: a.get("endpoint").ok_or("--endpoint is required")?.to_string(),
        bind: a.flag("bind"),
        subs: a.num("subs", a.num("count", 1usize)?)?,
        pace: a.get("pace").map(str::to_string),
        pace_slot: a.num("pace-slot", 0usize)?,
        pace_slots: a.num("pace-slots", 1usize)?,
        credit: a.num("credit", 500u64)?,
    };
    if cmd == "peers" {
        return roles::peers(role);
    }
    let imp: Impl = a.str_or("impl", "zmtp").parse()?;
    let count = a.num("count", 100_000u64)?;
    // The REP of the latency case always binds; so does `pair`, its receiving end first.
    let binds = a.flag("bind") || cmd == "rep" || cmd == "pair";
    if a.flag("curve") && !impls::Caps::OF_THIS_BUILD.curve {
        return Err("this build's zmtp has no CURVE (built for an older revision)".into());
    }
    curve::set(a.flag("curve").then_some(if binds { curve::Side::Server } else { curve::Side::Client }));
    impls::set_recv_spin(std::time::Duration::from_micros(a.num("recv-spin-us", 0u64)?));
    if imp == Impl::Libzmq && cmd == "fsub" {
        return roles::fsub_libzmq(role);
    }
    // Tokio runtime for the Rust implementations: current-thread under `--rt ct` (the default
    // for a role run by hand), multi-threaded with `--workers` (default: one per core) under
    // `--rt mt`; the suite runs every case on both. libzmq brings its own I/O thread and blocks
    // the caller, so it always gets a current-thread runtime (which it does not use).
    let rt_kind = if imp == Impl::Libzmq { "ct".to_string() } else { a.str_or("rt", "ct") };
    let workers = a.num("workers", std::thread::available_parallelism().map_or(2, |n| n.get()))?;
    let rt = match rt_kind.as_str() {
        "ct" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        "mt" => tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build(),
        other => return Err(format!("--rt {other}: ct or mt")),
    }
    .map_err(|e| e.to_string())?;
    macro_rules! dispatch {
        ($S:ty) => {
            rt.block_on(async {
                match cmd {
                    "recv" => roles::recv::<$S>(role).await,
                    "send" => roles::send::<$S>(role).await,
                    "rep" => roles::rep::<$S>(role).await,
                    "req" => roles::req::<$S>(role).await,
                    "fsub" => roles::fsub::<$S>(role).await,
                    "router" => roles::router::<$S>(role).await,
                    "pair" => roles::pair::<$S>(role, count).await,
                    other => Err(format!("unknown command {other:?}")),
                }
            })
        };
    }
    match imp {
        Impl::Zmtp => dispatch!(Zmtp),
        Impl::Libzmq => dispatch!(Libzmq),
        Impl::Zeromq => dispatch!(Zeromq),
        Impl::Omq => dispatch!(Omq),
        // The driver runs a `zmtp@REV`'s roles in that revision's own binary, as `--impl zmtp`.
        Impl::ZmtpAt(name) => Err(format!("{name}: run its roles with zbench-zmtp-{}", imp.rev().unwrap_or(""))),
    }
}

/// Sanity check of the counting allocator: allocations per message construction, per library.
fn alloc_check() -> R<()> {
    use impls::BenchSocket;
    let body = vec![7u8; 16];
    fn per<F: FnMut()>(mut f: F) -> f64 {
        let (a0, _) = alloc::snapshot();
        for _ in 0..10_000 {
            f();
        }
        let (a1, _) = alloc::snapshot();
        (a1 - a0) as f64 / 10_000.0
    }
    let v = per(|| drop(std::hint::black_box(vec![1u8; 16])));
    println!("Vec<u8> 16 B: {v:.2} allocations");
    let v = per(|| drop(std::hint::black_box(Zmtp::make(&body))));
    println!("zmtp Message from 16 B slice: {v:.2}");
    let v = per(|| drop(std::hint::black_box(Zeromq::make(&body))));
    println!("zeromq ZmqMessage from 16 B slice: {v:.2}");
    let v = per(|| drop(std::hint::black_box(Omq::make(&body))));
    println!("omq Message from 16 B slice: {v:.2}");
    Ok(())
}
