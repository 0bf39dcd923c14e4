//! Our master (`salt-master-rs`) serving REAL Salt 3008.5: a Python
//! `salt-minion` and our `salt-minion-rs` sign in, and the stock `salt`,
//! `salt-key` and `salt-run` CLIs drive them through our master.
//! Skipped (with a message) when Salt is not installed in `/opt/salt-venv`.
//!
//! Ports 25500-25599 (this crate's range), one pair per test.

mod common;

use std::time::Duration;

use common::{have_salt, wait_for, Env};
use master::keys::{KeyState, KeyStore};

const T: Duration = Duration::from_secs(90);

fn ping_all(env: &Env, expect: &[&str]) {
    let (code, out, err) = env.cli("salt", &["*", "test.ping", "--static", "--out", "json", "-t", "20"], T);
    let v = Env::json(&out);
    for id in expect {
        assert_eq!(v[id], serde_json::json!(true), "{id} did not answer test.ping: {out} {err} (rc {code})");
    }
    assert_eq!(code, 0, "{out} {err}");
}

#[test]
fn real_and_rust_minions_with_the_stock_cli() {
    if !have_salt() {
        return;
    }
    let mut env = Env::new(25510, "auto_accept: True\n");
    env.start_master();
    env.start_salt_minion("pm1");
    let rust = env.start_rust_minion("rm1");
    let mut ids = vec!["pm1"];
    if rust {
        ids.push("rm1");
    }
    let ks = KeyStore::at(env.pki());
    wait_for("both minions accepted and their grains cached", T, || {
        let acc = ks.accepted().unwrap_or_default();
        ids.iter().all(|id| acc.iter().any(|a| a == id) && env.cachedir().join(format!("grains/{id}.p")).exists())
    });
    // The stock salt-key sees what _auth stored.
    let (_, out, _) = env.cli("salt-key", &["-L", "--out", "json"], T);
    let keys = Env::json(&out);
    for id in &ids {
        assert!(keys["minions"].as_array().is_some_and(|a| a.iter().any(|x| x == id)), "{out}");
    }
    ping_all(&env, &ids);

    // cmd.run on both, by list target.
    let list = ids.join(",");
    let (code, out, err) =
        env.cli("salt", &["-L", &list, "cmd.run", "echo hello-$((40+2))", "--static", "--out", "json", "-t", "20"], T);
    let v = Env::json(&out);
    for id in &ids {
        assert_eq!(v[id], serde_json::json!("hello-42"), "{out} {err}");
    }
    assert_eq!(code, 0);

    // Grain and compound targets resolved by our master over the cached grains.
    let (_, out, _) = env.cli("salt", &["-G", "kernel:Linux", "test.ping", "--static", "--out", "json", "-t", "20"], T);
    let v = Env::json(&out);
    for id in &ids {
        assert_eq!(v[id], serde_json::json!(true), "{out}");
    }
    let (_, out, _) = env.cli("salt", &["-C", "G@kernel:Linux and pm*", "test.ping", "--static", "--out", "json"], T);
    let v = Env::json(&out);
    assert_eq!(v["pm1"], serde_json::json!(true), "{out}");
    assert!(v.get("rm1").is_none(), "compound target selected rm1: {out}");
    let (code, out, err) = env.cli("salt", &["-G", "kernel:Plan9", "test.ping"], T);
    assert_ne!(code, 0);
    assert!(format!("{out}{err}").contains("No minions matched"), "{out} {err}");

    // The stock salt-run reads our job cache.
    let (_, out, _) = env.cli("salt-run", &["jobs.list_jobs", "search_function=cmd.run", "--out", "json"], T);
    let jobs = Env::json(&out);
    let Some((jid, job)) = jobs.as_object().and_then(|m| m.iter().next()) else { panic!("no cmd.run job: {out}") };
    assert_eq!(job["Function"], "cmd.run");
    let (_, out, _) = env.cli("salt-run", &["jobs.lookup_jid", jid, "--out", "json"], T);
    let v = Env::json(&out);
    for id in &ids {
        assert_eq!(v[id], serde_json::json!("hello-42"), "lookup_jid {jid}: {out}");
    }

    // Master restart: the minions come back by themselves (new AES key →
    // they sign in again on the next publish).
    assert!(env.stop_master(), "our master did not stop within 10 s of SIGTERM");
    env.start_master();
    wait_for("test.ping after a master restart", T, || {
        let (_, out, _) = env.cli("salt", &["*", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        let v = Env::json(&out);
        ids.iter().all(|id| v[id] == serde_json::json!(true))
    });
    assert!(env.master_log().contains("Authentication accepted from pm1"));
}

#[test]
fn pending_keys_accepted_by_salt_key_and_by_our_key_store() {
    if !have_salt() {
        return;
    }
    let mut env = Env::new(25520, "ping_on_rotate: True\n");
    env.start_master();
    env.start_salt_minion("pm2");
    let rust = env.start_rust_minion("rm2");
    let ks = KeyStore::at(env.pki());
    wait_for("pm2 pending", T, || ks.list().map(|l| l.pending.iter().any(|k| k == "pm2")).unwrap_or(false));
    if rust {
        wait_for("rm2 pending", T, || ks.list().map(|l| l.pending.iter().any(|k| k == "rm2")).unwrap_or(false));
    }
    assert!(ks.accepted().unwrap_or_default().is_empty(), "nothing is accepted without auto_accept");
    // The stock salt-key accepts one, our key store the other.
    let (code, out, err) = env.cli("salt-key", &["-a", "pm2", "-y"], T);
    assert_eq!(code, 0, "{out} {err}");
    if rust {
        assert!(ks.change_state("rm2", KeyState::Pending, KeyState::Accepted).is_ok());
    }
    let mut ids = vec!["pm2"];
    if rust {
        ids.push("rm2");
    }
    wait_for("test.ping from the accepted minions", T, || {
        let (_, out, _) = env.cli("salt", &["*", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        let v = Env::json(&out);
        ids.iter().all(|id| v[id] == serde_json::json!(true))
    });
    // Delete + .dfn: Maintenance rotates the AES key; the minion signs in
    // again once re-accepted.
    let (code, _, _) = env.cli("salt-key", &["-d", "pm2", "-y"], T);
    assert_eq!(code, 0);
    wait_for("the AES key rotation", T, || env.master_log().contains("Rotating master AES key"));
    // ping_on_rotate publishes test.ping at once; it fails pm2's HMAC
    // check, so pm2 signs in again, now unknown → pending.
    wait_for("pm2 pending again", T, || ks.list().map(|l| l.pending.iter().any(|k| k == "pm2")).unwrap_or(false));
    let (code, _, _) = env.cli("salt-key", &["-a", "pm2", "-y"], T);
    assert_eq!(code, 0);
    wait_for("test.ping after the rotation", T, || {
        let (_, out, _) = env.cli("salt", &["pm2", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        Env::json(&out)["pm2"] == serde_json::json!(true)
    });
}

#[test]
fn zmq_filtering_publishes_reach_exactly_their_minions() {
    if !have_salt() {
        return;
    }
    let mut env = Env::new(25540, "auto_accept: True\nzmq_filtering: True\n");
    env.minion_extra = "zmq_filtering: True\n".to_owned();
    env.start_master();
    env.start_salt_minion("pf1");
    env.start_salt_minion("pf2");
    let rust = env.start_rust_minion("rf1");
    let mut ids = vec!["pf1", "pf2"];
    if rust {
        ids.push("rf1");
    }
    let ks = KeyStore::at(env.pki());
    wait_for("the minions accepted", T, || {
        let acc = ks.accepted().unwrap_or_default();
        ids.iter().all(|id| acc.iter().any(|a| a == id))
    });
    // glob/list targets go out as [sha1(id), payload] per minion; grain
    // targets as [b"broadcast", payload].
    wait_for("test.ping through topic-filtered publishes", T, || {
        let (_, out, _) = env.cli("salt", &["*", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        let v = Env::json(&out);
        ids.iter().all(|id| v[id] == serde_json::json!(true))
    });
    let (_, out, _) = env.cli("salt", &["pf2", "test.ping", "--static", "--out", "json", "-t", "10"], T);
    let v = Env::json(&out);
    assert_eq!(v, serde_json::json!({"pf2": true}), "{out}");
    let (_, out, _) = env.cli("salt", &["-G", "kernel:Linux", "test.ping", "--static", "--out", "json", "-t", "10"], T);
    let v = Env::json(&out);
    for id in &ids {
        assert_eq!(v[id], serde_json::json!(true), "{out}");
    }
}

/// Read `master_event_pub.ipc` until an event tagged `tag` arrives.
fn read_event(stream: &mut std::os::unix::net::UnixStream, buf: &mut Vec<u8>, tag: &str) -> serde_json::Value {
    use std::io::Read as _;
    loop {
        while let Ok(Some((ev, used))) = salt_proto::event::decode_pub(buf, 1 << 24) {
            buf.drain(..used);
            if let Ok((t, data)) = salt_proto::event::unpack(&ev) {
                if t == tag {
                    return salt_proto::value::to_json(&data);
                }
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => panic!("event stream ended before {tag}: {other:?}"),
        }
    }
}

#[test]
fn stock_pushers_reach_the_event_bus() {
    if !have_salt() {
        return;
    }
    let mut env = Env::new(25550, "");
    env.start_master();
    let sock = env.sock_dir().join("master_event_pub.ipc");
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&sock) else { panic!("connect {}", sock.display()) };
    let _ = stream.set_read_timeout(Some(T));
    let mut buf = Vec::new();
    // salt-run pushes on master_event_pull.ipc with Salt's own framing.
    let (code, out, err) = env.cli("salt-run", &["event.send", "my/custom/event", "{\"foo\": [1, 2]}"], T);
    assert_eq!(code, 0, "{out} {err}");
    let ev = read_event(&mut stream, &mut buf, "my/custom/event");
    assert_eq!(ev["foo"], serde_json::json!([1, 2]), "{ev}");
    // salt-key announces key changes on the same bus.
    let ks = KeyStore::open(env.pki());
    let Ok(ks) = ks else { panic!("key store") };
    let Ok(k) = salt_proto::PrivateKey::generate(1024) else { panic!("keygen") };
    assert!(ks.store("kx", KeyState::Pending, &k.public_key().to_pem().unwrap_or_default()).is_ok());
    let (code, out, err) = env.cli("salt-key", &["-a", "kx", "-y"], T);
    assert_eq!(code, 0, "{out} {err}");
    let ev = read_event(&mut stream, &mut buf, "salt/key");
    assert_eq!(ev["act"], "accepted", "{ev}");
    assert_eq!(ev["id"], "kx");
}

/// The children of `parent` whose `comm` is `name` (from `/proc/*/stat`).
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn publisher_process_restarted_after_a_kill_and_minions_get_jobs_again() {
    if !have_salt() {
        return;
    }
    // Ports 20500-20599 (this session's helper range).
    let mut env = Env::new(20510, "auto_accept: True\n");
    env.start_master();
    let master_pid = env.master.as_ref().map_or(0, common::Proc::pid);
    env.start_salt_minion("pp1");
    let ks = KeyStore::at(env.pki());
    wait_for("pp1 accepted", T, || ks.accepted().unwrap_or_default().iter().any(|a| a == "pp1"));
    wait_for("test.ping to pp1", T, || {
        let (_, out, _) = env.cli("salt", &["pp1", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        Env::json(&out)["pp1"] == serde_json::json!(true)
    });
    // One Publisher process, a child of the master, named so.
    let publishers = children_named(master_pid, "Publisher");
    assert_eq!(publishers.len(), 1, "one Publisher child of {master_pid}: {publishers:?}");
    let first = publishers[0];
    let cmdline = std::fs::read(format!("/proc/{first}/cmdline")).unwrap_or_default();
    assert!(String::from_utf8_lossy(&cmdline).starts_with("salt-master-rs Publisher"), "{cmdline:?}");
    // The PUB port is the Publisher's, not the master's.
    let pub_listener = |pid: u32| -> bool {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter_map(|l| {
                        l.to_str().and_then(|s| s.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let port = format!(":{:04X} ", env.pub_port);
        // local_address field, state 0A (LISTEN), then the inode column.
        tcp.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[1].ends_with(port.trim_end()) && f[3] == "0A" && inodes.iter().any(|i| i == f[9])
        })
    };
    assert!(pub_listener(first), "the Publisher process listens on the publish port");
    assert!(!pub_listener(master_pid), "the master process does not hold the publish port");

    // Kill it: the ProcessManager starts a new one, and the minion gets jobs again.
    if let Some(pid) = rustix::process::Pid::from_raw(first as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    wait_for("a new Publisher process", T, || {
        let now = children_named(master_pid, "Publisher");
        now.len() == 1 && now[0] != first
    });
    wait_for("test.ping to pp1 through the new Publisher", T, || {
        let (_, out, _) = env.cli("salt", &["pp1", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        Env::json(&out)["pp1"] == serde_json::json!(true)
    });
    assert!(env.master_log().contains("the Publisher process exited"), "the exit is logged");
    // SIGTERM to the master stops its Publisher too.
    let second = children_named(master_pid, "Publisher");
    assert!(env.stop_master(), "our master did not stop within 10 s of SIGTERM");
    wait_for("the Publisher process gone with the master", Duration::from_secs(10), || {
        second.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
}

/// The storm the test plays against a master with one worker: a signed-in minion's `_pillar`
/// requests, `outstanding` at a time, which the queue serves before any `_auth` (as a real storm's
/// `_pillar`s are: every minion just accepted sends one), and `_auth` requests of other minions
/// every 20 ms. Runs until `stop`, counting the `_pillar` replies in `served`.
async fn storm(
    port: u16,
    busy: common::Minion,
    stop: &std::sync::atomic::AtomicBool,
    served: &std::sync::atomic::AtomicUsize,
) {
    use bytes::Bytes;
    use std::sync::atomic::Ordering;
    use zmtp::{Message, Socket, SocketType};
    let ep = format!("tcp://127.0.0.1:{port}");
    let pillars = Socket::new(SocketType::Dealer);
    let auths = Socket::new(SocketType::Dealer);
    if pillars.connect(&ep).await.is_err() || auths.connect(&ep).await.is_err() {
        panic!("connect {ep}");
    }
    let load = salt_proto::value::map([
        ("cmd", salt_proto::value::string("_pillar")),
        ("id", salt_proto::value::string(&busy.id)),
        ("grains", salt_proto::value::map([("os", salt_proto::value::string("Storm"))])),
        ("saltenv", salt_proto::value::string("base")),
        ("ver", salt_proto::value::string("2")),
    ]);
    let Ok(nonce) = salt_proto::util::uuid4_hex() else { panic!("no randomness") };
    let pillar = Bytes::from(common::aes_frame(&busy, load, &busy.tok, &nonce));
    // Another minion's sign-in, as the queue sees it (a clear `_auth`); answered "bad load"
    // (told to back off, or not a valid request) whenever it is taken.
    let auth = Bytes::from(salt_proto::msgpack::encode(&salt_proto::value::map([
        ("enc", salt_proto::value::string("clear")),
        ("load", salt_proto::value::map([("cmd", salt_proto::value::string("_auth"))])),
    ])));
    // About a second of the worker's work queued: the storm thread may be descheduled a while
    // without the worker ever finding no `_pillar` to take.
    let outstanding = 400;
    let mut in_flight = 0;
    let mut next_auth = tokio::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        while in_flight < outstanding {
            if pillars.send(Message::from(vec![Bytes::new(), pillar.clone()])).await.is_err() {
                panic!("send _pillar");
            }
            in_flight += 1;
        }
        if tokio::time::Instant::now() >= next_auth {
            if auths.send(Message::from(vec![Bytes::new(), auth.clone()])).await.is_err() {
                panic!("send _auth");
            }
            next_auth += Duration::from_millis(20);
        }
        while auths.try_recv().is_ok() {}
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(5), pillars.recv()).await {
            in_flight -= 1;
            served.fetch_add(1, Ordering::SeqCst);
        }
    }
    pillars.close().await;
    auths.close().await;
}

/// A real salt-minion whose `_auth` comes in a sign-in storm's excess is answered `"bad load"`
/// unsigned (the queue's back-off, `reqqueue.rs`), takes it as a failed sign-in, waits
/// `acceptance_wait_time` and signs in again once the storm is over, then answers a job.
#[test]
fn a_real_minion_told_to_back_off_in_a_storm_signs_in_later() {
    if !have_salt() {
        return;
    }
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    // Ports 22100-22199 (the range of the helper that wrote this test). One worker, sign-ins
    // that waited 1 s told to back off, no data-cache files for the storm's `_pillar`s.
    let mut env =
        Env::new(22110, "auto_accept: True\nworker_threads: 1\nauth_backoff_after: 1\nminion_data_cache: False\n");
    env.start_master();
    let port = env.ret_port;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let (stop2, served2) = (stop.clone(), served.clone());
    let storm_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let Ok(rt) = rt else { panic!("runtime") };
        rt.block_on(async move {
            let Ok(key) = salt_proto::PrivateKey::generate(1024) else { panic!("keygen") };
            let busy = match common::sign_in(port, "storm-busy", &key).await {
                Ok(m) => m,
                Err(e) => panic!("the storm's minion did not sign in: {e}"),
            };
            storm(port, busy, &stop2, &served2).await;
        });
    });
    // The storm is on (its `_pillar`s answered) before the real minion starts.
    wait_for("the storm's first _pillar replies", T, || {
        served.load(Ordering::SeqCst) >= 10 || storm_thread.is_finished()
    });
    assert!(!storm_thread.is_finished(), "the storm ended early");
    env.start_salt_minion("pb1");
    let log = env.root.path().join("minion-pb1.log");
    wait_for("pb1 told to back off (\"Sign-in attempt failed: bad load\" in its log)", T, || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("Sign-in attempt failed: bad load")
    });
    stop.store(true, Ordering::SeqCst);
    assert!(storm_thread.join().is_ok(), "the storm thread panicked");
    let ks = KeyStore::at(env.pki());
    // Storm over: it signs in on its own and answers.
    wait_for("pb1 accepted after the storm", T, || ks.accepted().unwrap_or_default().iter().any(|a| a == "pb1"));
    wait_for("test.ping to pb1", T, || {
        let (_, out, _) = env.cli("salt", &["pb1", "test.ping", "--static", "--out", "json", "-t", "10"], T);
        Env::json(&out)["pb1"] == serde_json::json!(true)
    });
}
