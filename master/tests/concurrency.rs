//! Many minions at once: 24 clients sign in concurrently and each sends
//! 20 `_return`s for one published job, all in flight together, over
//! the ROUTER → DEALER → 5 MWorkers path. Every reply must be right,
//! every return stored once in the job cache and announced once on the
//! event bus. No Salt install needed. Ports 25560/25561.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{aes_frame, request, sign_in, Env};
use salt_proto::envelope::{self, Request};
use salt_proto::value::{get, get_str, map, string};
use salt_proto::{event, PrivateKey, Value};
use tokio::io::AsyncReadExt as _;

const MINIONS: usize = 24;
const RETURNS: usize = 20;

#[test]
fn concurrent_sign_ins_and_returns() {
    let mut env = Env::new(25560, "auto_accept: True\n");
    env.start_master();
    let port = env.ret_port;
    let sock = env.sock_dir().join("master_event_pub.ipc");
    let cachedir = env.cachedir();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let Ok(rt) = rt else { panic!("runtime") };
    rt.block_on(async move {
        let Ok(mut events) = tokio::net::UnixStream::connect(&sock).await else { panic!("event bus") };
        // Keys first (slow in debug builds), then everything at once.
        let keys: Vec<PrivateKey> =
            (0..MINIONS).map(|_| PrivateKey::generate(1024)).collect::<Result<_, _>>().unwrap_or_default();
        assert_eq!(keys.len(), MINIONS);
        let mut tasks = Vec::new();
        for (i, k) in keys.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move { sign_in(port, &format!("c{i:02}"), &k).await }));
        }
        let mut minions = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Ok(m)) => minions.push(m),
                other => panic!("sign-in failed: {:?}", other.map(|r| r.err())),
            }
        }
        // One job for all of them, published with the master's access key.
        let key = std::fs::read_to_string(cachedir.join(".root_key")).unwrap_or_default();
        let publish = map([
            ("cmd", string("publish")),
            ("tgt", string("c*")),
            ("fun", string("test.arg")),
            ("arg", Value::Array(vec![])),
            ("key", string(key)),
            ("tgt_type", string("glob")),
            ("ret", string("")),
            ("jid", string("")),
            ("user", string("root")),
        ]);
        let reply = request(port, Request::Clear { load: publish, version: 3 }.encode()).await;
        let load = get(&reply, "load").cloned().unwrap_or(Value::Nil);
        let Some(Value::Array(targeted)) = get(&load, "minions").cloned() else { panic!("{reply:?}") };
        assert_eq!(targeted.len(), MINIONS);
        let jid = get_str(&load, "jid").unwrap_or_default().to_owned();
        // Every minion sends RETURNS returns (the same jid: only the first is stored).
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for m in minions {
            let jid = jid.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0;
                for n in 0..RETURNS {
                    let nonce = salt_proto::util::uuid4_hex().unwrap_or_default();
                    let ret = map([
                        ("cmd", string("_return")),
                        ("jid", string(jid.as_str())),
                        ("return", Value::from(n as u64)),
                        ("retcode", Value::from(0)),
                        ("success", Value::Boolean(true)),
                        ("fun", string("test.arg")),
                    ]);
                    let reply = request(port, aes_frame(&m, ret, &m.tok, &nonce)).await;
                    if envelope::open_aes_reply(&m.session, &reply, &nonce).ok() == Some(Value::Nil) {
                        ok += 1;
                    }
                }
                ok
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap_or(0);
        }
        assert_eq!(ok, MINIONS * RETURNS, "every request answered correctly");
        // A figure for the log, never asserted.
        let secs = started.elapsed().as_secs_f64();
        eprintln!("{} _return requests from {MINIONS} clients in {secs:.2} s ({:.0}/s)", ok, ok as f64 / secs);
        // The job cache holds exactly one return per minion: the first.
        let jc = master::jobcache::LocalCache::new(&cachedir);
        let stored = master::jobcache::JobStore::get_jid(&jc, &jid).unwrap_or(Value::Nil);
        let Value::Map(stored) = stored else { panic!("no returns") };
        assert_eq!(stored.len(), MINIONS);
        // The bus saw every return event.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut buf = Vec::new();
        let prefix = format!("salt/job/{jid}/ret/");
        loop {
            while let Ok(Some((ev, used))) = event::decode_pub(&buf, 1 << 24) {
                buf.drain(..used);
                if let Ok((tag, _)) = event::unpack(&ev) {
                    if let Some(id) = tag.strip_prefix(&prefix) {
                        *seen.entry(id.to_owned()).or_default() += 1;
                    }
                }
            }
            if seen.values().sum::<usize>() >= MINIONS * RETURNS {
                break;
            }
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout(Duration::from_secs(30), events.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                other => panic!("event stream ended: {other:?}, seen {}", seen.values().sum::<usize>()),
            }
        }
        assert_eq!(seen.len(), MINIONS);
        assert!(seen.values().all(|&n| n == RETURNS));
    });
    assert!(env.stop_master());
}
