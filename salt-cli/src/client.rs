//! `LocalClient` of `salt/client/__init__.py`, the part the `salt` CLI uses: one clear `publish`
//! over a REQ socket to `ret_port`, authenticated by `cachedir/.<user>_key`, and the job's returns
//! read from the master event bus (subscribed before publishing, so none is missed).
//!
//! Module map: [`LocalClient::publish`] = `pub` + `_prep_pub` + `_check_pub_data`;
//! [`LocalClient::returns`] = `get_iter_returns` + `get_cli_event_returns` (including the
//! `saltutil.find_job` rounds for minions that are slow to answer).

use std::collections::BTreeSet;
use std::time::Duration;

use salt_proto::envelope::Request;
use salt_proto::msgpack;
use tokio::time::Instant;
use zmtp::{Options, Socket, SocketType};

use crate::events::{Event, Subscriber};
use crate::gather::Gather;
use crate::opts::MasterOpts;
use crate::py::{as_str, get, string, Value};

/// The largest reply accepted from the master (a publish reply names the targeted minions).
const MAX_REPLY: u64 = 64 << 20;

/// `salt.defaults.exitcodes.EX_GENERIC`.
pub const EX_GENERIC: i64 = 1;

/// Why a publish failed, with the text Salt prints for it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `publish_pull.ipc` is missing, or the master could not be reached.
    #[error("The salt master could not be contacted. Is master running?")]
    NotRunning,
    /// No reply within the timeout (`SaltReqTimeoutError`).
    #[error(
        "Salt request timed out. The master is not responding. You may need to run your command with \
         `--async` in order to bypass the congested event bus. With `--async`, the CLI tool will print \
         the job id (jid) and exit immediately without listening for responses. You can then use \
         `salt-run jobs.lookup_jid` to look up the results of the job in the job cache later."
    )]
    Timeout,
    /// The master refused the key (`AuthenticationError`).
    #[error("{0}")]
    Authentication(String),
    /// The master refused the user (`AuthorizationError`).
    #[error("{0}")]
    Authorization(String),
    /// An empty reply even after re-reading the key (`EauthAuthenticationError`).
    #[error(
        "Failed to authenticate! This is most likely because this user is not permitted to execute \
         commands, but there is a small possibility that a disk error occurred (check disk/inode usage)."
    )]
    Eauth,
    /// Any other error the master answered with (`PublishError`).
    #[error("{0}")]
    Publish(String),
    /// A malformed reply.
    #[error("bad reply from the master: {0}")]
    BadReply(String),
}

/// What to run where: the load of a clear `publish` minus `key` and `user`.
#[derive(Debug, Clone)]
pub struct Job {
    /// A string, or a list for `-L`.
    pub tgt: Value,
    pub tgt_type: String,
    pub fun: String,
    pub arg: Vec<Value>,
    pub ret: String,
    pub jid: String,
    /// Sent as `kwargs` when not empty (the stock CLI always sends some).
    pub kwargs: Vec<(String, Value)>,
}

/// `pub_data`: the jid and the minions the master expects to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubData {
    pub jid: String,
    pub minions: Vec<String>,
}

/// One minion's line in the CLI's stream of returns (`{id: {"ret", "out", "retcode", "jid"}}`).
#[derive(Debug, Clone)]
pub struct MinionReturn {
    pub id: String,
    pub ret: Value,
    pub out: Option<String>,
    pub retcode: Option<Value>,
    /// The minion did not return (Salt's `"failed": True` rows).
    pub failed: bool,
}

/// The client.
#[derive(Debug)]
pub struct LocalClient {
    pub opts: MasterOpts,
    /// `salt_user`: who runs the CLI.
    pub user: String,
    key: String,
}

fn read_key(opts: &MasterOpts, user: &str) -> String {
    master::keys::read_access_key(&opts.cachedir, &opts.key_user(user)).unwrap_or_default()
}

impl LocalClient {
    /// A client run by `user` (the key file is read now, as `LocalClient.__init__` does).
    pub fn new(opts: MasterOpts, user: String) -> Self {
        let key = read_key(&opts, &user);
        LocalClient { opts, user, key }
    }

    /// The master looks alive (`pub`'s check): `sock_dir/publish_pull.ipc` exists.
    pub fn master_running(&self) -> bool {
        self.opts.ipc_mode == "tcp" || self.opts.sock_dir.join("publish_pull.ipc").exists()
    }

    /// Connect the event subscriber (`connect_pub`) — before [`LocalClient::publish`] for a job whose
    /// returns are wanted.
    pub async fn subscribe(&self, timeout: Duration) -> Result<Subscriber, ClientError> {
        Subscriber::connect(&self.opts, timeout).await.map_err(|_| ClientError::Timeout)
    }

    fn load(&self, job: &Job) -> Value {
        let mut m = vec![
            ("cmd", string("publish")),
            ("tgt", job.tgt.clone()),
            ("fun", string(job.fun.as_str())),
            ("arg", Value::Array(job.arg.clone())),
            ("key", string(self.key.as_str())),
            ("tgt_type", string(job.tgt_type.as_str())),
            ("ret", string(job.ret.as_str())),
            ("jid", string(job.jid.as_str())),
        ];
        if !job.kwargs.is_empty() {
            m.push(("kwargs", Value::Map(job.kwargs.iter().map(|(k, v)| (string(k.as_str()), v.clone())).collect())));
        }
        m.push(("user", string(self.user.as_str())));
        salt_core::value::map(m)
    }

    async fn request(&self, load: Value, timeout: Duration) -> Result<Value, ClientError> {
        let frame = Request::Clear { load, version: 3 }.encode();
        let uri = self.opts.master_uri();
        let exchange = async {
            let options = Options::default().linger(Some(Duration::ZERO)).max_msg_size(Some(MAX_REPLY));
            let socket = Socket::with_options(SocketType::Req, options);
            socket.connect(&uri).await.map_err(|_| ClientError::NotRunning)?;
            socket.send(frame).await.map_err(|_| ClientError::NotRunning)?;
            let msg = socket.recv().await.map_err(|_| ClientError::NotRunning)?;
            let body = msg.into_frames().into_iter().next().unwrap_or_default();
            msgpack::decode(&body).map_err(|e| ClientError::BadReply(e.to_string()))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| ClientError::Timeout)?
    }

    /// `pub()`: send the clear `publish`; `Ok(None)` is `pub_data == {}` (an error string from the
    /// master was printed, or the reply had no jid).
    pub async fn publish(&mut self, job: &Job, timeout: Duration) -> Result<Option<PubData>, ClientError> {
        if !self.master_running() {
            tracing::error!("Unable to connect to the salt master publisher at {}", self.opts.sock_dir.display());
            return Err(ClientError::NotRunning);
        }
        let mut reply = self.request(self.load(job), timeout).await?;
        if reply_is_empty(&reply) {
            // The master key may have been rotated under us: re-read it and try once more.
            let key = read_key(&self.opts, &self.user);
            if key == self.key {
                // `_check_pub_data`: an empty string is an authentication failure, an empty map
                // just no job.
                return match reply {
                    Value::String(_) => Err(ClientError::Eauth),
                    _ => Ok(None),
                };
            }
            self.key = key;
            reply = self.request(self.load(job), timeout).await?;
        }
        if let Some(text) = as_str(&reply) {
            return Err(ClientError::Publish(text.to_string()));
        }
        if let Some(error) = get(&reply, "error") {
            let name = get(error, "name").and_then(as_str).unwrap_or("");
            let message = get(error, "message").and_then(as_str).unwrap_or("").to_string();
            return Err(match name {
                "AuthenticationError" => ClientError::Authentication(message),
                "AuthorizationError" => ClientError::Authorization(message),
                _ => ClientError::Publish(as_str(error).map_or_else(|| crate::py::py_str(error), str::to_owned)),
            });
        }
        if reply_is_empty(&reply) {
            return Ok(None);
        }
        let Some(load) = get(&reply, "load") else {
            return Err(ClientError::BadReply("no load".into()));
        };
        let jid = match get(load, "jid") {
            Some(Value::Nil) | None => None,
            Some(v) => Some(as_str(v).map_or_else(|| crate::py::py_str(v), str::to_owned)),
        };
        let minions: Vec<String> = match get(load, "minions") {
            Some(Value::Array(a)) => a.iter().filter_map(as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        // `_check_pub_data`.
        let Some(jid) = jid else {
            if minions.is_empty() && !self.opts.order_masters {
                crate::output::print_line("No minions matched the target. No command was sent, no jid was assigned.");
            }
            return Ok(None);
        };
        if jid == "0" {
            crate::output::print_line("Failed to connect to the Master, is the Salt Master running?");
            return Ok(None);
        }
        if minions.is_empty() && !self.opts.order_masters {
            crate::output::print_line("No minions matched the target. No command was sent, no jid was assigned.");
            return Ok(None);
        }
        Ok(Some(PubData { jid, minions }))
    }

    /// The minions with an accepted key (`CkMinions._pki_minions`).
    fn accepted_minions(&self) -> BTreeSet<String> {
        master::keys::KeyStore::at(self.opts.pki_dir.clone()).accepted().unwrap_or_default().into_iter().collect()
    }

    /// `get_cli_event_returns`: call `on_return` for each minion's return as it arrives, then for
    /// each minion that did not return. `timeout` is the CLI's `-t`; `extra_kwargs` go with
    /// `saltutil.find_job` publishes.
    pub async fn returns(
        &mut self,
        events: &mut Subscriber,
        pub_data: &PubData,
        timeout: Duration,
        extra_kwargs: &[(String, Value)],
        mut on_return: impl FnMut(MinionReturn),
    ) {
        let jid = pub_data.jid.as_str();
        let prefix = format!("salt/job/{jid}/ret/");
        let gather = Duration::from_secs(self.opts.gather_job_timeout);
        let mut book = Gather::new(pub_data.minions.iter().cloned(), Instant::now() + timeout);
        let mut missing: BTreeSet<String> = BTreeSet::new();
        let mut timeout_at = Instant::now() + timeout;
        let mut minions_running = true;
        // The return tag prefix of the last `saltutil.find_job` round.
        let mut find_ret_prefix: Option<String> = None;
        let job_tag = format!("salt/job/{jid}/");
        loop {
            if book.all_returned() && !self.opts.order_masters {
                break;
            }
            let now = Instant::now();
            if now > timeout_at && minions_running {
                let accepted = self.accepted_minions();
                let pending: Vec<Value> =
                    book.awaited().into_iter().filter(|m| accepted.contains(m)).map(string).collect();
                find_ret_prefix = None;
                if !pending.is_empty() {
                    tracing::debug!("Checking whether jid {jid} is still running");
                    let job = Job {
                        tgt: Value::Array(pending),
                        tgt_type: "list".into(),
                        fun: "saltutil.find_job".into(),
                        arg: vec![string(jid)],
                        ret: String::new(),
                        jid: String::new(),
                        kwargs: extra_kwargs.to_vec(),
                    };
                    if let Ok(Some(pd)) = self.publish(&job, gather).await {
                        find_ret_prefix = Some(format!("salt/job/{}/ret/", pd.jid));
                    }
                }
                minions_running = false;
                timeout_at = Instant::now() + gather;
            }
            let now = Instant::now();
            if now > timeout_at && !minions_running && book.all_timed_out(now) {
                break;
            }
            // Wait for the next event, at most until the next deadline.
            let next_deadline = book
                .next_deadline(now)
                .into_iter()
                .chain(std::iter::once(timeout_at))
                .filter(|t| *t > now)
                .min()
                .unwrap_or_else(|| now + Duration::from_millis(10));
            let ev: Event = match tokio::time::timeout_at(next_deadline, events.next()).await {
                Err(_) => continue,
                Ok(None) => {
                    // The bus went away (master stopped): nothing more can arrive.
                    tokio::time::sleep_until(next_deadline).await;
                    continue;
                }
                Ok(Some(ev)) => ev,
            };
            if ev.tag.starts_with(&job_tag) && !ev.tag.starts_with(&prefix) {
                if let Some(Value::Array(ms)) = get(&ev.data, "minions") {
                    let deadline = Instant::now() + timeout;
                    for id in ms.iter().filter_map(as_str) {
                        book.expect(id.to_owned(), deadline);
                    }
                    if let Some(Value::Array(miss)) = get(&ev.data, "missing") {
                        missing.extend(miss.iter().filter_map(as_str).map(str::to_owned));
                    }
                }
                continue;
            }
            if ev.tag.starts_with(&prefix) {
                if get(&ev.data, "return").is_none() {
                    tracing::warn!("Malformed event return: {}", ev.tag);
                    continue;
                }
                let Some(id) = display_id(&ev.data) else { continue };
                if !book.returned(&id) {
                    continue;
                }
                on_return(MinionReturn {
                    id,
                    ret: get(&ev.data, "return").cloned().unwrap_or(Value::Nil),
                    out: get(&ev.data, "out").and_then(as_str).map(str::to_owned),
                    retcode: get(&ev.data, "retcode").cloned(),
                    failed: false,
                });
                continue;
            }
            // `saltutil.find_job` answers: a minion still running the job gets more time.
            if find_ret_prefix.as_deref().is_some_and(|p| ev.tag.starts_with(p)) {
                let data = &ev.data;
                let id = get(data, "id").and_then(as_str).map(str::to_owned);
                if get(data, "retcode").and_then(Value::as_i64).is_some_and(|r| r > 0) {
                    if let Some(id) = id {
                        tracing::error!("saltutil returning errors on minion {id}");
                        book.forget(&id);
                    }
                    continue;
                }
                // A non-empty dict (the job's proc data) means the minion still runs it.
                let running = match get(data, "return") {
                    Some(ret @ Value::Map(m)) => {
                        !m.is_empty() && !get(ret, "return").is_some_and(|r| matches!(r, Value::Map(x) if x.is_empty()))
                    }
                    _ => false,
                };
                if let (true, Some(id)) = (running, id) {
                    book.still_running(id, Instant::now() + timeout);
                    minions_running = true;
                }
            }
        }
        // Minions that did not return: the expected ones, then those the master reported missing.
        let accepted = self.accepted_minions();
        let mut unanswered: Vec<String> = book.awaited();
        unanswered.sort_by_key(|m| (!accepted.contains(m), m.clone()));
        let mut reported = BTreeSet::new();
        let missing: BTreeSet<String> = missing.into_iter().filter(|m| !book.has_returned(m)).collect();
        let mut missing_sorted: Vec<String> = missing.into_iter().collect();
        missing_sorted.sort_by_key(|m| (!accepted.contains(m), m.clone()));
        for id in unanswered.into_iter().chain(missing_sorted) {
            if !reported.insert(id.clone()) {
                continue;
            }
            if self.opts.cachedir.join("syndics").join(&id).exists() {
                continue;
            }
            on_return(MinionReturn {
                ret: string(format!(
                    "Minion did not return. [No response]\nThe minions may not have all finished running and any \
                     remaining minions will return upon completion. To look up the return data for this job later, \
                     run the following command:\n\nsalt-run jobs.lookup_jid {jid}"
                )),
                id,
                out: Some("no_return".into()),
                retcode: Some(Value::from(EX_GENERIC)),
                failed: true,
            });
        }
    }
}

fn reply_is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Map(m) => m.is_empty(),
        Value::String(st) => st.as_bytes().is_empty(),
        _ => false,
    }
}

/// `_job_ret_display_id`: `resource_id` when set, else `id`.
fn display_id(data: &Value) -> Option<String> {
    match get(data, "resource_id").and_then(as_str) {
        Some(r) if !r.is_empty() => Some(r.to_string()),
        _ => get(data, "id").and_then(as_str).map(str::to_owned),
    }
}

/// `_get_retcode` of `salt/cli/salt.py` for one minion's row: `retcode` (the largest of a dict of
/// them), 0 when absent.
pub fn retcode_of(r: &MinionReturn) -> i64 {
    match &r.retcode {
        Some(Value::Map(m)) => m.iter().filter_map(|(_, v)| v.as_i64()).max().unwrap_or(0),
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    }
}
