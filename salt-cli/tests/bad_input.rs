//! `salt-rs` facing a master that answers nonsense: garbage or error replies on the request port,
//! and a corrupt, oversized or hostile event stream. Each run ends with a clear message and exit
//! code within its timeouts; nothing panics. The "master" here is a REP socket and a Unix socket
//! written by the test (no Salt needed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use salt_proto::value::{map, string, Value};
use salt_proto::{event, msgpack};
use tokio::io::AsyncWriteExt as _;
use zmtp::{Socket, SocketType};

const SALT_RS: &str = env!("CARGO_BIN_EXE_salt-rs");
const JID: &str = "20260101000000000001";

struct FakeMaster {
    root: tempfile::TempDir,
    conf: PathBuf,
    rep: Socket,
    bus: tokio::net::UnixListener,
}

async fn fake_master() -> FakeMaster {
    let Ok(root) = tempfile::Builder::new().prefix("sc").tempdir_in("/tmp") else { panic!("tempdir") };
    let rep = Socket::new(SocketType::Rep);
    let Ok(ep) = rep.bind("tcp://127.0.0.1:*").await else { panic!("bind") };
    let port = ep.rsplit(':').next().unwrap_or("0").to_string();
    let r = root.path().display().to_string();
    let conf = root.path().join("etc/salt");
    let sock_dir = root.path().join("var/run/salt/master");
    for d in [&conf, &sock_dir] {
        assert!(std::fs::create_dir_all(d).is_ok());
    }
    let text = format!("root_dir: {r}\ninterface: 127.0.0.1\nret_port: {port}\ngather_job_timeout: 1\n");
    assert!(std::fs::write(conf.join("master"), text).is_ok());
    assert!(std::fs::write(sock_dir.join("publish_pull.ipc"), b"").is_ok());
    let Ok(bus) = tokio::net::UnixListener::bind(sock_dir.join("master_event_pub.ipc")) else { panic!("bus") };
    FakeMaster { root, conf, rep, bus }
}

fn salt_rs(conf: &Path, args: &[&str]) -> tokio::task::JoinHandle<std::process::Output> {
    let mut cmd = Command::new(SALT_RS);
    cmd.arg("-c").arg(conf).args(args);
    tokio::task::spawn_blocking(move || match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run salt-rs: {e}"),
    })
}

/// Answer every request with `reply` until the test ends.
fn answer(rep: Socket, reply: Vec<u8>) {
    tokio::spawn(async move {
        while rep.recv().await.is_ok() {
            if rep.send(reply.clone()).await.is_err() {
                return;
            }
        }
    });
}

fn text(o: &std::process::Output) -> (String, String, i32) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    }
}

#[test]
fn garbage_and_error_replies() {
    runtime().block_on(async {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\xc1\xc1 not msgpack".to_vec(), "bad reply from the master"),
            (msgpack::encode(&string("Some failure in the master")), "Some failure in the master"),
            (
                msgpack::encode(&map([(
                    "error",
                    map([("name", string("AuthorizationError")), ("message", string("Authorization error occurred."))]),
                )])),
                "Authorization error occurred.",
            ),
            (msgpack::encode(&string("")), "Failed to authenticate!"),
            // 600 levels of nesting: beyond the decoder's depth limit.
            ([vec![0x91u8; 600], vec![0xc0]].concat(), "bad reply from the master"),
        ];
        // An empty map: no job (Salt prints nothing and "No return received", exit 2).
        let m = fake_master().await;
        let conf = m.conf.clone();
        answer(m.rep, msgpack::encode(&Value::Map(vec![])));
        let Ok(o) = salt_rs(&conf, &["*", "test.ping", "-t", "2"]).await else { panic!("join") };
        assert_eq!(text(&o), (String::new(), "ERROR: No return received\n".to_string(), 2));
        drop(m.root);
        for (reply, want) in cases {
            let m = fake_master().await;
            let conf = m.conf.clone();
            answer(m.rep, reply);
            let out = salt_rs(&conf, &["*", "test.ping", "-t", "2"]).await;
            let Ok(o) = out else { panic!("join") };
            let (stdout, stderr, code) = text(&o);
            assert_eq!(code, 1, "{want}: {stdout} {stderr}");
            assert!(stdout.contains(want), "{want}: {stdout} {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            drop(m.root);
        }
    });
}

#[test]
fn hostile_event_stream() {
    runtime().block_on(async {
        let good_reply = msgpack::encode(&map([
            ("enc", string("clear")),
            ("load", map([("jid", string(JID)), ("minions", Value::Array(vec![string("m1"), string("m2")]))])),
        ]));
        let ev = |tag: &str, data: Value| event::frame_pub(&event::pack(tag, &data));
        let ret = |id: &str, r: Value| {
            ev(
                &format!("salt/job/{JID}/ret/{id}"),
                map([("id", string(id)), ("return", r), ("retcode", Value::from(0))]),
            )
        };
        // What the bus sends, in order: noise for other jobs, a return without "return", an event
        // whose data is nested past the decoder's limit, m1's real return, then corrupt bytes.
        let mut stream = Vec::new();
        stream.extend(ev("salt/job/99999999999999999999/ret/m1", map([("return", string("not ours"))])));
        stream.extend(ev(&format!("salt/job/{JID}/ret/m2"), map([("id", string("m2"))])));
        let mut deep = format!("salt/job/{JID}/ret/m2\n\n").into_bytes();
        deep.extend(vec![0x91u8; 600]);
        deep.push(0xc0);
        stream.extend(event::frame_pub(&deep));
        stream.extend(ret("m1", string("hello")));
        stream.extend(b"\xc1\xc1\xc1garbage");

        let m = fake_master().await;
        let conf = m.conf.clone();
        answer(m.rep, good_reply);
        let bus = m.bus;
        let writer = tokio::spawn(async move {
            if let Ok((mut s, _)) = bus.accept().await {
                let _ = s.write_all(&stream).await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        let Ok(o) = salt_rs(&conf, &["*", "test.ping", "-t", "1", "--out", "json"]).await else { panic!("join") };
        writer.abort();
        let (stdout, stderr, code) = text(&o);
        assert!(!stderr.contains("panicked"), "{stderr}");
        // m1's return is printed; m2 never returned (its malformed returns were skipped).
        assert!(stdout.starts_with("{\n    \"m1\": \"hello\"\n}\n"), "{stdout}");
        assert!(stdout.contains("\"m2\": \"Minion did not return. [No response]"), "{stdout}");
        assert_eq!(code, 1, "{stderr}");
        drop(m.root);
    });
}

#[test]
fn oversized_event_ends_the_subscription() {
    runtime().block_on(async {
        let good_reply = msgpack::encode(&map([
            ("enc", string("clear")),
            ("load", map([("jid", string(JID)), ("minions", Value::Array(vec![string("m1")]))])),
        ]));
        let m = fake_master().await;
        let conf = m.conf.clone();
        answer(m.rep, good_reply);
        let bus = m.bus;
        // A frame announcing a 4 GiB body, then 70 MiB of filler: more than the subscriber's
        // limit for one event, so it must drop the stream rather than keep buffering.
        let writer = tokio::spawn(async move {
            if let Ok((mut s, _)) = bus.accept().await {
                let mut head = b"\x82\xa4head\x80\xa4body\xc6".to_vec();
                head.extend(u32::MAX.to_be_bytes());
                let _ = s.write_all(&head).await;
                let filler = vec![0u8; 1 << 20];
                for _ in 0..70 {
                    if s.write_all(&filler).await.is_err() {
                        return true;
                    }
                }
                false
            } else {
                false
            }
        });
        let Ok(o) = salt_rs(&conf, &["*", "test.ping", "-t", "1"]).await else { panic!("join") };
        let (stdout, stderr, code) = text(&o);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stdout.contains("Minion did not return. [No response]"), "{stdout}");
        assert_eq!(code, 1);
        // The subscriber hung up on the stream (the writer's later writes failed), or the
        // process ended.
        let _ = writer.await;
        drop(m.root);
    });
}
