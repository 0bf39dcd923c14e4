//! ZMTP 3.1 heartbeats (PING / PONG, TTL, timeout) against libzmq and against a raw peer that goes
//! silent.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use interop_tests::{
    assert_frames, drain_events, frames, link, next_disconnect, next_handshake, recv, send, within, RawFrame, RawPeer,
    Transport, Z,
};
use zmtp::proto::ConnectionError;
use zmtp::socket::{DisconnectReason, MonitorEvent};
use zmtp::{Options, Socket, SocketType};

interop_tests::matrix!(libzmq_heartbeats_we_answer, both_sides_heartbeat, we_heartbeat_libzmq_answers);

/// How long the connections stay idle: many heartbeat intervals and timeouts.
const IDLE: Duration = Duration::from_millis(1500);

/// libzmq's ZMQ_HEARTBEAT_IVL 100 ms, _TIMEOUT 300 ms, _TTL 500 ms.
fn zmq_heartbeats(z: &Z) {
    z.with(|s| {
        s.set_heartbeat_ivl(100)?;
        s.set_heartbeat_timeout(300)?;
        s.set_heartbeat_ttl(500)
    })
    .expect("libzmq heartbeat options");
}

fn our_heartbeats() -> Options {
    Options::default().heartbeat(
        Duration::from_millis(100),
        Some(Duration::from_millis(500)),
        Some(Duration::from_millis(300)),
    )
}

/// A DEALER (ours) and a ROUTER (libzmq) stay connected over [`IDLE`] and still talk afterwards;
/// neither side reports a disconnect.
async fn idle_and_talk(ours: Socket, z: Z, t: Transport, ours_binds: bool) {
    let mut monitor = ours.monitor();
    let zmon = z.monitor("hb", zmq::SocketEvent::ALL);
    link(&ours, &z, ours_binds, t, "heartbeat").await;

    send(&ours, frames(&["before"])).await;
    assert_frames(&z.recv().await, &frames(&["dealer", "before"]));
    next_handshake(&mut monitor).await;

    // Idle is the point of the test: heartbeats (or their absence) are all that crosses the wire.
    tokio::time::sleep(IDLE).await;

    send(&ours, frames(&["after"])).await;
    assert_frames(&z.recv().await, &frames(&["dealer", "after"]));
    z.send(frames(&["dealer", "reply"])).await;
    assert_frames(&recv(&ours).await, &frames(&["reply"]));

    let ours_seen = drain_events(&mut monitor);
    assert!(
        !ours_seen
            .iter()
            .any(|e| matches!(e, MonitorEvent::Disconnected { .. } | MonitorEvent::HandshakeSucceeded { .. })),
        "our socket dropped or remade the connection: {ours_seen:?}"
    );
    let theirs_seen = zmon.events(100).await;
    let handshakes = theirs_seen.iter().filter(|e| **e == zmq::SocketEvent::HANDSHAKE_SUCCEEDED).count();
    assert!(
        !theirs_seen.contains(&zmq::SocketEvent::DISCONNECTED) && handshakes == 1,
        "libzmq dropped or remade the connection: {theirs_seen:?}"
    );
}

fn router() -> Z {
    Z::new(zmq::ROUTER)
}

fn dealer(options: Options) -> Socket {
    Socket::with_options(SocketType::Dealer, options.routing_id("dealer"))
}

/// libzmq PINGs us every 100 ms and drops us unless something (our PONG) comes back within 300 ms;
/// its TTL tells us to expect its traffic within 500 ms.
async fn libzmq_heartbeats_we_answer(t: Transport, ours_binds: bool) {
    let z = router();
    zmq_heartbeats(&z);
    idle_and_talk(dealer(Options::default()), z, t, ours_binds).await;
}

/// Both sides PING and enforce timeouts and TTLs.
async fn both_sides_heartbeat(t: Transport, ours_binds: bool) {
    let z = router();
    zmq_heartbeats(&z);
    idle_and_talk(dealer(our_heartbeats()), z, t, ours_binds).await;
}

/// We PING a libzmq peer that has no heartbeat options of its own: its PONGs keep us connected.
async fn we_heartbeat_libzmq_answers(t: Transport, ours_binds: bool) {
    idle_and_talk(dealer(our_heartbeats()), router(), t, ours_binds).await;
}

/// How the raw peer's session ended.
#[derive(Debug)]
struct SilentOutcome {
    /// Command frames we sent it after the handshake.
    commands: Vec<RawFrame>,
    /// When it saw our side close the connection (EOF), if it did.
    eof_after: Option<Duration>,
}

/// Completes the handshake as a ROUTER and then never writes again, reading (and recording) what
/// we send until we close the connection.
fn silent_router(stream: TcpStream) -> SilentOutcome {
    stream.set_read_timeout(Some(Duration::from_secs(8))).expect("read timeout");
    stream.set_write_timeout(Some(Duration::from_secs(5))).expect("write timeout");
    let mut peer = RawPeer::new(stream);
    let hs = peer.handshake(1, "ROUTER", None).expect("raw handshake");
    assert_eq!(hs.version, (3, 1));
    assert_eq!(hs.mechanism, b"NULL");
    assert_eq!(hs.properties.get("Socket-Type").map(Vec::as_slice), Some(&b"DEALER"[..]));
    let start = Instant::now();
    let mut commands = Vec::new();
    loop {
        match peer.read_frame() {
            Ok(f) if f.command => commands.push(f),
            Ok(f) => panic!("unexpected message frame {f:?}"),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return SilentOutcome { commands, eof_after: Some(start.elapsed()) }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return SilentOutcome { commands, eof_after: Some(start.elapsed()) }
            }
            Err(_) => return SilentOutcome { commands, eof_after: None },
        }
    }
}

/// Our DEALER with heartbeat interval 100 ms, timeout 300 ms and TTL 1 s, whose peer completes the
/// handshake and goes silent: we PING it (announcing the TTL in deciseconds) and drop it with
/// `HeartbeatTimeout` well within a few seconds.
async fn silent_peer_dropped(ours_binds: bool) {
    let ours = Socket::with_options(
        SocketType::Dealer,
        Options::default().heartbeat(
            Duration::from_millis(100),
            Some(Duration::from_secs(1)),
            Some(Duration::from_millis(300)),
        ),
    );
    let mut monitor = ours.monitor();
    let raw = if ours_binds {
        let ep = ours.bind("tcp://127.0.0.1:*").await.expect("bind");
        let addr = ep.strip_prefix("tcp://").expect("tcp endpoint").to_owned();
        tokio::task::spawn_blocking(move || silent_router(TcpStream::connect(addr).expect("raw connect")))
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").expect("raw listener");
        let addr = listener.local_addr().expect("local addr");
        ours.connect(&format!("tcp://{addr}")).await.expect("connect");
        tokio::task::spawn_blocking(move || silent_router(listener.accept().expect("raw accept").0))
    };

    next_handshake(&mut monitor).await;
    let ready_at = Instant::now();
    let reason = next_disconnect(&mut monitor).await;
    let took = ready_at.elapsed();
    assert_eq!(reason, DisconnectReason::Protocol(ConnectionError::HeartbeatTimeout));
    assert!(took < Duration::from_secs(3), "heartbeat timeout took {took:?}");

    let outcome = within("the raw peer to finish", raw).await.expect("raw peer panicked");
    let pings: Vec<&RawFrame> = outcome.commands.iter().filter(|c| c.command_name() == Some(b"PING")).collect();
    assert!(!pings.is_empty(), "no PING among {:?}", outcome.commands);
    for ping in &pings {
        // "\x04PING", TTL 10 deciseconds (big-endian u16), empty context.
        assert_eq!(ping.body, b"\x04PING\x00\x0a", "PING body");
    }
    assert!(outcome.eof_after.is_some(), "our side did not close the silent connection: {outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_dropped_ours_binds() {
    silent_peer_dropped(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_dropped_ours_connects() {
    silent_peer_dropped(false).await
}

/// A raw DEALER PINGs our ROUTER (which has no heartbeat options) with a context and a TTL of
/// 300 ms, then goes silent: we answer PONG with the same context, and drop the peer once its TTL
/// has passed without traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_peer_ping_context_and_ttl() {
    let ours = Socket::new(SocketType::Router);
    let mut monitor = ours.monitor();
    let ep = ours.bind("tcp://127.0.0.1:*").await.expect("bind");
    let addr = ep.strip_prefix("tcp://").expect("tcp endpoint").to_owned();
    let raw = tokio::task::spawn_blocking(move || {
        let stream = TcpStream::connect(addr).expect("raw connect");
        stream.set_read_timeout(Some(Duration::from_secs(8))).expect("read timeout");
        let mut peer = RawPeer::new(stream);
        peer.handshake(1, "DEALER", Some(b"raw")).expect("raw handshake");
        // TTL 3 deciseconds, context "ctx-42". We cannot have received it before `start`, so the
        // TTL cannot run out before `start` + 300 ms.
        let start = Instant::now();
        peer.write_frame(true, false, &interop_tests::command_body(b"PING", b"\x00\x03ctx-42")).expect("PING");
        let pong = peer.read_frame().expect("PONG");
        // Nothing more may come: the next read ends the connection.
        let end = match peer.read_frame() {
            Ok(f) => panic!("unexpected frame {f:?}"),
            Err(e) => e,
        };
        (pong, end.kind(), start.elapsed())
    });

    next_handshake(&mut monitor).await;
    let reason = next_disconnect(&mut monitor).await;
    assert_eq!(reason, DisconnectReason::Protocol(ConnectionError::HeartbeatTimeout));
    let (pong, end, silent_for) = within("the raw peer to finish", raw).await.expect("raw peer panicked");
    assert_eq!(pong, RawFrame { command: true, more: false, body: b"\x04PONGctx-42".to_vec() });
    assert!(
        matches!(end, std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset),
        "the raw peer was not disconnected: {end:?}"
    );
    assert!(
        silent_for >= Duration::from_millis(290) && silent_for < Duration::from_secs(3),
        "dropped after {silent_for:?}, TTL 300 ms"
    );
}
