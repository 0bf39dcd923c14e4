//! Our sockets talking to each other over tcp and ipc (the libzmq interop tier is in `tests/`).

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Message, Socket, SocketType};

const T: Duration = Duration::from_secs(5);

fn ipc(name: &str) -> String {
    format!("ipc:///tmp/zmtp-test-{}-{name}.ipc", std::process::id())
}

async fn bind_connect(a: &Socket, b: &Socket, transport: &str, name: &str) {
    let ep = if transport == "tcp" { "tcp://127.0.0.1:*".to_owned() } else { ipc(name) };
    let bound = a.bind(&ep).await.expect("bind");
    b.connect(&bound).await.expect("connect");
}

#[tokio::test]
async fn req_rep() {
    for t in ["tcp", "ipc"] {
        let rep = Socket::new(SocketType::Rep);
        let req = Socket::new(SocketType::Req);
        bind_connect(&rep, &req, t, "reqrep").await;
        for i in 0..3 {
            req.send(["hello", &i.to_string()]).await.expect("send");
            let got = tokio::time::timeout(T, rep.recv()).await.expect("timely").expect("recv");
            assert_eq!(got, Message::from(["hello", &i.to_string()]));
            assert!(matches!(req.send("again").await, Err(zmtp::SendError { error: zmtp::Error::InvalidState, .. })));
            rep.send("world").await.expect("reply");
            let reply = tokio::time::timeout(T, req.recv()).await.expect("timely").expect("recv");
            assert_eq!(reply, Message::from("world"));
        }
    }
}

#[tokio::test]
async fn dealer_router_identities() {
    let router = Socket::new(SocketType::Router);
    let dealer = Socket::with_options(SocketType::Dealer, zmtp::Options::default().routing_id("d1"));
    bind_connect(&router, &dealer, "tcp", "dr").await;
    dealer.send(["", "ping"]).await.expect("send");
    let got = tokio::time::timeout(T, router.recv()).await.expect("timely").expect("recv");
    assert_eq!(got, Message::from(["d1", "", "ping"]));
    router.send(["d1", "", "pong"]).await.expect("send");
    router.send(["nobody", "lost"]).await.expect("unroutable is dropped");
    let got = tokio::time::timeout(T, dealer.recv()).await.expect("timely").expect("recv");
    assert_eq!(got, Message::from(["", "pong"]));
}

#[tokio::test]
async fn pub_sub_filters_and_large() {
    let publ = Socket::new(SocketType::Pub);
    let sub = Socket::new(SocketType::Sub);
    bind_connect(&publ, &sub, "tcp", "ps").await;
    sub.subscribe("a").expect("subscribe");
    let big = Bytes::from(vec![7u8; 4 << 20]);
    // Subscriptions travel asynchronously: publish until the first one arrives.
    let first = tokio::time::timeout(T, async {
        loop {
            publ.send("b-ignored").await.expect("send");
            publ.send(Message::from(vec![Bytes::from_static(b"a"), big.clone()])).await.expect("send");
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await {
                return m;
            }
        }
    })
    .await
    .expect("subscription took effect");
    assert_eq!(first.first().map(|f| &f[..]), Some(&b"a"[..]));
    assert_eq!(first.get(1).map(Bytes::len), Some(4 << 20));
}

/// With one connection, `recv` polls the connection itself (no hop through its task); the task
/// polls it too. Several receivers on a multi-threaded runtime race for it: no message may be lost
/// and no wake-up missed (a missed one hangs until the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assisted_receive_with_racing_receivers() {
    for t in ["tcp", "ipc"] {
        racing_receivers(t, 20_000).await;
    }
}

/// The same race many times while busy threads compete for every core (the load under which a
/// lost wake-up shows). `ZMTP_STRESS_RUNS` sets the number of runs per transport (default 3; the
/// long form, `scripts/stress.sh`, runs 200).
#[test]
fn racing_receivers_under_cpu_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let runs: usize = std::env::var("ZMTP_STRESS_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2 * cores)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
                }
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    for run in 0..runs {
        for t in ["tcp", "ipc"] {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(120), racing_receivers(t, 5_000))
                    .await
                    .unwrap_or_else(|_| panic!("run {run} over {t} hung"));
            });
        }
    }
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().expect("busy thread");
    }
}

/// Three receivers race on one DEALER for `n` echoes from a ROUTER; every message must arrive
/// exactly once.
async fn racing_receivers(t: &str, n: u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    // ROUTER drops what it cannot queue (RFC 28, as libzmq); under load the receivers fall more
    // than a high-water mark behind the echo, so the echo waits for room instead: every reply
    // must then arrive.
    let router = Arc::new(Socket::with_options(SocketType::Router, zmtp::Options::default().router_mandatory(true)));
    let dealer = Arc::new(Socket::new(SocketType::Dealer));
    static RUN: AtomicU64 = AtomicU64::new(0);
    let name = format!("assist-{}", RUN.fetch_add(1, Ordering::SeqCst));
    bind_connect(&router, &dealer, t, &name).await;
    // Echo: the router returns every message to its sender.
    let echo = {
        let router = router.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                let m = router.recv().await.expect("router recv");
                router.send(m).await.expect("router send");
            }
        })
    };
    let received = Arc::new(AtomicU64::new(0));
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let dealer = dealer.clone();
            let received = received.clone();
            tokio::spawn(async move {
                let mut sum = 0u64;
                while received.load(Ordering::SeqCst) < n {
                    // Receives are cancelled now and then, as a timeout does in applications.
                    if let Ok(m) = tokio::time::timeout(Duration::from_millis(200), dealer.recv()).await {
                        let m = m.expect("dealer recv");
                        let frame = m.first().expect("a frame");
                        sum += u64::from_le_bytes(frame[..8].try_into().expect("8 octets"));
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                }
                sum
            })
        })
        .collect();
    // Requests trickle in small bursts, so the receivers often find the queue empty and wait.
    for i in 0..n {
        dealer.send(Bytes::copy_from_slice(&i.to_le_bytes())).await.expect("send");
        if i % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut total = 0;
    for r in receivers {
        let got = tokio::time::timeout(Duration::from_secs(60), r).await;
        total += got
            .unwrap_or_else(|_| panic!("{t}: no hang ({} of {n} received)", received.load(Ordering::SeqCst)))
            .expect("task");
    }
    tokio::time::timeout(Duration::from_secs(60), echo).await.expect("echo done").expect("task");
    assert_eq!(received.load(Ordering::SeqCst), n);
    assert_eq!(total, n * (n - 1) / 2, "{t}: every message exactly once");
}

/// The connection task keeps a socket's connection alive while the application never receives:
/// requests queued with nobody in `recv` still go out, and replies wait in the queue.
#[tokio::test]
async fn connection_progresses_without_the_application() {
    let rep = Socket::new(SocketType::Rep);
    let req = Socket::new(SocketType::Req);
    bind_connect(&rep, &req, "tcp", "noapp").await;
    req.send("ping").await.expect("send");
    // Neither side's application is in recv for a while: the tasks move the request across.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rep.try_recv().expect("request arrived via the task"), Message::from("ping"));
    rep.send("pong").await.expect("reply");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(req.try_recv().expect("reply arrived via the task"), Message::from("pong"));
}
