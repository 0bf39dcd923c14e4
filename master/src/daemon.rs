//! Start the master: prepare the shared state, write the pid file, build
//! the units and hand them to the ProcessManager ([`crate::supervisor`]).
//!
//! | unit (log name) | OS thread name | stop order |
//! |---|---|---|
//! | `MWorkerQueue` | `MWorkerQueue` | 0 |
//! | `MWorker-default-N` (`worker_threads` of them) | `MWorker-def-N` | 0 |
//! | `Publisher` | `Publisher` | 1 |
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
    let _ = std::fs::remove_file(&master.config.pidfile);
    tracing::info!("salt-master-rs stopped");
    r.map_err(DaemonError::from)
}
