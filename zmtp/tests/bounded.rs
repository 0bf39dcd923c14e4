//! Bounded memory whatever a legal peer does: each test is a hostile but well-formed raw peer
//! (written against the spec, see `raw/`) and measures how far this process's resident set rises
//! while it runs (peak minus start, `/proc/self/status`), against a stated bound. The same peers
//! run against libzmq in the interop tier (`tests/tests/bounded.rs`), which prints both figures.
//!
//! Every flood is large enough that buffering it (the behaviour each bound replaces) would exceed
//! the bound several times over.

use std::net::SocketAddr;
use std::time::Duration;

use zmtp::codec::CodecError;
use zmtp::proto::ConnectionError;
use zmtp::socket::{DisconnectReason, Monitor, MonitorEvent};
use zmtp::{Message, Options, Socket, SocketType};

mod raw;
use raw::{
    connect_as, drain, flood, frame, frames_after_greeting, greeting, ping, repeat, subscribe, Growth, MEASURING, T,
};

/// Octets of PINGs, SUBSCRIBEs or requests a flood sends.
const FLOOD: usize = 64 << 20;
/// A write making no progress for this long means the other side stopped reading.
const STALL: Duration = Duration::from_secs(2);

fn options() -> Options {
    Options::default().linger(Some(Duration::ZERO))
}

async fn bind(socket: &Socket) -> SocketAddr {
    let endpoint = socket.bind("tcp://127.0.0.1:*").await.expect("bind");
    endpoint.strip_prefix("tcp://").expect("tcp endpoint").parse().expect("socket address")
}

/// The set-up every test shares: our socket bound on loopback with its monitor, and the hostile
/// raw peer connected to it (greeted as `peer_type` if given, else only the TCP connection).
struct Scene {
    socket: Socket,
    monitor: Monitor,
    raw: tokio::net::TcpStream,
}

async fn scene(socket_type: SocketType, options: Options, peer_type: Option<&str>) -> Scene {
    let socket = Socket::with_options(socket_type, options);
    let monitor = socket.monitor();
    let addr = bind(&socket).await;
    let raw = match peer_type {
        Some(t) => connect_as(addr, t).await,
        None => tokio::net::TcpStream::connect(addr).await.expect("connect"),
    };
    Scene { socket, monitor, raw }
}

/// Waits (up to `T`) for the first monitor event `pick` accepts.
async fn next_event<R>(monitor: &mut Monitor, what: &str, mut pick: impl FnMut(MonitorEvent) -> Option<R>) -> R {
    tokio::time::timeout(T, async {
        loop {
            match monitor.recv().await {
                Some(ev) => {
                    if let Some(r) = pick(ev) {
                        return r;
                    }
                }
                None => panic!("monitor ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} in time"))
}

/// Asserts the growth is within `bound_mib`, and prints it.
fn check(what: &str, growth: &Growth, bound_mib: u64, sent: usize) {
    match growth.kib() {
        Some(kib) => {
            println!("{what}: {} MiB sent, resident set rose {kib} KiB (bound {bound_mib} MiB)", sent >> 20);
            assert!(kib < bound_mib << 10, "{what}: resident set rose {kib} KiB, bound {bound_mib} MiB");
        }
        None => println!("{what}: /proc/self/clear_refs unavailable, memory not measured"),
    }
}

async fn next_failure(monitor: &mut Monitor) -> DisconnectReason {
    next_event(monitor, "a connection failure", |ev| match ev {
        MonitorEvent::HandshakeFailed { reason, .. } | MonitorEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await
}

async fn subscription_limit(monitor: &mut Monitor) -> (usize, usize) {
    next_event(monitor, "SubscriptionLimit", |ev| match ev {
        MonitorEvent::SubscriptionLimit { topics, bytes, .. } => Some((topics, bytes)),
        _ => None,
    })
    .await
}

/// PINGs as fast as the peer can send them, never reading the PONGs: one PONG is owed at most,
/// and reading goes on (the peer is not pushed back: all its PINGs are taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_from_a_peer_that_never_reads() {
    let _one = MEASURING.lock().await;
    let Scene { socket: rep, monitor: _, mut raw } = scene(SocketType::Rep, options(), Some("DEALER")).await;
    let batch = repeat(&ping(b"0123456789abcdef"), 4096);
    let growth = Growth::start();
    let sent = flood(&mut raw, &batch, FLOOD, STALL).await;
    // Every PING was read: the flood was not stopped by back-pressure.
    assert!(sent >= FLOOD, "only {sent} octets of PINGs taken");
    // Still connected and answering: what is waiting is PONGs, far fewer than the PINGs.
    let (pongs, closed) = drain(&mut raw, Duration::from_millis(500)).await;
    assert!(!closed, "the PINGing peer was disconnected");
    println!("PONG octets waiting for the peer: {pongs}, after {} PINGs", sent / ping(b"0123456789abcdef").len());
    // Counted, not only measured: what waits for the peer is our write queue's backlog (256 KiB)
    // and the kernel's buffers, not a PONG per PING (that would be 40 MiB here).
    assert!(pongs < 8 << 20, "{pongs} octets of PONGs queued");
    check("PING flood", &growth, 16, sent);
    rep.close().await;
}

/// SUBSCRIBEs toward an XPUB_VERBOSE whose application does not read: what is handed to the
/// application stops at RCVHWM, then reading stops (back-pressure), memory does not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_flood_toward_xpub_verbose_not_read() {
    let _one = MEASURING.lock().await;
    let Scene { socket: xpub, monitor: _, mut raw } =
        scene(SocketType::XPub, options().xpub_verbose(true), Some("SUB")).await;
    let batch = repeat(&subscribe(b"weather.london"), 4096);
    let growth = Growth::start();
    let sent = flood(&mut raw, &batch, FLOOD, STALL).await;
    println!("SUBSCRIBE octets taken before back-pressure: {sent}");
    check("SUBSCRIBE flood, XPUB_VERBOSE not read", &growth, 16, sent);
    // The application then gets RCVHWM of them, in order.
    for _ in 0..1000 {
        let m = xpub.recv_timeout(T).await.expect("a subscription");
        assert_eq!(m, Message::from(&b"\x01weather.london"[..]));
    }
    xpub.close().await;
}

/// Distinct topics past the per-peer limit: ignored, logged, reported once as a monitor event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_limit_is_reported_and_enforced() {
    let limit = 1000;
    let Scene { socket: publ, mut monitor, mut raw } =
        scene(SocketType::Pub, options().max_subscriptions_per_peer(limit, 1 << 20), Some("SUB")).await;
    let mut subs = Vec::new();
    for i in 0..5 * limit {
        subs.extend_from_slice(&subscribe(format!("t{i}.").as_bytes()));
    }
    raw::send_raw(&mut raw, &subs).await;
    let (topics, bytes) = subscription_limit(&mut monitor).await;
    assert_eq!(topics, limit);
    assert_eq!(bytes, (0..limit).map(|i| format!("t{i}.").len()).sum::<usize>());
    // Subscriptions are processed in order: t0. to t999. hold, t1000. on do not.
    for topic in ["t4000.", "t0.", "t1000.", "t999."] {
        publ.send(Message::from(format!("{topic}x").as_str())).await.expect("publish");
    }
    let mut bytes = Vec::new();
    let got = tokio::time::timeout(T, async {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = raw.read(&mut buf).await.expect("read");
            assert!(n > 0, "disconnected");
            bytes.extend_from_slice(&buf[..n]);
            // Our greeting, READY, then the messages that matched.
            let frames = frames_after_greeting(&bytes);
            let bodies: Vec<Vec<u8>> = frames.into_iter().filter(|(f, _)| f & 0x04 == 0).map(|(_, b)| b).collect();
            if bodies.len() >= 2 {
                return bodies;
            }
        }
    })
    .await
    .expect("two messages in time");
    // Reported once for the connection, however many topics were refused.
    while let Some(ev) = monitor.try_recv() {
        assert!(!matches!(ev, MonitorEvent::SubscriptionLimit { .. }), "reported twice: {ev:?}");
    }
    assert_eq!(got, vec![b"t0.x".to_vec(), b"t999.x".to_vec()]);
    publ.close().await;
}

/// Distinct topics, far more than the default per-peer limit (100,000), toward a PUB with the
/// default options: the first 100,000 are kept, the rest ignored, and memory stays at what those
/// hold (libzmq keeps every one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_topic_flood_toward_pub() {
    let _one = MEASURING.lock().await;
    let Scene { socket: publ, mut monitor, mut raw } = scene(SocketType::Pub, options(), Some("SUB")).await;
    let topics = 800_000;
    let growth = Growth::start();
    let mut sent = 0;
    for chunk in 0..topics / 10_000 {
        let mut batch = Vec::with_capacity(10_000 * 76);
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            batch.extend_from_slice(&subscribe(format!("{i:064}").as_bytes()));
        }
        sent += flood(&mut raw, &batch, batch.len(), STALL).await;
    }
    assert!(sent >= topics * 76, "only {sent} octets of SUBSCRIBEs taken");
    let (kept, bytes) = subscription_limit(&mut monitor).await;
    assert_eq!((kept, bytes), (100_000, 100_000 * 64));
    // Let the last of the flood be taken before measuring.
    let (_, closed) = drain(&mut raw, Duration::from_millis(300)).await;
    assert!(!closed);
    check("800,000 distinct 64-octet topics toward PUB", &growth, 48, sent);
    publ.close().await;
}

/// One message of endless empty frames: each frame counts FRAME_COST toward max_msg_size, so the
/// peer is disconnected after max_msg_size / 32 frames instead of being buffered for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_empty_frames_hit_max_msg_size() {
    let _one = MEASURING.lock().await;
    let limit = 1u64 << 20;
    let Scene { socket: pull, mut monitor, mut raw } =
        scene(SocketType::Pull, options().max_msg_size(Some(limit)), Some("PUSH")).await;
    let batch = repeat(&frame(0x01, b""), 32 << 10);
    let growth = Growth::start();
    let sent = flood(&mut raw, &batch, FLOOD, STALL).await;
    assert!(sent < FLOOD, "a peer sending endless empty frames was not disconnected");
    let reason = next_failure(&mut monitor).await;
    assert_eq!(
        reason,
        DisconnectReason::Protocol(ConnectionError::InvalidMessage(CodecError::TooLarge { size: 0, limit: 0 })),
        "{reason}"
    );
    check("endless empty frames, max_msg_size 1 MiB", &growth, 8, sent);
    pull.close().await;
}

/// A READY bigger than the handshake limit is refused from its header, before its body arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_ready_is_refused_from_its_header() {
    let _one = MEASURING.lock().await;
    let Scene { socket: rep, mut monitor, mut raw } = scene(SocketType::Rep, options(), None).await;
    let mut hello = greeting(b"NULL");
    // READY announcing 1 GiB of properties.
    hello.push(0x06);
    hello.extend_from_slice(&(1u64 << 30).to_be_bytes());
    hello.extend_from_slice(b"\x05READY\x0bSocket-Type\x3f\xff\xff\xe9");
    let growth = Growth::start();
    raw::send_raw(&mut raw, &hello).await;
    let sent = flood(&mut raw, &vec![b'x'; 64 << 10], FLOOD, STALL).await;
    let reason = next_failure(&mut monitor).await;
    assert_eq!(
        reason,
        DisconnectReason::Protocol(ConnectionError::InvalidMessage(CodecError::TooLarge {
            size: 1 << 30,
            limit: zmtp::proto::DEFAULT_MAX_HANDSHAKE_COMMAND
        })),
        "{reason}"
    );
    check("1 GiB READY", &growth, 8, sent);
    rep.close().await;
}

/// A frame announcing 2^63-1 octets, with the default options: refused at once (the default
/// max_msg_size), not buffered while the body trickles in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_of_2_pow_63_minus_1_octets_with_default_options() {
    let _one = MEASURING.lock().await;
    let Scene { socket: pull, mut monitor, mut raw } = scene(SocketType::Pull, options(), Some("PUSH")).await;
    let mut header = vec![0x02];
    header.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
    let growth = Growth::start();
    raw::send_raw(&mut raw, &header).await;
    let sent = flood(&mut raw, &vec![b'x'; 64 << 10], FLOOD, STALL).await;
    let reason = next_failure(&mut monitor).await;
    assert_eq!(
        reason,
        DisconnectReason::Protocol(ConnectionError::InvalidMessage(CodecError::TooLarge {
            size: i64::MAX as u64,
            limit: zmtp::proto::DEFAULT_MAX_MSG_SIZE
        })),
        "{reason}"
    );
    check("2^63-1 octet frame, default options", &growth, 8, sent);
    pull.close().await;
}

/// A subscriber that never reads: PUB drops at SNDHWM, the connection's write queue stays under
/// its backlog; publishing never blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_that_never_reads() {
    let _one = MEASURING.lock().await;
    let hwm = 100;
    let size = 8 << 10;
    let Scene { socket: publ, mut monitor, mut raw } = scene(SocketType::Pub, options().sndhwm(hwm), Some("SUB")).await;
    raw::send_raw(&mut raw, &subscribe(b"")).await;
    wait_handshake(&mut monitor).await;
    // The subscription is taken once the handshake is; give it a moment to land, then publish.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = vec![7u8; size];
    let growth = Growth::start();
    let count = FLOOD / size;
    for _ in 0..count {
        tokio::time::timeout(T, publ.send(Message::from(body.clone()))).await.expect("PUB never blocks").expect("send");
    }
    check("PUB toward a subscriber that never reads", &growth, 24, FLOOD);
    let (got, _) = drain(&mut raw, Duration::from_millis(500)).await;
    println!("the subscriber then read {} messages of {count}", got / size);
    // SNDHWM (100) and the write backlog (256 KiB: 32 messages) plus what the kernel buffers:
    // a few hundred of the 8192 offered.
    assert!(got > 0 && got / size < 1000, "read {got} octets of {FLOOD}");
    publ.close().await;
}

async fn wait_handshake(monitor: &mut Monitor) {
    next_event(monitor, "handshake", |ev| matches!(ev, MonitorEvent::HandshakeSucceeded { .. }).then_some(())).await
}

/// A client that sends requests and never reads the replies, to a server answering each: the
/// replies beyond SNDHWM are dropped (REP and ROUTER drop toward a full peer, as libzmq does).
async fn client_that_never_reads_replies(socket_type: SocketType) {
    let _one = MEASURING.lock().await;
    let size = 1 << 10;
    let Scene { socket: server, monitor: _, mut raw } = scene(socket_type, options().sndhwm(100), Some("DEALER")).await;
    let echo = async {
        let mut answered = 0usize;
        while let Ok(m) = server.recv_timeout(Duration::from_secs(1)).await {
            server.send(m).await.expect("reply");
            answered += 1;
        }
        answered
    };
    // A request: the empty delimiter REP needs, and the body.
    let mut request = frame(0x01, b"");
    request.extend_from_slice(&frame(0x00, &vec![1u8; size]));
    let batch = repeat(&request, 256);
    let growth = Growth::start();
    let (answered, sent) = tokio::join!(echo, async {
        let sent = flood(&mut raw, &batch, FLOOD / 4, STALL).await;
        sent
    });
    println!("{socket_type}: {answered} requests answered, none read");
    assert!(answered > 0);
    check(&format!("{socket_type} replying to a client that never reads"), &growth, 24, sent);
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_client_that_never_reads_replies() {
    client_that_never_reads_replies(SocketType::Rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_client_that_never_reads_replies() {
    client_that_never_reads_replies(SocketType::Router).await;
}
