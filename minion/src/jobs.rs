//! Jobs: which publishes are for this minion, running them, and returning their results.
//!
//! Mirrors Salt 3008.5 `minion.py` `Minion._handle_payload`, `_target_load`,
//! `_handle_decoded_payload`, `_thread_return` and `_return_pub`:
//!
//! - [`Jobs::handle_publish`] reads the decrypted load once as a typed
//!   [`PublishLoad`] (a load without `tgt`, `jid`, `fun` and `arg` is ignored), matches its target
//!   locally ([`salt_core::matcher`] over the minion's id and grains), drops jids already seen
//!   (`minion_jid_queue_hwm` most recent), and runs the job in a task of its own;
//! - the job ([`crate::functions::run_job`]) sees the load as Salt's functions see `__pub_*`
//!   data, and its result goes back as a `_return` aes request ([`ReturnLoad`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_proto::envelope::{PublishLoad, ReturnLoad};

use crate::functions::{self, Ctx};
use crate::observer::Observer;
use crate::session::{MasterSession, REQUEST_TRIES};
use salt_core::matcher::{self, MatchContext};
use salt_core::value::{py_str, string, Value};

/// `minion_jid_queue_hwm`: how many recent jids are remembered to drop duplicate publishes.
const JID_QUEUE_HWM: usize = 100;

/// What runs the jobs of one minion.
#[derive(Debug)]
pub(crate) struct Jobs {
    session: Arc<MasterSession>,
    ctx: Ctx,
    jid_queue: Mutex<VecDeque<String>>,
    observer: Option<Arc<dyn Observer>>,
}

impl Jobs {
    pub(crate) fn new(session: Arc<MasterSession>, ctx: Ctx, observer: Option<Arc<dyn Observer>>) -> Self {
        Jobs { session, ctx, jid_queue: Mutex::new(VecDeque::new()), observer }
    }

    /// `_handle_payload` + `_target_load` + `_handle_decoded_payload`: decide whether the
    /// publish `raw` (a decrypted load) is for us and start its job.
    pub(crate) fn handle_publish(self: &Arc<Self>, raw: Value) {
        let load = match PublishLoad::from_value(&raw) {
            Ok(load) => load,
            Err(e) => {
                tracing::debug!("Publish ignored: {e}");
                return;
            }
        };
        if !self.targets_us(&load) {
            return;
        }
        let (jid, fun) = (&load.jid, py_str(&load.fun));
        {
            let mut q = self.jid_queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if q.contains(jid) {
                tracing::debug!("Jid {jid} already handled; dropping the duplicate publish");
                return;
            }
            q.push_back(jid.clone());
            while q.len() > JID_QUEUE_HWM {
                q.pop_front();
            }
        }
        if let Some(o) = &self.observer {
            o.job_received(jid);
        }
        match &load.user {
            Some(u) => tracing::info!("User {u} Executing command {fun} with jid {jid}"),
            None => tracing::info!("Executing command {fun} with jid {jid}"),
        }
        let jobs = self.clone();
        tokio::spawn(async move { jobs.run_and_return(load, raw).await });
    }

    /// `_target_load`: does the publish's target select this minion?
    fn targets_us(&self, load: &PublishLoad) -> bool {
        let (tgt, tgt_type) = (&load.tgt, load.tgt_type.as_str());
        let delimiter = match tgt_type {
            "grain" | "grain_pcre" | "pillar" => load.extra("delimiter").map(py_str),
            _ => None,
        };
        let cx = MatchContext { id: &self.ctx.config.id, grains: &self.ctx.grains, pillar: None };
        match matcher::matches(tgt, tgt_type, delimiter.as_deref(), &cx) {
            Ok(true) => true,
            Ok(false) => {
                tracing::trace!("Publish for {} ({tgt_type}) does not target this minion", py_str(tgt));
                false
            }
            Err(e) => {
                tracing::debug!("Cannot match target {} ({tgt_type}): {e}", py_str(tgt));
                false
            }
        }
    }

    /// `_thread_return` + `_return_pub`.
    async fn run_and_return(&self, load: PublishLoad, raw: Value) {
        let mut extra = Vec::new();
        if let Some(u) = &load.user {
            extra.push(("user".to_string(), string(u.as_str())));
        }
        if let Some(v) = load.extra("master_id") {
            extra.push(("master_id".to_string(), v.clone()));
        }
        if let Some(m @ Value::Map(_)) = load.extra("metadata") {
            extra.push(("metadata".to_string(), m.clone()));
        }
        let fun_name = py_str(&load.fun);
        let ret = functions::run_job(self.ctx.clone(), &load, raw).await;
        let out = ret.out.or_else(|| functions::outputter(&fun_name));
        let jid = load.jid;
        let ret_load = ReturnLoad {
            id: self.ctx.config.id.clone(),
            jid: jid.clone(),
            fun: load.fun,
            fun_args: load.arg,
            ret: ret.ret,
            retcode: Value::from(ret.retcode),
            success: ret.success,
            out: out.map(str::to_string),
            extra,
        };
        tracing::info!("Returning information for job: {jid}");
        // `_return_pub`: timeout = return_retry_tries × return_retry_timer_max per try.
        let config = &self.ctx.config;
        let per_try = Duration::from_secs(
            (config.return_retry_tries.max(1) * config.return_retry_timer_max.max(1)).clamp(5, 3600).unsigned_abs(),
        );
        let sent = self.session.aes_request(ret_load.to_value(), per_try, REQUEST_TRIES).await;
        if let Err(e) = &sent {
            tracing::warn!(
                "The minion failed to return the job information for job {jid}. This is often due to the master \
                 being shut down or overloaded. ({e})"
            );
        }
        if let Some(o) = &self.observer {
            o.job_returned(&jid, sent.is_ok());
        }
    }
}
