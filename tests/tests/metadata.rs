//! ZMQ_METADATA, per-message properties (`zmq_msg_gets`) and ZMQ_MECHANISM against real libzmq
//! (Debian's 4.3.4), both ways, under NULL, PLAIN and CURVE, over tcp and ipc.
//!
//! Each side announces an `X-` property; the server's ZAP handler names the client (`User-Id`);
//! every message read on either side carries the other's properties: `Socket-Type`,
//! `Peer-Address`, `User-Id` (on the server's side only) and the `X-` one.

use interop_tests::{within, Transport, ZapThread, Z};
use zmtp::socket::{ZapReply, ZapRequest};
use zmtp::{CurveKeyPair, Message, Options, Socket, SocketType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mech {
    Null,
    Plain,
    Curve,
}

macro_rules! each_mechanism {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::Mech::{Curve, Null, Plain};
            use interop_tests::Transport::{Ipc, Tcp};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn null_tcp() { super::$name(Null, Tcp).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn null_ipc() { super::$name(Null, Ipc).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn plain_tcp() { super::$name(Plain, Tcp).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn plain_ipc() { super::$name(Plain, Ipc).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn curve_tcp() { super::$name(Curve, Tcp).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn curve_ipc() { super::$name(Curve, Ipc).await }
        }
    )*};
}

each_mechanism!(our_server_zmq_client, zmq_server_our_client);

/// The properties read on each message, and what they should be.
const OURS: (&str, &str) = ("X-Ours", "from zmtp: a:b");
const THEIRS: (&str, &str) = ("X-Theirs", "from libzmq");
const NAMES: [&str; 5] = ["Socket-Type", "Peer-Address", "User-Id", OURS.0, THEIRS.0];

/// What libzmq's `zmq_msg_gets` gives for [`NAMES`] on the next message part, and its body.
async fn z_recv_properties(z: &Z) -> Vec<(Vec<u8>, Vec<Option<String>>)> {
    z.run_blocking(|s| {
        let mut parts = Vec::new();
        loop {
            let mut m = s.recv_msg(0).expect("libzmq recv (timed out?)");
            let props = NAMES.iter().map(|n| m.gets(n).map(str::to_owned)).collect();
            parts.push((m.to_vec(), props));
            if !m.get_more() {
                return parts;
            }
        }
    })
    .await
}

/// Our message's [`NAMES`].
fn our_properties(m: &Message) -> Vec<Option<String>> {
    NAMES.iter().map(|n| m.property(n).map(|v| String::from_utf8_lossy(v).into_owned())).collect()
}

/// The `Peer-Address` both libraries give: the IP over tcp; over ipc, the peer process's
/// credentials (`localhost:uid:gid:pid`; both peers are this process). Checks the form and
/// returns it, so that the two sides can be compared.
fn check_peer_address(t: Transport, got: Option<&String>) -> String {
    let got = got.cloned().expect("a Peer-Address property");
    match t {
        Transport::Tcp => assert_eq!(got, "127.0.0.1"),
        Transport::Ipc => {
            let parts: Vec<&str> = got.split(':').collect();
            assert_eq!(parts.len(), 4, "{got:?}");
            assert_eq!(parts[0], "localhost", "{got:?}");
            assert_eq!(parts[3], std::process::id().to_string(), "{got:?}");
        }
    }
    got
}

fn zmq_available(mech: Mech) -> bool {
    mech != Mech::Curve || zmq::has("curve").unwrap_or(false)
}

/// Our server: a ROUTER announcing [`OURS`], whose ZAP handler names every client `our-user`.
fn our_server(mech: Mech, keys: &CurveKeyPair) -> Socket {
    let mut o = Options::default()
        .metadata(OURS.0, OURS.1)
        .expect("a valid property")
        .zap_handler(|_: &ZapRequest| ZapReply::allow("our-user"));
    o = match mech {
        // NULL asks ZAP only with a domain.
        Mech::Null => o.zap_domain("global"),
        Mech::Plain => o.plain_server(true),
        Mech::Curve => o.curve_server(true).curve_keypair(keys),
    };
    Socket::with_options(SocketType::Router, o)
}

/// Our client: a DEALER announcing [`OURS`].
fn our_client(mech: Mech, server: &CurveKeyPair) -> Socket {
    let mut o = Options::default().metadata_property(&format!("{}:{}", OURS.0, OURS.1)).expect("a valid property");
    o = match mech {
        Mech::Null => o,
        Mech::Plain => o.plain_username("admin").plain_password("secret"),
        Mech::Curve => o.curve_keypair(&CurveKeyPair::generate()).curve_serverkey(server.public),
    };
    Socket::with_options(SocketType::Dealer, o)
}

/// A libzmq socket announcing [`THEIRS`].
fn z_socket(kind: zmq::SocketType) -> Z {
    let z = Z::new(kind);
    z.set_metadata(&format!("{}:{}", THEIRS.0, THEIRS.1)).expect("ZMQ_METADATA");
    z
}

async fn our_server_zmq_client(mech: Mech, t: Transport) {
    if !zmq_available(mech) {
        return;
    }
    let keys = CurveKeyPair::generate();
    let router = our_server(mech, &keys);
    let ep = router.bind(&t.bind_endpoint("metadata-ours")).await.expect("bind");
    let dealer = z_socket(zmq::DEALER);
    dealer
        .with(|s| match mech {
            Mech::Null => Ok(()),
            Mech::Plain => s.set_plain_username(Some("admin")).and_then(|()| s.set_plain_password(Some("secret"))),
            Mech::Curve => {
                let client = zmq::CurveKeyPair::new()?;
                s.set_curve_serverkey(&keys.public.0)?;
                s.set_curve_publickey(&client.public_key)?;
                s.set_curve_secretkey(&client.secret_key)
            }
        })
        .expect("libzmq client options");
    dealer.connect(&ep);
    dealer.send(vec![b"ping".to_vec()]).await;

    let msg = within("libzmq's message", router.recv()).await.expect("recv");
    assert_eq!(msg.get(1).map(|f| &f[..]), Some(&b"ping"[..]));
    let [socket_type, address, user, ours, theirs] = our_properties(&msg).try_into().expect("five names");
    assert_eq!(socket_type.as_deref(), Some("DEALER"));
    let we_see = check_peer_address(t, address.as_ref());
    assert_eq!(user.as_deref(), Some("our-user"), "our ZAP handler's User-Id");
    assert_eq!(theirs.as_deref(), Some(THEIRS.1), "libzmq's ZMQ_METADATA");
    assert_eq!(ours, None);

    let id = msg.first().cloned().expect("routing id");
    router.send(Message::from([id, "pong".into()])).await.expect("send");
    let parts = within("our reply", z_recv_properties(&dealer)).await;
    let [(body, props)] = parts.as_slice() else { panic!("{parts:?}") };
    assert_eq!(body, b"pong");
    assert_eq!(props[0].as_deref(), Some("ROUTER"));
    let they_see = check_peer_address(t, props[1].as_ref());
    assert_eq!(props[2], None, "a client has no User-Id for its server");
    assert_eq!(props[3].as_deref(), Some(OURS.1), "libzmq reads our ZMQ_METADATA");
    assert_eq!(props[4], None);
    assert_eq!(we_see, they_see, "both see the same process");
    assert_eq!(dealer.with(zmq::Socket::get_mechanism).expect("ZMQ_MECHANISM"), z_mechanism(mech));
    assert_eq!(router.options().mechanism(), our_client(mech, &keys).options().mechanism());
}

async fn zmq_server_our_client(mech: Mech, t: Transport) {
    if !zmq_available(mech) {
        return;
    }
    let keys = CurveKeyPair::generate();
    let router = z_socket(zmq::ROUTER);
    let _zap = ZapThread::start(router.context(), "200", "zmq-user");
    router
        .with(|s| match mech {
            Mech::Null => s.set_zap_domain("global"),
            Mech::Plain => s.set_plain_server(true),
            Mech::Curve => s.set_curve_server(true).and_then(|()| s.set_curve_secretkey(keys.secret.as_bytes())),
        })
        .expect("libzmq server options");
    let ep = router.bind(t, "metadata-zmq");
    let dealer = our_client(mech, &keys);
    dealer.connect(&ep).await.expect("connect");
    dealer.send("ping").await.expect("send");

    let parts = within("our message", z_recv_properties(&router)).await;
    let [(id, _), (body, props)] = parts.as_slice() else { panic!("{parts:?}") };
    assert_eq!(body, b"ping");
    assert_eq!(props[0].as_deref(), Some("DEALER"));
    let they_see = check_peer_address(t, props[1].as_ref());
    assert_eq!(props[2].as_deref(), Some("zmq-user"), "libzmq's ZAP handler's User-Id");
    assert_eq!(props[3].as_deref(), Some(OURS.1), "libzmq reads our ZMQ_METADATA");

    router.send(vec![id.clone(), b"pong".to_vec()]).await;
    let msg = within("libzmq's reply", dealer.recv()).await.expect("recv");
    assert_eq!(msg, Message::from("pong"));
    let [socket_type, address, user, ours, theirs] = our_properties(&msg).try_into().expect("five names");
    assert_eq!(socket_type.as_deref(), Some("ROUTER"));
    let we_see = check_peer_address(t, address.as_ref());
    assert_eq!(user, None, "a client has no User-Id for its server");
    assert_eq!(theirs.as_deref(), Some(THEIRS.1), "libzmq's ZMQ_METADATA");
    assert_eq!(ours, None);
    assert_eq!(we_see, they_see, "both see the same process");
    assert_eq!(router.with(zmq::Socket::get_mechanism).expect("ZMQ_MECHANISM"), z_mechanism(mech));
    assert_eq!(dealer.options().mechanism(), our_server(mech, &keys).options().mechanism());
}

fn z_mechanism(mech: Mech) -> zmq::Mechanism {
    match mech {
        Mech::Null => zmq::Mechanism::ZMQ_NULL,
        Mech::Plain => zmq::Mechanism::ZMQ_PLAIN,
        Mech::Curve => zmq::Mechanism::ZMQ_CURVE,
    }
}

/// ZMQ_MECHANISM: ours names what libzmq's names for the same settings, whichever comes first.
#[test]
fn mechanism_getter_agrees_with_libzmq() {
    let keys = CurveKeyPair::generate();
    type Setting = (fn(Options, &CurveKeyPair) -> Options, fn(&zmq::Socket, &CurveKeyPair) -> zmq::Result<()>);
    let settings: [(&str, Setting); 6] = [
        ("nothing", (|o, _| o, |_, _| Ok(()))),
        ("plain_server", (|o, _| o.plain_server(true), |s, _| s.set_plain_server(true))),
        ("plain_username", (|o, _| o.plain_username("u"), |s, _| s.set_plain_username(Some("u")))),
        ("curve_server", (|o, k| o.curve_server(true).curve_keypair(k), |s, _| s.set_curve_server(true))),
        ("curve_serverkey", (|o, k| o.curve_serverkey(k.public), |s, k| s.set_curve_serverkey(&k.public.0))),
        (
            "plain then curve",
            (
                |o, k| o.plain_server(true).curve_serverkey(k.public),
                |s, k| {
                    s.set_plain_server(true)?;
                    s.set_curve_serverkey(&k.public.0)
                },
            ),
        ),
    ];
    for (what, (ours, theirs)) in settings {
        let z = Z::new(zmq::DEALER);
        z.with(|s| theirs(s, &keys)).expect("libzmq option");
        let want = match z.with(zmq::Socket::get_mechanism).expect("ZMQ_MECHANISM") {
            zmq::Mechanism::ZMQ_NULL => Mech::Null,
            zmq::Mechanism::ZMQ_PLAIN => Mech::Plain,
            zmq::Mechanism::ZMQ_CURVE => Mech::Curve,
            other => panic!("{other:?}"),
        };
        let got = ours(Options::default(), &keys).mechanism();
        assert_eq!(got.as_str(), format!("{want:?}").to_uppercase(), "{what}");
    }
}

/// A ZMQ_METADATA libzmq refuses, we refuse when it is set; and a few it takes that no ZMTP peer
/// would (a space in the name), or that no peer of ours would read (too large), too.
#[test]
fn bad_metadata_is_refused_when_set() {
    let long_name = format!("X-{}:v", "n".repeat(300));
    let libzmq_refuses = ["Foo:bar", "x-foo:bar", "X-Foo:", "X-Foo", ":x", &long_name];
    for property in libzmq_refuses {
        let z = Z::new(zmq::DEALER);
        assert!(z.set_metadata(property).is_err(), "libzmq takes {property:?}");
        let err = Options::default().metadata_property(property).expect_err(property);
        assert!(matches!(err, zmtp::Error::InvalidOption(_)), "{err:?}");
    }
    for property in ["X-F o:x", "X-Ö:x", "X-:x"] {
        assert!(Options::default().metadata_property(property).is_err(), "{property:?}");
    }
    let big = "v".repeat(zmtp::socket::MAX_METADATA);
    assert!(Options::default().metadata("X-Big", big.clone()).is_err());
    let half = &big[..zmtp::socket::MAX_METADATA / 2];
    let o = Options::default().metadata("X-A", half.to_owned()).expect("half fits");
    assert!(o.clone().metadata("X-B", half.to_owned()).is_err(), "together they do not");
    // The same name again replaces the value (so a replacement of the same size fits).
    let o = o.metadata("X-A", half.to_owned()).expect("replaced").metadata("X-B", "small").expect("fits");
    let names: Vec<&str> = o.app_metadata().iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["X-A", "X-B"]);
    // A value may hold colons: the name ends at the first.
    let o = Options::default().metadata_property("X-Url:tcp://h:1").expect("valid");
    assert_eq!(o.app_metadata().get("X-Url").map(|v| &v[..]), Some(&b"tcp://h:1"[..]));
}

/// inproc has no handshake, so its messages carry no peer properties (as libzmq's do not).
#[tokio::test]
async fn inproc_messages_have_no_properties() {
    let pull = Socket::with_options(SocketType::Pull, Options::default().metadata("X-A", "b").expect("valid"));
    pull.bind("inproc://metadata-inproc").await.expect("bind");
    let push = Socket::with_options(SocketType::Push, Options::default().metadata("X-A", "b").expect("valid"));
    push.connect("inproc://metadata-inproc").await.expect("connect");
    push.send("x").await.expect("send");
    let msg = within("the message", pull.recv()).await.expect("recv");
    assert!(msg.properties().is_none(), "{:?}", msg.properties());
}
