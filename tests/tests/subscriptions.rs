//! Subscriptions: topic filtering by our PUB toward libzmq and toward byte-level ZMTP 3.0 and 3.1
//! SUB peers (subscriptions as `\x01topic` / `\x00topic` messages, or SUBSCRIBE / CANCEL commands),
//! and what our SUB puts on the wire toward 3.0 and 3.1 publishers.

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use interop_tests::{
    assert_frames, big_frame, command_body, frames, link, recv, send, within, z_recv_skipping, RawPeer, Transport, Z,
};
use zmtp::{Socket, SocketType};

interop_tests::matrix!(zmq_sub_gets_only_its_topic, our_sub_changes_subscriptions_on_zmq_pub);

/// Publishes `warmup` every 50 ms until `arrived` says so (subscriptions travel asynchronously).
async fn publish_until(publ: &Socket, warmup: &[Vec<Vec<u8>>], mut arrived: impl FnMut() -> bool) {
    within("a subscription to take effect", async {
        loop {
            for m in warmup {
                send(publ, m.clone()).await;
            }
            if arrived() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// A libzmq SUB subscribed to "a" gets exactly the messages whose first frame starts with "a";
/// after it moves its subscription to "b", only "b" messages.
async fn zmq_sub_gets_only_its_topic(t: Transport, ours_binds: bool) {
    let publ = Socket::new(SocketType::Pub);
    let sub = Z::new(zmq::SUB);
    sub.with(|s| s.set_subscribe(b"a")).expect("subscribe");
    link(&publ, &sub, ours_binds, t, "topic").await;

    within("the subscription to take effect", async {
        loop {
            send(&publ, frames(&["b-warmup"])).await;
            send(&publ, frames(&["a-warmup"])).await;
            if let Some(m) = sub.try_recv(50).await {
                assert_frames(&m, &frames(&["a-warmup"]));
                return;
            }
        }
    })
    .await;

    for m in [
        frames(&["b1"]),
        frames(&["a1", "x"]),
        frames(&["", "a"]),
        frames(&["ab"]),
        frames(&["c", "a"]),
        frames(&["A"]),
        vec![b"a-big".to_vec(), big_frame(1)],
        frames(&["a-end"]),
    ] {
        send(&publ, m).await;
    }
    assert_frames(&z_recv_skipping(&sub, b"a-warmup").await, &frames(&["a1", "x"]));
    assert_frames(&sub.recv().await, &frames(&["ab"]));
    assert_frames(&sub.recv().await, &[b"a-big".to_vec(), big_frame(1)]);
    assert_frames(&sub.recv().await, &frames(&["a-end"]));

    sub.with(|s| {
        s.set_unsubscribe(b"a")?;
        s.set_subscribe(b"b")
    })
    .expect("resubscribe");
    within("the new subscription to take effect", async {
        loop {
            send(&publ, frames(&["a-late"])).await;
            send(&publ, frames(&["b-warmup"])).await;
            if let Some(m) = sub.try_recv(50).await {
                assert_frames(&m, &frames(&["b-warmup"]));
                return;
            }
        }
    })
    .await;
    send(&publ, frames(&["a-x"])).await;
    send(&publ, frames(&["b-end"])).await;
    assert_frames(&z_recv_skipping(&sub, b"b-warmup").await, &frames(&["b-end"]));
}

/// Sends a subscription (or cancel) the way a ZMTP 3.`minor` SUB does.
fn raw_subscription(peer: &mut RawPeer<TcpStream>, minor: u8, topic: &[u8], subscribe: bool) {
    if minor == 0 {
        let mut body = vec![u8::from(subscribe)];
        body.extend_from_slice(topic);
        peer.write_frame(false, false, &body).expect("raw subscription message");
    } else {
        let name: &[u8] = if subscribe { b"SUBSCRIBE" } else { b"CANCEL" };
        peer.write_frame(true, false, &command_body(name, topic)).expect("raw subscription command");
    }
}

/// Where the raw SUB's script has got to.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Subscribed,
    Switched,
}

/// Whether the raw peer reached `phase`; also true if it died, so that its panic shows.
fn reached(rx: &mpsc::Receiver<Phase>, phase: Phase) -> bool {
    match rx.try_recv() {
        Ok(p) => {
            assert_eq!(p, phase);
            true
        }
        Err(mpsc::TryRecvError::Empty) => false,
        Err(mpsc::TryRecvError::Disconnected) => true,
    }
}

/// A byte-level ZMTP 3.`minor` SUB connected to our PUB: it subscribes to "a" and gets only "a"
/// messages (the 4 MiB one in a long frame), then cancels "a" and subscribes to "z" and gets no
/// "a" message after the first "z" one.
async fn raw_sub(minor: u8) {
    let publ = Socket::new(SocketType::Pub);
    let ep = publ.bind("tcp://127.0.0.1:*").await.expect("bind");
    let addr = ep.strip_prefix("tcp://").expect("tcp endpoint").to_owned();
    let (phase_tx, phase_rx) = mpsc::channel();

    let raw = tokio::task::spawn_blocking(move || {
        let stream = TcpStream::connect(addr).expect("raw connect");
        stream.set_read_timeout(Some(interop_tests::T)).expect("read timeout");
        let mut peer = RawPeer::new(stream);
        let hs = peer.handshake(minor, "SUB", None).expect("raw handshake");
        assert_eq!(hs.version, (3, 1), "our greeting");
        assert_eq!(hs.properties.get("Socket-Type").map(Vec::as_slice), Some(&b"PUB"[..]));
        let mut commands = Vec::new();
        let mut read = |peer: &mut RawPeer<TcpStream>| peer.read_message(&mut commands).expect("raw read");

        raw_subscription(&mut peer, minor, b"a", true);
        assert_frames(&read(&mut peer), &frames(&["a-warmup"]));
        phase_tx.send(Phase::Subscribed).expect("phase");
        let mut got = Vec::new();
        loop {
            let m = read(&mut peer);
            if m != frames(&["a-warmup"]) {
                got.push(m.clone());
            }
            if m == frames(&["a-end"]) {
                break;
            }
        }
        let want =
            vec![frames(&["a1", "x"]), frames(&["ab"]), vec![b"a-big".to_vec(), big_frame(2)], frames(&["a-end"])];
        assert_eq!(got.len(), want.len(), "messages: {got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_frames(g, w);
        }

        raw_subscription(&mut peer, minor, b"a", false);
        raw_subscription(&mut peer, minor, b"z", true);
        // "a" messages published before our PUB saw the cancel may still come first.
        loop {
            let m = read(&mut peer);
            if m == frames(&["z-warmup"]) {
                break;
            }
            assert!(m[0].starts_with(b"a"), "unexpected {m:?}");
        }
        phase_tx.send(Phase::Switched).expect("phase");
        loop {
            let m = read(&mut peer);
            assert!(m[0].starts_with(b"z"), "after the cancel: {m:?}");
            if m == frames(&["z-end"]) {
                break;
            }
        }
        commands
    });

    publish_until(&publ, &[frames(&["b-warmup"]), frames(&["a-warmup"])], || reached(&phase_rx, Phase::Subscribed))
        .await;
    for m in [
        frames(&["b1"]),
        frames(&["a1", "x"]),
        frames(&["", "a"]),
        frames(&["ab"]),
        frames(&["c", "a"]),
        vec![b"a-big".to_vec(), big_frame(2)],
        frames(&["a-end"]),
    ] {
        send(&publ, m).await;
    }
    publish_until(&publ, &[frames(&["a-late"]), frames(&["z-warmup"])], || reached(&phase_rx, Phase::Switched)).await;
    send(&publ, frames(&["a-after-cancel"])).await;
    send(&publ, frames(&["z-end"])).await;

    let commands = within("the raw SUB to finish", raw).await.expect("raw SUB failed");
    assert!(commands.is_empty(), "our PUB sent commands to a peer without heartbeats: {commands:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_zmtp30_sub_filters_and_cancels() {
    raw_sub(0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_zmtp31_sub_filters_and_cancels() {
    raw_sub(1).await
}

/// Our SUB toward a byte-level ZMTP 3.`minor` PUB: subscriptions go out as `\x01topic` messages
/// (3.0) or SUBSCRIBE commands (3.1), cancels likewise, and our SUB drops what the publisher sends
/// beyond its subscriptions.
async fn our_sub_to_raw_pub(minor: u8) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("raw listener");
    let addr = listener.local_addr().expect("local addr");
    let sub = Socket::new(SocketType::Sub);
    sub.subscribe("a").expect("subscribe");
    sub.subscribe("b").expect("subscribe");
    sub.connect(&format!("tcp://{addr}")).await.expect("connect");

    let expect_subscription = move |peer: &mut RawPeer<TcpStream>, topic: &[u8], subscribe: bool| {
        let f = peer.read_frame().expect("raw read");
        let want = if minor == 0 {
            let mut body = vec![u8::from(subscribe)];
            body.extend_from_slice(topic);
            (false, body)
        } else {
            (true, command_body(if subscribe { b"SUBSCRIBE" } else { b"CANCEL" }, topic))
        };
        assert_eq!((f.command, f.body), want, "subscription frame toward a ZMTP 3.{minor} peer");
        assert!(!f.more);
    };
    let raw = tokio::task::spawn_blocking(move || {
        let (stream, _) = listener.accept().expect("raw accept");
        stream.set_read_timeout(Some(interop_tests::T)).expect("read timeout");
        let mut peer = RawPeer::new(stream);
        let hs = peer.handshake(minor, "PUB", None).expect("raw handshake");
        assert_eq!(hs.properties.get("Socket-Type").map(Vec::as_slice), Some(&b"SUB"[..]));
        expect_subscription(&mut peer, b"a", true);
        expect_subscription(&mut peer, b"b", true);
        for m in [&[&b"a1"[..]][..], &[b"c-not-subscribed"], &[b"b1", b"more"]] {
            peer.write_message(m).expect("raw publish");
        }
        expect_subscription(&mut peer, b"a", false);
        for m in [&[&b"a2"[..]][..], &[b"b2"]] {
            peer.write_message(m).expect("raw publish");
        }
        peer
    });

    assert_frames(&recv(&sub).await, &frames(&["a1"]));
    assert_frames(&recv(&sub).await, &frames(&["b1", "more"]));
    sub.unsubscribe("a").expect("unsubscribe");
    assert_frames(&recv(&sub).await, &frames(&["b2"]));
    let _peer = within("the raw PUB to finish", raw).await.expect("raw PUB failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_to_raw_zmtp30_pub() {
    our_sub_to_raw_pub(0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_to_raw_zmtp31_pub() {
    our_sub_to_raw_pub(1).await
}

/// Our SUB, connected to a libzmq PUB with no subscription, subscribes once the connection is up,
/// moves its subscription, and counts references: subscribed twice and unsubscribed once, a topic
/// is still received.
async fn our_sub_changes_subscriptions_on_zmq_pub(t: Transport, ours_binds: bool) {
    let publ = Z::new(zmq::PUB);
    let sub = Socket::new(SocketType::Sub);
    let mut monitor = sub.monitor();
    link(&sub, &publ, ours_binds, t, "our-sub-changes").await;
    interop_tests::next_handshake(&mut monitor).await;

    async fn publish_until(publ: &Z, sub: &Socket, topic: &str) {
        within("a subscription to take effect", async {
            loop {
                publ.try_send(frames(&["other"])).expect("libzmq PUB never blocks");
                publ.try_send(frames(&[topic])).expect("libzmq PUB never blocks");
                if let Some(m) = interop_tests::try_recv(sub, 50).await {
                    if m == frames(&[topic]) {
                        return;
                    }
                    // Earlier topics still in flight when the subscription moved.
                    assert_ne!(m, frames(&["other"]), "our SUB let through what it did not subscribe to");
                }
            }
        })
        .await
    }

    sub.subscribe("a").expect("subscribe");
    publish_until(&publ, &sub, "a").await;
    sub.subscribe("b").expect("subscribe");
    sub.subscribe("b").expect("subscribe again");
    sub.unsubscribe("a").expect("unsubscribe");
    publish_until(&publ, &sub, "b").await;
    sub.unsubscribe("b").expect("unsubscribe once of two");
    publ.send(frames(&["a"])).await;
    publ.send(frames(&["b"])).await;
    // "a" is no longer subscribed: filtered even if the PUB still sends it.
    assert_frames(&recv(&sub).await, &frames(&["b"]));
}
