//! The key store and the job cache against Salt 3008.5's own code: what we
//! write, Salt's `local_cache` returner and the stock `salt-key` read, and
//! the other way round. Skipped (with a message) when Salt is not installed
//! in `/opt/salt-venv` (`scripts/install-salt.sh`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use master::jobcache::{JobStore, LocalCache, StoreOutcome};
use master::keys::{key_finger, KeyState, KeyStore};
use salt_proto::value::{as_str, get, map, string};
use salt_proto::{PrivateKey, Value};

const VENV: &str = "/opt/salt-venv";

fn salt_present() -> bool {
    let ok = Path::new(VENV).join("bin/salt-key").exists();
    if !ok {
        eprintln!("SKIP: Salt is not installed in {VENV} (scripts/install-salt.sh)");
    }
    ok
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(format!("{VENV}/bin/python")).arg("-c").arg(script).args(args).output();
    let Ok(out) = out else { panic!("cannot run python") };
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const LC_PRELUDE: &str = r#"
import sys, json
import salt.returners.local_cache as lc
lc.__opts__ = {"cachedir": sys.argv[1], "hash_type": "sha256", "keep_jobs_seconds": 86400}
"#;

#[test]
fn our_jobs_read_by_salt_local_cache() {
    if !salt_present() {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let jc = LocalCache::new(dir.path());
    let Ok(jid) = jc.prep_jid(false, None) else { panic!("prep_jid") };
    let load = map([
        ("cmd", string("publish")),
        ("tgt", string("*")),
        ("fun", string("cmd.run")),
        ("arg", Value::Array(vec![string("echo hi")])),
        ("tgt_type", string("glob")),
        ("ret", string("")),
        ("jid", string(jid.as_str())),
        ("user", string("root")),
    ]);
    assert!(jc.save_load(&jid, &load, &["m1".to_owned(), "m2".to_owned()]).is_ok());
    let ret = map([
        ("cmd", string("_return")),
        ("id", string("m1")),
        ("success", Value::Boolean(true)),
        ("return", string("hi")),
        ("retcode", Value::from(0)),
        ("jid", string(jid.as_str())),
        ("fun", string("cmd.run")),
        ("out", string("nested")),
    ]);
    assert_eq!(jc.store_return(&ret).ok(), Some(StoreOutcome::Stored(jid.clone())));
    let script = format!(
        "{LC_PRELUDE}
jid = sys.argv[2]
print(json.dumps({{'load': lc.get_load(jid), 'rets': lc.get_jid(jid), 'jids': lc.get_jids()}}, sort_keys=True))
"
    );
    let out = python(&script, &[&dir.path().to_string_lossy(), &jid]);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(out.trim()) else { panic!("bad json {out}") };
    assert_eq!(v["load"]["fun"], "cmd.run");
    assert_eq!(v["load"]["arg"][0], "echo hi");
    assert_eq!(v["load"]["Minions"], serde_json::json!(["m1", "m2"]));
    assert_eq!(v["rets"]["m1"], serde_json::json!({"return": "hi", "retcode": 0, "success": true, "out": "nested"}));
    assert_eq!(v["jids"][&jid]["Function"], "cmd.run");
    assert_eq!(v["jids"][&jid]["Target"], "*");
    assert_eq!(v["jids"][&jid]["StartTime"], master::jobcache::jid_to_time(&jid));
}

#[test]
fn salt_local_cache_jobs_read_by_us() {
    if !salt_present() {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let script = format!(
        "{LC_PRELUDE}
jid = lc.prep_jid()
load = {{'cmd': 'publish', 'tgt': 'm*', 'fun': 'test.ping', 'arg': [], 'tgt_type': 'glob', 'ret': '', 'jid': jid, 'user': 'root'}}
lc.save_load(jid, load, minions=['m2', 'm1'])
lc.returner({{'id': 'm2', 'jid': jid, 'return': {{'a': [1, 2]}}, 'retcode': 0, 'success': True, 'fun': 'test.ping'}})
print(jid)
"
    );
    let jid = python(&script, &[&dir.path().to_string_lossy()]).trim().to_owned();
    let jc = LocalCache::new(dir.path());
    let load = jc.get_load(&jid).unwrap_or(Value::Nil);
    assert_eq!(get(&load, "tgt").and_then(as_str), Some("m*"));
    assert_eq!(get(&load, "Minions"), Some(&Value::Array(vec![string("m1"), string("m2")])));
    let rets = jc.get_jid(&jid).unwrap_or(Value::Nil);
    let m2 = get(&rets, "m2").cloned().unwrap_or(Value::Nil);
    assert_eq!(get(&m2, "retcode"), Some(&Value::from(0)));
    assert_eq!(get(&m2, "success"), Some(&Value::Boolean(true)));
    assert_eq!(get(&m2, "return"), Some(&map([("a", Value::Array(vec![Value::from(1), Value::from(2)]))])));
    let jids = jc.get_jids().unwrap_or_default();
    assert_eq!(jids.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(), [jid.as_str()]);
    // A second return for the same minion is dropped by us too.
    let again = map([("id", string("m2")), ("jid", string(jid.as_str())), ("return", Value::from(9))]);
    assert_eq!(jc.store_return(&again).ok(), Some(StoreOutcome::Duplicate));
}

/// A minimal master config under `root` for the stock `salt-key`.
fn salt_conf(root: &Path) -> PathBuf {
    let conf = root.join("etc/salt");
    let _ = fs::create_dir_all(&conf);
    let _ = fs::write(
        conf.join("master"),
        format!("root_dir: {}\nid: t_master\nuser: root\nlog_level: error\n", root.display()),
    );
    conf
}

fn salt_key(conf: &Path, args: &[&str]) -> serde_json::Value {
    let out =
        Command::new(format!("{VENV}/bin/salt-key")).arg("-c").arg(conf).args(["--out", "json"]).args(args).output();
    let Ok(out) = out else { panic!("cannot run salt-key") };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "salt-key {args:?}: {text} {}", String::from_utf8_lossy(&out.stderr));
    // Some commands print text before the JSON document.
    let start = text.find('{').unwrap_or(0);
    serde_json::from_str(&text[start..]).unwrap_or(serde_json::Value::Null)
}

fn pem() -> String {
    let Ok(k) = PrivateKey::generate(1024) else { panic!("keygen") };
    k.public_key().to_pem().unwrap_or_default()
}

#[test]
fn key_store_and_stock_salt_key_agree() {
    if !salt_present() {
        return;
    }
    let Ok(dir) = tempfile::Builder::new().prefix("ks").tempdir_in("/tmp") else { return };
    let conf = salt_conf(dir.path());
    let pki = dir.path().join("etc/salt/pki/master");
    let Ok(ks) = KeyStore::open(&pki) else { panic!("open") };
    // The master creates its cachedir; salt-key writes `.dfn` there.
    let cachedir = dir.path().join("var/cache/salt/master");
    let _ = fs::create_dir_all(&cachedir);
    let (p1, p2, p3) = (pem(), pem(), pem());
    assert!(ks.store("m1", KeyState::Pending, &p1).is_ok());
    assert!(ks.store("m2", KeyState::Accepted, &p2).is_ok());
    assert!(ks.store("m3", KeyState::Rejected, &p3).is_ok());
    assert!(ks.store("m2", KeyState::Denied, &p3).is_ok());

    // Ours → stock salt-key.
    let l = salt_key(&conf, &["-L"]);
    assert_eq!(l["minions_pre"], serde_json::json!(["m1"]), "{l}");
    assert_eq!(l["minions"], serde_json::json!(["m2"]));
    assert_eq!(l["minions_rejected"], serde_json::json!(["m3"]));
    assert_eq!(l["minions_denied"], serde_json::json!(["m2"]));
    let f = salt_key(&conf, &["-f", "m1"]);
    assert_eq!(f["minions_pre"]["m1"], serde_json::json!(key_finger(&p1)));

    // Stock salt-key → ours: accept m1, reject m2, delete m3.
    salt_key(&conf, &["-a", "m1", "-y"]);
    salt_key(&conf, &["-r", "m2", "-y", "--include-accepted"]);
    salt_key(&conf, &["-d", "m3", "-y"]);
    let Ok(l) = ks.list() else { panic!("list") };
    assert_eq!(l.accepted, ["m1"]);
    assert_eq!(l.rejected, ["m2"]);
    assert!(l.pending.is_empty());
    assert_eq!(l.denied, ["m2"]);
    assert_eq!(ks.fetch("m1").ok().flatten().map(|k| k.pub_pem), Some(p1));
    // salt-key asked for an AES rotation, in the form our Maintenance takes.
    assert!(master::keys::take_dropfile(&cachedir, "t_master"), "no .dfn from salt-key");
}
