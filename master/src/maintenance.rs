//! The Maintenance unit (Salt's `Maintenance` process, master.py): every
//! `loop_interval` seconds it
//!
//! * removes jobs older than `keep_jobs_seconds` from the job cache
//!   (`clean_old_jobs`);
//! * rotates the shared AES key when `cachedir/.dfn` asks for it
//!   (`handle_key_rotate`: written by `salt-key` after a delete or reject;
//!   mode `0400`, content = this master's `id`). Minions holding the old key
//!   fail the next publish's HMAC and sign in again; the `key` event
//!   `{"rotate_aes_key": True}` is fired and, with `ping_on_rotate`, a
//!   `test.ping` to `*` is published so that they do it at once;
//! * refreshes the health sentinel `cachedir/health/alive` (3008's
//!   Kubernetes probes; `startup` and `ready` are written once at start).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use salt_proto::{value, Value};

use crate::state::Master;
use crate::supervisor::{Shutdown, UnitError};

fn write_sentinel(cachedir: &Path, name: &str) {
    let dir = cachedir.join("health");
    let _ = std::fs::create_dir_all(&dir);
    let body = salt_proto::util::unix_time().to_string();
    if let Err(e) = crate::fsutil::write_atomic(&dir.join(name), body.as_bytes(), 0o644) {
        tracing::warn!("healthchecks: could not write {name}: {e}");
    }
}

/// Write the `startup` and `ready` sentinels (once the units run).
pub fn mark_started(master: &Master) {
    write_sentinel(&master.config.cachedir, "startup");
    write_sentinel(&master.config.cachedir, "ready");
}

/// One maintenance pass.
pub async fn run_once(master: &Master) {
    let c = &master.config;
    if c.job_cache {
        match master.jobs.clean_old_jobs(Duration::from_secs(c.keep_jobs_seconds)) {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} old jobs from the job cache"),
            Err(e) => tracing::error!("clean_old_jobs: {e}"),
        }
    }
    if crate::keys::take_dropfile(&c.cachedir, &c.id) {
        match master.rotate_aes() {
            Ok(()) => {
                tracing::info!("Rotating master AES key");
                master.events.fire("key", value::map([("rotate_aes_key", Value::Boolean(true))]));
                if c.ping_on_rotate {
                    ping_all(master).await;
                }
            }
            Err(e) => tracing::error!("cannot rotate the AES key: {e}"),
        }
    }
    write_sentinel(&c.cachedir, "alive");
}

/// `ping_on_rotate`: `LocalClient.cmd_async("*", "test.ping")` through the
/// master's own publish path.
async fn ping_all(master: &Master) {
    let Some(key) = master.own_access_key() else { return };
    let load = value::map([
        ("cmd", value::string("publish")),
        ("tgt", value::string("*")),
        ("fun", value::string("test.ping")),
        ("arg", Value::Array(Vec::new())),
        ("key", value::string(key)),
        ("tgt_type", value::string("glob")),
        ("ret", value::string("")),
        ("jid", value::string("")),
        ("user", value::string(master.config.user.as_str())),
    ]);
    let r = crate::funcs::clear(master, "publish", load).await;
    tracing::info!("ping_on_rotate: {r:?}");
}

/// Run Maintenance until shutdown.
pub async fn run_maintenance(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    let period = Duration::from_secs(master.config.loop_interval.max(1));
    loop {
        run_once(&master).await;
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tokio::time::sleep(period) => {}
        }
    }
}
