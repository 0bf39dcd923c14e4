//! Byte-level bad input: a raw TCP peer sends broken ZMTP to one of our sockets that also serves a
//! healthy peer. Each test checks that we close the raw connection, that the monitor reports why
//! with the right kind of reason, and that the healthy peer keeps exchanging messages.
//!
//! The socket under test is a REP bound on `tcp://127.0.0.1:*`; the healthy peer is a REQ. Raw
//! peers that must get past the handshake announce themselves as DEALER, so that their
//! `HandshakeSucceeded` event can be told apart from the healthy peer's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zmtp::codec::CodecError;
use zmtp::proto::{ConnectionError, Incompatibility};
use zmtp::socket::{DisconnectReason, Monitor, MonitorEvent};
use zmtp::{Message, Options, Socket, SocketType};

mod raw;
use raw::{
    command_frame, command_name, frames_after_greeting, greeting, read_until_closed, ready, rss_kib, send_raw, T,
};

fn options() -> Options {
    Options::default().linger(Some(Duration::ZERO))
}

// ---------------------------------------------------------------------------------------------
// The socket under test and its healthy peer.

struct Setup {
    rep: Socket,
    req: Socket,
    monitor: Monitor,
    addr: SocketAddr,
    round: usize,
}

impl Setup {
    /// A REP bound on tcp://127.0.0.1:* with `rep_options`, and a healthy REQ that has exchanged
    /// a message with it.
    async fn new(rep_options: Options) -> Setup {
        let rep = Socket::with_options(SocketType::Rep, rep_options);
        let monitor = rep.monitor();
        let endpoint = rep.bind("tcp://127.0.0.1:*").await.expect("bind");
        let addr: SocketAddr = endpoint.strip_prefix("tcp://").expect("tcp endpoint").parse().expect("socket address");
        let req = Socket::with_options(SocketType::Req, options());
        req.connect(&endpoint).await.expect("connect");
        let mut s = Setup { rep, req, monitor, addr, round: 0 };
        s.exchange().await;
        // Forget the healthy peer's events: what follows is about the raw peer.
        while s.monitor.try_recv().is_some() {}
        s
    }

    /// One request and its reply between the healthy REQ and the REP.
    async fn exchange(&mut self) {
        self.round += 1;
        let request = format!("request {}", self.round);
        let reply = format!("reply {}", self.round);
        tokio::time::timeout(T, self.req.send(request.as_str()))
            .await
            .expect("healthy send in time")
            .expect("healthy send");
        let got = self.rep.recv_timeout(T).await.expect("REP receives the healthy request");
        assert_eq!(got, Message::from(request.as_str()));
        self.rep.send(reply.as_str()).await.expect("REP replies");
        let got = self.req.recv_timeout(T).await.expect("REQ receives the reply");
        assert_eq!(got, Message::from(reply.as_str()));
    }

    async fn connect_raw(&self) -> TcpStream {
        tokio::time::timeout(T, TcpStream::connect(self.addr)).await.expect("connect in time").expect("connect")
    }

    /// A raw peer that completed the NULL handshake as DEALER; returns once our socket says so.
    async fn connect_handshaken(&mut self) -> TcpStream {
        let mut raw = self.connect_raw().await;
        let mut hello = greeting(b"NULL");
        hello.extend_from_slice(&ready("DEALER"));
        raw.write_all(&hello).await.expect("raw handshake");
        let ok = tokio::time::timeout(T, async {
            loop {
                match self.monitor.recv().await {
                    Some(MonitorEvent::HandshakeSucceeded { peer, .. }) if peer.socket_type == SocketType::Dealer => {
                        return
                    }
                    Some(MonitorEvent::HandshakeFailed { reason, .. } | MonitorEvent::Disconnected { reason, .. }) => {
                        panic!("raw handshake failed: {reason}")
                    }
                    Some(_) => {}
                    None => panic!("monitor ended"),
                }
            }
        })
        .await;
        assert!(ok.is_ok(), "the raw peer's handshake did not succeed in time");
        raw
    }

    /// The next connection failure: `(handshook, reason)`.
    async fn failure(&mut self) -> (bool, DisconnectReason) {
        let got = tokio::time::timeout(T, async {
            loop {
                match self.monitor.recv().await {
                    Some(MonitorEvent::HandshakeFailed { reason, .. }) => return (false, reason),
                    Some(MonitorEvent::Disconnected { reason, .. }) => return (true, reason),
                    Some(_) => {}
                    None => panic!("monitor ended"),
                }
            }
        })
        .await;
        got.expect("the monitor reported the raw peer's failure in time")
    }

    /// The healthy peer still works, and no other connection failed; then close.
    async fn finish(mut self) {
        self.exchange().await;
        self.exchange().await;
        while let Some(ev) = self.monitor.try_recv() {
            assert!(
                !matches!(ev, MonitorEvent::HandshakeFailed { .. } | MonitorEvent::Disconnected { .. }),
                "unexpected failure after the raw peer's: {ev:?}"
            );
        }
        let Setup { rep, req, .. } = self;
        tokio::time::timeout(T, async {
            req.close().await;
            rep.close().await;
        })
        .await
        .expect("sockets close in time");
    }
}

fn protocol(reason: &DisconnectReason) -> &ConnectionError {
    match reason {
        DisconnectReason::Protocol(e) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Before or during the handshake.

#[tokio::test]
async fn wrong_signature() {
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    send_raw(&mut raw, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let got = read_until_closed(&mut raw, T).await;
    // At most our own greeting, nothing after it.
    assert!(got.len() <= 64, "sent {} octets to a non-ZMTP peer", got.len());
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert_eq!(protocol(&reason), &ConnectionError::InvalidMessage(CodecError::BadSignature), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn wrong_signature_end_octet() {
    // The first octet is right, the tenth is not: refused after ten octets, without waiting for 64.
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    let mut g = greeting(b"NULL");
    g[9] = 0x00;
    send_raw(&mut raw, &g[..10]).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert_eq!(protocol(&reason), &ConnectionError::InvalidMessage(CodecError::BadSignature), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn truncated_greeting_then_close() {
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    send_raw(&mut raw, &greeting(b"NULL")[..20]).await;
    raw.shutdown().await.expect("half-close");
    let got = read_until_closed(&mut raw, T).await;
    assert!(got.len() <= 64, "only our greeting may come before the handshake");
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert_eq!(reason, DisconnectReason::Eof);
    s.finish().await;
}

#[tokio::test]
async fn mechanism_mismatch_plain() {
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    send_raw(&mut raw, &greeting(b"PLAIN")).await;
    let got = read_until_closed(&mut raw, T).await;
    // Our greeting (NULL) may arrive, but no READY: the handshake never starts.
    if got.len() >= 64 {
        assert_eq!(&got[12..16], b"NULL");
        let frames = frames_after_greeting(&got);
        assert!(
            frames.iter().all(|(_, body)| command_name(body) != b"READY"),
            "sent READY to a PLAIN peer: {frames:?}"
        );
    }
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert!(
        matches!(
            protocol(&reason),
            ConnectionError::PeerIncompatible(Incompatibility::Mechanism { theirs, .. }) if theirs.as_str() == "PLAIN"
        ),
        "{reason}"
    );
    s.finish().await;
}

#[tokio::test]
async fn incompatible_socket_type_gets_error_command() {
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    let mut hello = greeting(b"NULL");
    hello.extend_from_slice(&ready("PUB"));
    send_raw(&mut raw, &hello).await;
    let got = read_until_closed(&mut raw, T).await;
    let frames = frames_after_greeting(&got);
    let names: Vec<&[u8]> = frames.iter().map(|(_, b)| command_name(b)).collect();
    assert!(frames.iter().all(|(flags, _)| flags & 0x04 != 0), "only commands before the handshake: {frames:?}");
    assert_eq!(names.first().copied(), Some(&b"READY"[..]), "our READY comes first: {names:?}");
    assert_eq!(names.last().copied(), Some(&b"ERROR"[..]), "an ERROR command before close: {names:?}");
    // ERROR's body: name, then a 1-octet reason length and the reason.
    let (_, error) = frames.last().expect("ERROR frame");
    let reason_len = usize::from(error[6]);
    assert_eq!(error.len(), 7 + reason_len, "well-formed ERROR");
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert!(
        matches!(
            protocol(&reason),
            ConnectionError::PeerIncompatible(Incompatibility::SocketType { ours: SocketType::Rep, theirs })
                if theirs == "PUB"
        ),
        "{reason}"
    );
    s.finish().await;
}

#[tokio::test]
async fn command_with_truncated_body_in_handshake() {
    // The frame is whole, but the command name announces 5 octets and the frame holds 3.
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    let mut hello = greeting(b"NULL");
    hello.extend_from_slice(&command_frame(b"\x05REA"));
    send_raw(&mut raw, &hello).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert!(matches!(protocol(&reason), ConnectionError::InvalidMessage(CodecError::MalformedCommand(_))), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn ready_with_lying_property_length() {
    // Socket-Type announces a 256-octet value; the command holds 3.
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    let mut body = b"\x05READY\x0bSocket-Type".to_vec();
    body.extend_from_slice(&256u32.to_be_bytes());
    body.extend_from_slice(b"REQ");
    let mut hello = greeting(b"NULL");
    hello.extend_from_slice(&command_frame(&body));
    send_raw(&mut raw, &hello).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert!(matches!(protocol(&reason), ConnectionError::InvalidMessage(CodecError::MalformedMetadata(_))), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn ready_with_huge_property_length() {
    // The value length is 0xFFFFFFFF: must not overflow, allocate or panic.
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_raw().await;
    let mut body = b"\x05READY\x0bSocket-Type".to_vec();
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut hello = greeting(b"NULL");
    hello.extend_from_slice(&command_frame(&body));
    send_raw(&mut raw, &hello).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(!handshook);
    assert!(matches!(protocol(&reason), ConnectionError::InvalidMessage(CodecError::MalformedMetadata(_))), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn stalled_handshake_times_out() {
    let handshake_timeout = Duration::from_millis(300);
    let mut s = Setup::new(options().handshake_timeout(Some(handshake_timeout))).await;
    // Once in the middle of the greeting, once in the middle of READY.
    let full = {
        let mut b = greeting(b"NULL");
        b.extend_from_slice(&ready("DEALER"));
        b
    };
    for cut in [5, 64 + 3] {
        let mut raw = s.connect_raw().await;
        let start = Instant::now();
        send_raw(&mut raw, &full[..cut]).await;
        read_until_closed(&mut raw, T).await;
        let elapsed = start.elapsed();
        assert!(elapsed >= handshake_timeout - Duration::from_millis(50), "closed after {elapsed:?}, cut {cut}");
        let (handshook, reason) = s.failure().await;
        assert!(!handshook);
        assert_eq!(protocol(&reason), &ConnectionError::HandshakeTimeout, "cut {cut}");
        s.exchange().await;
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// After the handshake.

#[tokio::test]
async fn reserved_flag_bits_after_handshake() {
    for flags in [0x08u8, 0x80] {
        let mut s = Setup::new(options()).await;
        let mut raw = s.connect_handshaken().await;
        send_raw(&mut raw, &[flags, 0x01, b'x']).await;
        read_until_closed(&mut raw, T).await;
        let (handshook, reason) = s.failure().await;
        assert!(handshook);
        assert_eq!(protocol(&reason), &ConnectionError::InvalidMessage(CodecError::ReservedFlags(flags)), "{reason}");
        s.finish().await;
    }
}

#[tokio::test]
async fn more_flag_on_command_frame() {
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_handshaken().await;
    let mut ping = command_frame(b"\x04PING\x00\x00");
    ping[0] |= 0x01;
    send_raw(&mut raw, &ping).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(handshook);
    assert_eq!(protocol(&reason), &ConnectionError::InvalidMessage(CodecError::CommandWithMore), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn command_with_truncated_body_after_handshake() {
    // PING needs a 2-octet TTL; this one has 1.
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_handshaken().await;
    send_raw(&mut raw, &command_frame(b"\x04PING\x00")).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(handshook);
    assert!(matches!(protocol(&reason), ConnectionError::InvalidMessage(CodecError::MalformedCommand(_))), "{reason}");
    s.finish().await;
}

#[tokio::test]
async fn long_frame_of_2_pow_63_octets() {
    // ZMTP 3.1: a long frame's body is 0 to 2^63-1 octets. 2^63 is invalid whatever the limit,
    // and must close the connection at once instead of waiting for a body that cannot exist.
    let mut s = Setup::new(options()).await;
    let mut raw = s.connect_handshaken().await;
    let mut header = vec![0x02];
    header.extend_from_slice(&(1u64 << 63).to_be_bytes());
    send_raw(&mut raw, &header).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(handshook);
    assert!(
        matches!(protocol(&reason), ConnectionError::InvalidMessage(CodecError::TooLarge { size, .. }) if *size == 1 << 63),
        "{reason}"
    );
    s.finish().await;
}

#[tokio::test]
async fn long_frame_over_max_msg_size_closes_without_reading_body() {
    let limit = 1 << 20;
    let mut s = Setup::new(options().max_msg_size(Some(limit))).await;
    let before = rss_kib();
    for more in [false, true] {
        let mut raw = s.connect_handshaken().await;
        let mut header = vec![0x02 | u8::from(more)];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        send_raw(&mut raw, &header).await;
        // Only the header was sent: we must close now, not wait for (or make room for) 1 TiB.
        read_until_closed(&mut raw, T).await;
        let (handshook, reason) = s.failure().await;
        assert!(handshook);
        assert_eq!(
            protocol(&reason),
            &ConnectionError::InvalidMessage(CodecError::TooLarge { size: 1 << 40, limit }),
            "{reason}"
        );
        s.exchange().await;
    }
    // A frame within the limit whose message goes over it: counted across frames.
    let mut raw = s.connect_handshaken().await;
    let mut frames = vec![0x03];
    frames.extend_from_slice(&(limit - 10).to_be_bytes());
    frames.extend_from_slice(&vec![0u8; (limit - 10) as usize]);
    frames.extend_from_slice(&[0x00, 100]);
    send_raw(&mut raw, &frames).await;
    read_until_closed(&mut raw, T).await;
    let (handshook, reason) = s.failure().await;
    assert!(handshook);
    assert!(
        matches!(protocol(&reason), ConnectionError::InvalidMessage(CodecError::TooLarge { size: 100, .. })),
        "{reason}"
    );
    if let (Some(before), Some(after)) = (before, rss_kib()) {
        assert!(after < before + 256 * 1024, "resident set grew from {before} KiB to {after} KiB");
    }
    s.finish().await;
}
