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
}

/// Run the master until SIGTERM / SIGINT.
pub fn run(config: MasterConfig) -> Result<(), DaemonError> {
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
