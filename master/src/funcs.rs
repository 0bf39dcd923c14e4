//! What the master does for each command: Salt's `ClearFuncs` (clear
//! requests from local clients) and `AESFuncs` (authenticated minion
//! requests), master.py.
//!
//! Only the commands Salt exposes are reachable (CVE-2020-11651 class):
//! clear `ping`, `publish`, `get_token`, `mk_token`, `wheel`, `runner`;
//! an unknown clear command gets `{}` in clear, an unknown aes command
//! `{}` encrypted. `_pillar` compiles pillar through [`crate::pillar`]; the
//! file server commands (`_master_opts`, `_file_envs`, `_file_list`,
//! `_file_hash`, `_serve_file`, `_master_tops`, ...) are answered by
//! [`crate::fileserver`].

use salt_proto::value::{self, as_str, get, get_str, insert, remove, string};
use salt_proto::Value;

use crate::datacache::{GRAINS, PILLAR};
use crate::keys::valid_id;
use crate::state::{Master, PublishJob};
use crate::targeting::check_minions;

/// How an aes reply goes back (`req_opts["fun"]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `send`: encrypted with the minion's session key.
    Send(Value),
    /// `send_private`: under a one-off key, signed (`_pillar`).
    Private {
        /// The value.
        ret: Value,
        /// The reply map key holding it (`"pillar"`).
        dictkey: String,
    },
}

fn empty() -> Value {
    Value::Map(Vec::new())
}

fn error(name: &str, message: &str) -> Value {
    value::map([("error", value::map([("name", string(name)), ("message", string(message))]))])
}

/// Answer a clear command other than `_auth` (`send_clear`).
pub async fn clear(master: &Master, cmd: &str, load: Value) -> Value {
    match cmd {
        "ping" => load,
        "publish" => publish(master, load),
        "runner" | "wheel" => {
            let authed = get_str(&load, "key").is_some_and(|k| master.access_key_matches(k));
            if authed {
                error("SaltMasterError", &format!("{cmd} over the request port is not supported by salt-master-rs"))
            } else {
                error("UserAuthenticationError", "Authentication failure of type \"user\" occurred.")
            }
        }
        // External auth is not configured: no token can be made or read.
        "mk_token" | "get_token" => empty(),
        _ => {
            tracing::warn!("Requested method not exposed: {cmd:?}");
            empty()
        }
    }
}

/// `salt.utils.jid.is_jid`.
pub fn is_jid(jid: &str) -> bool {
    let b = jid.as_bytes();
    (b.len() == 20 || (b.len() > 21 && b[20] == b'_')) && b[..20].iter().all(u8::is_ascii_digit)
}

/// `ClearFuncs.publish`.
fn publish(master: &Master, mut load: Value) -> Value {
    let (Some(_), Some(_)) = (get(&load, "fun"), get(&load, "tgt")) else {
        return error("SaltInvocationError", "publish needs fun and tgt");
    };
    let kwargs = get(&load, "kwargs").cloned().unwrap_or_else(empty);
    let delimiter = get_str(&kwargs, "delimiter").unwrap_or(":").to_owned();
    let tgt = get(&load, "tgt").cloned().unwrap_or(Value::Nil);
    let tgt_type = get_str(&load, "tgt_type").unwrap_or("glob").to_owned();
    let targets = check_minions(master, &tgt, &tgt_type, &delimiter);
    // LoadAuth.authenticate_key: pop `key`, compare with the local users' keys.
    let key = remove(&mut load, "key");
    let authed = key.as_ref().and_then(as_str).is_some_and(|k| master.access_key_matches(k));
    let has_eauth = get(&kwargs, "token").is_some() || get(&kwargs, "eauth").is_some();
    if !authed || has_eauth {
        tracing::warn!("Authentication failure of type \"user\" occurred.");
        let err = error("AuthenticationError", "Authentication error occurred.");
        // Salt fires it whenever the load has a `jid` key, even an empty
        // one (the stock CLI sends `""`: tag `salt/job//error`).
        if let Some(jid) = get(&load, "jid").map(|j| as_str(j).map(str::to_owned).unwrap_or_default()) {
            let mut ev = load.clone();
            if let (Value::Map(ev), Value::Map(e)) = (&mut ev, &err) {
                ev.extend(e.iter().cloned());
            }
            master.events.fire(&format!("salt/job/{jid}/error"), ev);
        }
        return err;
    }
    if targets.minions.is_empty() {
        let tgt_text = as_str(&tgt).map(str::to_owned).unwrap_or_else(|| format!("{tgt:?}"));
        return value::map([
            ("enc", string("clear")),
            (
                "load",
                value::map([
                    ("jid", Value::Nil),
                    ("minions", Value::Array(Vec::new())),
                    ("error", string(format!("Master could not resolve minions for target {tgt_text}"))),
                ]),
            ),
        ]);
    }
    let passed_jid = get_str(&load, "jid").filter(|j| !j.is_empty()).map(str::to_owned);
    let nocache = get(&kwargs, "nocache").is_some_and(value::truthy);
    let jid = match master.jobs.prep_jid(nocache, passed_jid.as_deref()) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!("Failed to allocate a jid: {e}");
            return value::map([("error", string("Master failed to assign jid"))]);
        }
    };
    insert(&mut load, "jid", string(jid.as_str()));
    let ids = |v: &[String]| Value::Array(v.iter().map(|s| string(s.as_str())).collect());
    let user = get(&load, "user").cloned().unwrap_or_else(|| string("root"));
    master.events.fire(
        &format!("salt/job/{jid}/new"),
        value::map([
            ("jid", string(jid.as_str())),
            ("tgt_type", string(tgt_type.as_str())),
            ("tgt", tgt.clone()),
            ("user", user.clone()),
            ("fun", get(&load, "fun").cloned().unwrap_or(Value::Nil)),
            ("arg", get(&load, "arg").cloned().unwrap_or(Value::Array(Vec::new()))),
            ("minions", ids(&targets.minions)),
            ("missing", ids(&targets.missing)),
        ]),
    );
    if master.config.job_cache {
        if let Err(e) = master.jobs.save_load(&jid, &load, &targets.minions) {
            tracing::error!("The job cache could not save the load of {jid}: {e}");
        }
    }
    // _prep_pub: the publish load.
    let mut pubm = vec![
        ("fun", get(&load, "fun").cloned().unwrap_or(Value::Nil)),
        ("arg", get(&load, "arg").cloned().unwrap_or(Value::Array(Vec::new()))),
        ("tgt", tgt.clone()),
        ("jid", string(jid.as_str())),
        ("ret", get(&load, "ret").cloned().unwrap_or_else(|| string(""))),
    ];
    if let Some(m) = get(&kwargs, "master_id") {
        pubm.push(("master_id", m.clone()));
    }
    if delimiter != ":" {
        pubm.push(("delimiter", string(delimiter.as_str())));
    }
    if let Some(id) = get(&kwargs, "id") {
        pubm.push(("id", id.clone()));
    }
    if get(&load, "tgt_type").is_some() {
        pubm.push(("tgt_type", string(tgt_type.as_str())));
    }
    if let Some(to) = get(&load, "to") {
        pubm.push(("to", to.clone()));
    }
    for k in ["ret_config", "metadata", "module_executors", "executor_opts", "ret_kwargs"] {
        if let Some(v) = get(&kwargs, k) {
            pubm.push((k, v.clone()));
        }
    }
    if get(&kwargs, "start_event").is_some_and(value::truthy) {
        pubm.push(("start_event", Value::Boolean(true)));
    }
    if get(&load, "user").is_some() {
        pubm.push(("user", user));
    }
    let pub_load = value::map(pubm);
    tracing::info!(
        "User {} Published command {} with jid {jid}",
        get_str(&load, "user").unwrap_or("root"),
        get_str(&load, "fun").unwrap_or("")
    );
    master.events.fire(&format!("salt/job/{jid}/publish"), pub_load.clone());
    let topics = matches!(tgt_type.as_str(), "glob" | "pcre" | "list").then(|| targets.minions.clone());
    if !master.publish.push(PublishJob { load: pub_load, topics }) {
        tracing::error!("the publish queue is full; job {jid} was not published");
        return value::map([("error", string("Master publish queue is full"))]);
    }
    value::map([
        ("enc", string("clear")),
        (
            "load",
            value::map([
                ("jid", string(jid.as_str())),
                ("minions", ids(&targets.minions)),
                ("missing", ids(&targets.missing)),
            ]),
        ),
    ])
}

/// Answer an authenticated minion command (`id` checked by the channel).
pub async fn aes(master: &Master, id: &str, cmd: &str, load: Value) -> Reply {
    match cmd {
        "_return" => {
            ret(master, load);
            Reply::Send(Value::Nil)
        }
        "_minion_event" => {
            minion_event(master, load);
            Reply::Send(Value::Nil)
        }
        "_pillar" => pillar(master, id, load),
        c if crate::fileserver::handles(c) => Reply::Send(crate::fileserver::handle(master, c, &load)),
        "_register_resources" => {
            if master.config.minion_data_cache_events {
                master
                    .events
                    .fire(&format!("resource/refresh/{id}"), value::map([("Resource cache refresh", string(id))]));
            }
            Reply::Send(Value::Boolean(true))
        }
        _ => {
            tracing::debug!("aes command {cmd:?} from {id} is not served; answering {{}}");
            Reply::Send(empty())
        }
    }
}

/// `AESFuncs._pillar`.
fn pillar(master: &Master, id: &str, load: Value) -> Reply {
    // With the default `pillar_version: 2` every pillar goes back
    // `send_private`, whatever `ver` the minion sent.
    let private = |ret: Value| Reply::Private { ret, dictkey: "pillar".to_owned() };
    let Some(mut grains) = get(&load, "grains").cloned() else { return private(Value::Boolean(false)) };
    if !valid_id(id) || !matches!(grains, Value::Map(_)) {
        return private(Value::Boolean(false));
    }
    insert(&mut grains, "id", string(id));
    let saltenv = get_str(&load, "saltenv").or_else(|| get_str(&load, "env"));
    let pillarenv = get_str(&load, "pillarenv");
    let data = crate::pillar::compile(master, id, &grains, saltenv, pillarenv, get(&load, "pillar_override"));
    if master.config.minion_data_cache {
        if let Err(e) = master.datacache.store(GRAINS, id, &grains) {
            tracing::error!("cannot cache the grains of {id}: {e}");
        }
        let pe = crate::pillar::effective_pillarenv(&master.config, saltenv, pillarenv);
        if let Err(e) = master.datacache.store(PILLAR, &crate::pillar::cache_key(id, pe.as_deref()), &data) {
            tracing::error!("cannot cache the pillar of {id}: {e}");
        }
        if master.config.minion_data_cache_events {
            master
                .events
                .fire(&format!("minion/refresh/{id}"), value::map([("Minion data cache refresh", string(id))]));
        }
    }
    private(data)
}

/// The tags a minion may not fire (`MINION_EVENT_BLACKLIST`).
const MINION_EVENT_BLACKLIST: &[&str] = &[
    "salt/job/*/publish",
    "salt/job/*/new",
    "salt/job/*/return",
    "salt/key",
    "salt/cloud/*",
    "salt/run/*",
    "salt/cluster/*",
    "salt/wheel/*/new",
    "salt/wheel/*/return",
];

/// `masterapi.RemoteFuncs._minion_event`.
fn minion_event(master: &Master, load: Value) {
    if let Some(Value::Array(events)) = get(&load, "events") {
        let pretag = get_str(&load, "pretag");
        for ev in events {
            let data = get(ev, "data").cloned().unwrap_or_else(|| ev.clone());
            let Some(tag) = get_str(ev, "tag") else { continue };
            if let Some(pre) = pretag {
                master.events.fire(&format!("{pre}/{tag}"), data.clone());
            }
            if MINION_EVENT_BLACKLIST.iter().any(|b| salt_core::fnmatch::fnmatch(tag, b)) {
                tracing::warn!("Filtering blacklisted event tag {tag}");
                continue;
            }
            master.events.fire(tag, data);
        }
        return;
    }
    let (Some(tag), Some(_)) = (get_str(&load, "tag").map(str::to_owned), get(&load, "data")) else { return };
    master.events.fire(&tag, load);
}

/// `AESFuncs._return` → `store_job`.
fn ret(master: &Master, mut load: Value) {
    let (Some(id), Some(jid)) = (get_str(&load, "id").map(str::to_owned), get_str(&load, "jid").map(str::to_owned))
    else {
        return;
    };
    if get(&load, "return").is_none() || !valid_id(&id) {
        return;
    }
    let jid = if jid == "req" {
        let nocache = get(&load, "nocache").is_some_and(value::truthy);
        let new = match master.jobs.prep_jid(nocache, None) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!("cannot allocate a jid for a return of {id}: {e}");
                return;
            }
        };
        insert(&mut load, "jid", string(new.as_str()));
        let arg = get(&load, "arg").or_else(|| get(&load, "fun_args")).cloned().unwrap_or(Value::Array(Vec::new()));
        insert(&mut load, "arg", arg);
        insert(&mut load, "tgt_type", string("glob"));
        insert(&mut load, "tgt", string(id.as_str()));
        if let Err(e) = master.jobs.save_load(&new, &load, std::slice::from_ref(&id)) {
            tracing::error!("cannot save the load of {new}: {e}");
        }
        new
    } else {
        jid
    };
    tracing::info!("Got return from {id} for job {jid}");
    master.events.fire(&format!("salt/job/{jid}/ret/{id}"), load.clone());
    if master.config.job_cache {
        // prep_jid (a passed jid) and store_return, off this worker.
        master.returns.store(load);
    }
}
