//! Restarts: one side is closed and re-created on the same endpoint while the other side is left
//! alone, and messages flow again through its reconnect.
//!
//! - libzmq binds and restarts; our connecting DEALER / SUB reconnects (and replays its
//!   subscriptions).
//! - We bind and restart; libzmq's connecting DEALER / SUB reconnects.
//! - We bind; the connecting libzmq DEALER is replaced by a new one with the same routing id.

use std::time::Duration;

use interop_tests::{
    assert_frames, frames, next_disconnect, next_handshake, recv, send, try_recv, within, Transport, Z,
};
use zmtp::{Options, Socket, SocketType};

interop_tests::over_tcp_and_ipc!(
    our_dealer_zmq_router_restarts,
    our_sub_zmq_pub_restarts,
    zmq_dealer_our_router_restarts,
    zmq_sub_our_pub_restarts,
    zmq_dealer_replaced_same_id,
);

/// Whether `got` is `want` followed by the current `round`; panics unless it is the same message
/// from an earlier round (still queued when the restart happened).
#[track_caller]
fn this_round(got: &[Vec<u8>], want: &[&str], round: &str) -> bool {
    let head = frames(want);
    let ok_head = got.len() == head.len() + 1 && got[..head.len()] == head[..];
    let got_round = got.last().map(|r| String::from_utf8_lossy(r).into_owned()).unwrap_or_default();
    assert!(ok_head && got_round.as_str() <= round, "unexpected {got:?} in round {round}");
    got_round == round
}

/// Binds a new libzmq socket on `endpoint`, retrying while the old one's listener is still being
/// torn down by libzmq's I/O thread (closing is asynchronous there).
async fn rebind_zmq(kind: zmq::SocketType, endpoint: &str, setup: impl Fn(&Z)) -> Z {
    within("libzmq to rebind the endpoint", async {
        loop {
            let z = Z::new(kind);
            setup(&z);
            match z.try_bind(endpoint) {
                Ok(_) => return z,
                Err(zmq::Error::EADDRINUSE) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("libzmq rebind {endpoint}: {e}"),
            }
        }
    })
    .await
}

/// Our DEALER sends `ping`s until the libzmq ROUTER gets one (messages written into a connection
/// that was dying are lost, as with libzmq), which must come from `id`.
async fn ping_until_routed(dealer: &Socket, router: &Z, id: &str) {
    within("a ping to get through", async {
        for n in 0u32.. {
            send(dealer, frames(&["ping", &n.to_string()])).await;
            if let Some(m) = router.try_recv(100).await {
                assert_eq!(m.len(), 3, "{m:?}");
                assert_frames(&m[..2], &frames(&[id, "ping"]));
                return;
            }
        }
    })
    .await
}

/// libzmq's ROUTER is closed and re-created on the same endpoint; our DEALER reconnects by itself.
async fn our_dealer_zmq_router_restarts(t: Transport) {
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("d"));
    let mut monitor = dealer.monitor();
    let router = Z::new(zmq::ROUTER);
    let ep = router.bind(t, "restart-router");
    dealer.connect(&ep).await.expect("connect");

    ping_until_routed(&dealer, &router, "d").await;
    router.send(frames(&["d", "pong"])).await;
    assert_frames(&recv(&dealer).await, &frames(&["pong"]));
    next_handshake(&mut monitor).await;

    router.close();
    next_disconnect(&mut monitor).await;
    let router = rebind_zmq(zmq::ROUTER, &ep, |_| {}).await;
    ping_until_routed(&dealer, &router, "d").await;
    next_handshake(&mut monitor).await;
    router.send(frames(&["d", "pong", "2"])).await;
    // Pings queued while the router was away may still be answered by nobody; only ours come back.
    assert_frames(&recv(&dealer).await, &frames(&["pong", "2"]));
}

/// libzmq's PUB is closed and re-created on the same endpoint; our SUB reconnects and sends its
/// subscription again.
async fn our_sub_zmq_pub_restarts(t: Transport) {
    let sub = Socket::new(SocketType::Sub);
    sub.subscribe("t").expect("subscribe");
    let mut monitor = sub.monitor();
    let publ = Z::new(zmq::PUB);
    let ep = publ.bind(t, "restart-pub");
    sub.connect(&ep).await.expect("connect");

    async fn publish_until_received(publ: &Z, sub: &Socket, round: &str) {
        within("a publication to get through", async {
            loop {
                publ.try_send(frames(&["ignored", round])).expect("libzmq PUB never blocks");
                publ.try_send(frames(&["t", round])).expect("libzmq PUB never blocks");
                if let Some(m) = try_recv(sub, 50).await {
                    if this_round(&m, &["t"], round) {
                        return;
                    }
                }
            }
        })
        .await
    }

    publish_until_received(&publ, &sub, "1").await;
    next_handshake(&mut monitor).await;
    publ.close();
    next_disconnect(&mut monitor).await;
    let publ = rebind_zmq(zmq::PUB, &ep, |_| {}).await;
    publish_until_received(&publ, &sub, "2").await;
}

/// Our ROUTER is closed and re-created on the same endpoint; libzmq's DEALER reconnects by itself.
async fn zmq_dealer_our_router_restarts(t: Transport) {
    let router = Socket::new(SocketType::Router);
    let ep = router.bind(&t.bind_endpoint("restart-our-router")).await.expect("bind");
    let dealer = Z::new(zmq::DEALER);
    dealer.with(|s| s.set_identity(b"zd")).expect("ZMQ_ROUTING_ID");
    let zmon = dealer.monitor("restart-our-router", zmq::SocketEvent::ALL);
    dealer.connect(&ep);

    async fn ping_until_received(dealer: &Z, router: &Socket, round: &str) {
        within("a ping to get through", async {
            loop {
                dealer.try_send(frames(&["ping", round])).ok();
                if let Some(m) = try_recv(router, 100).await {
                    if this_round(&m, &["zd", "ping"], round) {
                        return;
                    }
                }
            }
        })
        .await
    }

    ping_until_received(&dealer, &router, "1").await;
    send(&router, frames(&["zd", "pong", "1"])).await;
    assert_frames(&dealer.recv().await, &frames(&["pong", "1"]));

    within("our ROUTER to close", router.close()).await;
    let router = Socket::new(SocketType::Router);
    assert_eq!(router.bind(&ep).await.expect("rebind on the same endpoint"), ep);
    ping_until_received(&dealer, &router, "2").await;
    send(&router, frames(&["zd", "pong", "2"])).await;
    // Pings from round 1 queued in the old connection may be gone; the reply must get through.
    assert_frames(&dealer.recv().await, &frames(&["pong", "2"]));

    let seen = zmon.events(100).await;
    assert!(seen.contains(&zmq::SocketEvent::DISCONNECTED), "libzmq saw no disconnect: {seen:?}");
}

/// Our PUB is closed and re-created on the same endpoint; libzmq's SUB reconnects and subscribes
/// again.
async fn zmq_sub_our_pub_restarts(t: Transport) {
    let publ = Socket::new(SocketType::Pub);
    let ep = publ.bind(&t.bind_endpoint("restart-our-pub")).await.expect("bind");
    let sub = Z::new(zmq::SUB);
    sub.with(|s| s.set_subscribe(b"t")).expect("subscribe");
    sub.connect(&ep);

    async fn publish_until_received(publ: &Socket, sub: &Z, round: &str) {
        within("a publication to get through", async {
            loop {
                send(publ, frames(&["ignored", round])).await;
                send(publ, frames(&["t", round])).await;
                if let Some(m) = sub.try_recv(50).await {
                    if this_round(&m, &["t"], round) {
                        return;
                    }
                }
            }
        })
        .await
    }

    publish_until_received(&publ, &sub, "1").await;
    within("our PUB to close", publ.close()).await;
    let publ = Socket::new(SocketType::Pub);
    assert_eq!(publ.bind(&ep).await.expect("rebind on the same endpoint"), ep);
    publish_until_received(&publ, &sub, "2").await;
}

/// Our ROUTER stays; its libzmq DEALER is closed and a new one with the same routing id connects.
/// The ROUTER forgets the old connection and routes the id to the new one.
async fn zmq_dealer_replaced_same_id(t: Transport) {
    let router = Socket::new(SocketType::Router);
    let mut monitor = router.monitor();
    let ep = router.bind(&t.bind_endpoint("replace-dealer")).await.expect("bind");

    for round in ["1", "2", "3"] {
        let dealer = Z::new(zmq::DEALER);
        dealer.with(|s| s.set_identity(b"same")).expect("ZMQ_ROUTING_ID");
        dealer.connect(&ep);
        // The new connection may come up before we see the old one end; with ROUTER_HANDOVER off
        // it is then refused and libzmq reconnects, so ping until one gets through.
        within("a ping from the new DEALER", async {
            loop {
                dealer.try_send(frames(&["ping", round])).ok();
                if let Some(m) = try_recv(&router, 100).await {
                    if this_round(&m, &["same", "ping"], round) {
                        return;
                    }
                }
            }
        })
        .await;
        send(&router, frames(&["same", "pong", round])).await;
        assert_frames(&dealer.recv().await, &frames(&["pong", round]));
        dealer.close();
        next_disconnect(&mut monitor).await;
    }
}
