//! In-memory tests of the connection core: two `Connection`s wired back to back, a virtual clock.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::proto::mechanism;
use crate::Message;

pub(crate) fn shuttle(from: &mut Connection, to: &mut Connection, now: Instant) -> Result<(), ConnectionError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = from.poll_transmit() {
        buf.extend_from_slice(&chunk);
    }
    to.handle_input(&mut buf, now)
}

/// [`shuttle`], then every event `to` decodes from it, decoding on while it pauses at
/// [`MAX_QUEUED_EVENTS`].
pub(crate) fn shuttle_all(
    from: &mut Connection,
    to: &mut Connection,
    now: Instant,
) -> Result<Vec<Event>, ConnectionError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = from.poll_transmit() {
        buf.extend_from_slice(&chunk);
    }
    let mut events = Vec::new();
    to.handle_input(&mut buf, now)?;
    loop {
        events.extend(std::iter::from_fn(|| to.poll_event()));
        if !to.input_paused() {
            return Ok(events);
        }
        to.handle_input(&mut buf, now)?;
    }
}

pub(crate) fn pair(a: Config, b: Config, now: Instant) -> (Connection, Connection) {
    let mut a = Connection::new(a, now);
    let mut b = Connection::new(b, now);
    for _ in 0..4 {
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
fn an_output_buffer_grown_for_a_large_message_is_freed_once_idle_for_a_while() {
    let now = Instant::now();
    let (mut a, mut b) = pair(Config::new(SocketType::Dealer), Config::new(SocketType::Router), now);
    let small = Message::from(vec![Bytes::from_static(b"ping")]);
    assert!(a.send_message(&small));
    shuttle(&mut a, &mut b, now).expect("small");
    a.output_drained(|| now);
    assert_eq!(a.poll_timeout(), None, "a small message does not grow the buffer: no release to wait for");
    assert!(!a.output_grown());
    // A 1,000-octet body is copied into the output buffer (under the by-reference size).
    let large = Message::from(vec![Bytes::from(vec![7u8; 1000])]);
    assert!(a.send_message(&large));
    let chunk = a.poll_transmit().expect("queued");
    // No wait starts while its bytes are being written.
    a.output_drained(|| now);
    assert_eq!(a.poll_timeout(), None, "still being written");
    drop(chunk);
    assert!(a.output_grown(), "grown for the large message");
    // Drained: kept for a while, so that a stream of such messages does not allocate per message.
    let t1 = now + Duration::from_millis(10);
    a.output_drained(|| t1);
    let due = t1 + crate::proto::connection::OUT_IDLE_RELEASE;
    assert_eq!(a.poll_timeout(), Some(due));
    a.output_drained(|| panic!("a wait is running: the clock is not read again"));
    a.handle_timeout(due - Duration::from_millis(1)).expect("early");
    assert!(a.output_grown(), "kept until the instant");
    // Used meanwhile: kept, and the wait starts over.
    assert!(a.send_message(&large));
    shuttle(&mut a, &mut b, t1).expect("used");
    a.handle_timeout(due).expect("timers");
    assert!(a.output_grown(), "used during the wait: kept");
    let due2 = due + crate::proto::connection::OUT_IDLE_RELEASE;
    assert_eq!(a.poll_timeout(), Some(due2));
    // Unused for a whole wait: freed, and no more timer.
    a.handle_timeout(due2).expect("timers");
    assert!(!a.output_grown(), "freed once idle for a while");
    assert_eq!(a.poll_timeout(), None);
    // The connection goes on: the next message is sent whole.
    assert!(a.send_message(&large));
    shuttle(&mut a, &mut b, due2).expect("again");
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Message(m) if *m == large)).count(), 2, "{events:?}");
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

/// A ready DEALER fed by hand: `(connection, what it has sent so far)`.
fn ready_dealer(now: Instant) -> Connection {
    let (a, mut b) = pair(Config::new(SocketType::Dealer), Config::new(SocketType::Dealer), now);
    while b.poll_event().is_some() {}
    drop(a);
    b
}

fn ping(context: &[u8]) -> Vec<u8> {
    let mut body = b"\x04PING\x00\x00".to_vec();
    body.extend_from_slice(context);
    let mut f = vec![0x04, body.len() as u8];
    f.extend_from_slice(&body);
    f
}

#[test]
fn one_pong_owed_at_most_and_it_answers_the_latest_ping() {
    let now = Instant::now();
    let mut conn = ready_dealer(now);
    let mut wire = BytesMut::new();
    for i in 0..100_000u32 {
        wire.extend_from_slice(&ping(&i.to_be_bytes()));
    }
    conn.handle_input(&mut wire, now).expect("pings");
    assert!(wire.is_empty());
    // 100,000 PINGs, one PONG: 7 octets and the context.
    assert_eq!(conn.pending_transmit(), 7 + 4);
    let pong = conn.poll_transmit().expect("a PONG");
    assert_eq!(&pong[..], b"\x04\x09\x04PONG\x00\x01\x86\x9f");
    assert_eq!(conn.poll_transmit(), None);
    // Owed again after the next PING.
    let mut wire = BytesMut::from(&ping(b"x")[..]);
    conn.handle_input(&mut wire, now).expect("ping");
    assert_eq!(conn.poll_transmit().as_deref(), Some(&b"\x04\x06\x04PONGx"[..]));
}

#[test]
fn decoding_pauses_with_max_queued_events() {
    let now = Instant::now();
    let mut conn = ready_dealer(now);
    let n = 3 * MAX_QUEUED_EVENTS + 5;
    let mut wire = BytesMut::new();
    for _ in 0..n {
        wire.extend_from_slice(b"\x00\x01m");
    }
    let mut got = 0;
    conn.handle_input(&mut wire, now).expect("messages");
    loop {
        let mut queued = 0;
        while conn.poll_event().is_some() {
            queued += 1;
        }
        assert!(queued <= MAX_QUEUED_EVENTS, "{queued} events queued at once");
        // What is queued at once stays in the L1 cache (each message is written into the queue
        // and read back out).
        let held = queued * std::mem::size_of::<Event>();
        assert!(held <= 8 << 10, "{queued} events of {} octets queued at once", std::mem::size_of::<Event>());
        got += queued;
        if !conn.input_paused() {
            break;
        }
        assert_eq!(wire.len(), (n - got) * 3, "the rest is left in the buffer");
        conn.handle_input(&mut wire, now).expect("more messages");
    }
    assert_eq!(got, n);
    assert!(wire.is_empty());
}

#[test]
fn every_frame_costs_at_least_frame_cost() {
    let now = Instant::now();
    let mut cfg = Config::new(SocketType::Pull);
    let limit = 10 * FRAME_COST;
    cfg.max_msg_size = Some(limit);
    let (mut push, mut pull) = pair(Config::new(SocketType::Push), cfg, now);
    while pull.poll_event().is_some() {}
    // Ten empty frames fit exactly; the eleventh does not, however small.
    let ten: Vec<Bytes> = (0..10).map(|_| Bytes::new()).collect();
    assert!(push.send_message(&Message::from(ten.clone())));
    shuttle(&mut push, &mut pull, now).expect("ten empty frames fit");
    assert_eq!(pull.poll_event(), Some(Event::Message(Message::from(ten))));
    let mut wire = BytesMut::new();
    for _ in 0..1_000_000 {
        wire.extend_from_slice(b"\x01\x00");
    }
    let err = pull.handle_input(&mut wire, now).expect_err("endless empty frames");
    assert_eq!(err, ConnectionError::InvalidMessage(crate::codec::CodecError::TooLarge { size: 0, limit: 0 }));
    assert_eq!(message_cost([&b""[..], &[0u8; 100][..]]), FRAME_COST + 100);
}

#[test]
fn default_limits_refuse_a_huge_frame_and_a_huge_ready_at_once() {
    let now = Instant::now();
    assert_eq!(Config::new(SocketType::Pull).max_msg_size, Some(DEFAULT_MAX_MSG_SIZE));
    let mut conn = ready_dealer(now);
    let mut header = BytesMut::from(&[0x02u8][..]);
    header.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
    let err = conn.handle_input(&mut header, now).expect_err("2^63-1 octets");
    assert_eq!(
        err,
        ConnectionError::InvalidMessage(crate::codec::CodecError::TooLarge {
            size: i64::MAX as u64,
            limit: DEFAULT_MAX_MSG_SIZE
        })
    );
    // Before the handshake, a command over the handshake limit is refused from its header.
    let mut fresh = Connection::new(Config::new(SocketType::Dealer), now);
    let mut wire = BytesMut::from(&b"\xff\0\0\0\0\0\0\0\x01\x7f\x03\x01NULL"[..]);
    wire.resize(64, 0);
    wire.extend_from_slice(&[0x06]);
    wire.extend_from_slice(&(DEFAULT_MAX_HANDSHAKE_COMMAND + 1).to_be_bytes());
    let err = fresh.handle_input(&mut wire, now).expect_err("huge READY");
    assert!(
        matches!(err, ConnectionError::InvalidMessage(crate::codec::CodecError::TooLarge { limit, .. }) if limit == DEFAULT_MAX_HANDSHAKE_COMMAND),
        "{err:?}"
    );
}

pub(crate) fn curve_configs(
    client_type: SocketType,
    server_type: SocketType,
) -> (Config, Config, mechanism::CurveKeyPair) {
    let server_keys = mechanism::CurveKeyPair::generate();
    let client_keys = mechanism::CurveKeyPair::generate();
    let mut c = Config::new(client_type);
    c.security = mechanism::Security::CurveClient { keys: client_keys.clone(), server: server_keys.public };
    let mut s = Config::new(server_type);
    s.security = mechanism::Security::CurveServer { keys: server_keys };
    (c, s, client_keys)
}

pub(crate) fn drain(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn curve_handshake_traffic_and_heartbeats() {
    let now = Instant::now();
    let (mut c, s, _) = curve_configs(SocketType::Dealer, SocketType::Router);
    c.heartbeat.interval = Some(Duration::from_secs(1));
    let (mut a, mut b) = pair(c, s, now);
    assert!(a.is_ready() && b.is_ready());
    assert!(matches!(drain(&mut b).as_slice(), [Event::Ready(info)] if info.socket_type == SocketType::Dealer));
    let msg = Message::from(vec![Bytes::from_static(b"a"), Bytes::new(), Bytes::from(vec![9u8; 20000])]);
    assert!(a.send_message(&msg));
    assert!(b.send_message(&msg));
    let mut wire = BytesMut::new();
    while let Some(chunk) = a.poll_transmit() {
        wire.extend_from_slice(&chunk);
    }
    // Nothing of the message travels in clear.
    assert!(!wire.windows(64).any(|w| w == [9u8; 64]));
    b.handle_input(&mut wire, now).expect("traffic");
    assert_eq!(b.poll_event(), Some(Event::Message(msg.clone())));
    shuttle(&mut b, &mut a, now).expect("reply");
    assert!(matches!(drain(&mut a).as_slice(), [Event::Ready(_), Event::Message(m)] if *m == msg));
    // A boxed PING gets a boxed PONG.
    a.handle_timeout(now + Duration::from_secs(1)).expect("ping");
    shuttle(&mut a, &mut b, now).expect("ping delivered");
    // The PONG owed counts as what poll_transmit gives, box included.
    let owed = b.pending_transmit();
    let mut pong = BytesMut::new();
    while let Some(chunk) = b.poll_transmit() {
        pong.extend_from_slice(&chunk);
    }
    assert!(owed > 7 && pong.len() == owed, "{owed} owed, {} sent", pong.len());
    a.handle_input(&mut pong, now).expect("pong delivered");
}

#[test]
fn curve_subscriptions_are_boxed_commands() {
    let now = Instant::now();
    let (c, s, _) = curve_configs(SocketType::Sub, SocketType::Pub);
    let (mut sub, mut publ) = pair(c, s, now);
    drain(&mut publ);
    assert!(sub.send_subscription(b"topic", true));
    shuttle(&mut sub, &mut publ, now).expect("subscription");
    assert_eq!(publ.poll_event(), Some(Event::Subscribe(Bytes::from_static(b"topic"))));
}

#[test]
fn curve_wrong_server_key_fails() {
    let now = Instant::now();
    let (mut c, s, keys) = curve_configs(SocketType::Req, SocketType::Rep);
    c.security = mechanism::Security::CurveClient { keys, server: mechanism::CurveKeyPair::generate().public };
    let mut a = Connection::new(c, now);
    let mut b = Connection::new(s, now);
    shuttle(&mut a, &mut b, now).expect("greeting");
    shuttle(&mut b, &mut a, now).expect("greeting");
    let err = shuttle(&mut a, &mut b, now).expect_err("the HELLO's signature must not open");
    assert!(matches!(err, ConnectionError::Crypto(_)), "{err:?}");
    assert!(b.is_closed());
}

#[test]
fn curve_tampered_and_replayed_messages_close() {
    let now = Instant::now();
    let (c, s, _) = curve_configs(SocketType::Push, SocketType::Pull);
    let (mut a, mut b) = pair(c, s, now);
    drain(&mut b);
    assert!(a.send_message(&Message::from("one")));
    let mut first = BytesMut::new();
    while let Some(chunk) = a.poll_transmit() {
        first.extend_from_slice(&chunk);
    }
    let mut replay = first.clone();
    b.handle_input(&mut first, now).expect("first");
    assert_eq!(b.poll_event(), Some(Event::Message(Message::from("one"))));
    let err = b.handle_input(&mut replay, now).expect_err("a replayed nonce must close");
    assert!(matches!(err, ConnectionError::Crypto(_)), "{err:?}");

    let (c, s, _) = curve_configs(SocketType::Push, SocketType::Pull);
    let (mut a, mut b) = pair(c, s, now);
    assert!(a.send_message(&Message::from("two")));
    let mut wire = BytesMut::new();
    while let Some(chunk) = a.poll_transmit() {
        wire.extend_from_slice(&chunk);
    }
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let err = b.handle_input(&mut wire, now).expect_err("a flipped bit must close");
    assert!(matches!(err, ConnectionError::Crypto(_)), "{err:?}");
}

#[test]
fn plain_handshake_with_zap() {
    let now = Instant::now();
    let mut c = Config::new(SocketType::Req);
    c.security = mechanism::Security::PlainClient {
        username: Bytes::from_static(b"admin"),
        password: Bytes::from_static(b"secret"),
    };
    let mut s = Config::new(SocketType::Rep);
    s.security = mechanism::Security::PlainServer;
    s.zap = Some(mechanism::ZapSettings::default());
    let mut a = Connection::new(c.clone(), now);
    let mut b = Connection::new(s.clone(), now);
    shuttle(&mut a, &mut b, now).expect("greeting, HELLO");
    shuttle(&mut b, &mut a, now).expect("greeting");
    shuttle(&mut a, &mut b, now).expect("HELLO");
    let Some(Event::Authenticate(req)) = b.poll_event() else { panic!("expected a ZAP request") };
    assert_eq!(req.credentials, vec![Bytes::from_static(b"admin"), Bytes::from_static(b"secret")]);
    b.handle_zap_reply(mechanism::ZapReply::allow("joe"), now).expect("allowed");
    for _ in 0..3 {
        shuttle(&mut b, &mut a, now).expect("b->a");
        shuttle(&mut a, &mut b, now).expect("a->b");
    }
    assert!(a.is_ready() && b.is_ready());
    match b.poll_event() {
        Some(Event::Ready(info)) => assert_eq!(info.properties.get("User-Id").map(|v| &v[..]), Some(&b"joe"[..])),
        other => panic!("{other:?}"),
    }

    // Refused: ERROR with the status, both sides closed.
    let mut a = Connection::new(c, now);
    let mut b = Connection::new(s, now);
    shuttle(&mut a, &mut b, now).expect("greeting, HELLO");
    shuttle(&mut b, &mut a, now).expect("greeting");
    shuttle(&mut a, &mut b, now).expect("HELLO");
    assert!(matches!(b.poll_event(), Some(Event::Authenticate(_))));
    let err = b.handle_zap_reply(mechanism::ZapReply::deny(400, "no"), now).expect_err("refused");
    assert_eq!(err, ConnectionError::Unauthorized { status: 400, text: "no".into() });
    let err = shuttle(&mut b, &mut a, now).expect_err("ERROR");
    assert_eq!(err, ConnectionError::PeerError(Bytes::from_static(b"400")));
}

#[test]
fn mechanism_and_role_mismatches() {
    let now = Instant::now();
    let (c, _, _) = curve_configs(SocketType::Req, SocketType::Rep);
    let (c2, _, _) = curve_configs(SocketType::Rep, SocketType::Req);
    let mut a = Connection::new(c, now);
    let mut b = Connection::new(c2, now);
    shuttle(&mut a, &mut b, now).expect("greeting");
    let err = shuttle(&mut b, &mut a, now).expect_err("two clients: HELLO where WELCOME is expected");
    assert!(matches!(err, ConnectionError::PeerMisbehaved(_)), "{err:?}");
    let (c, _, _) = curve_configs(SocketType::Req, SocketType::Rep);
    let mut a = Connection::new(c, now);
    let mut b = Connection::new(Config::new(SocketType::Rep), now);
    let err = shuttle(&mut a, &mut b, now).expect_err("CURVE vs NULL");
    assert!(matches!(err, ConnectionError::PeerIncompatible(_)), "{err:?}");
}

/// libzmq 4.3's PLAIN server sends its ERROR as `\x5eRROR` + reason (captured from 4.3.5).
#[test]
fn libzmq_plain_error_quirk_is_an_error() {
    let now = Instant::now();
    let mut c = Config::new(SocketType::Req);
    c.security = mechanism::Security::PlainClient { username: Bytes::from_static(b"u"), password: Bytes::new() };
    let mut a = Connection::new(c, now);
    let mut wire = BytesMut::new();
    crate::codec::Greeting::new(crate::codec::MechanismName::PLAIN, false).encode(&mut wire);
    wire.extend_from_slice(b"\x04\x09\x5eRROR\x03400");
    let err = a.handle_input(&mut wire, now).expect_err("refused");
    assert_eq!(err, ConnectionError::PeerError(Bytes::from_static(b"400")));
}

/// A client whose vouch is not made with the long-term key it claims (C in INITIATE is someone
/// else's): the server cannot open the vouch and closes.
#[test]
fn curve_bad_vouch_fails() {
    let now = Instant::now();
    let (mut c, s, keys) = curve_configs(SocketType::Dealer, SocketType::Router);
    let mut forged = keys;
    forged.public = mechanism::CurveKeyPair::generate().public;
    let mechanism::Security::CurveClient { server, .. } = c.security.clone() else { unreachable!() };
    c.security = mechanism::Security::CurveClient { keys: forged, server };
    let mut a = Connection::new(c, now);
    let mut b = Connection::new(s, now);
    shuttle(&mut a, &mut b, now).expect("greeting");
    shuttle(&mut b, &mut a, now).expect("greeting");
    shuttle(&mut a, &mut b, now).expect("HELLO");
    shuttle(&mut b, &mut a, now).expect("WELCOME");
    let err = shuttle(&mut a, &mut b, now).expect_err("INITIATE with a bad vouch");
    assert_eq!(err, ConnectionError::Crypto("INITIATE vouch does not open".into()));
}

/// Every message goes through the event queue: a ZAP request (rare) must not make each event
/// larger than a message needs.
#[test]
fn events_stay_small() {
    assert!(std::mem::size_of::<Event>() <= std::mem::size_of::<PeerInfo>().max(std::mem::size_of::<Message>()) + 8);
}

/// The peer's properties ride on each of its messages, shared; `User-Id` and `Peer-Address` come
/// from our side (ZAP, the transport) whatever the peer announces, and ZAP's come first.
#[test]
fn message_properties_are_ours_where_they_must_be() {
    let now = Instant::now();
    let mut c = Config::new(SocketType::Req);
    c.security =
        mechanism::Security::PlainClient { username: Bytes::from_static(b"u"), password: Bytes::from_static(b"p") };
    for (name, value) in [("User-Id", "root"), ("Peer-Address", "6.6.6.6"), ("X-Colour", "blue")] {
        c.properties.insert(name, Bytes::from_static(value.as_bytes())).expect("valid name");
    }
    let mut s = Config::new(SocketType::Rep);
    s.security = mechanism::Security::PlainServer;
    s.zap = Some(mechanism::ZapSettings::default());
    s.peer_address = Bytes::from_static(b"10.0.0.1");
    for zap_user in ["joe", ""] {
        let mut a = Connection::new(c.clone(), now);
        let mut b = Connection::new(s.clone(), now);
        shuttle(&mut a, &mut b, now).expect("greeting, HELLO");
        shuttle(&mut b, &mut a, now).expect("greeting");
        shuttle(&mut a, &mut b, now).expect("HELLO");
        let Some(Event::Authenticate(_)) = b.poll_event() else { panic!("expected a ZAP request") };
        b.handle_zap_reply(mechanism::ZapReply::allow(zap_user), now).expect("allowed");
        for _ in 0..3 {
            shuttle(&mut b, &mut a, now).expect("b->a");
            shuttle(&mut a, &mut b, now).expect("a->b");
        }
        let Some(Event::Ready(info)) = b.poll_event() else { panic!("expected Ready") };
        let names: Vec<&str> = info.properties.metadata().iter().map(|(n, _)| n).collect();
        let want_user = (!zap_user.is_empty()).then_some(zap_user.as_bytes());
        if want_user.is_some() {
            assert_eq!(names[..2], ["Peer-Address", "User-Id"], "ours first");
        }
        assert!(a.send_message(&Message::from(["one"])) && a.send_message(&Message::from(["two"])));
        shuttle(&mut a, &mut b, now).expect("traffic");
        for _ in 0..2 {
            let Some(Event::Message(m)) = b.poll_event() else { panic!("expected a message") };
            let p = m.properties().expect("a received message has its peer's properties");
            assert!(std::sync::Arc::ptr_eq(&p.0, &info.properties.0), "shared, not copied");
            assert_eq!(m.property("user-id").map(|v| &v[..]), want_user, "User-Id only from ZAP");
            assert_eq!(m.property("Peer-Address").map(|v| &v[..]), Some(&b"10.0.0.1"[..]));
            assert_eq!(m.property("X-Colour").map(|v| &v[..]), Some(&b"blue"[..]));
            assert_eq!(m.property("Socket-Type").map(|v| &v[..]), Some(&b"REQ"[..]));
            assert_eq!(m.property("Routing-Id"), m.property("Identity"));
            assert_eq!(m, Message::from([&m.frames()[0][..]].map(|f| std::str::from_utf8(f).expect("utf8"))));
        }
        // The client's view of the server: no transport address given, none announced.
        let Some(Event::Ready(server)) = a.poll_event() else { panic!("expected Ready") };
        assert_eq!(server.properties.get("Peer-Address"), None);
    }
}
