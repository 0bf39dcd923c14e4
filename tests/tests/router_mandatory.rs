//! ROUTER options against libzmq DEALERs, each scenario run with our ROUTER and, as the reference,
//! with a libzmq ROUTER in its place:
//!
//! - ROUTER_MANDATORY: an unknown id, a known one, one whose peer has gone (EHOSTUNREACH /
//!   `Error::HostUnreachable`); without it, unroutable messages vanish silently. (A full pipe is
//!   in `hwm.rs`.)
//! - A message made of a routing id alone is dropped, not sent as an empty message.
//! - Routing ids after the peer holding one has gone (handover off: the id is free again), and
//!   ROUTER_HANDOVER with ROUTER_MANDATORY: the old peer's end does not unroute the new one.
//!   (`router_ids.rs` has the handover itself and the refusal of a duplicate.)
//! - PROBE_ROUTER: our DEALER or ROUTER with probe_router → libzmq ROUTER receives `[id, ""]`;
//!   libzmq DEALER or ROUTER with ZMQ_PROBE_ROUTER → our ROUTER receives `[id, ""]`.

use std::time::Duration;

use interop_tests::{assert_frames, frames, link, message, recv, within, Transport, Z};
use zmtp::{Error, Options, Socket, SocketType};

interop_tests::over_tcp_and_ipc!(
    mandatory_routes_or_refuses,
    unroutable_vanishes_without_mandatory,
    id_frees_up_after_disconnect,
    handover_keeps_new_route
);
interop_tests::matrix!(
    our_dealer_probes_zmq_router,
    zmq_dealer_probes_our_router,
    our_router_probes_zmq_router,
    zmq_router_probes_our_router
);

mod id_only_message {
    use interop_tests::Transport::Tcp;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn libzmq_reference() {
        super::id_only_message_dropped(super::Router::zmq(false), Tcp).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ours() {
        super::id_only_message_dropped(super::Router::ours(zmtp::Options::default()), Tcp).await
    }
}

/// What a ROUTER send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Ok,
    /// Ours: `Error::HostUnreachable`; libzmq: EHOSTUNREACH.
    Unreachable,
}

/// The ROUTER under test.
#[derive(Debug)]
enum Router {
    Ours(Socket),
    Zmq(Z),
}

impl Router {
    fn ours(options: Options) -> Router {
        Router::Ours(Socket::with_options(SocketType::Router, options))
    }

    fn zmq(mandatory: bool) -> Router {
        let z = Z::new(zmq::ROUTER);
        z.with(|s| s.set_router_mandatory(mandatory)).expect("ZMQ_ROUTER_MANDATORY");
        Router::Zmq(z)
    }

    fn who(&self) -> &'static str {
        match self {
            Router::Ours(_) => "ours",
            Router::Zmq(_) => "libzmq",
        }
    }

    async fn bind(&self, t: Transport, name: &str) -> String {
        match self {
            Router::Ours(s) => s.bind(&t.bind_endpoint(name)).await.expect("our bind"),
            Router::Zmq(z) => z.bind(t, name),
        }
    }

    /// Sends without waiting (a ROUTER never waits but at a full pipe with ROUTER_MANDATORY,
    /// which these tests do not reach).
    fn send(&self, m: Vec<Vec<u8>>) -> Sent {
        match self {
            Router::Ours(s) => match s.try_send(message(m)).map_err(Error::from) {
                Ok(()) => Sent::Ok,
                Err(Error::HostUnreachable) => Sent::Unreachable,
                Err(e) => panic!("our ROUTER send: {e}"),
            },
            Router::Zmq(z) => match z.try_send(m) {
                Ok(()) => Sent::Ok,
                Err(zmq::Error::EHOSTUNREACH) => Sent::Unreachable,
                Err(e) => panic!("libzmq ROUTER send: {e}"),
            },
        }
    }

    async fn recv(&self) -> Vec<Vec<u8>> {
        match self {
            Router::Ours(s) => recv(s).await,
            Router::Zmq(z) => z.recv().await,
        }
    }

    async fn try_recv(&self, ms: u64) -> Option<Vec<Vec<u8>>> {
        match self {
            Router::Ours(s) => interop_tests::try_recv(s, ms).await,
            Router::Zmq(z) => z.try_recv(ms as i64).await,
        }
    }
}

/// A libzmq DEALER with routing id `id`; `reconnect` off keeps it from coming back once closed.
fn dealer(id: &str, reconnect: bool) -> Z {
    let z = Z::new(zmq::DEALER);
    z.with(|s| {
        s.set_identity(id.as_bytes())?;
        if !reconnect {
            s.set_reconnect_ivl(-1)?;
        }
        Ok::<(), zmq::Error>(())
    })
    .expect("libzmq options");
    z
}

/// `dealer` connects and says `hello`; the ROUTER must hear it under `id`.
async fn hello(router: &Router, dealer: &Z, endpoint: &str, id: &str) {
    dealer.connect(endpoint);
    dealer.send(frames(&["hello"])).await;
    assert_frames(&router.recv().await, &frames(&[id, "hello"]));
}

/// Sends `m` until the ROUTER says the peer is unreachable (it learns of a closed peer
/// asynchronously). Returns how many sends it took.
async fn until_unreachable(router: &Router, m: Vec<Vec<u8>>) -> usize {
    within("the ROUTER to find the peer gone", async {
        for n in 1.. {
            if router.send(m.clone()) == Sent::Unreachable {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        unreachable!()
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// ROUTER_MANDATORY

async fn mandatory_run(router: Router, t: Transport) {
    let who = router.who();
    let ep = router.bind(t, "mandatory").await;
    assert_eq!(router.send(frames(&["nobody", "x"])), Sent::Unreachable, "{who}: an id no peer has");
    let d = dealer("d", false);
    hello(&router, &d, &ep, "d").await;
    assert_eq!(router.send(frames(&["d", "x", ""])), Sent::Ok, "{who}: a known id");
    assert_frames(&d.recv().await, &frames(&["x", ""]));
    assert_eq!(router.send(frames(&["nobody", "x"])), Sent::Unreachable, "{who}: still an unknown id");
    d.close();
    until_unreachable(&router, frames(&["d", "gone"])).await;
    assert_eq!(router.send(frames(&["d", "gone"])), Sent::Unreachable, "{who}: the id stays unroutable");
}

/// ROUTER_MANDATORY: unknown ids and the id of a peer that has gone are unreachable; a known id
/// is routed.
async fn mandatory_routes_or_refuses(t: Transport) {
    mandatory_run(Router::zmq(true), t).await;
    mandatory_run(Router::ours(Options::default().router_mandatory(true)), t).await;
}

async fn no_mandatory_run(router: Router, t: Transport) {
    let who = router.who();
    let ep = router.bind(t, "no-mandatory").await;
    assert_eq!(router.send(frames(&["nobody", "x"])), Sent::Ok, "{who}: an unknown id, silently");
    let d = dealer("d", true);
    hello(&router, &d, &ep, "d").await;
    assert_eq!(router.send(frames(&["nobody", "lost"])), Sent::Ok, "{who}: an unknown id, silently");
    assert_eq!(router.send(frames(&["d", "kept"])), Sent::Ok, "{who}");
    assert_frames(&d.recv().await, &frames(&["kept"]));
    assert_eq!(d.try_recv(100).await, None, "{who}: the dealer got a message for another id");
}

/// Without ROUTER_MANDATORY a message for an unknown id vanishes and the send succeeds.
async fn unroutable_vanishes_without_mandatory(t: Transport) {
    no_mandatory_run(Router::zmq(false), t).await;
    no_mandatory_run(Router::ours(Options::default()), t).await;
}

/// `[id]` alone has no message after the envelope: libzmq drops it (and does not check the id,
/// even with ROUTER_MANDATORY); the peer's next message is the next one sent to it.
async fn id_only_message_dropped(router: Router, t: Transport) {
    let who = router.who();
    let ep = router.bind(t, "id-only").await;
    let d = dealer("d", true);
    hello(&router, &d, &ep, "d").await;
    assert_eq!(router.send(frames(&["d"])), Sent::Ok, "{who}");
    assert_eq!(router.send(frames(&["d", "next"])), Sent::Ok, "{who}");
    assert_frames(&d.recv().await, &frames(&["next"]));
}

// ---------------------------------------------------------------------------------------------
// Routing ids over a peer's lifetime

async fn id_frees_run(router: Router, t: Transport) {
    let who = router.who();
    let ep = router.bind(t, "id-frees").await;
    let a = dealer("same", false);
    hello(&router, &a, &ep, "same").await;
    a.close();
    // Handover is off: the ROUTER refuses B while it still holds A's id. Our ROUTER closes B's
    // connection and B reconnects until the id is free. libzmq instead keeps B's connection as
    // an "anonymous" pipe and tries its id again only when that pipe first becomes readable,
    // so a B refused once may never be heard; and with ROUTER_MANDATORY it reports A's id
    // unreachable while A's pipe is still being torn down, so that is no sign the id is free.
    // Against libzmq, B therefore starts over with a fresh connection every half second, as
    // an application would.
    let renew = matches!(router, Router::Zmq(_));
    let mut b = dealer("same", true);
    b.connect(&ep);
    within("the id to be free for the newcomer", async {
        let mut tries = 0;
        loop {
            b.try_send(frames(&["b"])).ok();
            if let Some(m) = router.try_recv(50).await {
                assert_frames(&m, &frames(&["same", "b"]));
                return;
            }
            tries += 1;
            if renew && tries % 10 == 0 {
                std::mem::replace(&mut b, dealer("same", true)).close();
                b.connect(&ep);
            }
        }
    })
    .await;
    assert_eq!(router.send(frames(&["same", "to-b"])), Sent::Ok, "{who}");
    assert_frames(&b.recv().await, &frames(&["to-b"]));
}

/// Once the peer holding a routing id has gone, a new peer with the same id is accepted under
/// it (ROUTER_HANDOVER off).
async fn id_frees_up_after_disconnect(t: Transport) {
    id_frees_run(Router::zmq(true), t).await;
    id_frees_run(Router::ours(Options::default().router_mandatory(true)), t).await;
}

async fn handover_run(router: Router, t: Transport) {
    let who = router.who();
    let ep = router.bind(t, "handover-mandatory").await;
    let a = dealer("same", false);
    hello(&router, &a, &ep, "same").await;
    let b = dealer("same", true);
    hello(&router, &b, &ep, "same").await;
    // A has lost the id (and, with both implementations, its connection); closing it now must
    // not take the route away from B.
    a.close();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3 {
        let body = format!("to-b-{i}");
        assert_eq!(router.send(frames(&["same", &body])), Sent::Ok, "{who}: the id after A closed");
        assert_frames(&b.recv().await, &frames(&[&body]));
    }
}

/// ROUTER_HANDOVER with ROUTER_MANDATORY: B takes A's id; A going away afterwards leaves B
/// routable.
async fn handover_keeps_new_route(t: Transport) {
    let z = Router::zmq(true);
    if let Router::Zmq(z) = &z {
        z.with(|s| s.set_router_handover(true)).expect("ZMQ_ROUTER_HANDOVER");
    }
    handover_run(z, t).await;
    handover_run(Router::ours(Options::default().router_mandatory(true).router_handover(true)), t).await;
}

// ---------------------------------------------------------------------------------------------
// PROBE_ROUTER

/// Our DEALER with probe_router: the libzmq ROUTER receives `[id, ""]` as soon as the connection
/// is up, before anything is sent; with no routing id set, under an id the ROUTER made up.
async fn our_dealer_probes_zmq_router(t: Transport, ours_binds: bool) {
    let named = Socket::with_options(SocketType::Dealer, Options::default().probe_router(true).routing_id("ours"));
    let router = Z::new(zmq::ROUTER);
    link(&named, &router, ours_binds, t, "probe-dealer").await;
    assert_frames(&router.recv().await, &frames(&["ours", ""]));

    let anonymous = Socket::with_options(SocketType::Dealer, Options::default().probe_router(true));
    let router = Z::new(zmq::ROUTER);
    link(&anonymous, &router, ours_binds, t, "probe-anon").await;
    let probe = router.recv().await;
    assert_eq!(probe.len(), 2, "{probe:?}");
    assert_eq!(probe[0].len(), 5, "libzmq's generated routing id: {probe:?}");
    assert!(probe[1].is_empty(), "{probe:?}");
    // The id is the one the ROUTER routes by.
    router.send(vec![probe[0].clone(), b"back".to_vec()]).await;
    assert_frames(&recv(&anonymous).await, &frames(&["back"]));
}

/// Our ROUTER's first message, while poking `z`: a bound libzmq socket attaches a new
/// connection's pipe (and so sends its probe) only when its application thread calls into it.
async fn first_poking(ours: &Socket, z: &Z) -> Vec<Vec<u8>> {
    within("the probe to arrive", async {
        loop {
            z.with(|s| s.get_events()).expect("ZMQ_EVENTS");
            if let Some(m) = interop_tests::try_recv(ours, 50).await {
                return m;
            }
        }
    })
    .await
}

/// A libzmq DEALER with ZMQ_PROBE_ROUTER: our ROUTER receives `[id, ""]`.
async fn zmq_dealer_probes_our_router(t: Transport, ours_binds: bool) {
    let router = Socket::new(SocketType::Router);
    let d = Z::new(zmq::DEALER);
    d.with(|s| {
        s.set_identity(b"theirs")?;
        s.set_probe_router(true)
    })
    .expect("libzmq options");
    link(&router, &d, ours_binds, t, "probe-zmq-dealer").await;
    assert_frames(&first_poking(&router, &d).await, &frames(&["theirs", ""]));
    router.send(message(frames(&["theirs", "back"]))).await.expect("send");
    assert_frames(&d.recv().await, &frames(&["back"]));
}

/// ROUTER to ROUTER: ours with probe_router tells the libzmq ROUTER its id, which can then
/// address it.
async fn our_router_probes_zmq_router(t: Transport, ours_binds: bool) {
    let ours = Socket::with_options(SocketType::Router, Options::default().probe_router(true).routing_id("ours"));
    let router = Z::new(zmq::ROUTER);
    router.with(|s| s.set_identity(b"theirs")).expect("ZMQ_ROUTING_ID");
    link(&ours, &router, ours_binds, t, "probe-router").await;
    assert_frames(&router.recv().await, &frames(&["ours", ""]));
    router.send(frames(&["ours", "hi"])).await;
    assert_frames(&recv(&ours).await, &frames(&["theirs", "hi"]));
}

/// ROUTER to ROUTER: a libzmq ROUTER with ZMQ_PROBE_ROUTER tells ours its id.
async fn zmq_router_probes_our_router(t: Transport, ours_binds: bool) {
    let ours = Socket::with_options(SocketType::Router, Options::default().routing_id("ours"));
    let router = Z::new(zmq::ROUTER);
    router
        .with(|s| {
            s.set_identity(b"theirs")?;
            s.set_probe_router(true)
        })
        .expect("libzmq options");
    link(&ours, &router, ours_binds, t, "probe-zmq-router").await;
    assert_frames(&first_poking(&ours, &router).await, &frames(&["theirs", ""]));
    ours.send(message(frames(&["theirs", "hi"]))).await.expect("send");
    assert_frames(&router.recv().await, &frames(&["ours", "hi"]));
}
