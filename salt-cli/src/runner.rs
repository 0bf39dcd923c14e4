//! The `jobs` runner (`salt/runners/jobs.py`) as `salt-run` executes it: in the tool's own process,
//! reading the master's job cache from disk ([`master::jobcache`]), like the stock `salt-run`
//! does (it sends nothing to the master for these).
//!
//! [`run`] also does what `salt/client/mixins.py:SyncClientMixin.low` adds around a runner: the
//! `salt/run/<jid>/new` and `.../ret` events on the master bus and the runner's own job in the job
//! cache (`salt.utils.job.store_job`, under the master's id).

use std::collections::BTreeSet;
use std::time::Duration;

use master::jobcache::{format_jid_instance, JobStore, LocalCache};
use salt_core::fnmatch::fnmatch;

use crate::client::{Job, LocalClient};
use crate::opts::MasterOpts;
use crate::py::{as_str, get, py_str, string, Value};

/// A runner's answer: its return, and the outputter it asks for (`{"outputter", "data"}`).
#[derive(Debug, Clone)]
pub struct RunnerReturn {
    pub data: Value,
    pub outputter: Option<String>,
    /// `success` of the runner's return event (`False` for unknown functions and bad arguments).
    pub success: bool,
}

impl RunnerReturn {
    fn plain(data: Value) -> Self {
        RunnerReturn { data, outputter: None, success: true }
    }
}

/// The functions this tool implements.
pub const FUNCTIONS: &[&str] =
    &["jobs.active", "jobs.list_job", "jobs.list_jobs", "jobs.lookup_jid", "manage.down", "manage.status", "manage.up"];

/// The positional and keyword arguments of one call: the raw CLI words (`jid`s are taken as
/// text, not YAML-typed), and `key=value` pairs YAML-typed.
#[derive(Debug, Clone, Default)]
pub struct CallArgs {
    pub args: Vec<String>,
    pub kwargs: Vec<(String, Value)>,
}

impl CallArgs {
    /// Split CLI words into positional and `key=value` arguments (`parse_input`).
    pub fn parse(words: &[String]) -> Self {
        let mut out = CallArgs::default();
        for w in words {
            match salt_core::args::parse_kwarg(w) {
                Some((k, v)) => out.kwargs.push((k, salt_core::args::yamlify_arg(&v))),
                None => out.args.push(w.clone()),
            }
        }
        out
    }

    /// Argument `name` at position `pos`, or given by keyword.
    fn get(&self, pos: usize, name: &str) -> Option<Value> {
        self.args.get(pos).map(|a| string(a.as_str())).or_else(|| self.kwarg(name).cloned())
    }

    fn kwarg(&self, name: &str) -> Option<&Value> {
        self.kwargs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn flag(&self, pos: usize, name: &str, default: bool) -> bool {
        match self.args.get(pos) {
            Some(a) => salt_core::value::is_true(&salt_core::args::yamlify_arg(a)),
            None => self.kwarg(name).map_or(default, salt_core::value::is_true),
        }
    }

    /// `fun_args` of the runner's events: positional arguments, then one dict of keywords.
    pub fn fun_args(&self) -> Value {
        let mut v = crate::args::parse_input(&self.args);
        if !self.kwargs.is_empty() {
            v.push(Value::Map(self.kwargs.iter().map(|(k, v)| (string(k.as_str()), v.clone())).collect()));
        }
        Value::Array(v)
    }
}

fn text(v: &Value) -> String {
    as_str(v).map_or_else(|| py_str(v), str::to_owned)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The runner's `_format_jid_instance`: the job cache's one with `Minions` (when the load has
/// it) before `StartTime`, as the runner's `_format_job_instance` adds it first.
fn format_job(jid: &str, load: &Value) -> Value {
    let mut ret = format_jid_instance(jid, load);
    if let (Some(m), Value::Map(entries)) = (get(load, "Minions"), &mut ret) {
        let at = entries.iter().position(|(k, _)| as_str(k) == Some("StartTime")).unwrap_or(entries.len());
        entries.insert(at, (string("Minions"), m.clone()));
    }
    ret
}

/// `jobs.list_job(jid)`.
pub fn list_job(store: &LocalCache, jid: &str) -> Result<Value, String> {
    let load = store.get_load(jid).map_err(err)?;
    let mut ret = vec![(string("jid"), string(jid))];
    if let Value::Map(m) = format_job(jid, &load) {
        ret.extend(m);
    }
    ret.push((string("Result"), store.get_jid(jid).map_err(err)?));
    Ok(Value::Map(ret))
}

/// `jobs.lookup_jid(jid, returned=True, missing=False)`.
pub fn lookup_jid(store: &LocalCache, jid: &str, returned: bool, missing: bool) -> Result<RunnerReturn, String> {
    let data = list_job(store, jid)?;
    let targeted: Vec<String> = match get(&data, "Minions") {
        Some(Value::Array(a)) => a.iter().map(text).collect(),
        _ => Vec::new(),
    };
    let returns = get(&data, "Result").cloned().unwrap_or(Value::Map(Vec::new()));
    let mut ret: Vec<(Value, Value)> = Vec::new();
    let mut outputter = None;
    if let Value::Map(entries) = &returns {
        for (n, (minion, r)) in entries.iter().enumerate() {
            if returned {
                ret.push((minion.clone(), get(r, "return").cloned().unwrap_or(Value::Nil)));
            }
            if n == 0 {
                outputter = get(r, "out").and_then(as_str).filter(|o| !o.is_empty()).map(str::to_owned);
            }
        }
    }
    if missing {
        for m in targeted {
            if !matches!(&returns, Value::Map(e) if e.iter().any(|(k, _)| text(k) == m)) {
                ret.push((string(m), string("Minion did not return")));
            }
        }
    }
    Ok(RunnerReturn { data: Value::Map(ret), outputter, success: true })
}

/// `salt.utils.args.split_input`: a list, or comma-separated text.
fn split_input(v: &Value) -> Vec<String> {
    salt_core::args::split_input(v).iter().map(text).collect()
}

/// `jobs.list_jobs(search_metadata, search_function, search_target)`.
pub fn list_jobs(store: &LocalCache, call: &CallArgs) -> Result<RunnerReturn, String> {
    let search_function = call.kwarg("search_function").cloned();
    let search_target = call.kwarg("search_target").cloned();
    let search_metadata = call.kwarg("search_metadata").cloned();
    let mut out = Vec::new();
    for (jid, load) in store.get_jids().map_err(err)? {
        let item = format_jid_instance(&jid, &load);
        let mut keep = true;
        if let Some(md) = &search_metadata {
            keep = false;
            if let (Some(have), Value::Map(want)) = (get(&item, "Metadata"), md) {
                keep = want.iter().any(|(k, v)| get(have, &text(k)).is_some_and(|h| salt_core::value::py_eq(h, v)));
            }
        }
        if let (Some(st), true) = (&search_target, keep) {
            let targets: Vec<String> = match get(&item, "Target") {
                Some(Value::Array(a)) => a.iter().map(text).collect(),
                Some(t) => vec![text(t)],
                None => Vec::new(),
            };
            keep = targets.iter().any(|t| split_input(st).iter().any(|p| fnmatch(t, p)));
        }
        if let (Some(sf), true) = (&search_function, keep) {
            let f = get(&item, "Function").map(text).unwrap_or_default();
            keep = split_input(sf).iter().any(|p| fnmatch(&f, p));
        }
        if keep {
            out.push((string(jid), item));
        }
    }
    let outputter = call.kwarg("outputter").and_then(as_str).map(str::to_owned);
    Ok(RunnerReturn { data: Value::Map(out), outputter, success: true })
}

/// `jobs.active()`: ask every minion for its running jobs (`saltutil.running`), then say which
/// minions already returned for each.
pub async fn active(opts: &MasterOpts, user: &str) -> Result<Value, String> {
    let store = LocalCache::new(&opts.cachedir);
    let mut client = LocalClient::new(opts.clone(), user.to_string());
    let timeout = Duration::from_secs(opts.timeout);
    let mut events = client.subscribe(timeout).await.map_err(err)?;
    let job = Job {
        tgt: string("*"),
        tgt_type: "glob".into(),
        fun: "saltutil.running".into(),
        arg: Vec::new(),
        ret: String::new(),
        jid: String::new(),
        kwargs: Vec::new(),
    };
    let mut ret: Vec<(String, Value, Vec<Value>)> = Vec::new();
    if let Some(pd) = client.publish(&job, timeout).await.map_err(err)? {
        let mut answers = Vec::new();
        client.returns(&mut events, &pd, timeout, &[], |r| answers.push(r)).await;
        for a in answers.into_iter().filter(|a| !a.failed) {
            let Value::Array(jobs) = &a.ret else { continue };
            for j in jobs {
                let Some(jid) = get(j, "jid").map(text) else { continue };
                let running = salt_core::value::map([(a.id.as_str(), get(j, "pid").cloned().unwrap_or(Value::Nil))]);
                match ret.iter_mut().find(|(id, _, _)| *id == jid) {
                    Some((_, _, r)) => r.push(running),
                    None => ret.push((jid.clone(), format_jid_instance(&jid, j), vec![running])),
                }
            }
        }
    }
    let mut out = Vec::new();
    for (jid, mut item, running) in ret {
        let returned: BTreeSet<String> = match store.get_jid(&jid) {
            Ok(Value::Map(m)) => m.iter().map(|(k, _)| text(k)).collect(),
            _ => BTreeSet::new(),
        };
        if let Value::Map(m) = &mut item {
            m.push((string("Running"), Value::Array(running)));
            m.push((string("Returned"), Value::Array(returned.into_iter().map(string).collect())));
        }
        out.push((string(jid), item));
    }
    Ok(Value::Map(out))
}

/// `manage._ping`: ping `tgt` and split the targeted minions into those that answered and those
/// that did not (both sorted); `None` when nothing matched.
pub async fn ping(
    opts: &MasterOpts,
    user: &str,
    tgt: &str,
    tgt_type: &str,
    timeout: u64,
    gather_job_timeout: u64,
) -> Result<Option<(Vec<String>, Vec<String>)>, String> {
    let mut opts = opts.clone();
    opts.gather_job_timeout = gather_job_timeout;
    let mut client = LocalClient::new(opts, user.to_string());
    let timeout = Duration::from_secs(timeout);
    let mut events = client.subscribe(timeout).await.map_err(err)?;
    let job = Job {
        tgt: string(tgt),
        tgt_type: tgt_type.into(),
        fun: "test.ping".into(),
        arg: Vec::new(),
        ret: String::new(),
        jid: String::new(),
        kwargs: Vec::new(),
    };
    let Some(pd) = client.publish(&job, timeout).await.map_err(err)? else { return Ok(None) };
    let mut up = BTreeSet::new();
    client
        .returns(&mut events, &pd, timeout, &[], |r| {
            // The rows made up for minions that did not answer are not returns (Salt's #69582).
            if !r.failed {
                up.insert(r.id);
            }
        })
        .await;
    let down: Vec<String> =
        pd.minions.iter().filter(|m| !up.contains(*m)).cloned().collect::<BTreeSet<_>>().into_iter().collect();
    Ok(Some((up.into_iter().collect(), down)))
}

/// `manage.status` / `up` / `down`: `(up, down)` for the `tgt`, `tgt_type`, `timeout` and
/// `gather_job_timeout` arguments (positional after `first` leading ones).
async fn manage(
    opts: &MasterOpts,
    user: &str,
    call: &CallArgs,
    first: usize,
) -> Result<(Vec<String>, Vec<String>), String> {
    let text_arg =
        |pos: usize, name: &str, default: &str| call.get(pos, name).map_or_else(|| default.to_string(), |v| text(&v));
    let secs = |pos: usize, name: &str, default: u64| {
        call.get(pos, name).and_then(|v| text(&v).parse::<u64>().ok()).filter(|s| *s > 0).unwrap_or(default)
    };
    let tgt = text_arg(first, "tgt", "*");
    let tgt_type = text_arg(first + 1, "tgt_type", "glob");
    let timeout = secs(first + 2, "timeout", opts.timeout);
    let gather = secs(first + 3, "gather_job_timeout", opts.gather_job_timeout);
    Ok(ping(opts, user, &tgt, &tgt_type, timeout, gather).await?.unwrap_or_default())
}

fn id_list(ids: Vec<String>) -> Value {
    Value::Array(ids.into_iter().map(string).collect())
}

/// Run `fun` with `call` (the function's own work only).
pub async fn call(opts: &MasterOpts, user: &str, fun: &str, call: &CallArgs) -> RunnerReturn {
    let store = LocalCache::new(&opts.cachedir);
    let jid_arg = |c: &CallArgs| c.get(0, "jid").map(|v| text(&v));
    let missing_jid = |f: &str| RunnerReturn {
        data: string(format!(
            "\nPassed invalid arguments: {}() missing 1 required positional argument: 'jid'",
            f.trim_start_matches("jobs.")
        )),
        outputter: None,
        success: false,
    };
    let failed = |e: String| RunnerReturn { data: string(e), outputter: None, success: false };
    match fun {
        "jobs.lookup_jid" => match jid_arg(call) {
            None => missing_jid(fun),
            Some(jid) => lookup_jid(&store, &jid, call.flag(2, "returned", true), call.flag(3, "missing", false))
                .unwrap_or_else(failed),
        },
        "jobs.list_job" => match jid_arg(call) {
            None => missing_jid(fun),
            Some(jid) => list_job(&store, &jid).map(RunnerReturn::plain).unwrap_or_else(failed),
        },
        "jobs.list_jobs" => list_jobs(&store, call).unwrap_or_else(failed),
        "jobs.active" => active(opts, user).await.map(RunnerReturn::plain).unwrap_or_else(failed),
        "manage.status" => manage(opts, user, call, 1)
            .await
            .map(|(up, down)| {
                RunnerReturn::plain(salt_core::value::map([("up", id_list(up)), ("down", id_list(down))]))
            })
            .unwrap_or_else(failed),
        "manage.up" => {
            manage(opts, user, call, 0).await.map(|(up, _)| RunnerReturn::plain(id_list(up))).unwrap_or_else(failed)
        }
        "manage.down" if call.flag(0, "removekeys", false) => {
            failed("removekeys is not done by salt-run-rs: delete the keys with salt-key-rs -d".to_string())
        }
        "manage.down" => {
            manage(opts, user, call, 1).await.map(|(_, down)| RunnerReturn::plain(id_list(down))).unwrap_or_else(failed)
        }
        other => failed(format!("'{other}' is not available.")),
    }
}

/// `salt-run FUN ARGS`: fire `salt/run/<jid>/new`, run, store the runner's job under the master's
/// id, fire `salt/run/<jid>/ret`; returns the jid and the runner's return.
pub async fn run(opts: &MasterOpts, user: &str, fun: &str, args: &CallArgs) -> (String, RunnerReturn) {
    let jid = salt_proto::util::gen_jid();
    let tag = format!("salt/run/{jid}");
    let mut data = vec![
        (string("fun"), string(format!("runner.{fun}"))),
        (string("jid"), string(jid.as_str())),
        (string("user"), string(user)),
        (string("fun_args"), args.fun_args()),
        // `fire_event` stamps the runner's data in place: the stored job keeps this stamp.
        (string("_stamp"), string(salt_proto::util::isoformat_utc(salt_proto::util::unix_micros()))),
    ];
    fire(opts, &format!("{tag}/new"), Value::Map(data.clone())).await;
    let ret = call(opts, user, fun, args).await;
    let returned = match &ret.outputter {
        Some(o) => salt_core::value::map([("outputter", string(o.as_str())), ("data", ret.data.clone())]),
        None => ret.data.clone(),
    };
    data.push((string("return"), returned));
    data.push((string("success"), Value::Boolean(ret.success)));
    if FUNCTIONS.contains(&fun) {
        store_job(opts, &jid, &Value::Map(data.clone()));
    }
    fire(opts, &format!("{tag}/ret"), Value::Map(data)).await;
    (jid, ret)
}

/// `salt.utils.job.store_job` for a runner: the job under the master's id in the job cache.
fn store_job(opts: &MasterOpts, jid: &str, data: &Value) {
    if !opts.master.job_cache {
        return;
    }
    let store = LocalCache::new(&opts.cachedir);
    let load = salt_core::value::map([
        ("id", string(opts.id.as_str())),
        ("tgt", string(opts.id.as_str())),
        ("jid", string(jid)),
        ("return", data.clone()),
        ("fun", get(data, "fun").cloned().unwrap_or(Value::Nil)),
        ("user", get(data, "user").cloned().unwrap_or(Value::Nil)),
    ]);
    let stored = (|| -> Result<(), master::jobcache::JobError> {
        store.prep_jid(false, Some(jid))?;
        if matches!(store.get_load(jid)?, Value::Map(m) if m.is_empty()) {
            store.save_load(jid, &load, &[])?;
        }
        store.store_return(&load)?;
        Ok(())
    })();
    if let Err(e) = stored {
        tracing::error!("Could not store job cache info. Job details for this run may be unavailable. ({e})");
    }
}

/// Fire an event on the master bus when the master is up (best effort, as Salt).
async fn fire(opts: &MasterOpts, tag: &str, data: Value) {
    if opts.ipc_mode != "tcp" && !opts.sock_dir.join("master_event_pull.ipc").exists() {
        return;
    }
    if let Err(e) = crate::events::fire(opts, tag, data).await {
        tracing::debug!("cannot fire {tag}: {e}");
    }
}
