//! Our monitor events, in order, with libzmq peers — next to what libzmq's own monitor reports
//! for the same scenario with a libzmq socket in our socket's place:
//!
//! - connecting: ConnectDelayed, Connected, HandshakeSucceeded (libzmq: CONNECT_DELAYED when the
//!   connect does not complete at once, CONNECTED, HANDSHAKE_SUCCEEDED);
//! - accepting: Listening, Accepted, HandshakeSucceeded (libzmq: LISTENING, ACCEPTED,
//!   HANDSHAKE_SUCCEEDED);
//! - a peer of an incompatible type: HandshakeFailed with PeerIncompatible (libzmq 4.3.4 only
//!   reports DISCONNECTED for it, and does not reconnect after such a protocol error — ours does);
//! - the libzmq side closing: Disconnected, then (connecting side) reconnect attempts (libzmq:
//!   DISCONNECTED);
//! - our socket closing: Disconnected (Closed) and Closed, then the end of the stream.

use interop_tests::{ipc_endpoint, within, Transport, ZMonitor, Z};
use zmtp::proto::{ConnectionError, SocketType as Wire};
use zmtp::socket::{DisconnectReason, Monitor, MonitorEvent};
use zmtp::{Socket, SocketType};

interop_tests::over_tcp_and_ipc!(
    connect_events,
    accept_events,
    connect_to_incompatible,
    accept_incompatible,
    peer_closes_connected,
    peer_closes_accepted,
    our_close,
);

/// Our next `n` events.
async fn next_events(m: &mut Monitor, n: usize) -> Vec<MonitorEvent> {
    within("monitor events", async {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.push(m.recv().await.expect("the monitor ended"));
        }
        out
    })
    .await
}

/// Our events up to and including the first one `stop` accepts.
async fn events_until(m: &mut Monitor, stop: impl Fn(&MonitorEvent) -> bool) -> Vec<MonitorEvent> {
    within("a monitor event", async {
        let mut out = Vec::new();
        loop {
            let e = m.recv().await.expect("the monitor ended");
            let done = stop(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    })
    .await
}

/// libzmq's events until `stop` has been seen.
async fn zmq_events_until(mon: &ZMonitor, stop: zmq::SocketEvent) -> Vec<zmq::SocketEvent> {
    within("a libzmq monitor event", async {
        let mut out = Vec::new();
        while !out.contains(&stop) {
            out.extend(mon.events(50).await);
        }
        out
    })
    .await
}

/// `events` with every event not in `keep` left out, for comparing orders.
fn only(events: &[zmq::SocketEvent], keep: &[zmq::SocketEvent]) -> Vec<zmq::SocketEvent> {
    events.iter().copied().filter(|e| keep.contains(e)).collect()
}

fn bind_endpoint(t: Transport, name: &str) -> String {
    match t {
        Transport::Tcp => "tcp://127.0.0.1:*".to_owned(),
        Transport::Ipc => ipc_endpoint(name),
    }
}

// ---------------------------------------------------------------------------------------------
// Handshakes

/// Our DEALER connects to a libzmq ROUTER: ConnectDelayed, Connected, HandshakeSucceeded, each
/// naming the endpoint, the last with what the ROUTER announced.
async fn connect_events(t: Transport) {
    // Reference: a libzmq DEALER in our DEALER's place.
    let router = Z::new(zmq::ROUTER);
    let ep = router.bind(t, "mon-connect-ref");
    let dealer = Z::new(zmq::DEALER);
    let zmon = dealer.monitor("connect", zmq::SocketEvent::ALL);
    dealer.connect(&ep);
    let theirs = zmq_events_until(&zmon, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).await;
    use zmq::SocketEvent::{CONNECTED, HANDSHAKE_SUCCEEDED};
    assert_eq!(
        only(&theirs, &[CONNECTED, HANDSHAKE_SUCCEEDED]),
        [CONNECTED, HANDSHAKE_SUCCEEDED],
        "libzmq: {theirs:?}"
    );

    let router = Z::new(zmq::ROUTER);
    router.with(|s| s.set_identity(b"server")).expect("ZMQ_ROUTING_ID");
    let ep = router.bind(t, "mon-connect");
    let ours = Socket::new(SocketType::Dealer);
    let mut monitor = ours.monitor();
    ours.connect(&ep).await.expect("connect");
    let events = next_events(&mut monitor, 3).await;
    match &events[..] {
        [MonitorEvent::ConnectDelayed { endpoint: e1 }, MonitorEvent::Connected { endpoint: e2 }, MonitorEvent::HandshakeSucceeded { endpoint: e3, peer }] =>
        {
            assert!(e1 == &ep && e2 == &ep && e3 == &ep, "endpoints {events:?}, want {ep}");
            assert_eq!(peer.socket_type, Wire::Router);
            assert_eq!(&peer.routing_id[..], b"server");
            assert_eq!(peer.version, (3, 1));
        }
        _ => panic!("ours: {events:?}"),
    }
    assert_eq!(monitor.try_recv(), None, "ours: an event too many");
}

/// A libzmq DEALER connects to our bound ROUTER: Listening, Accepted, HandshakeSucceeded.
async fn accept_events(t: Transport) {
    let router = Z::new(zmq::ROUTER);
    let zmon = router.monitor("accept", zmq::SocketEvent::ALL);
    let ep = router.bind(t, "mon-accept-ref");
    let dealer = Z::new(zmq::DEALER);
    dealer.connect(&ep);
    let theirs = zmq_events_until(&zmon, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).await;
    use zmq::SocketEvent::{ACCEPTED, HANDSHAKE_SUCCEEDED, LISTENING};
    assert_eq!(
        only(&theirs, &[LISTENING, ACCEPTED, HANDSHAKE_SUCCEEDED]),
        [LISTENING, ACCEPTED, HANDSHAKE_SUCCEEDED],
        "libzmq: {theirs:?}"
    );

    let ours = Socket::new(SocketType::Router);
    let mut monitor = ours.monitor();
    let ep = ours.bind(&bind_endpoint(t, "mon-accept")).await.expect("bind");
    let dealer = Z::new(zmq::DEALER);
    dealer.with(|s| s.set_identity(b"client")).expect("ZMQ_ROUTING_ID");
    dealer.connect(&ep);
    let events = next_events(&mut monitor, 3).await;
    match &events[..] {
        [MonitorEvent::Listening { endpoint: e1 }, MonitorEvent::Accepted { endpoint: e2, .. }, MonitorEvent::HandshakeSucceeded { endpoint: e3, peer }] =>
        {
            assert!(e1 == &ep && e2 == &ep && e3 == &ep, "endpoints {events:?}, want {ep}");
            assert_eq!(peer.socket_type, Wire::Dealer);
            assert_eq!(&peer.routing_id[..], b"client");
        }
        _ => panic!("ours: {events:?}"),
    }
}

fn incompatible(reason: &DisconnectReason) -> bool {
    matches!(reason, DisconnectReason::Protocol(ConnectionError::PeerIncompatible(_)))
}

/// Our DEALER connects to a libzmq PUB (a DEALER cannot talk to a PUB): ConnectDelayed,
/// Connected, HandshakeFailed with PeerIncompatible naming the PUB — never HandshakeSucceeded.
/// libzmq 4.3.4 has no handshake-failed event for this: a libzmq DEALER in our place reports
/// CONNECTED then DISCONNECTED; the PUB reports DISCONNECTED, with our DEALER as with libzmq's.
async fn connect_to_incompatible(t: Transport) {
    use zmq::SocketEvent::{CONNECTED, DISCONNECTED, HANDSHAKE_SUCCEEDED};
    let publ = Z::new(zmq::PUB);
    let pmon = publ.monitor("incompatible-ref", zmq::SocketEvent::ALL);
    let ep = publ.bind(t, "mon-incompatible-ref");
    let dealer = Z::new(zmq::DEALER);
    let dmon = dealer.monitor("incompatible-ref-dealer", zmq::SocketEvent::ALL);
    dealer.connect(&ep);
    let theirs = zmq_events_until(&dmon, DISCONNECTED).await;
    assert_eq!(
        only(&theirs, &[CONNECTED, HANDSHAKE_SUCCEEDED, DISCONNECTED]),
        [CONNECTED, DISCONNECTED],
        "libzmq DEALER: {theirs:?}"
    );
    let theirs = zmq_events_until(&pmon, DISCONNECTED).await;
    assert!(!theirs.contains(&HANDSHAKE_SUCCEEDED), "libzmq PUB: {theirs:?}");

    let publ = Z::new(zmq::PUB);
    let pmon = publ.monitor("incompatible", zmq::SocketEvent::ALL);
    let ep = publ.bind(t, "mon-incompatible");
    let ours = Socket::new(SocketType::Dealer);
    let mut monitor = ours.monitor();
    ours.connect(&ep).await.expect("connect");
    let events = next_events(&mut monitor, 3).await;
    match &events[..] {
        [MonitorEvent::ConnectDelayed { .. }, MonitorEvent::Connected { .. }, MonitorEvent::HandshakeFailed { endpoint, reason }] =>
        {
            assert_eq!(endpoint, &ep);
            assert!(incompatible(reason), "ours: {reason:?}");
            assert!(reason.to_string().contains("PUB"), "ours: the reason names the peer's type: {reason}");
        }
        _ => panic!("ours: {events:?}"),
    }
    let theirs = zmq_events_until(&pmon, DISCONNECTED).await;
    assert!(!theirs.contains(&HANDSHAKE_SUCCEEDED), "libzmq PUB with our DEALER: {theirs:?}");
}

/// A libzmq SUB connects to our bound ROUTER: Listening, Accepted, HandshakeFailed
/// (PeerIncompatible); never HandshakeSucceeded. The SUB reports DISCONNECTED, and (libzmq gives
/// up an endpoint after a protocol error) does not come back.
async fn accept_incompatible(t: Transport) {
    let ours = Socket::new(SocketType::Router);
    let mut monitor = ours.monitor();
    let ep = ours.bind(&bind_endpoint(t, "mon-accept-incompatible")).await.expect("bind");
    let sub = Z::new(zmq::SUB);
    let smon = sub.monitor("accept-incompatible", zmq::SocketEvent::ALL);
    sub.connect(&ep);
    let events = next_events(&mut monitor, 3).await;
    match &events[..] {
        [MonitorEvent::Listening { .. }, MonitorEvent::Accepted { .. }, MonitorEvent::HandshakeFailed { endpoint, reason }] =>
        {
            assert_eq!(endpoint, &ep);
            assert!(incompatible(reason), "ours: {reason:?}");
        }
        _ => panic!("ours: {events:?}"),
    }
    let theirs = zmq_events_until(&smon, zmq::SocketEvent::DISCONNECTED).await;
    assert!(!theirs.contains(&zmq::SocketEvent::HANDSHAKE_SUCCEEDED), "libzmq SUB: {theirs:?}");
}

/// After a protocol error (here: an incompatible peer) libzmq 4.3.4 stops connecting to that
/// endpoint (session_base.cpp, `engine_error`: only connection and timeout errors reconnect).
/// Between two libzmq sockets this races: when the PUB reads the DEALER's READY first, it closes
/// the connection without an ERROR, the DEALER sees a connection error and reconnects (seen under
/// load on this machine: 2 of 3 runs kept reconnecting). So the reference is reported, not asserted.
/// Returns whether libzmq reconnected.
async fn gives_up_run_zmq(t: Transport) -> bool {
    let publ = Z::new(zmq::PUB);
    let ep = publ.bind(t, "mon-gives-up-ref");
    let dealer = Z::new(zmq::DEALER);
    let dmon = dealer.monitor("gives-up", zmq::SocketEvent::ALL);
    dealer.connect(&ep);
    zmq_events_until(&dmon, zmq::SocketEvent::DISCONNECTED).await;
    // ZMQ_RECONNECT_IVL is 50 ms (see `Z`): ten intervals.
    let after = dmon.events(500).await;
    let reconnected = after.contains(&zmq::SocketEvent::CONNECTED);
    eprintln!("libzmq reference: reconnected after the socket-type mismatch: {reconnected} ({after:?})");
    reconnected
}

async fn gives_up_run_ours(t: Transport) {
    let publ = Z::new(zmq::PUB);
    let ep = publ.bind(t, "mon-gives-up");
    let ours = Socket::new(SocketType::Dealer);
    let mut monitor = ours.monitor();
    ours.connect(&ep).await.expect("connect");
    events_until(&mut monitor, |e| matches!(e, MonitorEvent::HandshakeFailed { .. })).await;
    // Our reconnect interval is 100 ms: five intervals.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = interop_tests::drain_events(&mut monitor);
    assert!(
        !after.iter().any(|e| matches!(e, MonitorEvent::Connected { .. })),
        "ours reconnected after a protocol error: {after:?}"
    );
}

/// Ours gives up after the ERROR our peer's type mismatch gets (asserted); libzmq between two of
/// its own sockets is reported beside it (see `gives_up_run_zmq`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reconnect_after_protocol_error_ours() {
    gives_up_run_zmq(Transport::Tcp).await;
    gives_up_run_ours(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------------------------
// Disconnects

/// The peer went away: a clean close or a reset, depending on what was in flight.
fn peer_gone(reason: &DisconnectReason) -> bool {
    matches!(reason, DisconnectReason::Eof | DisconnectReason::Io(_))
}

/// Our DEALER is connected to a libzmq ROUTER that closes: Disconnected (the peer went away),
/// then reconnect attempts, each ConnectDelayed and then ConnectRetried (nothing listens). A
/// libzmq DEALER reports DISCONNECTED, then its own retries.
async fn peer_closes_connected(t: Transport) {
    let router = Z::new(zmq::ROUTER);
    let ep = router.bind(t, "mon-closes-ref");
    let dealer = Z::new(zmq::DEALER);
    let dmon = dealer.monitor("closes", zmq::SocketEvent::ALL);
    dealer.connect(&ep);
    zmq_events_until(&dmon, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).await;
    router.close();
    let theirs = zmq_events_until(&dmon, zmq::SocketEvent::DISCONNECTED).await;
    assert!(!theirs.contains(&zmq::SocketEvent::HANDSHAKE_SUCCEEDED), "libzmq: {theirs:?}");

    let router = Z::new(zmq::ROUTER);
    let ep = router.bind(t, "mon-closes");
    let ours = Socket::new(SocketType::Dealer);
    let mut monitor = ours.monitor();
    ours.connect(&ep).await.expect("connect");
    let up = next_events(&mut monitor, 3).await;
    assert!(matches!(up.last(), Some(MonitorEvent::HandshakeSucceeded { .. })), "ours: {up:?}");
    router.close();
    let events = events_until(&mut monitor, |e| matches!(e, MonitorEvent::ConnectRetried { .. })).await;
    match &events[..] {
        [MonitorEvent::Disconnected { endpoint, peer, routing_id, reason }, rest @ ..] => {
            assert_eq!(endpoint, &ep);
            // A connecting endpoint's peer is the endpoint; the ROUTER announced no routing id.
            assert_eq!((peer, &routing_id[..]), (&ep, &b""[..]));
            assert!(peer_gone(reason), "ours: {reason:?}");
            assert!(
                matches!(rest, [MonitorEvent::ConnectDelayed { .. }, MonitorEvent::ConnectRetried { .. }]),
                "ours, after the disconnect: {events:?}"
            );
        }
        _ => panic!("ours: {events:?}"),
    }
}

/// A libzmq DEALER connected to our bound ROUTER closes: Disconnected, and nothing else (no
/// reconnect from the bound side). libzmq's ROUTER reports DISCONNECTED alike.
async fn peer_closes_accepted(t: Transport) {
    let router = Z::new(zmq::ROUTER);
    let rmon = router.monitor("closes-accepted", zmq::SocketEvent::ALL);
    let ep = router.bind(t, "mon-closes-accepted-ref");
    let dealer = Z::new(zmq::DEALER);
    dealer.connect(&ep);
    zmq_events_until(&rmon, zmq::SocketEvent::HANDSHAKE_SUCCEEDED).await;
    dealer.close();
    zmq_events_until(&rmon, zmq::SocketEvent::DISCONNECTED).await;

    let ours = Socket::new(SocketType::Router);
    let mut monitor = ours.monitor();
    let ep = ours.bind(&bind_endpoint(t, "mon-closes-accepted")).await.expect("bind");
    let dealer = Z::new(zmq::DEALER);
    dealer.connect(&ep);
    let up = next_events(&mut monitor, 3).await;
    let from = match &up[..] {
        [MonitorEvent::Listening { .. }, MonitorEvent::Accepted { peer, .. }, MonitorEvent::HandshakeSucceeded { .. }] => {
            peer.clone()
        }
        _ => panic!("ours: {up:?}"),
    };
    // The id our ROUTER gave the peer (it announced none) is the one its disconnect names.
    dealer.send(vec![b"hi".to_vec()]).await;
    let got = tokio::time::timeout(interop_tests::T, ours.recv()).await.expect("timely").expect("recv");
    let known_as = got.first().cloned().expect("routing id frame");
    dealer.close();
    let events = next_events(&mut monitor, 1).await;
    match &events[..] {
        [MonitorEvent::Disconnected { endpoint, peer, routing_id, reason }] => {
            assert_eq!(endpoint, &ep);
            assert_eq!((peer, routing_id), (&from, &known_as));
            assert!(peer_gone(reason), "ours: {reason:?}");
        }
        _ => panic!("ours: {events:?}"),
    }
    assert_eq!(monitor.try_recv(), None, "ours: an event after the disconnect");
}

/// We close a connected DEALER and a bound ROUTER with a libzmq peer each: Disconnected
/// (Closed) and Closed for each endpoint, then the stream ends. libzmq's peers see DISCONNECTED.
async fn our_close(t: Transport) {
    let router = Z::new(zmq::ROUTER);
    let rmon = router.monitor("our-close-router", zmq::SocketEvent::ALL);
    let ep = router.bind(t, "mon-our-close");
    let dealer = Socket::new(SocketType::Dealer);
    let mut monitor = dealer.monitor();
    dealer.connect(&ep).await.expect("connect");
    next_events(&mut monitor, 3).await;
    dealer.close().await;
    let events = within("the monitor to end", async {
        let mut out = Vec::new();
        while let Some(e) = monitor.recv().await {
            out.push(e);
        }
        out
    })
    .await;
    match &events[..] {
        [MonitorEvent::Disconnected { reason: DisconnectReason::Closed, .. }, MonitorEvent::Closed { endpoint }] => {
            assert_eq!(endpoint, &ep);
        }
        _ => panic!("ours, connecting: {events:?}"),
    }
    zmq_events_until(&rmon, zmq::SocketEvent::DISCONNECTED).await;

    let router = Socket::new(SocketType::Router);
    let mut monitor = router.monitor();
    let ep = router.bind(&bind_endpoint(t, "mon-our-close-bound")).await.expect("bind");
    let dealer = Z::new(zmq::DEALER);
    let dmon = dealer.monitor("our-close-dealer", zmq::SocketEvent::ALL);
    dealer.connect(&ep);
    next_events(&mut monitor, 3).await;
    router.close().await;
    let events = within("the monitor to end", async {
        let mut out = Vec::new();
        while let Some(e) = monitor.recv().await {
            out.push(e);
        }
        out
    })
    .await;
    let disconnected =
        events.iter().position(|e| matches!(e, MonitorEvent::Disconnected { reason: DisconnectReason::Closed, .. }));
    let closed = events.iter().position(|e| matches!(e, MonitorEvent::Closed { endpoint } if endpoint == &ep));
    assert!(disconnected.is_some() && closed.is_some() && events.len() == 2, "ours, bound: {events:?}");
    zmq_events_until(&dmon, zmq::SocketEvent::DISCONNECTED).await;
}
