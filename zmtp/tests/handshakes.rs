//! Peers that connect and never finish their handshake: the handshake timeout drops each one, and
//! `max_pending_handshakes` bounds how many a socket holds at once (descriptors and tasks), while
//! an honest peer arriving behind them still gets in long before the timeout.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use zmtp::socket::{DisconnectReason, MonitorEvent};
use zmtp::{Options, Socket, SocketType};

mod raw;
use raw::{greeting, read_until_closed, send_raw, T};

/// Descriptors this process holds.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// One test at a time: the descriptors counted are the whole process's.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on a runtime of its own, alone: the lock is taken before that runtime opens its
/// descriptors and released after it has shut down and closed them all, so no other test's
/// runtime or connections are counted as this one's.
fn alone(test: impl std::future::Future<Output = ()>) {
    let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(test);
    rt.shutdown_timeout(Duration::from_secs(5));
}

fn options() -> Options {
    Options::default().linger(Some(Duration::ZERO))
}

/// A REP capped at `CAP` pending handshakes, with libzmq's default 30 s handshake timeout. `STALLERS`
/// raw peers connect and stall (half say nothing, half stop in the middle of the greeting); then a
/// REQ connects. The descriptors our REP holds never exceed the cap by more than the one being
/// accepted, the REQ is answered (within the test's 5 s step limit, long before any staller's 30 s
/// timeout), and every staller dropped to make room sees its connection closed and is reported.
#[test]
fn stalled_peers_are_capped_and_do_not_keep_an_honest_peer_out() {
    alone(stalled_peers_are_capped());
}

async fn stalled_peers_are_capped() {
    const CAP: usize = 16;
    const STALLERS: usize = 48;
    let rep = Socket::with_options(
        SocketType::Rep,
        options().max_pending_handshakes(Some(CAP)).handshake_timeout(Some(Duration::from_secs(30))),
    );
    let mut monitor = rep.monitor();
    let endpoint = rep.bind("tcp://127.0.0.1:*").await.expect("bind");
    let addr: std::net::SocketAddr = endpoint.strip_prefix("tcp://").expect("tcp").parse().expect("address");
    let base = open_fds();

    let mut stallers = Vec::new();
    for i in 0..STALLERS {
        let mut s = tokio::time::timeout(T, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        if i % 2 == 1 {
            send_raw(&mut s, &greeting(b"NULL")[..10]).await;
        }
        stallers.push(s);
    }
    // Our side's descriptors: everything above the base but the stallers' own ends.
    let ours = || open_fds().saturating_sub(base + STALLERS);
    let req = Socket::with_options(SocketType::Req, options());
    req.connect(&endpoint).await.expect("connect");
    let mut most = 0;
    let answered = async {
        req.send("hello").await.expect("send");
        let got = rep.recv().await.expect("REP receives");
        assert_eq!(got, zmtp::Message::from("hello"));
        rep.send("world").await.expect("reply");
        req.recv().await.expect("REQ receives")
    };
    tokio::pin!(answered);
    let reply = tokio::time::timeout(T, async {
        loop {
            tokio::select! {
                r = &mut answered => return r,
                _ = tokio::time::sleep(Duration::from_millis(5)) => most = most.max(ours()),
            }
        }
    })
    .await
    .expect("the honest peer answered despite the stalled ones");
    assert_eq!(reply, zmtp::Message::from("world"));
    // The REQ's own end and its accepted connection, plus the cap, plus one being accepted.
    println!("{STALLERS} stalled peers, cap {CAP}: our side held at most {most} descriptors");
    assert!(most <= CAP + 3, "our side held {most} descriptors with a cap of {CAP}");

    // Every staller dropped so far was closed on our side and reported as such.
    let mut reported = 0;
    while let Some(ev) = monitor.try_recv() {
        if let MonitorEvent::HandshakeFailed { reason: DisconnectReason::TooManyHandshakes, .. } = ev {
            reported += 1;
        }
    }
    let mut closed = 0;
    for s in stallers.iter_mut() {
        // A dropped staller reads our greeting and then EOF; a pending one reads no EOF.
        let mut buf = [0u8; 256];
        let eof = tokio::time::timeout(Duration::from_millis(20), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        if eof.await.is_ok() {
            closed += 1;
        }
    }
    println!("{closed} stallers closed, {reported} reported as TooManyHandshakes");
    assert!(closed >= STALLERS - CAP, "only {closed} of {STALLERS} stallers were dropped");
    assert_eq!(closed, reported, "every dropped staller is reported, and only those");
}

/// Without a cap (libzmq's behaviour), every staller holds a descriptor on our side until the
/// handshake timeout, which then closes each one.
#[test]
fn without_a_cap_stallers_hold_descriptors_until_the_timeout() {
    alone(without_a_cap());
}

async fn without_a_cap() {
    const STALLERS: usize = 32;
    let rep = Socket::with_options(
        SocketType::Rep,
        options().max_pending_handshakes(None).handshake_timeout(Some(Duration::from_secs(2))),
    );
    let endpoint = rep.bind("tcp://127.0.0.1:*").await.expect("bind");
    let addr: std::net::SocketAddr = endpoint.strip_prefix("tcp://").expect("tcp").parse().expect("address");
    let base = open_fds();
    let mut stallers = Vec::new();
    for _ in 0..STALLERS {
        stallers.push(tokio::time::timeout(T, TcpStream::connect(addr)).await.expect("in time").expect("connect"));
    }
    let ours = tokio::time::timeout(T, async {
        loop {
            let n = open_fds().saturating_sub(base + STALLERS);
            if n >= STALLERS {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every staller accepted");
    println!("no cap: {STALLERS} stalled peers hold {ours} descriptors on our side");
    for s in stallers.iter_mut() {
        read_until_closed(s, T).await;
    }
}
