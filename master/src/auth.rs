//! `_auth`: a minion signs in (Salt's `AuthFuncs._auth_impl_sync` and
//! `AutoKey`, master.py / daemons/masterapi.py).
//!
//! Decision, in Salt's order, for a v3 request (every reply clear-signed
//! with the master key, `sig_algo` as the minion asked):
//!
//! | situation | key store | reply | `salt/auth` act |
//! |---|---|---|---|
//! | invalid id (`../`, `/`, NUL, control chars) | — | `ret: False` | — |
//! | `max_minions` reached by others | — | `ret: "full"` | `full` |
//! | key rejected | — | `ret: False` | `reject` |
//! | accepted, other key presented | other key → `minions_denied/` (accepted key untouched) | `ret: False` | `denied` |
//! | unknown id, `autoreject_file` matches | → `minions_rejected/` | `ret: False` | `reject` |
//! | unknown id, not autosigned | → `minions_pre/` | `ret: True` (pending) | `pend` |
//! | pending, autoreject | → rejected | `ret: False` | `reject` |
//! | pending, same key, not autosigned | — | `ret: True` | `pend` |
//! | pending or accepted, other key | → denied | `ret: False` | `denied` |
//! | accepted (or autosigned: `auto_accept`, `autosign_file`, `minions_autosign/<id>`, `autosign_grains_dir`) | → `minions/` | AES key, session key, token | `accept` |

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use salt_proto::envelope::{self, AuthRequest};
use salt_proto::rsa::clean_key;
use salt_proto::{value, SigAlgo, Value};

use crate::keys::{valid_id, KeyState};
use crate::state::Master;

/// Salt's `expr_match`: exact, then glob, then a regex anchored at the start.
pub fn expr_match(line: &str, expr: &str) -> bool {
    if line == expr || salt_core::fnmatch::fnmatch(line, expr) {
        return true;
    }
    match regex::Regex::new(&format!(r"^(?:{expr})\z")) {
        Ok(re) => re.is_match(line),
        Err(_) => false,
    }
}

/// `AutoKey.check_permissions`: not world-writable, group-writable only
/// with `permissive_pki_access`.
fn file_permissions_ok(master: &Master, path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else { return false };
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return false;
    }
    if mode & 0o020 != 0 && !master.config.permissive_pki_access {
        return false;
    }
    true
}

/// `AutoKey.check_signing_file`: does a line of `file` match `id`?
fn signing_file_matches(master: &Master, id: &str, file: Option<&Path>) -> bool {
    let Some(file) = file else { return false };
    if !file.exists() {
        return false;
    }
    if !file_permissions_ok(master, file) {
        tracing::warn!("Wrong permissions for {}, ignoring content", file.display());
        return false;
    }
    let Ok(text) = fs::read_to_string(file) else { return false };
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).any(|l| expr_match(id, l))
}

/// `AutoKey.check_autosign_grains`: a file `autosign_grains_dir/<grain>`
/// (permissions checked) holding, on a line, `str()` of the value the
/// minion sent for that grain.
fn grains_match(master: &Master, autosign_grains: Option<&Value>) -> bool {
    let (Some(dir), Some(Value::Map(grains))) = (master.config.autosign_grains_dir.as_deref(), autosign_grains) else {
        return false;
    };
    let Ok(rd) = fs::read_dir(dir) else { return false };
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else { continue };
        let Some((_, sent)) = grains.iter().rev().find(|(k, _)| value::as_str(k) == Some(name.as_str())) else {
            continue;
        };
        let path = entry.path();
        if !file_permissions_ok(master, &path) {
            tracing::warn!("Wrong permissions for {}, ignoring content", path.display());
            continue;
        }
        let sent = value::py_str(sent);
        let Ok(text) = fs::read_to_string(&path) else { continue };
        if text.lines().map(str::trim).filter(|l| !l.starts_with('#')).any(|l| l == sent) {
            return true;
        }
    }
    false
}

fn check_autosign(master: &Master, id: &str, autosign_grains: Option<&Value>) -> bool {
    let c = &master.config;
    c.auto_accept
        || signing_file_matches(master, id, c.autosign_file.as_deref())
        || master.keystore.take_autosign_stub(id, c.autosign_timeout).unwrap_or(false)
        || grains_match(master, autosign_grains)
}

fn auth_event(master: &Master, result: Value, act: &str, id: &str, pub_key: &str) {
    if master.config.auth_events {
        master.events.fire(
            "salt/auth",
            value::map([
                ("result", result),
                ("act", value::string(act)),
                ("id", value::string(id)),
                ("pub", value::string(pub_key)),
            ]),
        );
    }
}

fn signed(master: &Master, ret: Value, nonce: &str, sig_algo: SigAlgo) -> Value {
    match envelope::auth_status_reply(&master.master_keys.private, ret, nonce, sig_algo) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("cannot sign an _auth reply: {e}");
            Value::Map(Vec::new())
        }
    }
}

/// Answer a clear `_auth` load.
pub async fn handle_auth(master: &Master, load: &Value, _version: i64) -> Value {
    let req = match AuthRequest::from_load(load) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("bad _auth load: {e}");
            return value::string(envelope::BAD_LOAD);
        }
    };
    let Ok(sig_algo) = req.sig_algo() else {
        tracing::info!("Minion tried to authenticate with unsupported signing algorithm: {}", req.sig_algo);
        return envelope::auth_bad_algo_reply("bad sig algo");
    };
    if req.enc_algo().is_err() {
        tracing::info!("Minion {} tried to authenticate with unsupported encryption algorithm", req.id);
        return envelope::auth_bad_algo_reply("bad enc algo");
    }
    let id = req.id.as_str();
    if !valid_id(id) {
        tracing::info!("Authentication request from invalid id {id:?}");
        return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
    }
    tracing::info!("Authentication request from {id}");
    let presented = req.pub_key.trim().to_owned();
    let deny = |why: &str| {
        tracing::error!("Authentication attempt from {id} failed, the public {why} did not match. This may be an attempt to compromise the Salt cluster.");
        if let Err(e) = master.keystore.store(id, KeyState::Denied, &presented) {
            tracing::error!("cannot store the denied key of {id}: {e}");
        }
        auth_event(master, Value::Boolean(false), "denied", id, &presented);
        signed(master, Value::Boolean(false), &req.nonce, sig_algo)
    };
    let c = &master.config;
    if c.max_minions > 0 {
        let accepted = master.keystore.accepted().unwrap_or_default();
        if accepted.len() >= c.max_minions && !accepted.iter().any(|a| a == id) {
            tracing::info!("Too many minions (max_minions={}). Rejecting connection from id {id}", c.max_minions);
            auth_event(master, Value::Boolean(false), "full", id, &presented);
            return signed(master, value::string("full"), &req.nonce, sig_algo);
        }
    }
    let auto_reject = signing_file_matches(master, id, c.autoreject_file.as_deref());
    let key = match master.keystore.fetch(id) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("cannot read the key of {id}: {e}");
            return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
        }
    };
    let same = |stored: &str| clean_key(stored) == clean_key(&presented);
    if !c.open_mode {
        match &key {
            Some(k) if k.state == KeyState::Rejected => {
                tracing::info!("Public key rejected for {id}. Key is present in rejection key dir.");
                auth_event(master, Value::Boolean(false), "reject", id, &presented);
                return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
            }
            Some(k) if k.state == KeyState::Accepted => {
                if !same(&k.pub_pem) {
                    return deny("keys");
                }
            }
            None => {
                let (state, act, result) = if auto_reject {
                    tracing::info!("New public key for {id} rejected via autoreject_file");
                    (Some(KeyState::Rejected), "reject", false)
                } else if !check_autosign(master, id, req.autosign_grains.as_ref()) {
                    tracing::info!("New public key for {id} placed in pending");
                    (Some(KeyState::Pending), "pend", true)
                } else {
                    (None, "", true)
                };
                if let Some(state) = state {
                    if let Err(e) = master.keystore.store(id, state, &presented) {
                        tracing::error!("cannot store the key of {id}: {e}");
                        return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
                    }
                    auth_event(master, Value::Boolean(result), act, id, &presented);
                    return signed(master, Value::Boolean(result), &req.nonce, sig_algo);
                }
            }
            Some(k) => {
                // Pending.
                if auto_reject {
                    if let Err(e) = master.keystore.store(id, KeyState::Rejected, &k.pub_pem) {
                        tracing::error!("cannot reject the key of {id}: {e}");
                    }
                    tracing::info!("Pending public key for {id} rejected via autoreject_file");
                    auth_event(master, Value::Boolean(false), "reject", id, &presented);
                    return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
                }
                if !same(&k.pub_pem) {
                    return deny("key in pending");
                }
                if !check_autosign(master, id, req.autosign_grains.as_ref()) {
                    tracing::info!(
                        "Authentication failed from host {id}, the key is in pending and needs to be accepted with salt-key -a {id}"
                    );
                    auth_event(master, Value::Boolean(true), "pend", id, &presented);
                    return signed(master, Value::Boolean(true), &req.nonce, sig_algo);
                }
            }
        }
    }
    // Parsed once: the reply below encrypts to this key.
    let Ok(minion_pub) = salt_proto::PublicKey::from_pem(&presented) else {
        tracing::error!("Corrupt or missing public key {id:?}");
        return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
    };
    tracing::info!("Authentication accepted from {id}");
    let accepted_now = !matches!(&key, Some(k) if k.state == KeyState::Accepted);
    if accepted_now || (c.open_mode && !matches!(&key, Some(k) if same(&k.pub_pem))) {
        if let Err(e) = master.keystore.store(id, KeyState::Accepted, &presented) {
            tracing::error!("cannot accept the key of {id}: {e}");
            return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
        }
    }
    let session = match master.session_key(id) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot make the session key of {id}: {e}");
            return signed(master, Value::Boolean(false), &req.nonce, sig_algo);
        }
    };
    let aes = master.aes();
    let mk = &master.master_keys;
    let reply = aes.sig(&mk.private).and_then(|aes_sig| {
        let keys = envelope::AcceptKeys {
            minion_pub: &minion_pub,
            master_key: &mk.private,
            master_pub: &mk.wire_pub,
            aes_sig,
        };
        envelope::accept_auth_prepared(&req, &keys, aes.crypticle.key_string(), session.key_string(), c.publish_port)
    });
    match reply {
        Ok(reply) => {
            auth_event(master, Value::Boolean(true), "accept", id, &presented);
            reply
        }
        Err(e) => {
            // A key the encryptions fail with (an RSA key too small for
            // OAEP) ends here, like Salt's "Corrupt or missing public key".
            tracing::error!("Corrupt or missing public key {id:?}: {e}");
            signed(master, Value::Boolean(false), &req.nonce, sig_algo)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salt_proto::envelope::AuthOutcome;
    use salt_proto::{EncAlgo, PrivateKey};
    use std::os::unix::fs::PermissionsExt as _;

    fn master(dir: &Path, tweak: impl FnOnce(&mut crate::config::MasterConfig)) -> Master {
        let mut c = crate::config::MasterConfig::defaults(dir);
        c.keysize = 1024;
        tweak(&mut c);
        match Master::new(c) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn sign_in(m: &Master, id: &str, key: &PrivateKey) -> AuthOutcome {
        let req = AuthRequest::new(id, &key.public_key(), None, b"tok", EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1);
        let Ok(req) = req else { panic!("request") };
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let Ok(rt) = rt else { panic!("runtime") };
        let reply = rt.block_on(handle_auth(m, &req.to_load(), 3));
        match envelope::open_auth_reply(&reply, &req, key, None, None) {
            Ok(o) => o,
            Err(e) => panic!("{id}: {e}"),
        }
    }

    #[test]
    fn expr_match_like_salt() {
        assert!(expr_match("web1", "web1"));
        assert!(expr_match("web1", "web*"));
        assert!(expr_match("web1", r"web\d"));
        assert!(!expr_match("web1", "db*"));
        assert!(!expr_match("web1x", r"web\d"), "regex anchored at both ends");
    }

    #[test]
    fn autosign_and_autoreject_files() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let sign = dir.path().join("autosign.conf");
        let reject = dir.path().join("autoreject.conf");
        let _ = std::fs::write(&sign, "# comment\nweb*\n");
        let _ = std::fs::write(&reject, "bad*\n");
        let m = master(dir.path(), |c| {
            c.autosign_file = Some(sign.clone());
            c.autoreject_file = Some(reject.clone());
        });
        let Ok(k) = PrivateKey::generate(1024) else { return };
        assert!(matches!(sign_in(&m, "web1", &k), AuthOutcome::Accepted(_)));
        assert_eq!(m.keystore.fetch("web1").ok().flatten().map(|k| k.state), Some(KeyState::Accepted));
        assert!(matches!(sign_in(&m, "bad1", &k), AuthOutcome::Rejected));
        assert_eq!(m.keystore.fetch("bad1").ok().flatten().map(|k| k.state), Some(KeyState::Rejected));
        assert!(matches!(sign_in(&m, "db1", &k), AuthOutcome::Pending));
        assert_eq!(m.keystore.fetch("db1").ok().flatten().map(|k| k.state), Some(KeyState::Pending));
        // A world-writable autosign file is ignored.
        let _ = std::fs::set_permissions(&sign, std::fs::Permissions::from_mode(0o666));
        assert!(matches!(sign_in(&m, "web2", &k), AuthOutcome::Pending));
        // A one-shot stub in minions_autosign accepts once.
        let _ = std::fs::write(m.config.pki_dir.join("minions_autosign/db2"), "");
        assert!(matches!(sign_in(&m, "db2", &k), AuthOutcome::Accepted(_)));
        assert!(!m.config.pki_dir.join("minions_autosign/db2").exists());
    }

    #[test]
    fn autosign_grains() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let gdir = dir.path().join("autosign_grains");
        let _ = std::fs::create_dir_all(&gdir);
        let _ = std::fs::write(gdir.join("uuid"), "# allowed\n8f7d68e2-30c5-40c6-b84a-df7e978a03ee\n");
        let m = master(dir.path(), |c| c.autosign_grains_dir = Some(gdir.clone()));
        let Ok(k) = PrivateKey::generate(1024) else { return };
        let with = |id: &str, uuid: &str| {
            let mut req = AuthRequest::new(id, &k.public_key(), None, b"t", EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1)
                .unwrap_or_else(|e| panic!("{e}"));
            req.autosign_grains = Some(value::map([("uuid", value::string(uuid))]));
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
            let reply = rt.block_on(handle_auth(&m, &req.to_load(), 3));
            envelope::open_auth_reply(&reply, &req, &k, None, None).unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(matches!(with("g1", "8f7d68e2-30c5-40c6-b84a-df7e978a03ee"), AuthOutcome::Accepted(_)));
        assert!(matches!(with("g2", "other"), AuthOutcome::Pending));
    }

    #[test]
    fn known_id_with_another_key_is_denied() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let m = master(dir.path(), |c| c.auto_accept = true);
        let (Ok(k1), Ok(k2)) = (PrivateKey::generate(1024), PrivateKey::generate(1024)) else { return };
        assert!(matches!(sign_in(&m, "m1", &k1), AuthOutcome::Accepted(_)));
        let accepted = m.keystore.fetch_in(KeyState::Accepted, "m1").ok().flatten();
        assert!(matches!(sign_in(&m, "m1", &k2), AuthOutcome::Rejected));
        assert_eq!(m.keystore.fetch_in(KeyState::Accepted, "m1").ok().flatten(), accepted);
        assert!(m.keystore.fetch_denied("m1").ok().flatten().is_some());
        // The right key still works; a rejected key stays rejected.
        assert!(matches!(sign_in(&m, "m1", &k1), AuthOutcome::Accepted(_)));
        assert!(m.keystore.change_state("m1", KeyState::Accepted, KeyState::Rejected).is_ok());
        assert!(matches!(sign_in(&m, "m1", &k1), AuthOutcome::Rejected));
    }

    #[test]
    fn max_minions_is_full() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let m = master(dir.path(), |c| {
            c.auto_accept = true;
            c.max_minions = 1;
        });
        let Ok(k) = PrivateKey::generate(1024) else { return };
        assert!(matches!(sign_in(&m, "a", &k), AuthOutcome::Accepted(_)));
        assert!(matches!(sign_in(&m, "b", &k), AuthOutcome::Full));
        assert!(matches!(sign_in(&m, "a", &k), AuthOutcome::Accepted(_)));
    }
}
