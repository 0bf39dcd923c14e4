//! ROUTER routing ids shared by two peers: ZMQ_ROUTER_HANDOVER on (the newcomer takes the id over
//! and the old peer no longer speaks under it) and off (the newcomer is refused while the id is
//! held). The handover scenario runs against a libzmq ROUTER too, as the reference.

use interop_tests::{assert_frames, frames, recv, send, try_recv, within, Transport, Z};
use zmtp::{Options, Socket, SocketType};

/// A libzmq DEALER with routing id `id`; `reconnect` off keeps a dropped peer from coming back
/// and taking the id again.
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

/// After B took the id over from A, A sends `a2` and B sends `b2`: the ROUTER must hand out `b2`
/// under the id, and never `a2` under it (libzmq drops the old pipe, so `a2` is not delivered at
/// all). Messages are collected until `b2` and for a short grace period after it.
fn check_after_handover(seen: &[Vec<Vec<u8>>]) {
    assert!(seen.contains(&frames(&["same", "b2"])), "b2 missing: {seen:?}");
    assert!(
        !seen.contains(&frames(&["same", "a2"])),
        "the old peer's message came under the id it lost; a reply would go to the new peer: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_router_handover_reference() {
    let router = Z::new(zmq::ROUTER);
    router.with(|s| s.set_router_handover(true)).expect("ZMQ_ROUTER_HANDOVER");
    let ep = router.bind(Transport::Tcp, "handover-ref");
    let a = dealer("same", false);
    a.connect(&ep);
    a.send(frames(&["a1"])).await;
    assert_frames(&router.recv().await, &frames(&["same", "a1"]));

    let b = dealer("same", true);
    b.connect(&ep);
    b.send(frames(&["b1"])).await;
    assert_frames(&router.recv().await, &frames(&["same", "b1"]));
    router.send(frames(&["same", "to-new"])).await;
    assert_frames(&b.recv().await, &frames(&["to-new"]));

    a.try_send(frames(&["a2"])).ok();
    b.send(frames(&["b2"])).await;
    let mut seen = Vec::new();
    while !seen.contains(&frames(&["same", "b2"])) {
        seen.push(router.recv().await);
    }
    while let Some(m) = router.try_recv(300).await {
        seen.push(m);
    }
    check_after_handover(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_handover() {
    let router = Socket::with_options(SocketType::Router, Options::default().router_handover(true));
    let ep = router.bind("tcp://127.0.0.1:*").await.expect("bind");
    let a = dealer("same", false);
    a.connect(&ep);
    a.send(frames(&["a1"])).await;
    assert_frames(&recv(&router).await, &frames(&["same", "a1"]));

    let b = dealer("same", true);
    b.connect(&ep);
    b.send(frames(&["b1"])).await;
    assert_frames(&recv(&router).await, &frames(&["same", "b1"]));
    send(&router, frames(&["same", "to-new"])).await;
    assert_frames(&b.recv().await, &frames(&["to-new"]));

    a.try_send(frames(&["a2"])).ok();
    b.send(frames(&["b2"])).await;
    let mut seen = Vec::new();
    while !seen.contains(&frames(&["same", "b2"])) {
        seen.push(recv(&router).await);
    }
    while let Some(m) = try_recv(&router, 300).await {
        seen.push(m);
    }
    check_after_handover(&seen);
}

/// Handover off: while A holds the id, B (same id) is refused: its messages do not arrive, and
/// what is sent to the id goes to A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_refuses_duplicate_id() {
    let router = Socket::new(SocketType::Router);
    let mut monitor = router.monitor();
    let ep = router.bind("tcp://127.0.0.1:*").await.expect("bind");
    let a = dealer("same", true);
    a.connect(&ep);
    a.send(frames(&["a1"])).await;
    assert_frames(&recv(&router).await, &frames(&["same", "a1"]));

    let b = dealer("same", true);
    b.connect(&ep);
    b.try_send(frames(&["b1"])).ok();
    // B's handshake is refused (it reconnects and is refused again, every 50 ms).
    within("B to be refused", async {
        loop {
            if let Some(zmtp::socket::MonitorEvent::HandshakeFailed { .. }) = monitor.recv().await {
                return;
            }
        }
    })
    .await;
    send(&router, frames(&["same", "to-a"])).await;
    assert_frames(&a.recv().await, &frames(&["to-a"]));
    a.send(frames(&["a2"])).await;
    assert_frames(&recv(&router).await, &frames(&["same", "a2"]));
    assert_eq!(b.try_recv(100).await, None, "B got a message meant for A");
}
