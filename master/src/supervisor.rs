//! The ProcessManager: runs each unit of the master on its own named OS
//! thread with its own current-thread tokio runtime, restarts a unit that
//! returns or panics (with a doubling back-off, logged), and on SIGTERM /
//! SIGINT stops the units in order.
//!
//! A unit is a name plus a function building its future from the shared
//! [`Master`] and a [`Shutdown`] signal; the future is built inside the
//! unit's thread, so it need not be `Send`. The thread's Rust name is the
//! unit's full name (it appears in every log line); Linux shows the first
//! 15 bytes in `ps -T` / `top -H`, so units pick an `os_name` that fits.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::state::Master;

/// A unit failure.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// A socket or file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A ZeroMQ socket failed.
    #[error("{what}: {source}")]
    Zmq {
        /// What was attempted.
        what: String,
        /// The socket error.
        source: zmtp::Error,
    },
    /// Something else.
    #[error("{0}")]
    Other(String),
}

impl UnitError {
    /// An I/O error of `op` on `path`.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        UnitError::Io { op, path: path.display().to_string(), source }
    }

    /// A ZeroMQ error while doing `what`.
    pub fn zmq(what: impl Into<String>, source: impl Into<zmtp::Error>) -> Self {
        UnitError::Zmq { what: what.into(), source: source.into() }
    }
}

/// A unit's view of the shutdown request.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown is requested.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown was requested.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// The future a unit runs.
pub type UnitFuture = Pin<Box<dyn Future<Output = Result<(), UnitError>>>>;
/// Builds a unit's future (called in the unit's thread, once per start).
pub type UnitStart = Arc<dyn Fn(Arc<Master>, Shutdown) -> UnitFuture + Send + Sync>;

/// One supervised unit.
#[derive(Clone)]
pub struct UnitSpec {
    /// The design name (`MWorker-default-0`), in logs.
    pub name: String,
    /// The OS thread name (≤ 15 bytes), in `ps -T`.
    pub os_name: String,
    /// Stop order: lower stops first.
    pub stop_rank: u8,
    /// Its body.
    pub start: UnitStart,
}

impl std::fmt::Debug for UnitSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitSpec").field("name", &self.name).field("stop_rank", &self.stop_rank).finish_non_exhaustive()
    }
}

impl UnitSpec {
    /// A unit named `name` shown as `os_name` by the OS.
    pub fn new<F, Fut>(name: impl Into<String>, os_name: impl Into<String>, stop_rank: u8, f: F) -> Self
    where
        F: Fn(Arc<Master>, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), UnitError>> + 'static,
    {
        let start: UnitStart = Arc::new(move |m, s| Box::pin(f(m, s)) as UnitFuture);
        UnitSpec { name: name.into(), os_name: os_name.into(), stop_rank, start }
    }
}

/// How a unit's thread ended.
#[derive(Debug)]
enum Exit {
    Returned(Result<(), UnitError>),
    Panicked(String),
    NoThread(String),
}

struct Running {
    spec: UnitSpec,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    backoff: Duration,
    alive: bool,
}

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A unit that ran this long is healthy again: its back-off starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long each stop group may take before we stop waiting for it.
const STOP_GRACE: Duration = Duration::from_secs(3);

fn spawn_unit(
    master: &Arc<Master>,
    spec: &UnitSpec,
    idx: usize,
    exits: &mpsc::UnboundedSender<(usize, Exit)>,
) -> (watch::Sender<bool>, Option<std::thread::JoinHandle<()>>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let master = master.clone();
    let start = spec.start.clone();
    let tx = exits.clone();
    let os_name = spec.os_name.clone();
    let name = spec.name.clone();
    let r = std::thread::Builder::new().name(spec.name.clone()).spawn(move || {
        if let Ok(c) = std::ffi::CString::new(os_name) {
            let _ = rustix::thread::set_name(&c);
        }
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match rt {
                Ok(rt) => {
                    let fut = start(master, Shutdown(stop_rx));
                    let r = rt.block_on(fut);
                    rt.shutdown_timeout(Duration::from_millis(500));
                    r
                }
                Err(e) => Err(UnitError::Other(format!("cannot build a runtime: {e}"))),
            }
        }));
        let exit = match result {
            Ok(r) => Exit::Returned(r),
            Err(p) => Exit::Panicked(
                p.downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned()),
            ),
        };
        let _ = tx.send((idx, exit));
    });
    match r {
        Ok(h) => (stop_tx, Some(h)),
        Err(e) => {
            let _ = exits.send((idx, Exit::NoThread(format!("cannot start thread {name}: {e}"))));
            (stop_tx, None)
        }
    }
}

/// Run `units` until SIGTERM/SIGINT (or `stop` resolves), restarting any
/// that end, then stop them in `stop_rank` order. Call from the main
/// thread; it builds its own small runtime for signals and timers.
pub fn run(master: Arc<Master>, units: Vec<UnitSpec>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(supervise(master, units, stop_signal()))
}

async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "received SIGTERM",
            _ = tokio::signal::ctrl_c() => "received SIGINT",
        },
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            "received SIGINT"
        }
    }
}

/// Supervise `units` until `stop` resolves (with the reason to log), then
/// stop them in order.
pub async fn supervise(
    master: Arc<Master>,
    units: Vec<UnitSpec>,
    stop: impl Future<Output = &'static str>,
) -> std::io::Result<()> {
    let (exits_tx, mut exits) = mpsc::unbounded_channel::<(usize, Exit)>();
    let (restart_tx, mut restarts) = mpsc::unbounded_channel::<usize>();
    let mut running: Vec<Running> = units
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let (stop, thread) = spawn_unit(&master, &spec, i, &exits_tx);
            tracing::info!("started unit {}", spec.name);
            Running { spec, stop, thread, started: Instant::now(), backoff: BACKOFF_MIN, alive: true }
        })
        .collect();
    let sig = stop;
    tokio::pin!(sig);
    let signal_name = loop {
        tokio::select! {
            s = &mut sig => break s,
            Some((i, exit)) = exits.recv() => {
                let Some(u) = running.get_mut(i) else { continue };
                u.alive = false;
                if let Some(h) = u.thread.take() {
                    let _ = h.join();
                }
                match &exit {
                    Exit::Returned(Ok(())) => tracing::error!("unit {} stopped by itself", u.spec.name),
                    Exit::Returned(Err(e)) => tracing::error!("unit {} failed: {e}", u.spec.name),
                    Exit::Panicked(p) => tracing::error!("unit {} panicked: {p}", u.spec.name),
                    Exit::NoThread(e) => tracing::error!("{e}"),
                }
                if u.started.elapsed() >= HEALTHY_AFTER {
                    u.backoff = BACKOFF_MIN;
                }
                let wait = u.backoff;
                u.backoff = (u.backoff * 2).min(BACKOFF_MAX);
                tracing::warn!("restarting unit {} in {:?}", u.spec.name, wait);
                let tx = restart_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(i);
                });
            }
            Some(i) = restarts.recv() => {
                let Some(u) = running.get_mut(i) else { continue };
                let (stop, thread) = spawn_unit(&master, &u.spec, i, &exits_tx);
                u.stop = stop;
                u.thread = thread;
                u.started = Instant::now();
                u.alive = true;
                tracing::info!("restarted unit {}", u.spec.name);
            }
        }
    };
    tracing::warn!("{signal_name}: stopping the master");
    let mut ranks: Vec<u8> = running.iter().map(|u| u.spec.stop_rank).collect();
    ranks.sort_unstable();
    ranks.dedup();
    for rank in ranks {
        let group: Vec<usize> = (0..running.len()).filter(|&i| running[i].spec.stop_rank == rank).collect();
        for &i in &group {
            let _ = running[i].stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while group.iter().any(|&i| running[i].alive) {
            match tokio::time::timeout_at(deadline, exits.recv()).await {
                Ok(Some((i, _))) => {
                    if let Some(u) = running.get_mut(i) {
                        u.alive = false;
                        if let Some(h) = u.thread.take() {
                            let _ = h.join();
                        }
                        tracing::info!("unit {} stopped", u.spec.name);
                    }
                }
                Ok(None) | Err(_) => {
                    for &i in &group {
                        if running[i].alive {
                            tracing::warn!("unit {} did not stop in time", running[i].spec.name);
                        }
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_panicking_unit_is_restarted_and_all_stop_in_order() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let mut config = crate::config::MasterConfig::defaults(dir.path());
        config.keysize = 1024;
        let master = match Master::new(config) {
            Ok(m) => Arc::new(m),
            Err(e) => panic!("{e}"),
        };
        let starts = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s1, st1) = (starts.clone(), stopped.clone());
        let flaky = UnitSpec::new("Flaky", "Flaky", 0, move |_m, mut shutdown: Shutdown| {
            let n = s1.fetch_add(1, Ordering::SeqCst);
            let st = st1.clone();
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
                shutdown.wait().await;
                st.lock().map(|mut v| v.push("Flaky")).ok();
                Ok(())
            }
        });
        let st2 = stopped.clone();
        let last = UnitSpec::new("Last", "Last", 5, move |_m, mut shutdown: Shutdown| {
            let st = st2.clone();
            async move {
                shutdown.wait().await;
                st.lock().map(|mut v| v.push("Last")).ok();
                Ok(())
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let Ok(rt) = rt else { return };
        let s3 = starts.clone();
        let r = rt.block_on(supervise(master, vec![last, flaky], async move {
            // Stop once the flaky unit has been started a third time.
            while s3.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            "test done"
        }));
        assert!(r.is_ok());
        assert_eq!(starts.load(Ordering::SeqCst), 3, "two panics, two restarts");
        let order = stopped.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(order, ["Flaky", "Last"], "stop_rank order");
    }
}
