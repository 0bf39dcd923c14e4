//! `zmtp::proxy` and `zmtp::proxy_steerable` between libzmq peers:
//!
//! - a ROUTER / DEALER request queue between libzmq REQ clients and a libzmq REP worker;
//! - the same with a capture socket (our PUSH) that a libzmq PULL reads;
//! - an XSUB / XPUB forwarder between a libzmq publisher and libzmq subscribers;
//! - the steerable proxy driven by a libzmq PAIR (PAUSE, RESUME, STATISTICS, TERMINATE), run
//!   against libzmq's own `zmq_proxy_steerable` as the reference: the same script must give the
//!   same replies, STATISTICS being eight frames of one native-endian uint64 each.

use interop_tests::{assert_frames, frames, within, Transport, Z};
use zmtp::{Socket, SocketType};

interop_tests::over_tcp_and_ipc!(request_queue, request_queue_with_capture, pubsub_forwarder);

/// Our ROUTER frontend and DEALER backend, both bound, with a proxy between them in a task of its
/// own (aborted, which closes the sockets, when the handle is dropped).
struct Queue {
    frontend: String,
    backend: String,
    capture: Option<String>,
    task: tokio::task::JoinHandle<Result<(), zmtp::Error>>,
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a request queue; with `capture`, its capture socket is our PUSH, bound.
async fn queue(t: Transport, capture: bool) -> Queue {
    let front = Socket::new(SocketType::Router);
    let back = Socket::new(SocketType::Dealer);
    let frontend = front.bind(&t.bind_endpoint("proxy-front")).await.expect("bind frontend");
    let backend = back.bind(&t.bind_endpoint("proxy-back")).await.expect("bind backend");
    let (cap, capture) = if capture {
        let cap = Socket::new(SocketType::Push);
        let ep = cap.bind(&t.bind_endpoint("proxy-capture")).await.expect("bind capture");
        (Some(cap), Some(ep))
    } else {
        (None, None)
    };
    let task = tokio::spawn(async move { zmtp::proxy(&front, &back, cap.as_ref()).await });
    Queue { frontend, backend, capture, task }
}

/// A libzmq REP worker that answers each request `[body..]` with `["re", body..]`, `n` times.
async fn worker(rep: &Z, n: usize) {
    rep.run_blocking(move |s| {
        for _ in 0..n {
            let mut m = s.recv_multipart(0).expect("worker recv");
            m.insert(0, b"re".to_vec());
            s.send_multipart(m, 0).expect("worker send");
        }
    })
    .await
}

/// Two libzmq REQ clients and a libzmq REP worker through our queue: round trips with multipart
/// requests (an empty frame in the body too), each reply back to the client that asked, and
/// requests from both clients outstanding at once.
async fn request_queue(t: Transport) {
    let q = queue(t, false).await;
    let rep = Z::new(zmq::REP);
    rep.connect(&q.backend);
    let a = Z::new(zmq::REQ);
    let b = Z::new(zmq::REQ);
    a.connect(&q.frontend);
    b.connect(&q.frontend);

    for i in 0..5 {
        let request = frames(&["hello", "", &i.to_string()]);
        a.send(request.clone()).await;
        let ((), reply) = within("a round trip", async { tokio::join!(worker(&rep, 1), a.recv()) }).await;
        let mut want = vec![b"re".to_vec()];
        want.extend(request);
        assert_frames(&reply, &want);
    }

    a.send(frames(&["from a"])).await;
    b.send(frames(&["from b"])).await;
    let ((), ra, rb) = within("both round trips", async { tokio::join!(worker(&rep, 2), a.recv(), b.recv()) }).await;
    assert_frames(&ra, &frames(&["re", "from a"]));
    assert_frames(&rb, &frames(&["re", "from b"]));
}

/// The queue with a capture socket: the libzmq PULL reading it sees every request as the
/// frontend received it (`[routing id, "", body..]`) and every reply as the backend received it
/// (the same envelope), in order.
async fn request_queue_with_capture(t: Transport) {
    let q = queue(t, true).await;
    let capture = Z::new(zmq::PULL);
    capture.connect(q.capture.as_deref().expect("capture endpoint"));
    let rep = Z::new(zmq::REP);
    rep.connect(&q.backend);
    let req = Z::new(zmq::REQ);
    req.connect(&q.frontend);

    for i in 0..3 {
        let body = frames(&["q", &i.to_string()]);
        req.send(body.clone()).await;
        let ((), _) = within("a round trip", async { tokio::join!(worker(&rep, 1), req.recv()) }).await;

        let request = capture.recv().await;
        let reply = capture.recv().await;
        assert_eq!(request.len(), 4, "captured request {request:?}");
        assert_eq!(request[0].len(), 5, "our ROUTER's generated routing id: {request:?}");
        assert_frames(&request[1..], &[vec![], body[0].clone(), body[1].clone()]);
        assert_eq!(reply[0], request[0], "the reply's envelope names the same client");
        assert_frames(&reply[1..], &[vec![], b"re".to_vec(), body[0].clone(), body[1].clone()]);
    }
    assert_eq!(capture.try_recv(100).await, None, "captured more than the traffic");
}

/// libzmq XPUB (the publisher, so that the test sees the subscriptions arrive) → our XSUB | proxy |
/// our XPUB → libzmq SUBs: subscriptions and cancellations travel up, publications down, each
/// subscriber getting only its topic.
async fn pubsub_forwarder(t: Transport) {
    let publisher = Z::new(zmq::XPUB);
    let upstream = publisher.bind(t, "fwd-up");
    let xsub = Socket::new(SocketType::XSub);
    let xpub = Socket::new(SocketType::XPub);
    xsub.connect(&upstream).await.expect("connect upstream");
    let downstream = xpub.bind(&t.bind_endpoint("fwd-down")).await.expect("bind downstream");
    let task = tokio::spawn(async move { zmtp::proxy(&xsub, &xpub, None).await });

    let t_sub = Z::new(zmq::SUB);
    t_sub.with(|s| s.set_subscribe(b"t")).expect("subscribe");
    t_sub.connect(&downstream);
    // A bound libzmq socket attaches a connection's pipe (and sends the subscriptions) only when
    // its application thread calls into it: poke it while waiting.
    let subscribed = within("the subscription to cross the proxy", async {
        loop {
            t_sub.with(|s| s.get_events()).expect("ZMQ_EVENTS");
            if let Some(m) = publisher.try_recv(50).await {
                return m;
            }
        }
    })
    .await;
    assert_frames(&subscribed, &[b"\x01t".to_vec()]);

    let u_sub = Z::new(zmq::SUB);
    u_sub.with(|s| s.set_subscribe(b"u")).expect("subscribe");
    u_sub.connect(&downstream);
    let subscribed = within("the second subscription", async {
        loop {
            u_sub.with(|s| s.get_events()).expect("ZMQ_EVENTS");
            if let Some(m) = publisher.try_recv(50).await {
                return m;
            }
        }
    })
    .await;
    assert_frames(&subscribed, &[b"\x01u".to_vec()]);

    // Both subscriptions are in place upstream and in our XPUB: nothing is lost from here on.
    publisher.send(frames(&["v", "nobody"])).await;
    publisher.send(frames(&["t", "1", ""])).await;
    publisher.send(frames(&["u", "2"])).await;
    publisher.send(frames(&["t", "3"])).await;
    assert_frames(&t_sub.recv().await, &frames(&["t", "1", ""]));
    assert_frames(&t_sub.recv().await, &frames(&["t", "3"]));
    assert_frames(&u_sub.recv().await, &frames(&["u", "2"]));
    assert_eq!(u_sub.try_recv(100).await, None, "the u subscriber got more than its topic");

    t_sub.with(|s| s.set_unsubscribe(b"t")).expect("unsubscribe");
    assert_frames(&publisher.recv().await, &[b"\x00t".to_vec()]);
    task.abort();
}

// ---------------------------------------------------------------------------------------------
// Steerable proxy: ours and libzmq's, driven by the same script

/// The eight STATISTICS counters: frontend messages in, bytes in, messages out, bytes out, then
/// the same for the backend.
type Stats = [u64; 8];

/// Decodes a STATISTICS reply: exactly eight frames of eight octets, native-endian.
#[track_caller]
fn stats(reply: &[Vec<u8>]) -> Stats {
    assert_eq!(reply.len(), 8, "STATISTICS reply: {reply:?}");
    let mut out = [0u64; 8];
    for (n, f) in out.iter_mut().zip(reply) {
        *n = u64::from_ne_bytes(f.as_slice().try_into().unwrap_or_else(|_| panic!("a counter of {} octets", f.len())));
    }
    out
}

/// Endpoints of a steerable proxy whose frontend is a PULL, backend a PUSH and control a PAIR,
/// all bound; with a capture PUSH, bound, if asked for.
#[derive(Debug)]
struct Steerable {
    frontend: String,
    backend: String,
    control: String,
    capture: Option<String>,
}

/// What the script saw: each STATISTICS reply, and (ours) what the proxy returned.
#[derive(Debug, PartialEq, Eq)]
struct Script {
    replies: Vec<Stats>,
}

/// Starts our steerable proxy; the task returns its final statistics.
async fn ours_steerable(capture: bool) -> (Steerable, tokio::task::JoinHandle<Stats>) {
    let ep = || Transport::Tcp.bind_endpoint("steer");
    let front = Socket::new(SocketType::Pull);
    let back = Socket::new(SocketType::Push);
    let control = Socket::new(SocketType::Pair);
    let cap = capture.then(|| Socket::new(SocketType::Push));
    let frontend = front.bind(&ep()).await.expect("bind");
    let backend = back.bind(&ep()).await.expect("bind");
    let control_ep = control.bind(&ep()).await.expect("bind");
    let capture_ep = match &cap {
        Some(c) => Some(c.bind(&ep()).await.expect("bind")),
        None => None,
    };
    let task = tokio::spawn(async move {
        let s = zmtp::proxy_steerable(&front, &back, cap.as_ref(), &control).await.expect("our proxy");
        [
            s.frontend_msgs_in,
            s.frontend_bytes_in,
            s.frontend_msgs_out,
            s.frontend_bytes_out,
            s.backend_msgs_in,
            s.backend_bytes_in,
            s.backend_msgs_out,
            s.backend_bytes_out,
        ]
    });
    (Steerable { frontend, backend, control: control_ep, capture: capture_ep }, task)
}

/// Starts libzmq's `zmq_proxy_steerable` on a thread of its own; the thread ends on TERMINATE.
fn zmq_steerable(capture: bool) -> (Steerable, std::thread::JoinHandle<()>) {
    let ctx = zmq::Context::new();
    let sock = |kind| {
        let s = ctx.socket(kind).expect("zmq_socket");
        s.set_linger(1000).expect("ZMQ_LINGER");
        s.bind("tcp://127.0.0.1:*").expect("libzmq bind");
        let ep = s.get_last_endpoint().expect("ZMQ_LAST_ENDPOINT").expect("UTF-8");
        (s, ep)
    };
    let (mut front, frontend) = sock(zmq::PULL);
    let (mut back, backend) = sock(zmq::PUSH);
    let (mut control, control_ep) = sock(zmq::PAIR);
    let (cap, capture_ep) = if capture {
        let (s, ep) = sock(zmq::PUSH);
        (Some(s), Some(ep))
    } else {
        (None, None)
    };
    let thread = std::thread::spawn(move || {
        let r = match cap {
            Some(mut c) => zmq::proxy_steerable_with_capture(&mut front, &mut back, &mut c, &mut control),
            None => zmq::proxy_steerable(&mut front, &mut back, &mut control),
        };
        r.expect("libzmq proxy");
    });
    (Steerable { frontend, backend, control: control_ep, capture: capture_ep }, thread)
}

/// Asks for STATISTICS and records the reply.
async fn statistics(pair: &Z, replies: &mut Vec<Stats>) {
    pair.send(frames(&["STATISTICS"])).await;
    replies.push(stats(&pair.recv().await));
}

/// The script: a libzmq PUSH feeds the frontend, a libzmq PULL reads the backend, a libzmq PAIR
/// steers. A message goes through; PAUSE holds the next one back (STATISTICS still answers, and
/// its reply shows nothing read); RESUME lets it through; TERMINATE ends the proxy.
async fn steer(p: &Steerable) -> Script {
    let push = Z::new(zmq::PUSH);
    let pull = Z::new(zmq::PULL);
    let pair = Z::new(zmq::PAIR);
    push.connect(&p.frontend);
    pull.connect(&p.backend);
    pair.connect(&p.control);
    let mut replies = Vec::new();

    push.send(frames(&["m1", "xyz"])).await;
    assert_frames(&pull.recv().await, &frames(&["m1", "xyz"]));
    statistics(&pair, &mut replies).await;

    pair.send(frames(&["PAUSE"])).await;
    // Commands are handled in order: once this reply is in, the proxy is paused.
    statistics(&pair, &mut replies).await;
    push.send(frames(&["m2"])).await;
    assert_eq!(pull.try_recv(300).await, None, "a paused proxy forwarded a message");
    statistics(&pair, &mut replies).await;

    pair.send(frames(&["RESUME"])).await;
    assert_frames(&pull.recv().await, &frames(&["m2"]));
    statistics(&pair, &mut replies).await;
    pair.send(frames(&["TERMINATE"])).await;
    Script { replies }
}

/// What both proxies must answer: after m1 (two frames, five octets) frontend in 1/5 and backend
/// out 1/5; the same while paused with m2 waiting; then 2/7 once m2 (two octets) is through.
const EXPECTED: [Stats; 4] =
    [[1, 5, 0, 0, 0, 0, 1, 5], [1, 5, 0, 0, 0, 0, 1, 5], [1, 5, 0, 0, 0, 0, 1, 5], [2, 7, 0, 0, 0, 0, 2, 7]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steerable_like_libzmq() {
    let (endpoints, thread) = zmq_steerable(false);
    let reference = steer(&endpoints).await;
    within("libzmq's proxy to terminate", tokio::task::spawn_blocking(move || thread.join()))
        .await
        .expect("join")
        .expect("libzmq proxy thread");
    assert_eq!(reference.replies, EXPECTED, "libzmq's STATISTICS replies");

    let (endpoints, task) = ours_steerable(false).await;
    let ours = steer(&endpoints).await;
    let last = within("our proxy to terminate", task).await.expect("our proxy task");
    assert_eq!(ours, reference, "our STATISTICS replies against libzmq's");
    assert_eq!(last, EXPECTED[3], "the statistics our proxy returns on TERMINATE");
}

/// Runs the script with a capture socket and returns everything a libzmq PULL read from it.
async fn captured(p: &Steerable) -> Vec<Vec<Vec<u8>>> {
    let capture = Z::new(zmq::PULL);
    capture.connect(p.capture.as_deref().expect("capture endpoint"));
    steer(p).await;
    let mut seen = Vec::new();
    while let Some(m) = capture.try_recv(300).await {
        seen.push(m);
    }
    seen
}

/// What libzmq 4.3.4's steerable proxy copies to its capture socket: the messages it forwards
/// and, unlike ours, the control commands too.
fn expected_capture() -> Vec<Vec<Vec<u8>>> {
    [
        &["m1", "xyz"][..],
        &["STATISTICS"],
        &["PAUSE"],
        &["STATISTICS"],
        &["STATISTICS"],
        &["RESUME"],
        &["m2"],
        &["STATISTICS"],
        &["TERMINATE"],
    ]
    .iter()
    .map(|m| frames(m))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steerable_capture_libzmq_reference() {
    let (endpoints, thread) = zmq_steerable(true);
    let seen = captured(&endpoints).await;
    within("libzmq's proxy to terminate", tokio::task::spawn_blocking(move || thread.join()))
        .await
        .expect("join")
        .expect("libzmq proxy thread");
    assert_eq!(seen, expected_capture());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steerable_capture_like_libzmq() {
    let (endpoints, task) = ours_steerable(true).await;
    let seen = captured(&endpoints).await;
    within("our proxy to terminate", task).await.expect("our proxy task");
    assert_eq!(seen, expected_capture());
}

/// Our steerable proxy with capture forwards and captures every message (the control commands
/// aside, see `steerable_capture_like_libzmq`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steerable_capture_sees_every_message() {
    let (endpoints, task) = ours_steerable(true).await;
    let seen = captured(&endpoints).await;
    within("our proxy to terminate", task).await.expect("our proxy task");
    let data: Vec<_> = seen.into_iter().filter(|m| m[0].starts_with(b"m")).collect();
    assert_eq!(data, vec![frames(&["m1", "xyz"]), frames(&["m2"])]);
}
