//! XPUB / XSUB against libzmq: subscriptions surface as `\x01topic` / `\x00topic` messages on
//! XPUB and are sent as such on XSUB; and a forwarder made of our XSUB and XPUB between a libzmq
//! PUB and a libzmq SUB.

use std::sync::Arc;

use interop_tests::{assert_frames, frames, link, recv, send, try_recv, within, Transport, Z};
use zmtp::{Socket, SocketType};

interop_tests::matrix!(zmq_sub_our_xpub, our_xsub_zmq_xpub);

async fn zmq_sub_our_xpub(t: Transport, ours_binds: bool) {
    let xpub = Socket::new(SocketType::XPub);
    let sub = Z::new(zmq::SUB);
    link(&xpub, &sub, ours_binds, t, "our-xpub").await;

    sub.with(|s| s.set_subscribe(b"t")).expect("subscribe");
    // A bound libzmq socket attaches a new connection's pipe (and so sends it the subscriptions)
    // only when its application thread calls into it: poke it while waiting.
    let first = within("the subscription to reach our XPUB", async {
        loop {
            sub.with(|s| s.get_events()).expect("ZMQ_EVENTS");
            if let Some(m) = try_recv(&xpub, 50).await {
                return m;
            }
        }
    })
    .await;
    assert_frames(&first, &[b"\x01t".to_vec()]);
    send(&xpub, frames(&["u", "not subscribed"])).await;
    send(&xpub, frames(&["t", "x"])).await;
    assert_frames(&sub.recv().await, &frames(&["t", "x"]));
    sub.with(|s| s.set_unsubscribe(b"t")).expect("unsubscribe");
    assert_frames(&recv(&xpub).await, &[b"\x00t".to_vec()]);
}

async fn our_xsub_zmq_xpub(t: Transport, ours_binds: bool) {
    let xsub = Socket::new(SocketType::XSub);
    let xpub = Z::new(zmq::XPUB);
    link(&xsub, &xpub, ours_binds, t, "our-xsub").await;

    // Sent before or after the connection is up: either way the XPUB hears of it once.
    send(&xsub, vec![b"\x01t".to_vec()]).await;
    assert_frames(&xpub.recv().await, &[b"\x01t".to_vec()]);
    xpub.send(frames(&["u", "not subscribed"])).await;
    xpub.send(frames(&["t", "x"])).await;
    assert_frames(&recv(&xsub).await, &frames(&["t", "x"]));
    send(&xsub, vec![b"\x00t".to_vec()]).await;
    assert_frames(&xpub.recv().await, &[b"\x00t".to_vec()]);
}

/// libzmq PUB → our XSUB | our XPUB → libzmq SUB, the application forwarding both ways (what
/// zmq_proxy does): the SUB's subscription travels up to the PUB, and publications down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_forwarder_between_zmq_pub_and_sub() {
    let xsub = Arc::new(Socket::new(SocketType::XSub));
    let xpub = Arc::new(Socket::new(SocketType::XPub));
    let publ = Z::new(zmq::PUB);
    let pub_ep = publ.bind(Transport::Tcp, "fwd-pub");
    xsub.connect(&pub_ep).await.expect("connect");
    let sub_ep = xpub.bind(&Transport::Ipc.bind_endpoint("fwd-sub")).await.expect("bind");

    let forwarder = {
        let (xsub, xpub) = (xsub.clone(), xpub.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = xpub.recv() => xsub.send(m.expect("xpub recv")).await.expect("xsub send"),
                    m = xsub.recv() => xpub.send(m.expect("xsub recv")).await.expect("xpub send"),
                }
            }
        })
    };

    let sub = Z::new(zmq::SUB);
    sub.with(|s| s.set_subscribe(b"t")).expect("subscribe");
    sub.connect(&sub_ep);
    within("a publication to cross the forwarder", async {
        loop {
            publ.try_send(frames(&["u", "filtered"])).expect("libzmq PUB never blocks");
            publ.try_send(frames(&["t", "through"])).expect("libzmq PUB never blocks");
            if let Some(m) = sub.try_recv(50).await {
                assert_frames(&m, &frames(&["t", "through"]));
                return;
            }
        }
    })
    .await;
    forwarder.abort();
}
