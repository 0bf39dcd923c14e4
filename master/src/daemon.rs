//! Start the master: prepare the shared state, write the pid file, build
//! the units and hand them to the ProcessManager ([`crate::supervisor`]).
//!
//! | unit (log name) | OS thread name | stop order |
//! |---|---|---|
//! | `MWorkerQueue` | `MWorkerQueue` | 0 |
//! | `MWorker-default-N` (`worker_threads` of them) | `MWorker-def-N` | 0 |
//! | `Publisher` (runs and feeds the `Publisher` process, [`run_unit`]) | `Publisher` | 1 |
//! | `Maintenance` | `Maintenance` | 1 |
//! | `EventPublisher` | `EventPublisher` | 2 (last: the final events still go out) |

use std::sync::Arc;

use crate::config::MasterConfig;
use crate::state::{Master, StartError};
use crate::supervisor::{self, UnitSpec};

/// The units of a master with `worker_threads` workers.
pub fn units(worker_threads: usize) -> Vec<UnitSpec> {
    let mut u = vec![
        UnitSpec::new("EventPublisher", "EventPublisher", 2, crate::events::run_event_publisher),
        UnitSpec::new("Publisher", "Publisher", 1, crate::publisher::run_publisher),
        UnitSpec::new("Maintenance", "Maintenance", 1, crate::maintenance::run_maintenance),
        UnitSpec::new("MWorkerQueue", "MWorkerQueue", 0, crate::reqserver::run_queue),
    ];
    for i in 0..worker_threads {
        u.push(UnitSpec::new(
            format!("MWorker-default-{i}"),
            format!("MWorker-def-{i}"),
            0,
            crate::reqserver::run_worker,
        ));
    }
    u
}

/// A daemon failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Start-up failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The ProcessManager could not run.
    #[error("process manager: {0}")]
    Io(#[from] std::io::Error),
    /// Another master holds the pid file or a port (`verify_socket`).
    #[error("{0}")]
    InUse(String),
    /// A unit process failed.
    #[error("{0}")]
    Unit(String),
}

/// Salt's start-up checks: no live master behind the pid file, and both
/// TCP ports free (`verify_socket`), before any socket file is replaced.
fn check_not_running(c: &MasterConfig) -> Result<(), DaemonError> {
    if let Ok(text) = std::fs::read_to_string(&c.pidfile) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains("salt-master") {
                return Err(DaemonError::InUse(format!(
                    "a salt-master is already running as pid {pid} ({})",
                    c.pidfile.display()
                )));
            }
        }
    }
    let host = c.interface.trim_start_matches('[').trim_end_matches(']');
    for port in [c.publish_port, c.ret_port] {
        if let Err(e) = std::net::TcpListener::bind((host, port)) {
            return Err(DaemonError::InUse(format!("cannot bind {host}:{port}: {e}")));
        }
    }
    Ok(())
}

/// The body of a unit process (`salt-master-rs ... --unit NAME`, started
/// by the master's unit of that name): today only the
/// [`Publisher`](crate::publisher::run_publish_daemon). It stops on SIGTERM
/// from the master, or when the master dies (`PR_SET_PDEATHSIG`); SIGINT
/// (a terminal's ctrl-c reaches the whole group) is left to the master.
pub fn run_unit(unit: &str, config: &MasterConfig) -> Result<(), DaemonError> {
    use rustix::process::{getppid, set_parent_process_death_signal, Signal};
    if unit != crate::publisher::PUBLISHER_UNIT {
        return Err(DaemonError::Unit(format!("no unit process named {unit:?}")));
    }
    set_parent_process_death_signal(Some(Signal::TERM)).map_err(std::io::Error::from)?;
    if getppid().map_or(true, |p| p.as_raw_nonzero().get() == 1) {
        return Err(DaemonError::Unit("the master is gone".into()));
    }
    if let Ok(name) = std::ffi::CString::new(unit) {
        let _ = rustix::thread::set_name(&name);
    }
    let config = config.clone();
    let body = move || -> Result<(), DaemonError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            let stop = async move {
                loop {
                    tokio::select! {
                        _ = term.recv() => break,
                        _ = int.recv() => {}
                    }
                }
            };
            crate::publisher::run_publish_daemon(&config, stop).await.map_err(|e| DaemonError::Unit(e.to_string()))
        })
    };
    match std::thread::Builder::new().name(unit.to_owned()).spawn(body)?.join() {
        Ok(r) => r,
        Err(_) => Err(DaemonError::Unit(format!("the {unit} process panicked"))),
    }
}

/// Run the master until SIGTERM / SIGINT.
pub fn run(config: MasterConfig) -> Result<(), DaemonError> {
    check_not_running(&config)?;
    let master = Arc::new(Master::new(config)?);
    let c = &master.config;
    // RequestServer removes a stale rotation request at start.
    let _ = std::fs::remove_file(crate::keys::dropfile_path(&c.cachedir));
    if let Some(dir) = c.pidfile.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&c.pidfile, format!("{}\n", std::process::id())) {
        tracing::warn!("cannot write the pid file {}: {e}", c.pidfile.display());
    }
    tracing::info!(
        "salt-master-rs {} starting: id {}, publish {} ret {}, {} workers",
        salt_core::SALT_VERSION,
        c.id,
        c.tcp_endpoint(c.publish_port),
        c.tcp_endpoint(c.ret_port),
        c.worker_threads
    );
    crate::maintenance::mark_started(&master);
    let r = supervisor::run(master.clone(), units(master.config.worker_threads));
    master.returns.flush();
    let _ = std::fs::remove_file(&master.config.pidfile);
    tracing::info!("salt-master-rs stopped");
    r.map_err(DaemonError::from)
}
