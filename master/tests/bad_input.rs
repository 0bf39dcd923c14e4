//! What a hostile or broken peer gets from our master on `ret_port`, each
//! answer checked against Salt 3008.5's (salt-master.md, master.py,
//! channel/server.py): malformed msgpack, bad envelopes, old protocol
//! versions, bad AES/HMAC, a wrong `tok`, ids with `../`, an `_auth` for a
//! known id with another key, clear `publish` with a wrong or missing key,
//! clear commands Salt does not expose. Nothing is written outside the
//! master's directories and the master keeps serving throughout. Also
//! checks the `salt/auth` event on `master_event_pub.ipc`.
//!
//! Needs no Salt install (a client built from `salt_proto`'s minion halves
//! plays the minion). Ports 25530/25531.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::{aes_frame, request, sign_in, Env, Minion};
use salt_proto::envelope::{self, AuthOutcome, AuthRequest, Request};
use salt_proto::value::{as_str, get, get_str, map, string};
use salt_proto::{msgpack, EncAlgo, PrivateKey, SigAlgo, Value};
use tokio::io::AsyncReadExt as _;
use zmtp::{Message, Socket, SocketType};

fn clear(load: Value, version: i64) -> Vec<u8> {
    Request::Clear { load, version }.encode()
}

/// Every file under `dir`.
fn files(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { panic!("test setup failed") };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            files(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

/// Read events from `master_event_pub.ipc` until `tag` shows up.
async fn wait_event(stream: &mut tokio::net::UnixStream, buf: &mut Vec<u8>, tag: &str) -> Value {
    loop {
        while let Ok((frame, used)) = msgpack::decode_prefix(buf) {
            buf.drain(..used);
            let body = get(&frame, "body").and_then(salt_proto::value::as_bytes).unwrap_or_default().to_vec();
            let Some(split) = body.windows(2).position(|w| w == b"\n\n") else { continue };
            if &body[..split] == tag.as_bytes() {
                return msgpack::decode(&body[split + 2..]).unwrap_or(Value::Nil);
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => panic!("event stream ended waiting for {tag}: {other:?}"),
        }
    }
}

#[test]
fn hostile_requests_get_salts_answers() {
    let mut env = Env::new(25530, "auto_accept: True\nkeysize: 2048\nmax_request_size: 16384\n");
    env.start_master();
    let port = env.ret_port;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let Ok(rt) = rt else { panic!("runtime") };
    let pki = env.pki();
    let root = env.root.path().to_path_buf();
    let sock_dir = env.sock_dir();
    rt.block_on(async move {
        let bad_load = string("bad load");
        let mut events = match tokio::net::UnixStream::connect(sock_dir.join("master_event_pub.ipc")).await {
            Ok(s) => s,
            Err(e) => panic!("event bus: {e}"),
        };
        let mut ebuf = Vec::new();

        // Not msgpack / not a map: MWorkerQueue's routing error.
        let routing = map([("error", string("Routing error"))]);
        assert_eq!(request(port, b"\xc1\xc1garbage".to_vec()).await, routing);
        assert_eq!(request(port, msgpack::encode(&Value::from(5))).await, routing);
        // A map without enc/load, an unknown enc, an old version.
        assert_eq!(request(port, msgpack::encode(&map([("enc", string("clear"))]))).await, bad_load);
        assert_eq!(
            request(port, msgpack::encode(&map([("enc", string("rot13")), ("load", Value::Map(vec![]))]))).await,
            bad_load
        );
        assert_eq!(request(port, clear(map([("cmd", string("ping"))]), 2)).await, bad_load);
        // ping is echoed; commands Salt does not expose answer {} in clear.
        let ping = map([("cmd", string("ping")), ("x", Value::from(1))]);
        assert_eq!(request(port, clear(ping.clone(), 3)).await, ping);
        for cmd in ["nosuch", "_prep_pub", "_send_pub", "__init__", "_auth_impl_sync", "_pillar", "_return"] {
            let r = request(port, clear(map([("cmd", string(cmd)), ("id", string("x"))]), 3)).await;
            assert_eq!(r, Value::Map(vec![]), "clear {cmd}");
        }

        // _auth with path-like ids: a signed ret False, nothing written.
        for bad in ["../../evil", "a/b", "..", "ev\u{1}il"] {
            let Ok(k) = PrivateKey::generate(1024) else { panic!("test setup failed") };
            let req = AuthRequest::new(bad, &k.public_key(), None, b"t", EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1);
            let Ok(req) = req else { panic!("test setup failed") };
            let reply = request(port, req.to_request().encode()).await;
            assert!(
                matches!(envelope::open_auth_reply(&reply, &req, &k, None, None), Ok(AuthOutcome::Rejected)),
                "{bad}"
            );
        }
        let mut all = Vec::new();
        files(&root, &mut all);
        assert!(!all.iter().any(|f| f.contains("evil") || f.ends_with("/b")), "{all:?}");

        // A good sign-in (auto_accept), seen on the event bus.
        let Ok(k1) = PrivateKey::generate(2048) else { panic!("test setup failed") };
        let m = match sign_in(port, "good", &k1).await {
            Ok(m) => m,
            Err(e) => panic!("sign in: {e}"),
        };
        let ev = wait_event(&mut events, &mut ebuf, "salt/auth").await;
        assert_eq!(get_str(&ev, "act"), Some("accept"));
        assert_eq!(get_str(&ev, "id"), Some("good"));
        assert!(get_str(&ev, "_stamp").is_some());
        let accepted = std::fs::read_to_string(pki.join("minions/good")).unwrap_or_default();

        // The same id with another key: denied, the accepted key untouched.
        let Ok(k2) = PrivateKey::generate(1024) else { panic!("test setup failed") };
        assert!(sign_in(port, "good", &k2).await.is_err());
        let ev = wait_event(&mut events, &mut ebuf, "salt/auth").await;
        assert_eq!(get_str(&ev, "act"), Some("denied"));
        assert_eq!(std::fs::read_to_string(pki.join("minions/good")).unwrap_or_default(), accepted);
        let denied = std::fs::read_to_string(pki.join("minions_denied/good")).unwrap_or_default();
        assert_eq!(denied.trim(), k2.public_key().to_pem().unwrap_or_default().trim());

        // Authenticated requests: good, wrong tok, bad HMAC, unknown command.
        let nonce = salt_proto::util::uuid4_hex().unwrap_or_default();
        let rr = map([("cmd", string("_register_resources")), ("resources", Value::Map(vec![]))]);
        let reply = request(port, aes_frame(&m, rr.clone(), &m.tok, &nonce)).await;
        assert_eq!(envelope::open_aes_reply(&m.session, &reply, &nonce).ok(), Some(Value::Boolean(true)));
        // A minion event is re-fired on the bus under its tag.
        let mev = map([
            ("cmd", string("_minion_event")),
            ("tag", string("salt/minion/good/start")),
            ("data", string("Minion good started")),
            ("pretag", Value::Nil),
        ]);
        let reply = request(port, aes_frame(&m, mev, &m.tok, &nonce)).await;
        assert_eq!(envelope::open_aes_reply(&m.session, &reply, &nonce).ok(), Some(Value::Nil));
        let ev = wait_event(&mut events, &mut ebuf, "salt/minion/good/start").await;
        assert_eq!(get_str(&ev, "data"), Some("Minion good started"));
        assert_eq!(get_str(&ev, "id"), Some("good"));
        assert!(get(&ev, "tok").is_none() && get(&ev, "nonce").is_none());
        let wrong_tok = envelope::make_tok(&k2).unwrap_or_default();
        assert_eq!(request(port, aes_frame(&m, rr.clone(), &wrong_tok, &nonce)).await, bad_load);
        // The master remembers a verified tok only for the accepted key file
        // it was verified with: another key renamed over it (as salt-key
        // writes keys) makes the remembered tok fail and the new key's pass,
        // the old file back makes it pass again, and no file refuses it.
        let key_file = pki.join("minions/good");
        let swap = |pem: &str| {
            let tmp = pki.join("minions/.good.tmp");
            std::fs::write(&tmp, pem).unwrap_or_else(|e| panic!("{e}"));
            std::fs::rename(&tmp, &key_file).unwrap_or_else(|e| panic!("{e}"));
        };
        let good =
            |reply: &Value| envelope::open_aes_reply(&m.session, reply, &nonce).ok() == Some(Value::Boolean(true));
        swap(&k2.public_key().to_pem().unwrap_or_default());
        assert_eq!(request(port, aes_frame(&m, rr.clone(), &m.tok, &nonce)).await, bad_load);
        assert!(good(&request(port, aes_frame(&m, rr.clone(), &wrong_tok, &nonce)).await));
        swap(&accepted);
        assert_eq!(request(port, aes_frame(&m, rr.clone(), &wrong_tok, &nonce)).await, bad_load);
        assert!(good(&request(port, aes_frame(&m, rr.clone(), &m.tok, &nonce)).await));
        std::fs::remove_file(&key_file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request(port, aes_frame(&m, rr.clone(), &m.tok, &nonce)).await, bad_load);
        swap(&accepted);
        assert!(good(&request(port, aes_frame(&m, rr.clone(), &m.tok, &nonce)).await));
        let mut tampered = aes_frame(&m, rr.clone(), &m.tok, &nonce);
        if let Ok(Request::Aes { mut load, version, id, enc_algo, sig_algo }) = Request::decode(&tampered) {
            let mid = load.len() / 2;
            load[mid] ^= 1;
            tampered = Request::Aes { load, version, id, enc_algo, sig_algo }.encode();
        }
        assert_eq!(request(port, tampered).await, bad_load);
        // An aes request under an id that does not match the load, or an unknown id.
        let other =
            Minion { id: "ghost".to_owned(), key: m.key.clone(), session: m.session.clone(), tok: m.tok.clone() };
        assert_eq!(request(port, aes_frame(&other, rr.clone(), &other.tok, &nonce)).await, bad_load);
        assert!(!env_cachedir(&pki).join("sessions/ghost").exists(), "an unknown id made a session key file");
        let reply = request(port, aes_frame(&m, map([("cmd", string("_nosuch"))]), &m.tok, &nonce)).await;
        assert_eq!(envelope::open_aes_reply(&m.session, &reply, &nonce).ok(), Some(Value::Map(vec![])));
        // A _return with a path-like jid and an id it does not own is harmless.
        let ret = map([
            ("cmd", string("_return")),
            ("jid", string("../../../../x")),
            ("return", Value::Boolean(true)),
            ("fun", string("test.ping")),
        ]);
        let reply = request(port, aes_frame(&m, ret, &m.tok, &nonce)).await;
        assert_eq!(envelope::open_aes_reply(&m.session, &reply, &nonce).ok(), Some(Value::Nil));

        // Clear publish: wrong key, no key → AuthenticationError; the right key works.
        let auth_err = map([(
            "error",
            map([("name", string("AuthenticationError")), ("message", string("Authentication error occurred."))]),
        )]);
        let publish = |key: Option<&str>| {
            let mut l = vec![
                ("cmd", string("publish")),
                ("tgt", string("good")),
                ("fun", string("test.ping")),
                ("arg", Value::Array(vec![])),
                ("tgt_type", string("glob")),
                ("ret", string("")),
                ("jid", string("")),
                ("user", string("root")),
            ];
            if let Some(k) = key {
                l.insert(4, ("key", string(k)));
            }
            clear(map(l), 3)
        };
        assert_eq!(request(port, publish(Some("not-the-key"))).await, auth_err);
        assert_eq!(request(port, publish(None)).await, auth_err);
        let root_key = std::fs::read_to_string(env_cachedir(&pki).join(".root_key")).unwrap_or_default();
        assert_eq!(root_key.len(), 76);
        let ok = request(port, publish(Some(&root_key))).await;
        let load = get(&ok, "load").cloned().unwrap_or(Value::Nil);
        assert_eq!(get(&load, "minions"), Some(&Value::Array(vec![string("good")])), "{ok:?}");
        let jid = get_str(&load, "jid").unwrap_or_default().to_owned();
        assert_eq!(jid.len(), 20);
        let new = wait_event(&mut events, &mut ebuf, &format!("salt/job/{jid}/new")).await;
        assert_eq!(get(&new, "minions"), Some(&Value::Array(vec![string("good")])));

        // A request above max_request_size: the connection is dropped
        // (no answer; the wait is only bounded), others are served.
        let s = Socket::new(SocketType::Req);
        if s.connect(&format!("tcp://127.0.0.1:{port}")).await.is_err() {
            panic!("connect");
        }
        let huge = clear(map([("cmd", string("ping")), ("pad", string("x".repeat(100_000)))]), 3);
        let _ = s.send(Message::from(vec![Bytes::from(huge)])).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), s.recv()).await;
        s.close().await;

        // Still serving.
        let r = request(port, clear(map([("cmd", string("ping"))]), 3)).await;
        assert_eq!(as_str(get(&r, "cmd").unwrap_or(&Value::Nil)), Some("ping"));
    });
    // Nothing outside the master's root was touched by all this: every
    // file lives under our temporary root (checked above) and the master
    // is alive.
    let alive = env.master.as_mut().map(|m| m.alive()).unwrap_or(false);
    assert!(alive, "the master died");
    assert!(env.stop_master());
}

fn env_cachedir(pki: &Path) -> std::path::PathBuf {
    // pki = ROOT/etc/salt/pki/master → ROOT/var/cache/salt/master
    pki.ancestors().nth(4).map(|r| r.join("var/cache/salt/master")).unwrap_or_default()
}
