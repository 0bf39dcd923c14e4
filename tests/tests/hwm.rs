//! High-water marks at the mark, for each pattern, against libzmq — and, in the same test, the
//! same scenario with a libzmq socket in our socket's place (the reference run), so that both are
//! held to the same expectations:
//!
//! - PUB: a subscriber that does not read loses messages while a subscriber that keeps up gets
//!   every one; what the slow one gets once it reads is bounded by the marks plus buffers.
//! - PUSH, DEALER, REQ (relaxed): sending to a peer that does not read stops after a bounded
//!   number of messages (our `try_send` gives `WouldBlock`, libzmq's ZMQ_DONTWAIT gives EAGAIN; a
//!   blocking send waits), and nothing accepted is lost.
//! - ROUTER: drops at the mark silently, like PUB (a fast peer gets everything, a slow one a first
//!   few); with ROUTER_MANDATORY the send fails instead (libzmq 4.3.4: EAGAIN for a full pipe —
//!   and a blocking send waits —, EHOSTUNREACH only for an unknown or closed one).
//! - REQ sends without waiting (libzmq: ZMQ_DONTWAIT on a REQ).
//!
//! Both marks are [`HWM`] and messages are [`SIZE`] octets, so that socket and kernel buffers add
//! only a few messages to what the marks hold. Counts are compared by order of magnitude, never
//! exactly, and nothing depends on timing except the "stalled" detection in [`fill`], which can
//! only make a count smaller.

use std::time::Duration;

use interop_tests::{message, Transport, T_MS, Z};
use zmtp::{Error, Options, Socket, SocketType};

interop_tests::over_tcp_and_ipc!(
    pub_drops_for_slow_subscriber,
    push_stops_at_the_mark,
    dealer_stops_at_the_mark,
    req_stops_at_the_mark,
    router_drops_at_the_mark,
    router_mandatory_at_the_mark_libzmq,
);

mod router_mandatory_at_the_mark_ours {
    use interop_tests::Transport::{Ipc, Tcp};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp() {
        super::router_mandatory_at_the_mark_ours(Tcp).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ipc() {
        super::router_mandatory_at_the_mark_ours(Ipc).await
    }
}

/// SNDHWM and RCVHWM of every socket in these tests.
const HWM: usize = 10;
/// Size of a flood message.
const SIZE: usize = 64 << 10;
/// Messages offered to a peer that does not read, for the patterns that drop.
const FLOOD: usize = 600;
/// A sender that never blocks within this many messages has no high-water mark.
const NEVER_BLOCKS: usize = 2000;
/// How long a sender must stay at the mark to count as stopped (see [`fill`]).
const STALL: Duration = Duration::from_millis(500);

/// A flood message: a tag frame and a [`SIZE`]-octet body starting with its sequence number.
fn data(seq: usize) -> Vec<Vec<u8>> {
    let mut body = vec![(seq % 251) as u8; SIZE];
    body[..4].copy_from_slice(&(seq as u32).to_be_bytes());
    vec![b"d".to_vec(), body]
}

/// The sequence number of a flood message, or `None` for anything else (warm-up, end markers).
fn seq_of(m: &[Vec<u8>]) -> Option<usize> {
    match m {
        [tag, body] if tag == b"d" && body.len() == SIZE => {
            Some(u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize)
        }
        _ => None,
    }
}

/// What one send attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Ok,
    /// Ours: `Error::WouldBlock`; libzmq: EAGAIN.
    WouldBlock,
    /// Ours: `Error::HostUnreachable`; libzmq: EHOSTUNREACH.
    Unreachable,
}

fn ours_outcome(r: Result<(), impl Into<Error>>) -> Sent {
    match r.map_err(Into::into) {
        Ok(()) => Sent::Ok,
        Err(Error::WouldBlock) => Sent::WouldBlock,
        Err(Error::HostUnreachable) => Sent::Unreachable,
        Err(e) => panic!("our send failed: {e}"),
    }
}

fn zmq_outcome(r: zmq::Result<()>) -> Sent {
    match r {
        Ok(()) => Sent::Ok,
        Err(zmq::Error::EAGAIN) => Sent::WouldBlock,
        Err(zmq::Error::EHOSTUNREACH) => Sent::Unreachable,
        Err(e) => panic!("libzmq send failed: {e}"),
    }
}

/// The socket under test: ours, or libzmq's in its place for the reference run.
#[derive(Debug)]
enum Under {
    Ours(Socket),
    Zmq(Z),
}

impl Under {
    /// Our socket of `kind` with both marks at [`HWM`] and `options` on top.
    fn ours(kind: SocketType, options: impl FnOnce(Options) -> Options) -> Under {
        Under::Ours(Socket::with_options(kind, options(Options::default().hwm(HWM))))
    }

    /// A libzmq socket of `kind` with both marks at [`HWM`].
    fn zmq(kind: zmq::SocketType) -> Under {
        Under::Zmq(peer(kind))
    }

    fn who(&self) -> &'static str {
        match self {
            Under::Ours(_) => "ours",
            Under::Zmq(_) => "libzmq",
        }
    }

    async fn bind(&self, t: Transport, name: &str) -> String {
        match self {
            Under::Ours(s) => s.bind(&t.bind_endpoint(name)).await.expect("our bind"),
            Under::Zmq(z) => z.bind(t, name),
        }
    }

    /// A send that does not wait: our `try_send` (for REQ, whose `try_send` is not supported, a
    /// `send` polled once), libzmq's ZMQ_DONTWAIT.
    async fn try_send(&self, frames: Vec<Vec<u8>>) -> Sent {
        match self {
            Under::Ours(s) if s.socket_type() == SocketType::Req => {
                match tokio::time::timeout(Duration::ZERO, s.send(message(frames))).await {
                    Ok(r) => ours_outcome(r),
                    Err(_) => Sent::WouldBlock,
                }
            }
            Under::Ours(s) => ours_outcome(s.try_send(message(frames))),
            Under::Zmq(z) => zmq_outcome(z.try_send(frames)),
        }
    }

    /// A blocking send given `ms` milliseconds: ours under a deadline, libzmq with ZMQ_SNDTIMEO.
    async fn send_for(&self, frames: Vec<Vec<u8>>, ms: u64) -> Sent {
        match self {
            Under::Ours(s) => match tokio::time::timeout(Duration::from_millis(ms), s.send(message(frames))).await {
                Ok(r) => ours_outcome(r),
                Err(_) => Sent::WouldBlock,
            },
            Under::Zmq(z) => {
                let ms = i32::try_from(ms).expect("timeout fits");
                zmq_outcome(
                    z.run_blocking(move |s| {
                        s.set_sndtimeo(ms).expect("ZMQ_SNDTIMEO");
                        let r = s.send_multipart(frames, 0);
                        s.set_sndtimeo(T_MS).expect("ZMQ_SNDTIMEO");
                        r
                    })
                    .await,
                )
            }
        }
    }

    /// libzmq learns that a peer has read from a pipe through a command to the socket, processed
    /// lazily by its send calls (at most once a millisecond or so): until then it counts the pipe
    /// as fuller than it is, and a PUB drops for a subscriber that keeps up. ZMQ_EVENTS processes
    /// them at once. Ours knows at once.
    fn process_commands(&self) {
        if let Under::Zmq(z) = self {
            z.with(|s| s.get_events()).expect("ZMQ_EVENTS");
        }
    }

    /// A send that must succeed within [`interop_tests::T`].
    async fn send(&self, frames: Vec<Vec<u8>>) {
        let r = self.send_for(frames, u64::try_from(T_MS).expect("positive")).await;
        assert_eq!(r, Sent::Ok, "{} send", self.who());
    }
}

/// A libzmq peer of `kind` with both marks at [`HWM`].
fn peer(kind: zmq::SocketType) -> Z {
    let z = Z::new(kind);
    z.with(|s| {
        s.set_sndhwm(HWM as i32)?;
        s.set_rcvhwm(HWM as i32)
    })
    .expect("libzmq HWM");
    z
}

/// Sends flood messages `0..` (made by `make`) with [`Under::try_send`] until the sender has been at its mark for
/// [`STALL`] (it may take messages again meanwhile as its connection drains into the kernel).
/// Returns how many it took and how the last attempt failed. Panics if it took [`NEVER_BLOCKS`].
async fn fill(under: &Under, make: impl Fn(usize) -> Vec<Vec<u8>>) -> (usize, Sent) {
    let mut sent = 0;
    let mut stalled = None;
    loop {
        match under.try_send(make(sent)).await {
            Sent::Ok => {
                sent += 1;
                stalled = None;
                assert!(sent < NEVER_BLOCKS, "{}: {sent} messages taken without reaching a mark", under.who());
            }
            refused => {
                let since = *stalled.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= STALL {
                    return (sent, refused);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Reads everything `z` has for us until an `end` marker, while `resend_end` keeps sending the
/// marker (it may be dropped while the queues are full). Returns the flood sequence numbers read.
async fn read_until_end<F: std::future::Future<Output = ()>>(
    z: &Z,
    strip: usize,
    resend_end: impl Fn() -> F,
) -> Vec<usize> {
    let reader = z.run_blocking(move |s| {
        let mut seqs = Vec::new();
        loop {
            let m = s.recv_multipart(0).expect("libzmq recv (timed out?)");
            let m = &m[strip..];
            if m == [b"end".to_vec()] {
                return seqs;
            }
            if let Some(seq) = seq_of(m) {
                seqs.push(seq);
            }
        }
    });
    tokio::pin!(reader);
    interop_tests::within("the end marker", async {
        loop {
            resend_end().await;
            tokio::select! {
                seqs = &mut reader => return seqs,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    })
    .await
}

#[track_caller]
fn assert_increasing(who: &str, seqs: &[usize]) {
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{who}: messages reordered or duplicated: {seqs:?}");
}

/// Whether two counts of messages held at a mark are of the same order of magnitude (within 4×,
/// with [`HWM`] of slack for small counts).
fn same_order(a: usize, b: usize) -> bool {
    a <= 4 * b + HWM && b <= 4 * a + HWM
}

// ---------------------------------------------------------------------------------------------
// PUB and ROUTER: a fast and a slow peer

/// Sends `frames` to both peers: a PUB publishes it once, a ROUTER sends it to `fast` and to
/// `slow`. Neither may refuse.
async fn to_both(sender: &Under, frames: Vec<Vec<u8>>) {
    let routed = match sender {
        Under::Ours(s) => s.socket_type() == SocketType::Router,
        Under::Zmq(z) => z.with(|s| s.get_socket_type()).expect("ZMQ_TYPE") == zmq::ROUTER,
    };
    if routed {
        for id in [&b"fast"[..], b"slow"] {
            let mut m = vec![id.to_vec()];
            m.extend(frames.iter().cloned());
            assert_eq!(sender.try_send(m).await, Sent::Ok, "{}: a ROUTER never waits", sender.who());
        }
    } else {
        sender.send(frames).await;
    }
}

/// The sender (PUB or ROUTER) has a fast peer, which reads in step with it, and a slow one, which
/// reads nothing until the flood is over. The sender sends [`FLOOD`] messages to both in bursts
/// of half the mark, each burst only once the fast peer has the previous one (and the sender has
/// heard so, see [`Under::process_commands`]), so that both implementations' connections have
/// the time to fill whatever buffers they have. The fast peer must get every message; returns
/// what the slow one gets once it reads: a first few, in order.
async fn fast_and_slow(sender: &Under, fast: &Z, slow: &Z) -> Vec<usize> {
    let who = sender.who();
    let burst = HWM / 2;
    let mut next = 0;
    while next < FLOOD {
        sender.process_commands();
        for seq in next..next + burst {
            to_both(sender, data(seq)).await;
        }
        for seq in next..next + burst {
            let got = loop {
                let m = fast.recv().await;
                if let Some(s) = seq_of(&m) {
                    break s;
                }
            };
            assert_eq!(got, seq, "{who}: the fast peer lost or reordered a message");
        }
        next += burst;
    }
    let slow_seqs = read_until_end(slow, 0, || to_both(sender, vec![b"end".to_vec()])).await;
    assert_increasing(who, &slow_seqs);
    slow_seqs
}

/// Checks what the slow peer got with ours and with libzmq's: the first message and at least a
/// mark's worth, at most half of the flood, and as many with ours as with libzmq give or take
/// buffers.
fn check_slow_peer(what: &str, reference: &[usize], ours: &[usize]) {
    eprintln!("{what}: the slow peer got {} (libzmq) and {} (ours) of {FLOOD}", reference.len(), ours.len());
    for (who, seqs) in [("libzmq", reference), ("ours", ours)] {
        let n = seqs.len();
        assert!(n >= HWM, "{what}, {who}: the slow peer got only {n} messages: {seqs:?}");
        assert!(n <= FLOOD / 2, "{what}, {who}: the slow peer got {n} of {FLOOD}: nothing was dropped");
        assert_eq!(seqs.first(), Some(&0), "{what}, {who}: the first message did not reach the slow peer");
    }
    assert!(
        same_order(ours.len(), reference.len()),
        "{what}: the slow peer got {} messages with ours, {} with libzmq's",
        ours.len(),
        reference.len()
    );
}

/// A PUB with two libzmq SUBs.
async fn pub_run(publ: Under, t: Transport) -> Vec<usize> {
    let ep = publ.bind(t, "hwm-pub").await;
    // Only the slow subscriber's marks matter; the fast one never holds more than a burst.
    let fast = Z::new(zmq::SUB);
    let slow = peer(zmq::SUB);
    for z in [&fast, &slow] {
        z.with(|s| s.set_subscribe(b"")).expect("subscribe");
        z.connect(&ep);
    }
    // Both subscriptions reach the PUB asynchronously: publish until both subscribers hear.
    interop_tests::within("both subscriptions to take effect", async {
        let (mut fast_in, mut slow_in) = (false, false);
        while !(fast_in && slow_in) {
            publ.send(vec![b"warm".to_vec()]).await;
            fast_in |= fast.try_recv(20).await.is_some();
            slow_in |= slow.try_recv(20).await.is_some();
        }
    })
    .await;
    fast_and_slow(&publ, &fast, &slow).await
}

/// Our PUB and libzmq's, each with a fast and a slow libzmq SUB: the fast one gets all [`FLOOD`]
/// messages; the slow one gets the first few, then loses the rest.
async fn pub_drops_for_slow_subscriber(t: Transport) {
    let reference = pub_run(Under::zmq(zmq::PUB), t).await;
    let ours = pub_run(Under::ours(SocketType::Pub, |o| o), t).await;
    check_slow_peer("PUB", &reference, &ours);
}

/// A ROUTER with two libzmq DEALERs, `fast` and `slow`.
async fn router_run(router: Under, t: Transport) -> Vec<usize> {
    let ep = router.bind(t, "hwm-router").await;
    let fast = Z::new(zmq::DEALER);
    fast.with(|s| s.set_identity(b"fast")).expect("ZMQ_ROUTING_ID");
    let slow = dealer_d(b"slow");
    for z in [&fast, &slow] {
        z.connect(&ep);
        greet(&router, z).await;
    }
    fast_and_slow(&router, &fast, &slow).await
}

/// Our ROUTER and libzmq's, without ROUTER_MANDATORY, each with a fast and a slow libzmq DEALER:
/// every send succeeds; the fast one gets all [`FLOOD`] messages, the slow one the first few.
async fn router_drops_at_the_mark(t: Transport) {
    let reference = router_run(Under::zmq(zmq::ROUTER), t).await;
    let ours = router_run(Under::ours(SocketType::Router, |o| o), t).await;
    check_slow_peer("ROUTER", &reference, &ours);
}

// ---------------------------------------------------------------------------------------------
// PUSH, DEALER, REQ: the sender stops at the mark

/// How a blocking pattern behaved at the mark.
#[derive(Debug)]
struct BlockRun {
    /// Messages taken before the sender stopped.
    taken: usize,
}

/// `under` (PUSH, DEALER or REQ) bound, a libzmq `receiver` that reads nothing connected: the
/// sender takes a bounded number of messages, then refuses (would block) and a blocking send
/// waits; once the receiver reads, every message taken arrives, in order, and sending resumes.
/// `strip` is how many envelope frames the receiver sees before the message (ROUTER: the id; REQ
/// adds its delimiter).
async fn block_run(under: Under, receiver: zmq::SocketType, strip: usize, t: Transport) -> BlockRun {
    let who = under.who();
    let ep = under.bind(t, "hwm-block").await;
    let rx = peer(receiver);
    rx.connect(&ep);
    // The connection is up once a first message has gone through.
    under.send(vec![b"warm".to_vec()]).await;
    assert_eq!(rx.recv().await[strip..], [b"warm".to_vec()], "{who}: warm-up");

    let (taken, refused) = fill(&under, data).await;
    assert_eq!(refused, Sent::WouldBlock, "{who}: how the sender refused at the mark");
    assert!(taken >= HWM, "{who}: stopped after {taken} messages, below the mark");
    assert_eq!(under.send_for(data(taken), 200).await, Sent::WouldBlock, "{who}: a blocking send at the mark");

    let got = rx
        .run_blocking(move |s| {
            (0..taken)
                .map(|_| {
                    let m = s.recv_multipart(0).expect("libzmq recv (timed out?)");
                    seq_of(&m[strip..])
                })
                .collect::<Vec<_>>()
        })
        .await;
    let want: Vec<Option<usize>> = (0..taken).map(Some).collect();
    assert!(got == want, "{who}: not every message taken arrived in order: got {got:?}");
    // A request that timed out (REQ) or a message refused before (the others) is not sent;
    // sending works again.
    under.send(vec![b"after".to_vec()]).await;
    assert_eq!(rx.recv().await[strip..], [b"after".to_vec()], "{who}: sending after the peer read");
    BlockRun { taken }
}

fn compare_block_runs(reference: BlockRun, ours: BlockRun, what: &str) {
    eprintln!("{what}: stopped after {} (libzmq) and {} (ours) messages", reference.taken, ours.taken);
    assert!(
        same_order(ours.taken, reference.taken),
        "{what}: ours stopped after {} messages, libzmq after {}",
        ours.taken,
        reference.taken
    );
}

/// PUSH → libzmq PULL that does not read.
async fn push_stops_at_the_mark(t: Transport) {
    let reference = block_run(Under::zmq(zmq::PUSH), zmq::PULL, 0, t).await;
    let ours = block_run(Under::ours(SocketType::Push, |o| o), zmq::PULL, 0, t).await;
    compare_block_runs(reference, ours, "PUSH");
}

/// DEALER → libzmq ROUTER that does not read.
async fn dealer_stops_at_the_mark(t: Transport) {
    let reference = block_run(Under::zmq(zmq::DEALER), zmq::ROUTER, 1, t).await;
    let ours = block_run(Under::ours(SocketType::Dealer, |o| o), zmq::ROUTER, 1, t).await;
    compare_block_runs(reference, ours, "DEALER");
}

/// REQ with REQ_RELAXED (so that it may send again without a reply) → libzmq ROUTER that does not
/// read: each request is [delimiter, body] on the wire.
async fn req_stops_at_the_mark(t: Transport) {
    let zreq = Under::zmq(zmq::REQ);
    if let Under::Zmq(z) = &zreq {
        z.with(|s| s.set_req_relaxed(true)).expect("ZMQ_REQ_RELAXED");
    }
    let reference = block_run(zreq, zmq::ROUTER, 2, t).await;
    let ours = block_run(Under::ours(SocketType::Req, |o| o.req_relaxed(true)), zmq::ROUTER, 2, t).await;
    compare_block_runs(reference, ours, "REQ");
}

// ---------------------------------------------------------------------------------------------
// ROUTER_MANDATORY

/// A libzmq DEALER with routing id `id` and both marks at [`HWM`].
fn dealer_d(id: &[u8]) -> Z {
    let z = peer(zmq::DEALER);
    z.with(|s| s.set_identity(id)).expect("ZMQ_ROUTING_ID");
    z
}

/// The DEALER `dealer` says hello to `router`: then the ROUTER can route to it.
async fn greet(router: &Under, dealer: &Z) {
    dealer.send(vec![b"hello".to_vec()]).await;
    let got = match router {
        Under::Ours(s) => interop_tests::recv(s).await,
        Under::Zmq(z) => z.recv().await,
    };
    assert_eq!(got[1..], [b"hello".to_vec()], "{}: hello", router.who());
}

fn to_d(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut m = vec![b"d".to_vec()];
    m.extend(frames);
    m
}

/// With ROUTER_MANDATORY the ROUTER refuses at the mark with "would block" (libzmq: EAGAIN), and
/// a blocking send waits (with ZMQ_SNDTIMEO: EAGAIN); an unknown id is unreachable; nothing taken
/// is lost.
async fn router_mandatory_run(router: Under, t: Transport) -> usize {
    let who = router.who();
    let ep = router.bind(t, "hwm-mandatory").await;
    let dealer = dealer_d(b"d");
    dealer.connect(&ep);
    greet(&router, &dealer).await;
    let (taken, refused) = fill(&router, |seq| to_d(data(seq))).await;
    assert_eq!(refused, Sent::WouldBlock, "{who}: ROUTER_MANDATORY at the mark must say 'would block' (EAGAIN)");
    assert!(taken >= HWM, "{who}: stopped after {taken} messages, below the mark");
    assert_eq!(router.send_for(to_d(data(taken)), 200).await, Sent::WouldBlock, "{who}: a blocking send at the mark");
    assert_eq!(
        router.try_send(vec![b"nobody".to_vec(), b"x".to_vec()]).await,
        Sent::Unreachable,
        "{who}: an unknown id"
    );
    let got = dealer
        .run_blocking(move |s| {
            (0..taken).map(|_| seq_of(&s.recv_multipart(0).expect("libzmq recv (timed out?)"))).collect::<Vec<_>>()
        })
        .await;
    let want: Vec<Option<usize>> = (0..taken).map(Some).collect();
    assert!(got == want, "{who}: not every message taken arrived in order: got {got:?}");
    router.send(to_d(vec![b"after".to_vec()])).await;
    assert_eq!(dealer.recv().await, vec![b"after".to_vec()]);
    taken
}

async fn router_mandatory_at_the_mark_libzmq(t: Transport) {
    let router = Under::zmq(zmq::ROUTER);
    if let Under::Zmq(z) = &router {
        z.with(|s| s.set_router_mandatory(true)).expect("ZMQ_ROUTER_MANDATORY");
    }
    router_mandatory_run(router, t).await;
}

async fn router_mandatory_at_the_mark_ours(t: Transport) {
    let router = Under::zmq(zmq::ROUTER);
    if let Under::Zmq(z) = &router {
        z.with(|s| s.set_router_mandatory(true)).expect("ZMQ_ROUTER_MANDATORY");
    }
    let reference = router_mandatory_run(router, t).await;
    let ours = router_mandatory_run(Under::ours(SocketType::Router, |o| o.router_mandatory(true)), t).await;
    eprintln!("ROUTER_MANDATORY: stopped after {reference} (libzmq) and {ours} (ours) messages");
    assert!(same_order(ours, reference), "ours stopped after {ours} messages, libzmq after {reference}");
}

// ---------------------------------------------------------------------------------------------
// REQ without waiting

/// A REQ's first request, sent without waiting, to a libzmq REP: libzmq's ZMQ_DONTWAIT sends it
/// (it gives EAGAIN only at the mark, see `req_stops_at_the_mark`).
async fn req_dontwait_run(req: Under) {
    let rep = Z::new(zmq::REP);
    let ep = req.bind(Transport::Tcp, "req-dontwait").await;
    rep.connect(&ep);
    let sent = interop_tests::within("the request to go", async {
        loop {
            // Until the connection is up there is no peer: would block.
            match req {
                Under::Ours(ref s) => match s.try_send(message(vec![b"q".to_vec()])).map_err(Error::from) {
                    Err(Error::WouldBlock) => {}
                    other => return other.map_err(|e| e.to_string()),
                },
                Under::Zmq(ref z) => match z.try_send(vec![b"q".to_vec()]) {
                    Err(zmq::Error::EAGAIN) => {}
                    other => return other.map_err(|e| e.to_string()),
                },
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(sent, Ok(()), "{}: REQ send without waiting", req.who());
    assert_eq!(rep.recv().await, vec![b"q".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_send_without_waiting_libzmq() {
    req_dontwait_run(Under::zmq(zmq::REQ)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_send_without_waiting_ours() {
    req_dontwait_run(Under::ours(SocketType::Req, |o| o)).await;
}
