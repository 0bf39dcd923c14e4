//! PLAIN, CURVE and ZAP against real libzmq (Debian's 4.3.4, CURVE through libsodium), both
//! ways round: our socket as the mechanism's client and as its server, binding and connecting
//! (`interop_tests::matrix`: `<scenario>::{ours_binds,zmq_binds}_{tcp,ipc}`), with multipart
//! and 4 MiB messages. Keys made by libzmq are used by us and ours by libzmq. Tampered
//! handshakes close that connection only, with the reason in our monitor.

use interop_tests::{
    assert_frames, big_frame, frames, link, recv, recv_skipping, send, try_recv, within, z_recv_skipping, Transport,
    ZapThread, Z,
};
use zmtp::proto::ConnectionError;
use zmtp::socket::{Authenticator, DisconnectReason, Monitor, MonitorEvent, ZapReply};
use zmtp::{CurveKeyPair, CurvePublicKey, CurveSecretKey, Options, Socket, SocketType};

interop_tests::matrix!(
    curve_our_req_zmq_rep,
    curve_zmq_req_our_rep,
    curve_our_pub_zmq_sub,
    curve_zmq_pub_our_sub,
    curve_our_dealer_zmq_router,
    curve_zmq_dealer_our_router,
    plain_our_req_zmq_rep,
    plain_zmq_req_our_rep,
);

interop_tests::over_tcp_and_ipc!(
    zap_zmq_handler_refuses_our_plain_client,
    zap_our_handler_refuses_zmq_curve_client,
    zap_our_inproc_handler_zmq_plain_client,
    curve_zmq_client_with_wrong_server_key,
    curve_our_client_with_wrong_server_key,
);

fn curve_available() -> bool {
    let yes = zmq::has("curve").unwrap_or(false);
    if !yes {
        println!("skipped: this libzmq has no CURVE");
    }
    yes
}

/// A key pair made by libzmq (`zmq_curve_keypair`), as our types.
fn zmq_keys() -> CurveKeyPair {
    let pair = zmq::CurveKeyPair::new().expect("zmq_curve_keypair");
    let secret = CurveSecretKey::from_slice(&pair.secret_key).expect("32 octets");
    let keys = CurveKeyPair::from_secret(secret);
    assert_eq!(keys.public.0, pair.public_key, "our public-from-secret disagrees with libzmq's");
    keys
}

/// Configures a libzmq socket as CURVE server with `keys` (given as Z85 text).
fn z_curve_server(z: &Z, keys: &CurveKeyPair) {
    z.with(|s| {
        s.set_curve_server(true)?;
        s.set_curve_secretkey(keys.secret.to_z85().as_bytes())
    })
    .expect("libzmq CURVE server options");
}

/// Configures a libzmq socket as CURVE client of `server` with `keys` (raw octets).
fn z_curve_client(z: &Z, keys: &CurveKeyPair, server: &CurvePublicKey) {
    z.with(|s| {
        s.set_curve_serverkey(&server.0)?;
        s.set_curve_publickey(&keys.public.0)?;
        s.set_curve_secretkey(keys.secret.as_bytes())
    })
    .expect("libzmq CURVE client options");
}

fn our_curve_server(kind: SocketType, keys: &CurveKeyPair) -> Socket {
    Socket::with_options(kind, Options::default().curve_server(true).curve_keypair(keys))
}

fn our_curve_client(kind: SocketType, keys: &CurveKeyPair, server: CurvePublicKey) -> Socket {
    Socket::with_options(kind, Options::default().curve_keypair(keys).curve_serverkey(server))
}

async fn req_rep_traffic_our_req(req: &Socket, rep: &Z) {
    send(req, frames(&["hello", "", "world"])).await;
    assert_frames(&rep.recv().await, &frames(&["hello", "", "world"]));
    let big = vec![b"big".to_vec(), big_frame(5)];
    rep.send(big.clone()).await;
    assert_frames(&recv(req).await, &big);
    send(req, vec![big_frame(6)]).await;
    assert_frames(&rep.recv().await, &[big_frame(6)]);
    rep.send(frames(&["done"])).await;
    assert_frames(&recv(req).await, &frames(&["done"]));
}

async fn req_rep_traffic_our_rep(req: &Z, rep: &Socket) {
    req.send(frames(&["hello", "", "world"])).await;
    assert_frames(&recv(rep).await, &frames(&["hello", "", "world"]));
    let big = vec![b"big".to_vec(), big_frame(7)];
    send(rep, big.clone()).await;
    assert_frames(&req.recv().await, &big);
    req.send(vec![big_frame(8)]).await;
    assert_frames(&recv(rep).await, &[big_frame(8)]);
    send(rep, frames(&["done"])).await;
    assert_frames(&req.recv().await, &frames(&["done"]));
}

// ---------------------------------------------------------------------------------------------
// CURVE

async fn curve_our_req_zmq_rep(t: Transport, ours_binds: bool) {
    if !curve_available() {
        return;
    }
    let server = zmq_keys();
    let rep = Z::new(zmq::REP);
    z_curve_server(&rep, &server);
    let req = our_curve_client(SocketType::Req, &zmtp::curve_keypair(), server.public);
    link(&req, &rep, ours_binds, t, "curve-req").await;
    req_rep_traffic_our_req(&req, &rep).await;
}

async fn curve_zmq_req_our_rep(t: Transport, ours_binds: bool) {
    if !curve_available() {
        return;
    }
    let server = zmtp::curve_keypair();
    let rep = our_curve_server(SocketType::Rep, &server);
    let req = Z::new(zmq::REQ);
    z_curve_client(&req, &zmq_keys(), &server.public);
    link(&rep, &req, ours_binds, t, "curve-rep").await;
    req_rep_traffic_our_rep(&req, &rep).await;
}

async fn curve_our_pub_zmq_sub(t: Transport, ours_binds: bool) {
    if !curve_available() {
        return;
    }
    let server = zmtp::curve_keypair();
    let publ = our_curve_server(SocketType::Pub, &server);
    let sub = Z::new(zmq::SUB);
    z_curve_client(&sub, &zmq_keys(), &server.public);
    sub.with(|s| s.set_subscribe(b"t")).expect("subscribe");
    link(&publ, &sub, ours_binds, t, "curve-pub").await;
    within("the subscription to take effect", async {
        loop {
            send(&publ, frames(&["tw"])).await;
            if sub.try_recv(50).await.is_some() {
                return;
            }
        }
    })
    .await;
    send(&publ, frames(&["no: filtered out"])).await;
    let multipart = frames(&["topic", "", "part 3"]);
    let big = vec![b"tbig".to_vec(), big_frame(9)];
    send(&publ, multipart.clone()).await;
    send(&publ, big.clone()).await;
    assert_frames(&z_recv_skipping(&sub, b"tw").await, &multipart);
    assert_frames(&sub.recv().await, &big);
}

async fn curve_zmq_pub_our_sub(t: Transport, ours_binds: bool) {
    if !curve_available() {
        return;
    }
    let server = zmq_keys();
    let publ = Z::new(zmq::PUB);
    z_curve_server(&publ, &server);
    let sub = our_curve_client(SocketType::Sub, &zmtp::curve_keypair(), server.public);
    sub.subscribe("t").expect("subscribe");
    link(&sub, &publ, ours_binds, t, "curve-sub").await;
    within("the subscription to take effect", async {
        loop {
            publ.try_send(frames(&["tw"])).expect("PUB never blocks");
            if try_recv(&sub, 50).await.is_some() {
                return;
            }
        }
    })
    .await;
    publ.send(frames(&["no: filtered out"])).await;
    let multipart = frames(&["topic", "", "part 3"]);
    let big = vec![b"tbig".to_vec(), big_frame(10)];
    publ.send(multipart.clone()).await;
    publ.send(big.clone()).await;
    assert_frames(&recv_skipping(&sub, b"tw").await, &multipart);
    assert_frames(&recv(&sub).await, &big);
}

async fn curve_our_dealer_zmq_router(t: Transport, ours_binds: bool) {
    if !curve_available() {
        return;
    }
    let server = zmq_keys();
    let router = Z::new(zmq::ROUTER);
    z_curve_server(&router, &server);
    let dealer = Socket::with_options(
        SocketType::Dealer,
        Options::default().routing_id("ours").curve_keypair(&zmtp::curve_keypair()).curve_serverkey(server.public),
    );
    link(&dealer, &router, ours_binds, t, "curve-dealer").await;
    let big = big_frame(11);
    send(&dealer, vec![b"a".to_vec(), vec![], big.clone()]).await;
    assert_frames(&router.recv().await, &[b"ours".to_vec(), b"a".to_vec(), vec![], big.clone()]);
    router.send(vec![b"ours".to_vec(), b"back".to_vec(), big.clone()]).await;
    assert_frames(&recv(&dealer).await, &[b"back".to_vec(), big]);
}

async fn curve_zmq_dealer_our_router(t: Transport, ours_binds: bool) {
    if !curve_available() {
        return;
    }
    let server = zmtp::curve_keypair();
    let router = our_curve_server(SocketType::Router, &server);
    let dealer = Z::new(zmq::DEALER);
    dealer.with(|s| s.set_identity(b"theirs")).expect("identity");
    z_curve_client(&dealer, &zmq_keys(), &server.public);
    link(&router, &dealer, ours_binds, t, "curve-router").await;
    let big = big_frame(12);
    dealer.send(vec![b"a".to_vec(), vec![], big.clone()]).await;
    assert_frames(&recv(&router).await, &[b"theirs".to_vec(), b"a".to_vec(), vec![], big.clone()]);
    send(&router, vec![b"theirs".to_vec(), b"back".to_vec(), big.clone()]).await;
    assert_frames(&dealer.recv().await, &[b"back".to_vec(), big]);
}

// ---------------------------------------------------------------------------------------------
// PLAIN

async fn plain_our_req_zmq_rep(t: Transport, ours_binds: bool) {
    let rep = Z::new(zmq::REP);
    let _zap = ZapThread::start(rep.context(), "200", "");
    rep.with(|s| s.set_plain_server(true)).expect("PLAIN server");
    let req =
        Socket::with_options(SocketType::Req, Options::default().plain_username("admin").plain_password("secret"));
    link(&req, &rep, ours_binds, t, "plain-req").await;
    req_rep_traffic_our_req(&req, &rep).await;
}

async fn plain_zmq_req_our_rep(t: Transport, ours_binds: bool) {
    let rep = Socket::with_options(
        SocketType::Rep,
        Options::default().plain_server(true).zap_handler(Authenticator::new().plain_user("admin", "secret")),
    );
    let mut monitor = rep.monitor();
    let req = Z::new(zmq::REQ);
    req.with(|s| {
        s.set_plain_username(Some("admin"))?;
        s.set_plain_password(Some("secret"))
    })
    .expect("PLAIN client");
    link(&rep, &req, ours_binds, t, "plain-rep").await;
    req_rep_traffic_our_rep(&req, &rep).await;
    // The ZAP handler's user id reaches the application with the peer's properties.
    let user = within("HandshakeSucceeded", async {
        loop {
            if let Some(MonitorEvent::HandshakeSucceeded { peer, .. }) = monitor.recv().await {
                return peer.properties.get("User-Id").cloned();
            }
        }
    })
    .await;
    assert_eq!(user.as_deref(), Some(&b"admin"[..]));
}

// ---------------------------------------------------------------------------------------------
// ZAP and tampering

/// Our monitor's next HandshakeFailed reason.
async fn handshake_failure(m: &mut Monitor) -> DisconnectReason {
    within("a HandshakeFailed event", async {
        loop {
            match m.recv().await {
                Some(MonitorEvent::HandshakeFailed { reason, .. }) => return reason,
                Some(MonitorEvent::HandshakeSucceeded { peer, .. }) => panic!("handshake succeeded with {peer:?}"),
                Some(_) => {}
                None => panic!("monitor ended"),
            }
        }
    })
    .await
}

async fn zap_zmq_handler_refuses_our_plain_client(t: Transport) {
    let rep = Z::new(zmq::REP);
    let _zap = ZapThread::start(rep.context(), "400", "");
    rep.with(|s| s.set_plain_server(true)).expect("PLAIN server");
    let ep = rep.bind(t, "zap-zmq");
    let req = Socket::with_options(SocketType::Req, Options::default().plain_username("eve").plain_password("x"));
    let mut monitor = req.monitor();
    req.connect(&ep).await.expect("connect");
    let reason = handshake_failure(&mut monitor).await;
    assert_eq!(reason, DisconnectReason::Protocol(ConnectionError::PeerError(bytes::Bytes::from_static(b"400"))));
}

async fn zap_our_handler_refuses_zmq_curve_client(t: Transport) {
    if !curve_available() {
        return;
    }
    let server = zmtp::curve_keypair();
    let allowed = zmq_keys();
    let rep = Socket::with_options(
        SocketType::Rep,
        Options::default()
            .curve_server(true)
            .curve_keypair(&server)
            .zap_handler(Authenticator::new().curve_key(allowed.public)),
    );
    let mut monitor = rep.monitor();
    let ep = rep.bind(&t.bind_endpoint("zap-ours")).await.expect("bind");
    // A stranger is refused with 400 ...
    let stranger = Z::new(zmq::REQ);
    z_curve_client(&stranger, &zmq_keys(), &server.public);
    let zmon = stranger.monitor("stranger", zmq::SocketEvent::ALL);
    stranger.connect(&ep);
    let reason = handshake_failure(&mut monitor).await;
    assert_eq!(
        reason,
        DisconnectReason::Protocol(ConnectionError::Unauthorized { status: 400, text: "unknown client key".into() })
    );
    let events = zmon.events(500).await;
    assert!(events.contains(&zmq::SocketEvent::HANDSHAKE_FAILED_AUTH), "libzmq saw {events:?}");
    stranger.close();
    // ... while the listed key gets through on the same socket.
    let friend = Z::new(zmq::REQ);
    z_curve_client(&friend, &allowed, &server.public);
    friend.connect(&ep);
    req_rep_traffic_our_rep(&friend, &rep).await;
}

/// The libzmq way with our sockets: the handler is our REP bound at inproc://zeromq.zap.01.
async fn zap_our_inproc_handler_zmq_plain_client(t: Transport) {
    // The ZAP endpoint is one per process: this test's tcp and ipc variants take turns at it (the
    // bind is the turn: nothing else here is set up before it succeeds).
    let handler = Socket::new(SocketType::Rep);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Err(e) = handler.bind(zmtp::socket::ZAP_ENDPOINT).await {
        assert!(tokio::time::Instant::now() < deadline, "bind the ZAP endpoint: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rep = Socket::with_options(SocketType::Rep, Options::default().plain_server(true));
    let mut monitor = rep.monitor();
    let ep = rep.bind(&t.bind_endpoint("zap-inproc")).await.expect("bind");
    let answer = tokio::spawn(async move {
        for _ in 0..2 {
            let req = handler.recv().await.expect("ZAP request");
            let f: Vec<bytes::Bytes> = req.iter().cloned().collect();
            // version, id, domain, address, identity, mechanism, user, password
            assert_eq!(&f[5][..], b"PLAIN");
            let ok = &f[6][..] == b"admin" && &f[7][..] == b"secret";
            let reply = if ok { ZapReply::allow("admin") } else { ZapReply::deny(400, "wrong password") };
            handler
                .send(reply.to_frames(f[1].clone()).into_iter().collect::<zmtp::Message>())
                .await
                .expect("ZAP reply");
        }
    });
    let bad = Z::new(zmq::REQ);
    bad.with(|s| {
        s.set_plain_username(Some("admin"))?;
        s.set_plain_password(Some("guess"))
    })
    .expect("PLAIN client");
    bad.connect(&ep);
    let reason = handshake_failure(&mut monitor).await;
    assert!(
        matches!(reason, DisconnectReason::Protocol(ConnectionError::Unauthorized { status: 400, .. })),
        "{reason:?}"
    );
    bad.close();
    let good = Z::new(zmq::REQ);
    good.with(|s| {
        s.set_plain_username(Some("admin"))?;
        s.set_plain_password(Some("secret"))
    })
    .expect("PLAIN client");
    good.connect(&ep);
    req_rep_traffic_our_rep(&good, &rep).await;
    within("the handler task", answer).await.expect("handler");
}

async fn curve_zmq_client_with_wrong_server_key(t: Transport) {
    if !curve_available() {
        return;
    }
    let server = zmtp::curve_keypair();
    let rep = our_curve_server(SocketType::Rep, &server);
    let mut monitor = rep.monitor();
    let ep = rep.bind(&t.bind_endpoint("wrong-key")).await.expect("bind");
    let confused = Z::new(zmq::REQ);
    z_curve_client(&confused, &zmq_keys(), &zmtp::curve_keypair().public);
    confused.connect(&ep);
    let reason = handshake_failure(&mut monitor).await;
    assert!(matches!(reason, DisconnectReason::Protocol(ConnectionError::Crypto(_))), "{reason:?}");
    confused.close();
    // The socket still serves a client with the right key.
    let good = Z::new(zmq::REQ);
    z_curve_client(&good, &zmq_keys(), &server.public);
    good.connect(&ep);
    req_rep_traffic_our_rep(&good, &rep).await;
}

async fn curve_our_client_with_wrong_server_key(t: Transport) {
    if !curve_available() {
        return;
    }
    let rep = Z::new(zmq::REP);
    z_curve_server(&rep, &zmq_keys());
    let zmon = rep.monitor("wrong-key-server", zmq::SocketEvent::ALL);
    let ep = rep.bind(t, "our-wrong-key");
    let req = our_curve_client(SocketType::Req, &zmtp::curve_keypair(), zmtp::curve_keypair().public);
    let mut monitor = req.monitor();
    req.connect(&ep).await.expect("connect");
    // libzmq drops the connection without a word; we see it end before the handshake.
    let reason = handshake_failure(&mut monitor).await;
    assert!(matches!(reason, DisconnectReason::Eof | DisconnectReason::Io(_)), "{reason:?}");
    // Ours retries (libzmq would too); stop it before reading what libzmq saw.
    drop(req);
    let events = zmon.events(500).await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL
        )),
        "libzmq saw {events:?}"
    );
}

/// A raw TCP peer sends our CURVE server a greeting and then `hello` (a command body), and
/// lingers; returns once written.
fn raw_curve_client(endpoint: &str, hello: Vec<u8>) -> std::net::TcpStream {
    use std::io::Write;
    let addr = endpoint.strip_prefix("tcp://").expect("tcp endpoint");
    let mut s = std::net::TcpStream::connect(addr).expect("raw connect");
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..17].copy_from_slice(b"CURVE");
    s.write_all(&g).expect("greeting");
    let mut frame = vec![0x04];
    if hello.len() > 255 {
        frame[0] |= 0x02;
        frame.extend_from_slice(&(hello.len() as u64).to_be_bytes());
    } else {
        frame.push(hello.len() as u8);
    }
    frame.extend_from_slice(&hello);
    s.write_all(&frame).expect("HELLO");
    s
}

/// Garbage, truncated and stalled CURVE handshakes each close that connection only, with the
/// reason in our monitor, while a libzmq client on the same socket keeps its traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_tampered_handshakes_close_only_that_connection() {
    if !curve_available() {
        return;
    }
    let server = zmtp::curve_keypair();
    let rep = Socket::with_options(
        SocketType::Rep,
        Options::default()
            .curve_server(true)
            .curve_keypair(&server)
            .handshake_timeout(Some(std::time::Duration::from_millis(500))),
    );
    let mut monitor = rep.monitor();
    let ep = rep.bind("tcp://127.0.0.1:*").await.expect("bind");
    let good = Z::new(zmq::REQ);
    z_curve_client(&good, &zmq_keys(), &server.public);
    good.connect(&ep);
    req_rep_traffic_our_rep(&good, &rep).await;
    interop_tests::next_handshake(&mut monitor).await;

    // A HELLO of the right size whose signature box is garbage.
    let mut garbage = b"\x05HELLO\x01\x00".to_vec();
    garbage.extend((0..192u32).map(|i| (i * 7 + 3) as u8));
    let _a = raw_curve_client(&ep, garbage);
    let reason = handshake_failure(&mut monitor).await;
    assert!(matches!(reason, DisconnectReason::Protocol(ConnectionError::Crypto(_))), "{reason:?}");

    // A truncated HELLO.
    let mut short = b"\x05HELLO\x01\x00".to_vec();
    short.extend_from_slice(&[0u8; 40]);
    let _b = raw_curve_client(&ep, short);
    let reason = handshake_failure(&mut monitor).await;
    assert!(matches!(reason, DisconnectReason::Protocol(ConnectionError::PeerMisbehaved(_))), "{reason:?}");

    // A valid HELLO (made by our own client state machine), then silence: no INITIATE.
    let mut client_cfg = zmtp::proto::Config::new(SocketType::Req);
    client_cfg.security =
        zmtp::proto::mechanism::Security::CurveClient { keys: zmtp::curve_keypair(), server: server.public };
    let now = std::time::Instant::now();
    let mut client = zmtp::proto::Connection::new(client_cfg, now);
    let mut server_greeting = bytes::BytesMut::new();
    zmtp::codec::Greeting::new(zmtp::codec::MechanismName::CURVE, true).encode(&mut server_greeting);
    client.handle_input(&mut server_greeting, now).expect("greeting");
    let mut out = Vec::new();
    while let Some(chunk) = client.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    // Our greeting (64), then the HELLO frame: flags, size 200, body.
    assert_eq!(out.len(), 64 + 2 + 200);
    let _c = raw_curve_client(&ep, out[66..].to_vec());
    let reason = handshake_failure(&mut monitor).await;
    assert_eq!(reason, DisconnectReason::Protocol(ConnectionError::HandshakeTimeout));

    // The libzmq client never noticed.
    req_rep_traffic_our_rep(&good, &rep).await;
}

/// NULL with a ZAP domain asks the handler too (libzmq's rule): an address denied by our
/// `Authenticator` gets an ERROR, one allowed gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zap_null_with_domain_filters_by_address() {
    let denied = Socket::with_options(
        SocketType::Rep,
        Options::default().zap_domain("global").zap_handler(Authenticator::new().deny("127.0.0.1")),
    );
    let mut monitor = denied.monitor();
    let ep = denied.bind("tcp://127.0.0.1:*").await.expect("bind");
    let z = Z::new(zmq::REQ);
    z.connect(&ep);
    let reason = handshake_failure(&mut monitor).await;
    assert_eq!(
        reason,
        DisconnectReason::Protocol(ConnectionError::Unauthorized { status: 400, text: "address denied".into() })
    );
    z.close();

    let allowed = Socket::with_options(
        SocketType::Rep,
        Options::default().zap_domain("global").zap_handler(Authenticator::new().allow("127.0.0.1")),
    );
    let ep = allowed.bind("tcp://127.0.0.1:*").await.expect("bind");
    let z = Z::new(zmq::REQ);
    z.connect(&ep);
    req_rep_traffic_our_rep(&z, &allowed).await;
}
