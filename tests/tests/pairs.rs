//! Every socket pair against real libzmq, both ways round (our socket binds and libzmq connects,
//! and the reverse), over tcp and ipc, with a multipart message and a 4 MiB one (long frames).
//! Frames are compared exactly, envelopes and routing ids included.
//!
//! Each scenario is an `async fn(Transport, ours_binds: bool)`; [`interop_tests::matrix`] turns it
//! into four tests: `<scenario>::{ours_binds,zmq_binds}_{tcp,ipc}`.

use std::time::Duration;

use interop_tests::{
    assert_frames, big_frame, frames, link, recv, recv_skipping, send, try_recv, within, z_recv_skipping, Transport, Z,
};
use zmtp::{Options, Socket, SocketType};

interop_tests::matrix!(
    our_pub_zmq_sub,
    zmq_pub_our_sub,
    our_req_zmq_rep,
    zmq_req_our_rep,
    our_req_zmq_router,
    zmq_req_our_router,
    our_dealer_zmq_router,
    zmq_dealer_our_router,
    our_anonymous_dealer_zmq_router,
    zmq_anonymous_dealer_our_router,
    our_dealer_zmq_rep,
    zmq_dealer_our_rep,
    our_router_zmq_router,
    our_push_zmq_pull,
    zmq_push_our_pull,
    our_pair_zmq_pair,
    frame_size_edges_our_dealer_zmq_router,
);

const WARMUP: &[u8] = b"warmup";

// ---------------------------------------------------------------------------------------------
// PUB → SUB

async fn our_pub_zmq_sub(t: Transport, ours_binds: bool) {
    let publ = Socket::new(SocketType::Pub);
    let sub = Z::new(zmq::SUB);
    sub.with(|s| s.set_subscribe(b"")).expect("subscribe");
    link(&publ, &sub, ours_binds, t, "our-pub").await;

    // The subscription reaches our PUB asynchronously: publish until the first message arrives.
    within("the subscription to take effect", async {
        loop {
            send(&publ, frames(&[WARMUP])).await;
            if let Some(m) = sub.try_recv(50).await {
                assert_frames(&m, &frames(&[WARMUP]));
                return;
            }
        }
    })
    .await;

    let multipart = frames(&["topic", "part 2", "", "part 4"]);
    let big = vec![b"big".to_vec(), big_frame(1)];
    send(&publ, multipart.clone()).await;
    send(&publ, big.clone()).await;
    send(&publ, frames(&["end"])).await;
    assert_frames(&z_recv_skipping(&sub, WARMUP).await, &multipart);
    assert_frames(&sub.recv().await, &big);
    assert_frames(&sub.recv().await, &frames(&["end"]));
}

async fn zmq_pub_our_sub(t: Transport, ours_binds: bool) {
    let publ = Z::new(zmq::PUB);
    let sub = Socket::new(SocketType::Sub);
    sub.subscribe("").expect("subscribe");
    link(&sub, &publ, ours_binds, t, "our-sub").await;

    within("the subscription to take effect", async {
        loop {
            publ.try_send(frames(&[WARMUP])).expect("libzmq PUB never blocks");
            if let Some(m) = try_recv(&sub, 50).await {
                assert_frames(&m, &frames(&[WARMUP]));
                return;
            }
        }
    })
    .await;

    let multipart = frames(&["topic", "part 2", "", "part 4"]);
    let big = vec![b"big".to_vec(), big_frame(2)];
    publ.send(multipart.clone()).await;
    publ.send(big.clone()).await;
    publ.send(frames(&["end"])).await;
    assert_frames(&recv_skipping(&sub, WARMUP).await, &multipart);
    assert_frames(&recv(&sub).await, &big);
    assert_frames(&recv(&sub).await, &frames(&["end"]));
}

// ---------------------------------------------------------------------------------------------
// REQ ↔ REP

async fn our_req_zmq_rep(t: Transport, ours_binds: bool) {
    let req = Socket::new(SocketType::Req);
    let rep = Z::new(zmq::REP);
    link(&req, &rep, ours_binds, t, "our-req-rep").await;

    // An empty frame inside the body must not be mistaken for the envelope's delimiter.
    send(&req, frames(&["hello", "", "world"])).await;
    assert_frames(&rep.recv().await, &frames(&["hello", "", "world"]));
    rep.send(frames(&["re", "ply"])).await;
    assert_frames(&recv(&req).await, &frames(&["re", "ply"]));

    let big = vec![big_frame(3)];
    send(&req, big.clone()).await;
    assert_frames(&rep.recv().await, &big);
    let big_reply = vec![b"ok".to_vec(), big_frame(4)];
    rep.send(big_reply.clone()).await;
    assert_frames(&recv(&req).await, &big_reply);

    for i in 0..5 {
        send(&req, frames(&["n", &i.to_string()])).await;
        assert_frames(&rep.recv().await, &frames(&["n", &i.to_string()]));
        rep.send(frames(&[format!("r{i}")])).await;
        assert_frames(&recv(&req).await, &frames(&[format!("r{i}")]));
    }
}

async fn zmq_req_our_rep(t: Transport, ours_binds: bool) {
    let req = Z::new(zmq::REQ);
    let rep = Socket::new(SocketType::Rep);
    link(&rep, &req, ours_binds, t, "zmq-req-rep").await;

    req.send(frames(&["hello", "", "world"])).await;
    assert_frames(&recv(&rep).await, &frames(&["hello", "", "world"]));
    send(&rep, frames(&["re", "ply"])).await;
    assert_frames(&req.recv().await, &frames(&["re", "ply"]));

    let big = vec![big_frame(5)];
    req.send(big.clone()).await;
    assert_frames(&recv(&rep).await, &big);
    let big_reply = vec![b"ok".to_vec(), big_frame(6)];
    send(&rep, big_reply.clone()).await;
    assert_frames(&req.recv().await, &big_reply);

    for i in 0..5 {
        req.send(frames(&["n", &i.to_string()])).await;
        assert_frames(&recv(&rep).await, &frames(&["n", &i.to_string()]));
        send(&rep, frames(&[format!("r{i}")])).await;
        assert_frames(&req.recv().await, &frames(&[format!("r{i}")]));
    }
}

// ---------------------------------------------------------------------------------------------
// REQ → ROUTER

async fn our_req_zmq_router(t: Transport, ours_binds: bool) {
    let req = Socket::with_options(SocketType::Req, Options::default().routing_id("req-1"));
    let router = Z::new(zmq::ROUTER);
    link(&req, &router, ours_binds, t, "our-req-router").await;

    send(&req, frames(&["a", "b"])).await;
    assert_frames(&router.recv().await, &frames(&["req-1", "", "a", "b"]));
    router.send(frames(&["req-1", "", "x", "y"])).await;
    assert_frames(&recv(&req).await, &frames(&["x", "y"]));

    send(&req, vec![big_frame(7)]).await;
    assert_frames(&router.recv().await, &[b"req-1".to_vec(), vec![], big_frame(7)]);
    router.send(vec![b"req-1".to_vec(), vec![], big_frame(8)]).await;
    assert_frames(&recv(&req).await, &[big_frame(8)]);
}

async fn zmq_req_our_router(t: Transport, ours_binds: bool) {
    let req = Z::new(zmq::REQ);
    req.with(|s| s.set_identity(b"zreq-1")).expect("ZMQ_ROUTING_ID");
    let router = Socket::new(SocketType::Router);
    link(&router, &req, ours_binds, t, "zmq-req-router").await;

    req.send(frames(&["a", "b"])).await;
    assert_frames(&recv(&router).await, &frames(&["zreq-1", "", "a", "b"]));
    send(&router, frames(&["zreq-1", "", "x", "y"])).await;
    assert_frames(&req.recv().await, &frames(&["x", "y"]));

    req.send(vec![big_frame(9)]).await;
    assert_frames(&recv(&router).await, &[b"zreq-1".to_vec(), vec![], big_frame(9)]);
    send(&router, vec![b"zreq-1".to_vec(), vec![], big_frame(10)]).await;
    assert_frames(&req.recv().await, &[big_frame(10)]);
}

// ---------------------------------------------------------------------------------------------
// DEALER ↔ ROUTER

async fn our_dealer_zmq_router(t: Transport, ours_binds: bool) {
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("dealer-1"));
    let router = Z::new(zmq::ROUTER);
    link(&dealer, &router, ours_binds, t, "our-dealer-router").await;

    send(&dealer, frames(&["a", "", "b"])).await;
    assert_frames(&router.recv().await, &frames(&["dealer-1", "a", "", "b"]));
    router.send(frames(&["dealer-1", "x", "", "y"])).await;
    assert_frames(&recv(&dealer).await, &frames(&["x", "", "y"]));

    send(&dealer, vec![b"big".to_vec(), big_frame(11)]).await;
    assert_frames(&router.recv().await, &[b"dealer-1".to_vec(), b"big".to_vec(), big_frame(11)]);
    router.send(vec![b"dealer-1".to_vec(), big_frame(12), b"tail".to_vec()]).await;
    assert_frames(&recv(&dealer).await, &[big_frame(12), b"tail".to_vec()]);
}

async fn zmq_dealer_our_router(t: Transport, ours_binds: bool) {
    let dealer = Z::new(zmq::DEALER);
    dealer.with(|s| s.set_identity(b"zdealer-1")).expect("ZMQ_ROUTING_ID");
    let router = Socket::new(SocketType::Router);
    link(&router, &dealer, ours_binds, t, "zmq-dealer-router").await;

    dealer.send(frames(&["a", "", "b"])).await;
    assert_frames(&recv(&router).await, &frames(&["zdealer-1", "a", "", "b"]));
    send(&router, frames(&["zdealer-1", "x", "", "y"])).await;
    assert_frames(&dealer.recv().await, &frames(&["x", "", "y"]));

    dealer.send(vec![b"big".to_vec(), big_frame(13)]).await;
    assert_frames(&recv(&router).await, &[b"zdealer-1".to_vec(), b"big".to_vec(), big_frame(13)]);
    send(&router, vec![b"zdealer-1".to_vec(), big_frame(14), b"tail".to_vec()]).await;
    assert_frames(&dealer.recv().await, &[big_frame(14), b"tail".to_vec()]);
}

/// A ROUTER names a peer without a routing id itself: five octets, the first zero (libzmq's
/// convention, which ids chosen by applications must not use).
fn assert_generated_id(id: &[u8]) {
    assert_eq!(id.len(), 5, "generated routing id {id:?}");
    assert_eq!(id[0], 0, "generated routing id {id:?}");
}

async fn our_anonymous_dealer_zmq_router(t: Transport, ours_binds: bool) {
    let dealer = Socket::new(SocketType::Dealer);
    let router = Z::new(zmq::ROUTER);
    link(&dealer, &router, ours_binds, t, "our-anon-dealer").await;

    send(&dealer, frames(&["hi"])).await;
    let got = router.recv().await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_generated_id(&got[0]);
    assert_frames(&got[1..], &frames(&["hi"]));
    router.send(vec![got[0].clone(), b"back".to_vec()]).await;
    assert_frames(&recv(&dealer).await, &frames(&["back"]));
}

async fn zmq_anonymous_dealer_our_router(t: Transport, ours_binds: bool) {
    let dealer = Z::new(zmq::DEALER);
    let router = Socket::new(SocketType::Router);
    link(&router, &dealer, ours_binds, t, "zmq-anon-dealer").await;

    dealer.send(frames(&["hi"])).await;
    let got = recv(&router).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_generated_id(&got[0]);
    assert_frames(&got[1..], &frames(&["hi"]));
    send(&router, vec![got[0].clone(), b"back".to_vec()]).await;
    assert_frames(&dealer.recv().await, &frames(&["back"]));
}

// ---------------------------------------------------------------------------------------------
// DEALER → REP

async fn our_dealer_zmq_rep(t: Transport, ours_binds: bool) {
    let dealer = Socket::new(SocketType::Dealer);
    let rep = Z::new(zmq::REP);
    link(&dealer, &rep, ours_binds, t, "our-dealer-rep").await;

    // A two-part envelope: REP keeps everything up to the delimiter and puts it back.
    send(&dealer, frames(&["hop", "", "q1", "q2"])).await;
    assert_frames(&rep.recv().await, &frames(&["q1", "q2"]));
    rep.send(frames(&["r"])).await;
    assert_frames(&recv(&dealer).await, &frames(&["hop", "", "r"]));

    send(&dealer, vec![vec![], big_frame(15)]).await;
    assert_frames(&rep.recv().await, &[big_frame(15)]);
    rep.send(vec![big_frame(16)]).await;
    assert_frames(&recv(&dealer).await, &[vec![], big_frame(16)]);
}

async fn zmq_dealer_our_rep(t: Transport, ours_binds: bool) {
    let dealer = Z::new(zmq::DEALER);
    let rep = Socket::new(SocketType::Rep);
    link(&rep, &dealer, ours_binds, t, "zmq-dealer-rep").await;

    dealer.send(frames(&["hop", "", "q1", "q2"])).await;
    assert_frames(&recv(&rep).await, &frames(&["q1", "q2"]));
    send(&rep, frames(&["r"])).await;
    assert_frames(&dealer.recv().await, &frames(&["hop", "", "r"]));

    dealer.send(vec![vec![], big_frame(17)]).await;
    assert_frames(&recv(&rep).await, &[big_frame(17)]);
    send(&rep, vec![big_frame(18)]).await;
    assert_frames(&dealer.recv().await, &[vec![], big_frame(18)]);
}

// ---------------------------------------------------------------------------------------------
// ROUTER ↔ ROUTER

/// Both ROUTERs have routing ids. The connecting side knows the binder's id and sends first,
/// retrying (ROUTER_MANDATORY) until the connection is up; the binder learns the connecting side's
/// id from that first message.
async fn our_router_zmq_router(t: Transport, ours_binds: bool) {
    let ours = Socket::with_options(SocketType::Router, Options::default().routing_id("ours").router_mandatory(true));
    let theirs = Z::new(zmq::ROUTER);
    theirs
        .with(|s| {
            s.set_identity(b"theirs")?;
            s.set_router_mandatory(true)
        })
        .expect("libzmq options");
    link(&ours, &theirs, ours_binds, t, "router-router").await;

    let hello = |to: &str| frames(&[to, "hello", "", "1"]);
    if ours_binds {
        within("libzmq ROUTER to route to us", async {
            loop {
                match theirs.try_send(hello("ours")) {
                    Ok(()) => return,
                    Err(zmq::Error::EHOSTUNREACH) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(e) => panic!("libzmq send: {e}"),
                }
            }
        })
        .await;
        assert_frames(&recv(&ours).await, &frames(&["theirs", "hello", "", "1"]));
    } else {
        within("our ROUTER to route to libzmq", async {
            loop {
                match ours.send(interop_tests::message(hello("theirs"))).await.map_err(zmtp::Error::from) {
                    Ok(()) => return,
                    Err(zmtp::Error::HostUnreachable) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(e) => panic!("our send: {e}"),
                }
            }
        })
        .await;
        assert_frames(&theirs.recv().await, &frames(&["ours", "hello", "", "1"]));
    }

    // Now both sides know each other.
    send(&ours, frames(&["theirs", "from", "ours"])).await;
    assert_frames(&theirs.recv().await, &frames(&["ours", "from", "ours"]));
    theirs.send(frames(&["ours", "from", "theirs"])).await;
    assert_frames(&recv(&ours).await, &frames(&["theirs", "from", "theirs"]));

    send(&ours, vec![b"theirs".to_vec(), big_frame(19)]).await;
    assert_frames(&theirs.recv().await, &[b"ours".to_vec(), big_frame(19)]);
    theirs.send(vec![b"ours".to_vec(), big_frame(20)]).await;
    assert_frames(&recv(&ours).await, &[b"theirs".to_vec(), big_frame(20)]);

    // An unknown id fails on both sides with ROUTER_MANDATORY.
    assert!(matches!(
        ours.send(interop_tests::message(frames(&["nobody", "x"]))).await.map_err(zmtp::Error::from),
        Err(zmtp::Error::HostUnreachable)
    ));
    assert_eq!(theirs.try_send(frames(&["nobody", "x"])), Err(zmq::Error::EHOSTUNREACH));
}

// ---------------------------------------------------------------------------------------------
// PUSH → PULL, PAIR ↔ PAIR

async fn our_push_zmq_pull(t: Transport, ours_binds: bool) {
    let push = Socket::new(SocketType::Push);
    let pull = Z::new(zmq::PULL);
    link(&push, &pull, ours_binds, t, "our-push").await;

    send(&push, frames(&["a", "", "c"])).await;
    send(&push, vec![big_frame(21)]).await;
    assert_frames(&pull.recv().await, &frames(&["a", "", "c"]));
    assert_frames(&pull.recv().await, &[big_frame(21)]);
}

async fn zmq_push_our_pull(t: Transport, ours_binds: bool) {
    let push = Z::new(zmq::PUSH);
    let pull = Socket::new(SocketType::Pull);
    link(&pull, &push, ours_binds, t, "zmq-push").await;

    push.send(frames(&["a", "", "c"])).await;
    push.send(vec![big_frame(22)]).await;
    assert_frames(&recv(&pull).await, &frames(&["a", "", "c"]));
    assert_frames(&recv(&pull).await, &[big_frame(22)]);
}

async fn our_pair_zmq_pair(t: Transport, ours_binds: bool) {
    let ours = Socket::new(SocketType::Pair);
    let theirs = Z::new(zmq::PAIR);
    link(&ours, &theirs, ours_binds, t, "pair").await;

    send(&ours, frames(&["to", "theirs"])).await;
    assert_frames(&theirs.recv().await, &frames(&["to", "theirs"]));
    theirs.send(vec![b"to".to_vec(), big_frame(23)]).await;
    assert_frames(&recv(&ours).await, &[b"to".to_vec(), big_frame(23)]);
}

// ---------------------------------------------------------------------------------------------
// Frame sizes around the short / long frame boundary, and empty messages.

/// Frames of 0, 1, 255 (longest short frame), 256 (shortest long frame), 8 KiB - 1 and 8 KiB
/// (around our zero-copy threshold) and 64 KiB octets, in both directions; and an empty message,
/// which goes on the wire as one empty frame.
async fn frame_size_edges_our_dealer_zmq_router(t: Transport, ours_binds: bool) {
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("edge"));
    let router = Z::new(zmq::ROUTER);
    link(&dealer, &router, ours_binds, t, "edges").await;

    let sizes = [0usize, 1, 255, 256, 8191, 8192, 65536];
    let body: Vec<Vec<u8>> = sizes.iter().map(|&n| (0..n).map(|i| (i % 253) as u8).collect()).collect();

    send(&dealer, body.clone()).await;
    let mut want = vec![b"edge".to_vec()];
    want.extend(body.iter().cloned());
    assert_frames(&router.recv().await, &want);
    router.send(want.clone()).await;
    assert_frames(&recv(&dealer).await, &body);

    // The same frames one per message, back to back.
    for frame in &body {
        send(&dealer, vec![frame.clone()]).await;
    }
    for frame in &body {
        assert_frames(&router.recv().await, &[b"edge".to_vec(), frame.clone()]);
    }

    within("our send", dealer.send(zmtp::Message::new())).await.expect("send an empty message");
    assert_frames(&router.recv().await, &frames(&["edge", ""]));
    router.send(frames(&["edge", ""])).await;
    assert_frames(&recv(&dealer).await, &frames(&[""]));
}

// ---------------------------------------------------------------------------------------------
// Several libzmq peers on one of our sockets.

/// Our REP bound, two libzmq REQs with routing ids: each reply goes back to the peer that asked,
/// even when the requests interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_rep_serves_two_zmq_reqs() {
    let rep = Socket::new(SocketType::Rep);
    let ep = rep.bind("tcp://127.0.0.1:*").await.expect("bind");
    let reqs: Vec<Z> = ["r1", "r2"]
        .iter()
        .map(|id| {
            let z = Z::new(zmq::REQ);
            z.with(|s| s.set_identity(id.as_bytes())).expect("ZMQ_ROUTING_ID");
            z.connect(&ep);
            z
        })
        .collect();
    for round in 0..3 {
        for (i, z) in reqs.iter().enumerate() {
            z.send(frames(&[format!("from {i} round {round}")])).await;
        }
        for _ in 0..2 {
            let got = recv(&rep).await;
            send(&rep, frames(&[format!("answer to {}", String::from_utf8_lossy(&got[0]))])).await;
        }
        for (i, z) in reqs.iter().enumerate() {
            assert_frames(&z.recv().await, &frames(&[format!("answer to from {i} round {round}")]));
        }
    }
}

/// Our ROUTER bound, three libzmq DEALERs: messages are routed by id, and each peer's messages
/// come prefixed with its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_routes_to_three_zmq_dealers() {
    let router = Socket::new(SocketType::Router);
    let ep = router.bind(&Transport::Ipc.bind_endpoint("three-dealers")).await.expect("bind");
    let ids = ["d1", "d2", "d3"];
    let dealers: Vec<Z> = ids
        .iter()
        .map(|id| {
            let z = Z::new(zmq::DEALER);
            z.with(|s| s.set_identity(id.as_bytes())).expect("ZMQ_ROUTING_ID");
            z.connect(&ep);
            z
        })
        .collect();
    for (id, z) in ids.iter().zip(&dealers) {
        z.send(frames(&["hello from", id])).await;
    }
    let mut seen: Vec<Vec<Vec<u8>>> = Vec::new();
    for _ in 0..3 {
        seen.push(recv(&router).await);
    }
    seen.sort();
    for (got, id) in seen.iter().zip(ids) {
        assert_frames(got, &frames(&[id, "hello from", id]));
    }
    for id in ids.iter().rev() {
        send(&router, frames(&[id, "for", id])).await;
    }
    for (id, z) in ids.iter().zip(&dealers) {
        assert_frames(&z.recv().await, &frames(&["for", id]));
    }
}

/// Our DEALER connected to two libzmq ROUTERs sends round-robin, one message each in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dealer_round_robins_two_zmq_routers() {
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("rr"));
    let mut monitor = dealer.monitor();
    let routers = [Z::new(zmq::ROUTER), Z::new(zmq::ROUTER)];
    for r in &routers {
        dealer.connect(&r.bind(Transport::Tcp, "rr")).await.expect("connect");
    }
    // Both connections up, so that neither pipe is skipped.
    interop_tests::next_handshake(&mut monitor).await;
    interop_tests::next_handshake(&mut monitor).await;
    for i in 0..6 {
        send(&dealer, frames(&[i.to_string()])).await;
    }
    let mut per_router = Vec::new();
    for r in &routers {
        let mut got = Vec::new();
        for _ in 0..3 {
            let m = r.recv().await;
            assert_eq!(m[0], b"rr");
            got.push(String::from_utf8_lossy(&m[1]).into_owned());
        }
        per_router.push(got);
    }
    per_router.sort();
    assert_eq!(per_router, [["0", "2", "4"], ["1", "3", "5"]]);
}

/// Our DEALER connects to an ipc path nobody listens on yet and sends; when libzmq binds there,
/// the queued messages arrive, in order (ZMQ_IMMEDIATE off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_dealer_queues_until_zmq_binds() {
    let ep = interop_tests::ipc_endpoint("late-bind");
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("early"));
    let mut monitor = dealer.monitor();
    dealer.connect(&ep).await.expect("connect");
    for i in 0..3 {
        send(&dealer, frames(&["queued", &i.to_string()])).await;
    }
    // At least one attempt has failed before libzmq binds.
    within("a failed connect attempt", async {
        loop {
            if let Some(zmtp::socket::MonitorEvent::ConnectRetried { .. }) = monitor.recv().await {
                return;
            }
        }
    })
    .await;
    let router = Z::new(zmq::ROUTER);
    router.bind_exact(&ep);
    for i in 0..3 {
        assert_frames(&router.recv().await, &frames(&["early", "queued", &i.to_string()]));
    }
}
