//! Socket options libzmq users rely on, against libzmq peers, each scenario run with our socket
//! and, as the reference, with a libzmq socket in its place:
//!
//! - REQ_CORRELATE + REQ_RELAXED against a libzmq REP (which echoes the request-id envelope): a
//!   second request may go before the first is answered, and only its reply is taken. Without
//!   REQ_CORRELATE the stale reply is taken (libzmq does the same). A reply already queued when
//!   a new request begins is discarded (libzmq).
//! - CONFLATE on PULL and SUB against a libzmq PUSH / PUB: only the newest message is kept.
//! - INVERT_MATCHING on SUB against a libzmq PUB with ZMQ_INVERT_MATCHING.
//! - IMMEDIATE: a DEALER whose endpoint has no listener refuses to send (would block) instead of
//!   queueing; without it, it queues.
//! - CONNECT_TIMEOUT: a connect attempt that hangs (the listener's backlog is full) is given up
//!   and retried.

use std::time::Duration;

use interop_tests::{assert_frames, frames, ipc_endpoint, link, message, within, Transport, Z};
use zmtp::socket::MonitorEvent;
use zmtp::{Error, Options, Socket, SocketType};

interop_tests::over_tcp_and_ipc!(
    req_correlate_relaxed,
    req_relaxed_without_correlate,
    conflate_pull,
    conflate_sub,
    invert_matching_sub,
    immediate_refuses_without_connection,
    queues_without_immediate,
);

/// The socket under test: ours, or libzmq's in its place.
#[derive(Debug)]
enum Under {
    Ours(Socket),
    Zmq(Z),
}

impl Under {
    fn who(&self) -> &'static str {
        match self {
            Under::Ours(_) => "ours",
            Under::Zmq(_) => "libzmq",
        }
    }

    async fn send(&self, m: Vec<Vec<u8>>) {
        match self {
            Under::Ours(s) => interop_tests::send(s, m).await,
            Under::Zmq(z) => z.send(m).await,
        }
    }

    async fn recv(&self) -> Vec<Vec<u8>> {
        match self {
            Under::Ours(s) => interop_tests::recv(s).await,
            Under::Zmq(z) => z.recv().await,
        }
    }

    async fn try_recv(&self, ms: u64) -> Option<Vec<Vec<u8>>> {
        match self {
            Under::Ours(s) => interop_tests::try_recv(s, ms).await,
            Under::Zmq(z) => z.try_recv(ms as i64).await,
        }
    }

    /// Binds on `t` and has `peer` connect.
    async fn link(&self, peer: &Z, t: Transport, name: &str) {
        match self {
            Under::Ours(s) => {
                link(s, peer, true, t, name).await;
            }
            Under::Zmq(z) => {
                let ep = z.bind(t, name);
                peer.connect(&ep);
            }
        }
    }

    /// A send that does not wait: `Ok(true)` sent, `Ok(false)` would block.
    fn try_send(&self, m: Vec<Vec<u8>>) -> bool {
        match self {
            Under::Ours(s) => match s.try_send(message(m)).map_err(Error::from) {
                Ok(()) => true,
                Err(Error::WouldBlock) => false,
                Err(e) => panic!("our send: {e}"),
            },
            Under::Zmq(z) => match z.try_send(m) {
                Ok(()) => true,
                Err(zmq::Error::EAGAIN) => false,
                Err(e) => panic!("libzmq send: {e}"),
            },
        }
    }

    /// A blocking send given `ms` milliseconds: whether it went.
    async fn send_for(&self, m: Vec<Vec<u8>>, ms: u64) -> bool {
        match self {
            Under::Ours(s) => match tokio::time::timeout(Duration::from_millis(ms), s.send(message(m))).await {
                Ok(r) => {
                    r.expect("our send");
                    true
                }
                Err(_) => false,
            },
            Under::Zmq(z) => {
                let ms = i32::try_from(ms).expect("fits");
                let r = z
                    .run_blocking(move |s| {
                        s.set_sndtimeo(ms).expect("ZMQ_SNDTIMEO");
                        let r = s.send_multipart(m, 0);
                        s.set_sndtimeo(interop_tests::T_MS).expect("ZMQ_SNDTIMEO");
                        r
                    })
                    .await;
                match r {
                    Ok(()) => true,
                    Err(zmq::Error::EAGAIN) => false,
                    Err(e) => panic!("libzmq send: {e}"),
                }
            }
        }
    }
}

fn zmq_with(kind: zmq::SocketType, set: impl FnOnce(&zmq::Socket) -> zmq::Result<()>) -> Under {
    let z = Z::new(kind);
    z.with(set).expect("libzmq options");
    Under::Zmq(z)
}

// ---------------------------------------------------------------------------------------------
// REQ_CORRELATE, REQ_RELAXED

/// The libzmq REP answers `n` requests `[x]` with `[r-x]`.
async fn echo(rep: &Z, n: usize) {
    rep.run_blocking(move |s| {
        for _ in 0..n {
            let m = s.recv_multipart(0).expect("REP recv");
            let mut reply = b"r-".to_vec();
            reply.extend(&m[0]);
            s.send_multipart([reply], 0).expect("REP send");
        }
    })
    .await
}

/// The REQ sends `q1` and, without waiting for the reply, `q2`; the libzmq REP then answers both
/// in turn (`r-q1`, `r-q2`). Returns the reply the REQ's `recv` gives.
async fn two_requests(req: &Under, rep: &Z) -> Vec<Vec<u8>> {
    req.send(frames(&["q1"])).await;
    req.send(frames(&["q2"])).await;
    let ((), reply) = within("the replies", async { tokio::join!(echo(rep, 2), req.recv()) }).await;
    reply
}

/// With REQ_CORRELATE the REQ takes only the reply to its latest request, `r-q2`; the next round
/// trip gets its own reply.
async fn correlate_run(req: Under, t: Transport) {
    let who = req.who();
    let rep = Z::new(zmq::REP);
    req.link(&rep, t, "req-correlate").await;
    assert_frames(&two_requests(&req, &rep).await, &frames(&["r-q2"]));
    req.send(frames(&["q3"])).await;
    let ((), r3) = within("a third round trip", async { tokio::join!(echo(&rep, 1), req.recv()) }).await;
    assert_eq!(r3, frames(&["r-q3"]), "{who}");
}

async fn req_correlate_relaxed(t: Transport) {
    let z = zmq_with(zmq::REQ, |s| {
        s.set_req_correlate(true)?;
        s.set_req_relaxed(true)
    });
    correlate_run(z, t).await;
    let ours = Socket::with_options(SocketType::Req, Options::default().req_correlate(true).req_relaxed(true));
    correlate_run(Under::Ours(ours), t).await;
}

/// Without REQ_CORRELATE a relaxed REQ cannot tell the replies apart: it takes the first one
/// from its peer, `r-q1`, as the reply to `q2` — with libzmq and with ours.
async fn req_relaxed_without_correlate(t: Transport) {
    for req in [
        zmq_with(zmq::REQ, |s| s.set_req_relaxed(true)),
        Under::Ours(Socket::with_options(SocketType::Req, Options::default().req_relaxed(true))),
    ] {
        let rep = Z::new(zmq::REP);
        req.link(&rep, t, "req-relaxed").await;
        assert_eq!(two_requests(&req, &rep).await, frames(&["r-q1"]), "{}", req.who());
    }
}

/// A libzmq ROUTER server answers a (strict) REQ's `q1` twice, `r1` and `extra`; the REQ takes
/// `r1`. Once `extra` has had the time to arrive, the REQ sends `q2`, answered `r2`: libzmq's
/// REQ discards what is queued when a request begins (req.cpp, "Eat all currently available
/// messages"), so its `recv` gives `r2`.
async fn stale_reply_run(req: Under, t: Transport) {
    let who = req.who();
    let router = Z::new(zmq::ROUTER);
    req.link(&router, t, "req-stale").await;
    req.send(frames(&["q1"])).await;
    let q1 = router.recv().await;
    assert_eq!(q1[1..], frames(&["", "q1"]), "{who}");
    router.send(vec![q1[0].clone(), vec![], b"r1".to_vec()]).await;
    router.send(vec![q1[0].clone(), vec![], b"extra".to_vec()]).await;
    assert_eq!(req.recv().await, frames(&["r1"]), "{who}");
    // Only to let `extra` arrive: neither REQ can be asked whether it has.
    tokio::time::sleep(Duration::from_millis(200)).await;
    req.send(frames(&["q2"])).await;
    let q2 = router.recv().await;
    router.send(vec![q2[0].clone(), vec![], b"r2".to_vec()]).await;
    assert_eq!(req.recv().await, frames(&["r2"]), "{who}: the reply to q2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_discards_stale_reply_libzmq() {
    stale_reply_run(Under::Zmq(Z::new(zmq::REQ)), Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_discards_stale_reply_ours() {
    stale_reply_run(Under::Ours(Socket::new(SocketType::Req)), Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// CONFLATE

/// Messages sent in one burst to a conflating receiver.
const BURST: usize = 2000;

/// Reads until the last message of the burst: what was read must be in order, and much less
/// than the burst (each read takes the newest message, dropping those before it); nothing may
/// follow the last one.
async fn read_conflated(rx: &Under) {
    let who = rx.who();
    let mut seen = Vec::new();
    within(&format!("{who}: the last message"), async {
        loop {
            let m = rx.recv().await;
            let n: usize = String::from_utf8_lossy(&m[0]).parse().expect("a number");
            seen.push(n);
            if n == BURST - 1 {
                return;
            }
        }
    })
    .await;
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{who}: out of order: {seen:?}");
    assert!(seen.len() <= BURST / 2, "{who}: read {} of {BURST}: nothing was conflated", seen.len());
    assert_eq!(rx.try_recv(100).await, None, "{who}: a message after the newest");
}

async fn conflate_pull_run(pull: Under, t: Transport) {
    let push = Z::new(zmq::PUSH);
    push.with(|s| s.set_sndhwm(0)).expect("ZMQ_SNDHWM");
    pull.link(&push, t, "conflate-pull").await;
    push.run_blocking(|s| {
        for i in 0..BURST {
            s.send(i.to_string().as_bytes(), 0).expect("PUSH send");
        }
    })
    .await;
    read_conflated(&pull).await;
}

/// CONFLATE on a PULL fed by a libzmq PUSH.
async fn conflate_pull(t: Transport) {
    conflate_pull_run(zmq_with(zmq::PULL, |s| s.set_conflate(true)), t).await;
    conflate_pull_run(Under::Ours(Socket::with_options(SocketType::Pull, Options::default().conflate(true))), t).await;
}

async fn conflate_sub_run(sub: Under, t: Transport) {
    let publ = Z::new(zmq::PUB);
    publ.with(|s| s.set_sndhwm(0)).expect("ZMQ_SNDHWM");
    match &sub {
        Under::Ours(s) => s.subscribe("").expect("subscribe"),
        Under::Zmq(z) => z.with(|s| s.set_subscribe(b"")).expect("subscribe"),
    }
    sub.link(&publ, t, "conflate-sub").await;
    within("the subscription to take effect", async {
        loop {
            publ.try_send(frames(&["warm"])).expect("PUB never blocks");
            if sub.try_recv(50).await.is_some() {
                return;
            }
        }
    })
    .await;
    publ.run_blocking(|s| {
        for i in 0..BURST {
            s.send(i.to_string().as_bytes(), 0).expect("PUB send");
        }
    })
    .await;
    read_conflated(&sub).await;
}

/// CONFLATE on a SUB fed by a libzmq PUB.
async fn conflate_sub(t: Transport) {
    conflate_sub_run(zmq_with(zmq::SUB, |s| s.set_conflate(true)), t).await;
    conflate_sub_run(Under::Ours(Socket::with_options(SocketType::Sub, Options::default().conflate(true))), t).await;
}

// ---------------------------------------------------------------------------------------------
// INVERT_MATCHING

async fn invert_run(sub: Under, t: Transport) {
    let who = sub.who();
    let publ = Z::new(zmq::PUB);
    publ.set_invert_matching(true).expect("ZMQ_INVERT_MATCHING");
    match &sub {
        Under::Ours(s) => s.subscribe("a").expect("subscribe"),
        Under::Zmq(z) => z.with(|s| s.set_subscribe(b"a")).expect("subscribe"),
    }
    sub.link(&publ, t, "invert").await;
    // Until the subscription arrives the PUB sends everything, and the SUB filters.
    let first = within("a first message", async {
        loop {
            publ.try_send(frames(&["a", "warm"])).expect("PUB never blocks");
            publ.try_send(frames(&["b", "warm"])).expect("PUB never blocks");
            if let Some(m) = sub.try_recv(50).await {
                return m;
            }
        }
    })
    .await;
    assert_frames(&first, &frames(&["b", "warm"]));
    for topic in ["a", "ab", "c", "", "b", "a"] {
        publ.send(frames(&[topic, "end"])).await;
    }
    let mut got = Vec::new();
    while let Some(m) = sub.try_recv(200).await {
        if m[1] != b"warm" {
            got.push(m);
        }
    }
    assert_eq!(got, vec![frames(&["c", "end"]), frames(&["", "end"]), frames(&["b", "end"])], "{who}");
}

/// A SUB with INVERT_MATCHING subscribed to `a`, fed by a libzmq PUB with INVERT_MATCHING (both
/// ends need it): it gets exactly the messages whose topic does not start with `a`.
async fn invert_matching_sub(t: Transport) {
    let zsub = Z::new(zmq::SUB);
    zsub.set_invert_matching(true).expect("ZMQ_INVERT_MATCHING");
    invert_run(Under::Zmq(zsub), t).await;
    invert_run(Under::Ours(Socket::with_options(SocketType::Sub, Options::default().invert_matching(true))), t).await;
}

// ---------------------------------------------------------------------------------------------
// IMMEDIATE

/// An endpoint nothing listens on (yet).
fn unused_endpoint(t: Transport, name: &str) -> String {
    match t {
        Transport::Tcp => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
            format!("tcp://{}", l.local_addr().expect("local addr"))
        }
        Transport::Ipc => ipc_endpoint(name),
    }
}

async fn connect(dealer: &Under, ep: &str) {
    match dealer {
        Under::Ours(s) => s.connect(ep).await.expect("our connect"),
        Under::Zmq(z) => z.connect(ep),
    }
}

/// A DEALER with IMMEDIATE connects where nothing listens: sending would block (a blocking send
/// times out) rather than queue. Once a libzmq ROUTER binds there, sending works, and the ROUTER
/// gets only what was sent after.
async fn immediate_run(dealer: Under, t: Transport) {
    let who = dealer.who();
    let ep = unused_endpoint(t, "immediate");
    connect(&dealer, &ep).await;
    assert!(!dealer.try_send(frames(&["early"])), "{who}: a send with no connection went through");
    assert!(!dealer.send_for(frames(&["early-blocking"]), 200).await, "{who}: a blocking send with no connection");

    let router = Z::new(zmq::ROUTER);
    router.bind_exact(&ep);
    within("the connection to come up", async {
        while !dealer.try_send(frames(&["first"])) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_frames(&router.recv().await, &frames(&["d", "first"]));
    assert_eq!(router.try_recv(100).await, None, "{who}: a message sent before the connection was queued");
}

async fn immediate_refuses_without_connection(t: Transport) {
    immediate_run(
        zmq_with(zmq::DEALER, |s| {
            s.set_identity(b"d")?;
            s.set_immediate(true)
        }),
        t,
    )
    .await;
    immediate_run(
        Under::Ours(Socket::with_options(SocketType::Dealer, Options::default().routing_id("d").immediate(true))),
        t,
    )
    .await;
}

/// Without IMMEDIATE the same DEALER queues what it is given before the connection is up, and
/// the ROUTER gets it once it binds.
async fn queued_run(dealer: Under, t: Transport) {
    let who = dealer.who();
    let ep = unused_endpoint(t, "not-immediate");
    connect(&dealer, &ep).await;
    assert!(dealer.try_send(frames(&["early"])), "{who}: a send with no connection was refused");
    let router = Z::new(zmq::ROUTER);
    router.bind_exact(&ep);
    assert_frames(&router.recv().await, &frames(&["d", "early"]));
}

async fn queues_without_immediate(t: Transport) {
    queued_run(zmq_with(zmq::DEALER, |s| s.set_identity(b"d")), t).await;
    queued_run(Under::Ours(Socket::with_options(SocketType::Dealer, Options::default().routing_id("d"))), t).await;
}

// ---------------------------------------------------------------------------------------------
// CONNECT_TIMEOUT

/// A TCP listener that never accepts, with a backlog of zero filled by one connection: Linux
/// drops further SYNs, so a connect to it hangs (for minutes, with SYN retries). Returns the
/// endpoint and what must stay alive.
fn hanging_endpoint() -> (String, (tokio::net::TcpListener, Vec<std::net::TcpStream>)) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("local addr");
    let mut fillers = Vec::new();
    // The first connection fills the accept queue; the ones after it must hang.
    for _ in 0..3 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return (format!("tcp://{addr}"), (listener, fillers));
            }
            Err(e) => panic!("filler connect: {e}"),
        }
    }
    panic!("the listener's backlog does not fill up: cannot make a connect hang here");
}

/// Our DEALER with connect_timeout 200 ms: ConnectDelayed, then ConnectRetried (timed out) long
/// before the kernel would give up, and again after each retry interval. libzmq with
/// ZMQ_CONNECT_TIMEOUT reports CONNECT_DELAYED then CONNECT_RETRIED alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_gives_up_and_retries() {
    let (ep, _keep) = hanging_endpoint();

    let z = Z::new(zmq::DEALER);
    z.with(|s| s.set_connect_timeout(200)).expect("ZMQ_CONNECT_TIMEOUT");
    let zmon = z.monitor("connect-timeout", zmq::SocketEvent::ALL);
    let started = tokio::time::Instant::now();
    z.connect(&ep);
    let mut theirs = Vec::new();
    within("libzmq to give up a connect", async {
        while theirs.iter().filter(|e| **e == zmq::SocketEvent::CONNECT_RETRIED).count() < 2 {
            theirs.extend(zmon.events(50).await);
        }
    })
    .await;
    assert_eq!(theirs.first(), Some(&zmq::SocketEvent::CONNECT_DELAYED), "libzmq: {theirs:?}");
    assert!(!theirs.contains(&zmq::SocketEvent::CONNECTED), "libzmq connected: {theirs:?}");
    let zmq_took = started.elapsed();

    let ours =
        Socket::with_options(SocketType::Dealer, Options::default().connect_timeout(Some(Duration::from_millis(200))));
    let mut monitor = ours.monitor();
    let started = tokio::time::Instant::now();
    ours.connect(&ep).await.expect("connect");
    let mut events = Vec::new();
    within("our socket to give up a connect", async {
        while events.iter().filter(|e| matches!(e, MonitorEvent::ConnectRetried { .. })).count() < 2 {
            events.push(monitor.recv().await.expect("monitor"));
        }
    })
    .await;
    let took = started.elapsed();
    assert!(matches!(events.first(), Some(MonitorEvent::ConnectDelayed { .. })), "ours: {events:?}");
    assert!(!events.iter().any(|e| matches!(e, MonitorEvent::Connected { .. })), "ours connected: {events:?}");
    let Some(MonitorEvent::ConnectRetried { error, .. }) =
        events.iter().find(|e| matches!(e, MonitorEvent::ConnectRetried { .. }))
    else {
        unreachable!()
    };
    assert!(error.contains("timed out"), "ours: why the connect was given up: {error}");
    // Two attempts of 200 ms and a retry interval: well under the kernel's SYN retries (seconds).
    assert!(took < Duration::from_secs(3), "ours took {took:?} for two attempts (libzmq {zmq_took:?})");
}
