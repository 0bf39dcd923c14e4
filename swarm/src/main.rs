//! `salt-swarm-rs`: run N Salt minions against one master, over K processes.
//!
//! ```sh
//! salt-swarm-rs -n 1000 --master 127.0.0.1 --master-port 4506 --run-dir /tmp/sw
//! ```
//!
//! Each process raises its open-file limit to the hard limit and runs its share of the minions
//! (each needs about three descriptors while signing in, two afterwards) on one tokio runtime.
//! With `--procs K` the launcher starts K copies of itself (`--child P`), process P connecting
//! to the P-th address of `--master` (round robin): a master listening on `0.0.0.0` then sees
//! the connections spread over several destination addresses, which multiplies the ephemeral
//! ports available (zmtp cannot bind a connecting socket's source address yet).
//!
//! Status: every process writes `RUN_DIR/status-P.json` (see `swarm::stats`) every
//! `--status-ms`; the launcher sums them into `RUN_DIR/status.json` and prints one line per
//! change. SIGTERM or SIGINT stops everything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use minion::config::{Config, LoadOptions};
use minion::daemon::{run_prepared, Prepared};
use minion::observer::Observer;
use serde_json::json;
use swarm::stats::{merge, Stats};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// Minions per process the launcher aims for when `--procs` is not given.
const PER_PROC: usize = 4000;

#[derive(Debug, Clone, Parser)]
#[command(name = "salt-swarm-rs", version, about = "Many Salt minions in one or a few processes, to size a master")]
struct Args {
    /// Number of minions (all processes together).
    #[arg(short = 'n', long, default_value_t = 100)]
    count: usize,
    /// Processes (default: one per 4000 minions).
    #[arg(long)]
    procs: Option<usize>,
    /// Master addresses, comma-separated; process P uses the (P mod len)-th.
    #[arg(long, default_value = "127.0.0.1")]
    master: String,
    /// The master's ret port.
    #[arg(long, default_value_t = 4506)]
    master_port: u16,
    /// Run directory: per-minion pki dirs, generated config, status files.
    #[arg(long)]
    run_dir: PathBuf,
    /// Key cache (generated once, reused): CACHE/<keysize>/<id>/minion.{pem,pub}.
    #[arg(long, default_value = "/var/tmp/salt-swarm-keys")]
    key_cache: PathBuf,
    /// RSA key size of the minions' keys.
    #[arg(long, default_value_t = 2048)]
    keysize: usize,
    /// Minion id prefix (ids are PREFIX-NNNNN).
    #[arg(long, default_value = "swarm")]
    prefix: String,
    /// Index of the first minion.
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Extra minion options (a YAML file appended to the generated config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Tokio worker threads per process.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Status file period in milliseconds.
    #[arg(long, default_value_t = 500)]
    status_ms: u64,
    /// Log level (error, warning, info, debug).
    #[arg(short = 'l', long, default_value = "warning")]
    log_level: String,
    /// Only fill the key cache, then exit.
    #[arg(long)]
    keygen_only: bool,
    /// Internal: run as process P of the launcher.
    #[arg(long, hide = true)]
    child: Option<usize>,
}

impl Args {
    fn procs(&self) -> usize {
        self.procs.unwrap_or(self.count.div_ceil(PER_PROC)).clamp(1, self.count.max(1))
    }

    /// The minion indices of process `p`.
    fn range(&self, p: usize) -> std::ops::Range<usize> {
        let k = self.procs();
        let (base, rem) = (self.count / k, self.count % k);
        let start = p * base + p.min(rem);
        let len = base + usize::from(p < rem);
        self.first + start..self.first + start + len
    }

    fn master_for(&self, p: usize) -> String {
        let ips: Vec<&str> = self.master.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        ips.get(p % ips.len().max(1)).copied().unwrap_or("127.0.0.1").to_string()
    }
}

fn init_logging(level: &str) {
    let l = match level {
        "error" | "critical" | "quiet" => tracing::Level::ERROR,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" | "garbage" | "all" => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(LevelFilter::from_level(l));
    tracing_subscriber::registry().with(layer).init();
}

/// Write `value` to `path` atomically.
fn write_json(path: &Path, value: &serde_json::Value) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, value.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);
    if let Err(e) = std::fs::create_dir_all(&args.run_dir) {
        eprintln!("cannot create {}: {e}", args.run_dir.display());
        return std::process::ExitCode::FAILURE;
    }
    let result = match args.child {
        Some(p) => run_process(&args, p),
        None => launch(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("salt-swarm-rs: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(2)
}

/// The launcher: keys first (once), then one process or K children.
fn launch(args: &Args) -> Result<(), String> {
    let ids: Vec<String> = (args.first..args.first + args.count).map(|i| swarm::minion_id(&args.prefix, i)).collect();
    let t0 = std::time::Instant::now();
    let made = swarm::keys::ensure_cached(&args.key_cache, args.keysize, &ids, threads()).map_err(|e| e.to_string())?;
    if made > 0 {
        println!("generated {made} key pairs in {:.1} s", t0.elapsed().as_secs_f64());
    }
    if args.keygen_only {
        return Ok(());
    }
    if args.procs() == 1 {
        return run_process(args, 0);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for p in 0..args.procs() {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(std::env::args_os().skip(1)).arg("--child").arg(p.to_string());
        children.push(cmd.spawn().map_err(|e| format!("cannot start process {p}: {e}"))?);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut tick = tokio::time::interval(Duration::from_millis(args.status_ms.max(50)));
        let mut last_line = String::new();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => break,
                _ = tick.tick() => {
                    let parts: Vec<serde_json::Value> = (0..args.procs())
                        .filter_map(|p| std::fs::read(args.run_dir.join(format!("status-{p}.json"))).ok())
                        .filter_map(|b| serde_json::from_slice(&b).ok())
                        .collect();
                    let mut all = merge(&parts);
                    if let Some(m) = all.as_object_mut() {
                        m.insert("procs".into(), json!(args.procs()));
                        m.insert("procs_reporting".into(), json!(parts.len()));
                        m.remove("proc");
                        m.remove("master");
                    }
                    write_json(&args.run_dir.join("status.json"), &all);
                    let line = summary(&all);
                    if line != last_line {
                        println!("{line}");
                        last_line = line;
                    }
                    if children.iter_mut().all(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                        break;
                    }
                }
            }
        }
    });
    for c in &mut children {
        if let Ok(None) = c.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(c.id()).unwrap_or(0)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }
    for c in &mut children {
        let _ = c.wait();
    }
    Ok(())
}

fn summary(v: &serde_json::Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    format!(
        "minions {} | signed in {} | started {} | _auth requests {} | exited {} | jobs seen {}",
        n("count"),
        n("signed_in"),
        n("started"),
        n("auth_requests"),
        n("exited"),
        v["jobs"].as_object().map_or(0, serde_json::Map::len)
    )
}

/// The generated minion config of process `p` (plus `--config`), loaded once.
fn base_config(args: &Args, p: usize, first_id: &str) -> Result<Config, String> {
    let dir = args.run_dir.join(format!("conf-{p}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut text = format!(
        "master: {}\nmaster_port: {}\nroot_dir: {}\n",
        args.master_for(p),
        args.master_port,
        args.run_dir.join("root").display()
    );
    if let Some(extra) = &args.config {
        text.push_str(&std::fs::read_to_string(extra).map_err(|e| format!("{}: {e}", extra.display()))?);
        text.push('\n');
    }
    let path = dir.join("minion");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let options = LoadOptions { id_override: Some(first_id.to_string()), cache_minion_id: false };
    Config::load_file(&path, &options).map_err(|e| e.to_string())
}

/// Raise the soft open-file limit to the hard one.
fn raise_nofile() -> u64 {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let want = rustix::process::Rlimit { current: lim.maximum, maximum: lim.maximum };
    let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, want);
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// One swarm process: its share of the minions on one runtime until SIGTERM/SIGINT.
fn run_process(args: &Args, p: usize) -> Result<(), String> {
    let range = args.range(p);
    let nofile = raise_nofile();
    if (range.len() as u64).saturating_mul(3) + 64 > nofile {
        tracing::warn!(
            "{} minions need about {} descriptors; the limit is {nofile}",
            range.len(),
            range.len() * 3 + 64
        );
    }
    let ids: Vec<(usize, String)> = range.clone().map(|i| (i, swarm::minion_id(&args.prefix, i))).collect();
    let Some((_, first_id)) = ids.first() else { return Ok(()) };
    let base = base_config(args, p, first_id)?;
    let status_path = args.run_dir.join(format!("status-{p}.json"));
    let stats = Arc::new(Stats::default());
    let extra = |phase: &str, launched: Option<f64>| {
        vec![
            ("proc", json!(p)),
            ("count", json!(ids.len())),
            ("phase", json!(phase)),
            ("launched", json!(launched)),
            ("master", json!(args.master_for(p))),
        ]
    };
    write_json(&status_path, &stats.snapshot(&extra("loading keys", None)));

    // Load (and link) every key pair before any minion connects, on every core: the storm
    // then measures the master, not the swarm's key parsing.
    let pki_root = args.run_dir.join("pki");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let loaded: std::sync::Mutex<Vec<Option<Arc<minion::keys::MinionKeys>>>> =
        std::sync::Mutex::new(vec![None; ids.len()]);
    let first_error = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((_, id)) = ids.get(i) else { break };
                match swarm::keys::install(&args.key_cache, args.keysize, id, &pki_root.join(id)) {
                    Ok(k) => loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(Arc::new(k)),
                    Err(e) => {
                        first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e.to_string());
    }
    let loaded = loaded.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let launched = swarm::now_unix();
        for ((index, id), keys) in ids.iter().zip(loaded) {
            let Some(keys) = keys else { continue };
            let mut config = base.clone();
            config.id = id.clone();
            config.pki_dir = pki_root.join(id);
            let prepared = Prepared {
                keys,
                grains: swarm::grains(id, *index, p),
                observer: Some(stats.clone() as Arc<dyn Observer>),
            };
            let stats = stats.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let r = run_prepared(Arc::new(config), prepared).await;
                stats.minion_exited();
                match r {
                    Ok(()) => tracing::warn!("minion {id} stopped"),
                    Err(e) => tracing::error!("minion {id} stopped: {e}"),
                }
            });
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut tick = tokio::time::interval(Duration::from_millis(args.status_ms.max(50)));
        let mut last_line = String::new();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => break,
                _ = tick.tick() => {
                    let snap = stats.snapshot(&extra("running", Some(launched)));
                    write_json(&status_path, &snap);
                    if args.child.is_none() {
                        // One process: its status is the whole swarm's.
                        write_json(&args.run_dir.join("status.json"), &snap);
                        let line = summary(&snap);
                        if line != last_line {
                            println!("{line}");
                            last_line = line;
                        }
                    }
                }
            }
        }
        write_json(&status_path, &stats.snapshot(&extra("stopped", Some(launched))));
    });
    if args.child.is_none() {
        let _ = std::fs::copy(&status_path, args.run_dir.join("status.json"));
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
