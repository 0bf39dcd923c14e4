//! Hostile but legal peers against our sockets and, as the reference, libzmq's: the raw peers of
//! `zmtp/tests/raw/` (included below, one source for both tiers) drive the same scenario against
//! one implementation, then the other, and each run prints what the peer could send, whether it
//! was disconnected, and how far this process's resident set rose (libzmq runs in this process
//! too). Our figures are held to the bounds of `zmtp/tests/bounded.rs`; libzmq's are printed
//! beside them, and held to what libzmq is known to do where it bounds the case itself.

use std::net::SocketAddr;
use std::time::Duration;

use interop_tests::Z;
use zmtp::{Message, Options, Socket, SocketType};

#[path = "../../zmtp/tests/raw/mod.rs"]
mod raw;
use raw::{connect_as, drain, flood, frame, greeting, ping, repeat, subscribe, Growth, MEASURING};

/// A write making no progress for this long means the other side stopped reading.
const STALL: Duration = Duration::from_secs(2);

/// The socket under test: ours, or libzmq's.
enum Server {
    Ours(Socket),
    Libzmq(Z),
}

impl Server {
    fn name(&self) -> &'static str {
        match self {
            Server::Ours(_) => "zmtp",
            Server::Libzmq(_) => "libzmq",
        }
    }

    async fn close(self) {
        match self {
            Server::Ours(s) => s.close().await,
            Server::Libzmq(z) => z.close(),
        }
    }
}

fn addr_of(endpoint: &str) -> SocketAddr {
    endpoint.strip_prefix("tcp://").expect("tcp endpoint").parse().expect("socket address")
}

async fn ours(kind: SocketType, options: Options) -> (Server, SocketAddr) {
    let s = Socket::with_options(kind, options.linger(Some(Duration::ZERO)));
    let endpoint = s.bind("tcp://127.0.0.1:*").await.expect("bind");
    (Server::Ours(s), addr_of(&endpoint))
}

fn libzmq(kind: zmq::SocketType, configure: impl FnOnce(&zmq::Socket)) -> (Server, SocketAddr) {
    let z = Z::new(kind);
    z.with(|s| {
        s.set_linger(0).expect("ZMQ_LINGER");
        configure(s);
    });
    let endpoint = z.bind_exact("tcp://127.0.0.1:*");
    (Server::Libzmq(z), addr_of(&endpoint))
}

/// What one run showed.
struct Figures {
    sent: usize,
    kib: Option<u64>,
    disconnected: bool,
}

fn report(scenario: &str, server: &Server, f: &Figures) {
    let kib = f.kib.map_or_else(|| "unmeasured".to_owned(), |k| format!("{k} KiB"));
    println!(
        "{scenario:<44} {:<7} peer sent {:>6} KiB, disconnected: {:<5}, resident set rose {kib}",
        server.name(),
        f.sent >> 10,
        f.disconnected
    );
}

fn within_mib(f: &Figures, mib: u64) -> bool {
    f.kib.is_none_or(|k| k < mib << 10)
}

/// Writes `prefix`, then floods `batch` up to `total` octets, never reading; then reads what is
/// waiting (did the server close?).
async fn hostile(addr: SocketAddr, socket_type: Option<&str>, prefix: &[u8], batch: &[u8], total: usize) -> Figures {
    let mut raw = match socket_type {
        Some(t) => {
            let mut raw = connect_as(addr, t).await;
            raw::read_handshake(&mut raw).await;
            raw
        }
        None => tokio::net::TcpStream::connect(addr).await.expect("connect"),
    };
    let growth = Growth::start();
    raw::send_raw(&mut raw, prefix).await;
    let sent = flood(&mut raw, batch, total, STALL).await;
    let (_, disconnected) = drain(&mut raw, Duration::from_millis(500)).await;
    Figures { sent, kib: growth.kib(), disconnected }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood() {
    let _one = MEASURING.lock().await;
    let batch = repeat(&ping(b"0123456789abcdef"), 4096);
    let total = 64 << 20;
    for (server, addr) in [ours(SocketType::Rep, Options::default()).await, libzmq(zmq::REP, |_| {})] {
        let f = hostile(addr, Some("DEALER"), &[], &batch, total).await;
        report("PINGs, never reading (REP)", &server, &f);
        // Both take every PING, stay connected, and stay flat.
        assert!(f.sent >= total, "{}: {} octets taken", server.name(), f.sent);
        assert!(!f.disconnected, "{}", server.name());
        assert!(within_mib(&f, 16), "{}", server.name());
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_flood_xpub_verbose_not_read() {
    let _one = MEASURING.lock().await;
    let batch = repeat(&subscribe(b"weather.london"), 4096);
    for (server, addr) in [
        ours(SocketType::XPub, Options::default().xpub_verbose(true)).await,
        libzmq(zmq::XPUB, |s| s.set_xpub_verbose(true).expect("ZMQ_XPUB_VERBOSE")),
    ] {
        let f = hostile(addr, Some("SUB"), &[], &batch, 64 << 20).await;
        report("SUBSCRIBEs, XPUB_VERBOSE not read", &server, &f);
        if let Server::Ours(_) = server {
            assert!(within_mib(&f, 16));
        }
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_topic_flood_toward_pub() {
    let _one = MEASURING.lock().await;
    let batches: Vec<Vec<u8>> = (0..80usize)
        .map(|c| (c * 10_000..(c + 1) * 10_000).flat_map(|i| subscribe(format!("{i:064}").as_bytes())).collect())
        .collect();
    for (server, addr) in [ours(SocketType::Pub, Options::default()).await, libzmq(zmq::PUB, |_| {})] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // libzmq applies subscriptions when the application calls into the socket: keep calling.
        let pump = async {
            if let Server::Libzmq(z) = &server {
                let stop = stop.clone();
                z.run_blocking(move |s| {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = s.get_events();
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .await;
            }
        };
        let attack = async {
            let mut raw = connect_as(addr, "SUB").await;
            raw::read_handshake(&mut raw).await;
            let growth = Growth::start();
            let mut sent = 0;
            for batch in &batches {
                sent += flood(&mut raw, batch, batch.len(), STALL).await;
            }
            let (_, disconnected) = drain(&mut raw, Duration::from_millis(500)).await;
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            Figures { sent, kib: growth.kib(), disconnected }
        };
        let (f, ()) = tokio::join!(attack, pump);
        report("800,000 distinct topics toward PUB", &server, &f);
        if let Server::Ours(_) = server {
            // 100,000 topics kept (the default limit), every SUBSCRIBE taken.
            assert_eq!(f.sent, batches.iter().map(Vec::len).sum::<usize>());
            assert!(within_mib(&f, 48));
        }
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_empty_frames_max_msg_size_1_mib() {
    let _one = MEASURING.lock().await;
    let batch = repeat(&frame(0x01, b""), 32 << 10);
    for (server, addr) in [
        ours(SocketType::Pull, Options::default().max_msg_size(Some(1 << 20))).await,
        libzmq(zmq::PULL, |s| s.set_maxmsgsize(1 << 20).expect("ZMQ_MAXMSGSIZE")),
    ] {
        // 4 MiB of wire: two million empty frames of one message.
        let f = hostile(addr, Some("PUSH"), &[], &batch, 4 << 20).await;
        report("endless empty frames, MAXMSGSIZE 1 MiB", &server, &f);
        if let Server::Ours(_) = server {
            assert!(f.disconnected, "frames must count toward max_msg_size");
            assert!(within_mib(&f, 8));
        }
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_of_2_pow_63_minus_1_octets_no_limit_set() {
    let _one = MEASURING.lock().await;
    let mut header = vec![0x02];
    header.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
    let body = vec![b'x'; 64 << 10];
    for (server, addr) in [ours(SocketType::Pull, Options::default()).await, libzmq(zmq::PULL, |_| {})] {
        let f = hostile(addr, Some("PUSH"), &header, &body, 64 << 20).await;
        report("a 2^63-1 octet frame, default options", &server, &f);
        // libzmq cannot allocate it and closes; we refuse it from the header (default limit).
        assert!(f.disconnected, "{}", server.name());
        assert!(within_mib(&f, 8), "{}", server.name());
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_of_1_gib() {
    let _one = MEASURING.lock().await;
    let mut hello = greeting(b"NULL");
    hello.push(0x06);
    hello.extend_from_slice(&(1u64 << 30).to_be_bytes());
    hello.extend_from_slice(b"\x05READY\x0bSocket-Type\x3f\xff\xff\xe9");
    let body = vec![b'x'; 64 << 10];
    for (server, addr) in [ours(SocketType::Rep, Options::default()).await, libzmq(zmq::REP, |_| {})] {
        // 16 MiB of the announced GiB.
        let f = hostile(addr, None, &hello, &body, 16 << 20).await;
        report("a 1 GiB READY", &server, &f);
        if let Server::Ours(_) = server {
            assert!(f.disconnected);
            assert!(within_mib(&f, 8));
        }
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_that_never_reads() {
    let _one = MEASURING.lock().await;
    let size = 8 << 10;
    let count = (64 << 20) / size;
    for (server, addr) in [
        ours(SocketType::Pub, Options::default().sndhwm(100)).await,
        libzmq(zmq::PUB, |s| s.set_sndhwm(100).expect("ZMQ_SNDHWM")),
    ] {
        let mut raw = connect_as(addr, "SUB").await;
        raw::read_handshake(&mut raw).await;
        raw::send_raw(&mut raw, &subscribe(b"")).await;
        // Give the subscription a moment to land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = vec![7u8; size];
        let growth = Growth::start();
        for _ in 0..count {
            match &server {
                Server::Ours(s) => s.send(Message::from(body.clone())).await.expect("send"),
                Server::Libzmq(z) => z.with(|s| s.send(&body[..], zmq::DONTWAIT)).expect("PUB never blocks"),
            }
        }
        let kib = growth.kib();
        let (got, disconnected) = drain(&mut raw, Duration::from_millis(500)).await;
        let f = Figures { sent: count * size, kib, disconnected };
        report("PUB, 64 MiB toward a subscriber not reading", &server, &f);
        println!("    the subscriber then read {} messages of {count}", got / size);
        assert!(got > 0 && got / size < 1000, "{}: read {got} octets", server.name());
        assert!(within_mib(&f, 24), "{}", server.name());
        server.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_client_that_never_reads_replies() {
    let _one = MEASURING.lock().await;
    let mut request = frame(0x01, b"");
    request.extend_from_slice(&frame(0x00, &[1u8; 1024]));
    let batch = repeat(&request, 256);
    for (server, addr) in [
        ours(SocketType::Router, Options::default().sndhwm(100)).await,
        libzmq(zmq::ROUTER, |s| {
            s.set_sndhwm(100).expect("ZMQ_SNDHWM");
            s.set_rcvtimeo(1000).expect("ZMQ_RCVTIMEO");
        }),
    ] {
        let echo = async {
            let mut answered = 0usize;
            match &server {
                Server::Ours(s) => {
                    while let Ok(m) = s.recv_timeout(Duration::from_secs(1)).await {
                        s.send(m).await.expect("reply");
                        answered += 1;
                    }
                }
                Server::Libzmq(z) => {
                    answered = z
                        .run_blocking(|s| {
                            let mut n = 0;
                            while let Ok(m) = s.recv_multipart(0) {
                                let _ = s.send_multipart(m, zmq::DONTWAIT);
                                n += 1;
                            }
                            n
                        })
                        .await;
                }
            }
            answered
        };
        let (answered, f) = tokio::join!(echo, hostile(addr, Some("DEALER"), &[], &batch, 16 << 20));
        report("ROUTER echo, client never reads replies", &server, &f);
        println!("    {answered} requests answered");
        assert!(answered > 0, "{}", server.name());
        assert!(within_mib(&f, 24), "{}", server.name());
        server.close().await;
    }
}
