//! Who asks ZAP, and what happens without a handler: ZMQ_ZAP_ENFORCE_DOMAIN and libzmq 4.3's
//! rules per mechanism, side by side with real libzmq. Each case configures a libzmq server and
//! ours the same way, connects the other library's client to each and expects the same outcome
//! (accepted: a request gets through; refused: the server's monitor reports the failed
//! handshake). Also: inproc connections have no handshake, hence no ZAP, as in libzmq.
//!
//! Its own test binary: whether a ZAP handler exists is process-wide on our side (a socket bound
//! at `inproc://zeromq.zap.01`), and other tests bind one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use interop_tests::{frames, recv, send, within, Transport, ZapThread, Z};
use zmtp::proto::ConnectionError;
use zmtp::socket::{DisconnectReason, MonitorEvent, ZapReply};
use zmtp::{CurveKeyPair, Options, Socket, SocketType};

#[derive(Clone, Copy, Debug)]
enum Mech {
    Null,
    Plain,
    Curve,
}

/// One configuration of the server side.
#[derive(Clone, Copy, Debug)]
struct Case {
    mech: Mech,
    domain: &'static str,
    enforce: bool,
    /// A ZAP handler that refuses everyone (status 400) is installed.
    refusing_handler: bool,
}

fn curve_available() -> bool {
    let yes = zmq::has("curve").unwrap_or(false);
    if !yes {
        println!("skipped: this libzmq has no CURVE");
    }
    yes
}

/// Our server configured as `case`; the client options that match it.
fn our_server(case: Case, keys: &CurveKeyPair) -> Socket {
    let mut o = Options::default().zap_domain(case.domain).zap_enforce_domain(case.enforce);
    o = match case.mech {
        Mech::Null => o,
        Mech::Plain => o.plain_server(true),
        Mech::Curve => o.curve_server(true).curve_keypair(keys),
    };
    if case.refusing_handler {
        o = o.zap_handler(|_: &zmtp::socket::ZapRequest| ZapReply::deny(400, "nobody"));
    }
    Socket::with_options(SocketType::Rep, o)
}

fn z_client(case: Case, server: &CurveKeyPair) -> Z {
    let z = Z::new(zmq::REQ);
    z.with(|s| -> zmq::Result<()> {
        match case.mech {
            Mech::Null => Ok(()),
            Mech::Plain => {
                s.set_plain_username(Some("admin"))?;
                s.set_plain_password(Some("secret"))
            }
            Mech::Curve => {
                let ours = CurveKeyPair::generate();
                s.set_curve_serverkey(&server.public.0)?;
                s.set_curve_publickey(&ours.public.0)?;
                s.set_curve_secretkey(ours.secret.as_bytes())
            }
        }
    })
    .expect("libzmq client options");
    z
}

/// libzmq's server configured as `case`, with its handler thread if any.
fn z_server(case: Case, keys: &CurveKeyPair) -> (Z, Option<ZapThread>) {
    let z = Z::new(zmq::REP);
    let handler = case.refusing_handler.then(|| ZapThread::start(z.context(), "400", ""));
    z.with(|s| -> zmq::Result<()> {
        if !case.domain.is_empty() {
            s.set_zap_domain(case.domain)?;
        }
        match case.mech {
            Mech::Null => Ok(()),
            Mech::Plain => s.set_plain_server(true),
            Mech::Curve => {
                s.set_curve_server(true)?;
                s.set_curve_secretkey(keys.secret.as_bytes())
            }
        }
    })
    .expect("libzmq server options");
    z.set_zap_enforce_domain(case.enforce).expect("ZMQ_ZAP_ENFORCE_DOMAIN");
    (z, handler)
}

fn our_client(case: Case, server: &CurveKeyPair) -> Socket {
    let o = match case.mech {
        Mech::Null => Options::default(),
        Mech::Plain => Options::default().plain_username("admin").plain_password("secret"),
        Mech::Curve => Options::default().curve_keypair(&CurveKeyPair::generate()).curve_serverkey(server.public),
    };
    Socket::with_options(SocketType::Req, o)
}

/// Whether our server lets libzmq's client in: `true` once a request gets through, `false` once
/// our monitor reports the handshake refused (with status 500 for want of a handler, or the
/// handler's 400).
async fn ours_accepts(case: Case) -> bool {
    let keys = CurveKeyPair::generate();
    let rep = our_server(case, &keys);
    let mut monitor = rep.monitor();
    let ep = rep.bind(&Transport::Tcp.bind_endpoint("zap-policy")).await.expect("bind");
    let req = z_client(case, &keys);
    req.connect(&ep);
    req.send(frames(&["ping"])).await;
    within(&format!("our server's verdict on {case:?}"), async {
        loop {
            tokio::select! {
                got = recv(&rep) => {
                    assert_eq!(got, frames(&["ping"]));
                    return true;
                }
                ev = monitor.recv() => match ev {
                    Some(MonitorEvent::HandshakeFailed { reason, .. }) => {
                        let status = if case.refusing_handler { 400 } else { 500 };
                        assert!(
                            matches!(&reason, DisconnectReason::Protocol(ConnectionError::Unauthorized { status: s, .. }) if *s == status),
                            "{case:?}: {reason:?}"
                        );
                        return false;
                    }
                    Some(_) => {}
                    None => panic!("monitor ended"),
                },
            }
        }
    })
    .await
}

/// Whether libzmq's server lets our client in: `true` once a request gets through, `false` once
/// its monitor reports a failed handshake.
async fn zmq_accepts(case: Case) -> bool {
    let keys = CurveKeyPair::generate();
    let (rep, _handler) = z_server(case, &keys);
    let monitor = rep.monitor("zap-policy", zmq::SocketEvent::ALL);
    let ep = rep.bind(Transport::Tcp, "zap-policy");
    let req = our_client(case, &keys);
    req.connect(&ep).await.expect("connect");
    send(&req, frames(&["ping"])).await;
    within(&format!("libzmq's verdict on {case:?}"), async {
        loop {
            if let Some(got) = rep.try_recv(100).await {
                assert_eq!(got, frames(&["ping"]));
                return true;
            }
            let events = monitor.events(100).await;
            if events.iter().any(|e| {
                use zmq::SocketEvent::*;
                matches!(e, HANDSHAKE_FAILED_NO_DETAIL | HANDSHAKE_FAILED_AUTH | HANDSHAKE_FAILED_PROTOCOL)
            }) {
                return false;
            }
        }
    })
    .await
}

/// Both servers, the same verdict, and the one expected.
async fn same_verdict(case: Case, expected: bool) {
    if matches!(case.mech, Mech::Curve) && !curve_available() {
        return;
    }
    let theirs = zmq_accepts(case).await;
    let ours = ours_accepts(case).await;
    assert_eq!(ours, theirs, "{case:?}: ours and libzmq disagree");
    assert_eq!(ours, expected, "{case:?}");
}

const fn case(mech: Mech, domain: &'static str, enforce: bool, refusing_handler: bool) -> Case {
    Case { mech, domain, enforce, refusing_handler }
}

#[tokio::test]
async fn null_with_a_domain_and_no_handler() {
    same_verdict(case(Mech::Null, "global", false, false), true).await;
    same_verdict(case(Mech::Null, "global", true, false), false).await;
}

#[tokio::test]
async fn null_without_a_domain_skips_zap() {
    // A handler that refuses everyone is not asked: NULL asks only with a domain.
    same_verdict(case(Mech::Null, "", true, true), true).await;
    same_verdict(case(Mech::Null, "global", false, true), false).await;
}

#[tokio::test]
async fn plain_without_a_handler_is_refused() {
    same_verdict(case(Mech::Plain, "global", false, false), false).await;
    same_verdict(case(Mech::Plain, "", false, false), false).await;
}

#[tokio::test]
async fn curve_without_a_handler() {
    // Stonehouse: encryption without authentication, unless enforcing a domain.
    same_verdict(case(Mech::Curve, "", false, false), true).await;
    same_verdict(case(Mech::Curve, "global", false, false), true).await;
    same_verdict(case(Mech::Curve, "global", true, false), false).await;
}

#[tokio::test]
async fn curve_enforcing_without_a_domain_skips_zap() {
    // libzmq's curious case: enforcing with no domain asks nobody, so the refusing handler is
    // not consulted; without enforcing, it is.
    same_verdict(case(Mech::Curve, "", true, true), true).await;
    same_verdict(case(Mech::Curve, "", false, true), false).await;
}

/// libzmq's inproc has no handshake, so no mechanism and no ZAP; ours likewise: a ZAP handler
/// that refuses everyone is never asked about an inproc peer, whatever the domain.
#[tokio::test]
async fn inproc_connections_have_no_zap() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let rep = Socket::with_options(
        SocketType::Rep,
        Options::default().zap_domain("global").zap_enforce_domain(true).zap_handler(
            move |_: &zmtp::socket::ZapRequest| {
                counter.fetch_add(1, Ordering::Relaxed);
                ZapReply::deny(400, "nobody")
            },
        ),
    );
    rep.bind("inproc://zap-policy-inproc").await.expect("bind");
    let req = Socket::new(SocketType::Req);
    req.connect("inproc://zap-policy-inproc").await.expect("connect");
    send(&req, frames(&["ping"])).await;
    assert_eq!(within("the request over inproc", recv(&rep)).await, frames(&["ping"]));
    send(&rep, frames(&["pong"])).await;
    assert_eq!(within("the reply over inproc", recv(&req)).await, frames(&["pong"]));
    assert_eq!(asked.load(Ordering::Relaxed), 0, "the ZAP handler was asked about an inproc peer");
}
