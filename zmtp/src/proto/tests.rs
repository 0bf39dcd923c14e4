//! In-memory tests of the connection core: two `Connection`s wired back to back, a virtual clock.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::Message;

fn shuttle(from: &mut Connection, to: &mut Connection, now: Instant) -> Result<(), ConnectionError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = from.poll_transmit() {
        buf.extend_from_slice(&chunk);
    }
    to.handle_input(&mut buf, now)
}

fn pair(a: Config, b: Config, now: Instant) -> (Connection, Connection) {
    let mut a = Connection::new(a, now);
    let mut b = Connection::new(b, now);
    for _ in 0..3 {
        shuttle(&mut a, &mut b, now).expect("a->b");
        shuttle(&mut b, &mut a, now).expect("b->a");
    }
    (a, b)
}

#[test]
fn null_handshake_and_traffic() {
    let now = Instant::now();
    let mut dealer = Config::new(SocketType::Dealer);
    dealer.routing_id = Bytes::from_static(b"me");
    let (mut a, mut b) = pair(dealer, Config::new(SocketType::Router), now);
    assert!(a.is_ready() && b.is_ready());
    match b.poll_event() {
        Some(Event::Ready(info)) => {
            assert_eq!(info.socket_type, SocketType::Dealer);
            assert_eq!(&info.routing_id[..], b"me");
            assert_eq!(info.version, (3, 1));
        }
        other => panic!("expected Ready, got {other:?}"),
    }
    assert!(matches!(a.poll_event(), Some(Event::Ready(_))));
    let msg = Message::from(vec![Bytes::from_static(b"a"), Bytes::from(vec![9u8; 20000])]);
    assert!(a.send_message(&msg));
    shuttle(&mut a, &mut b, now).expect("traffic");
    assert_eq!(b.poll_event(), Some(Event::Message(msg)));
}

#[test]
fn incompatible_socket_types_get_error() {
    let now = Instant::now();
    let mut a = Connection::new(Config::new(SocketType::Pub), now);
    let mut b = Connection::new(Config::new(SocketType::Req), now);
    shuttle(&mut a, &mut b, now).expect("greeting");
    let err = shuttle(&mut b, &mut a, now).expect_err("PUB must refuse REQ");
    assert!(matches!(err, ConnectionError::PeerIncompatible(_)), "{err:?}");
    assert!(a.is_closed());
    // a queued an ERROR command after its READY.
    let mut wire = BytesMut::new();
    while let Some(chunk) = a.poll_transmit() {
        wire.extend_from_slice(&chunk);
    }
    assert!(wire.windows(5).any(|w| w == b"ERROR"));
    assert!(b.handle_input(&mut wire, now).is_err());
}

#[test]
fn subscriptions_by_command_and_by_message() {
    let now = Instant::now();
    let (mut publ, mut sub) = pair(Config::new(SocketType::Pub), Config::new(SocketType::Sub), now);
    while publ.poll_event().is_some() {}
    assert!(sub.send_subscription(b"topic", true));
    assert!(sub.send_subscription(b"topic", false));
    assert!(sub.send_message(&Message::from(&b"\x01legacy"[..])));
    shuttle(&mut sub, &mut publ, now).expect("subs");
    assert_eq!(publ.poll_event(), Some(Event::Subscribe(Bytes::from_static(b"topic"))));
    assert_eq!(publ.poll_event(), Some(Event::Cancel(Bytes::from_static(b"topic"))));
    assert_eq!(publ.poll_event(), Some(Event::Subscribe(Bytes::from_static(b"legacy"))));
}

#[test]
fn heartbeat_ping_pong_and_timeout() {
    let t0 = Instant::now();
    let mut cfg = Config::new(SocketType::Dealer);
    cfg.heartbeat = HeartbeatConfig {
        interval: Some(Duration::from_secs(1)),
        ttl: Some(Duration::from_secs(5)),
        timeout: Some(Duration::from_secs(3)),
    };
    let (mut a, mut b) = pair(cfg, Config::new(SocketType::Dealer), t0);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    let t1 = t0 + Duration::from_secs(1);
    a.handle_timeout(t1).expect("ping");
    shuttle(&mut a, &mut b, t1).expect("ping delivered");
    // b now expects traffic within the 5 s TTL, and has queued a PONG.
    assert_eq!(b.poll_timeout(), Some(t1 + Duration::from_secs(5)));
    shuttle(&mut b, &mut a, t1).expect("pong delivered");
    // a pings again at t2; b stops answering: a drops it 3 s later.
    let t2 = t1 + Duration::from_secs(1);
    a.handle_timeout(t2).expect("ping");
    assert_eq!(a.poll_timeout(), Some(t2 + Duration::from_secs(1)));
    a.handle_timeout(t2 + Duration::from_secs(1)).expect("ping again, still waiting");
    assert_eq!(a.handle_timeout(t2 + Duration::from_secs(3)), Err(ConnectionError::HeartbeatTimeout));
    // b, hearing nothing past the TTL, drops a too.
    assert_eq!(b.handle_timeout(t1 + Duration::from_secs(5)), Err(ConnectionError::HeartbeatTimeout));
}

#[test]
fn handshake_timeout() {
    let t0 = Instant::now();
    let mut a = Connection::new(Config::new(SocketType::Req), t0);
    let mut partial = BytesMut::from(&b"\xff\0\0\0\0\0\0\0\0\x7f\x03"[..]);
    a.handle_input(&mut partial, t0).expect("partial greeting is fine");
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    assert_eq!(a.handle_timeout(t0 + Duration::from_secs(30)), Err(ConnectionError::HandshakeTimeout));
}

#[test]
fn max_message_size_counts_all_frames() {
    let now = Instant::now();
    let mut cfg = Config::new(SocketType::Pull);
    cfg.max_msg_size = Some(100);
    let (mut push, mut pull) = pair(Config::new(SocketType::Push), cfg, now);
    let msg = Message::from(vec![Bytes::from(vec![0u8; 60]), Bytes::from(vec![0u8; 60])]);
    assert!(push.send_message(&msg));
    let err = shuttle(&mut push, &mut pull, now).expect_err("too large");
    assert!(matches!(err, ConnectionError::InvalidMessage(crate::codec::CodecError::TooLarge { .. })));
}

/// Regression (fuzz/regressions/pair): a message decoded in the same read as a protocol violation
/// used to be dropped, so what was delivered depended on how the input was split into reads.
#[test]
fn events_before_a_violation_survive_it() {
    let now = Instant::now();
    let mut cfg = Config::new(SocketType::Pull);
    cfg.max_msg_size = Some(100);
    let (mut push, mut pull) = pair(Config::new(SocketType::Push), cfg, now);
    while pull.poll_event().is_some() {}
    assert!(push.send_message(&Message::from("ok")));
    assert!(push.send_message(&Message::from(vec![0u8; 200])));
    let err = shuttle(&mut push, &mut pull, now).expect_err("too large");
    assert!(matches!(err, ConnectionError::InvalidMessage(crate::codec::CodecError::TooLarge { .. })));
    assert_eq!(pull.poll_event(), Some(Event::Message(Message::from("ok"))));
    assert_eq!(pull.poll_event(), None);
    let mut more = BytesMut::from(&b"\x00\x01x"[..]);
    assert_eq!(pull.handle_input(&mut more, now), Ok(()));
    assert_eq!(pull.poll_event(), None, "nothing after close");
}
