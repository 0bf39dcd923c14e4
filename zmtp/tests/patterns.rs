//! The socket types and options beyond the core six, between our own sockets over tcp, ipc and
//! inproc (their libzmq interop lives in the `tests` crate).

use std::time::Duration;

use zmtp::socket::MonitorEvent;
use zmtp::{Error, Message, Options, SendError, Socket, SocketType, TrySendError};

const T: Duration = Duration::from_secs(5);

fn endpoints(name: &str) -> Vec<String> {
    vec![
        "tcp://127.0.0.1:*".to_owned(),
        format!("ipc:///tmp/zmtp-pat-{}-{name}.ipc", std::process::id()),
        format!("inproc://{name}-{}", std::process::id()),
    ]
}

async fn recv(s: &Socket) -> Message {
    tokio::time::timeout(T, s.recv()).await.expect("timely").expect("recv")
}

fn text(m: &Message) -> Vec<String> {
    m.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
}

#[tokio::test]
async fn push_pull_round_robin_and_fair_queue() {
    for ep in endpoints("pushpull") {
        let push = Socket::new(SocketType::Push);
        let bound = push.bind(&ep).await.expect("bind");
        let a = Socket::new(SocketType::Pull);
        let b = Socket::new(SocketType::Pull);
        a.connect(&bound).await.expect("connect");
        b.connect(&bound).await.expect("connect");
        // Wait until both are attached: send until each has received one.
        let mut got = [0usize; 2];
        for i in 0..200 {
            push.send(format!("m{i}")).await.expect("send");
            if i >= 10 {
                while let Ok(_m) = a.try_recv() {
                    got[0] += 1;
                }
                while let Ok(_m) = b.try_recv() {
                    got[1] += 1;
                }
                if got[0] > 0 && got[1] > 0 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(got[0] > 0 && got[1] > 0, "{ep}: both pullers got work: {got:?}");
    }
}

#[tokio::test]
async fn pair_is_exclusive() {
    for ep in endpoints("pair") {
        let a = Socket::new(SocketType::Pair);
        let bound = a.bind(&ep).await.expect("bind");
        let b = Socket::new(SocketType::Pair);
        b.connect(&bound).await.expect("connect");
        b.send("hi").await.expect("send");
        assert_eq!(text(&recv(&a).await), ["hi"]);
        a.send(["x", "y"]).await.expect("send");
        assert_eq!(text(&recv(&b).await), ["x", "y"]);
        // A second peer is refused while the first is connected.
        let c = Socket::new(SocketType::Pair);
        let mut mon = c.monitor();
        c.connect(&bound).await.expect("connect");
        let refused = tokio::time::timeout(T, async {
            loop {
                match mon.recv().await {
                    Some(MonitorEvent::HandshakeFailed { .. }) | Some(MonitorEvent::Disconnected { .. }) => {
                        return true
                    }
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await
        .expect("timely");
        assert!(refused, "{ep}");
    }
}

#[tokio::test]
async fn inproc_connect_before_bind() {
    let name = format!("inproc://late-{}", std::process::id());
    let req = Socket::new(SocketType::Req);
    req.connect(&name).await.expect("connect first");
    req.send("early").await.expect("queued before the bind");
    let rep = Socket::new(SocketType::Rep);
    rep.bind(&name).await.expect("bind later");
    assert_eq!(text(&recv(&rep).await), ["early"]);
    rep.send("late").await.expect("reply");
    assert_eq!(text(&recv(&req).await), ["late"]);
    // The name is taken while rep lives.
    let other = Socket::new(SocketType::Rep);
    assert!(matches!(other.bind(&name).await, Err(Error::Io(_))));
}

#[tokio::test]
async fn xpub_xsub_subscriptions_are_messages() {
    for ep in endpoints("xpubxsub") {
        let xpub = Socket::new(SocketType::XPub);
        let bound = xpub.bind(&ep).await.expect("bind");
        let sub1 = Socket::new(SocketType::Sub);
        let sub2 = Socket::new(SocketType::Sub);
        sub1.connect(&bound).await.expect("connect");
        sub2.connect(&bound).await.expect("connect");
        sub1.subscribe("A").expect("sub");
        assert_eq!(recv(&xpub).await, Message::from(&b"\x01A"[..]));
        // Not verbose: a second subscriber to the same topic is not reported.
        sub2.subscribe("A").expect("sub");
        sub2.subscribe("B").expect("sub");
        assert_eq!(recv(&xpub).await, Message::from(&b"\x01B"[..]), "{ep}");
        xpub.send(["A", "1"]).await.expect("send");
        assert_eq!(text(&recv(&sub1).await), ["A", "1"]);
        assert_eq!(text(&recv(&sub2).await), ["A", "1"]);
        // Last unsubscription of B is reported.
        sub2.unsubscribe("B").expect("unsub");
        assert_eq!(recv(&xpub).await, Message::from(&b"\x00B"[..]));

        // XSUB: subscriptions are sent as messages.
        let publ = Socket::new(SocketType::Pub);
        let pbound = publ.bind(&ep.replace("xpubxsub", "xsubpub")).await.expect("bind");
        let xsub = Socket::new(SocketType::XSub);
        xsub.connect(&pbound).await.expect("connect");
        xsub.send(&b"\x01t"[..]).await.expect("subscribe by message");
        let got = tokio::time::timeout(T, async {
            loop {
                publ.send("nope").await.expect("send");
                publ.send("t1").await.expect("send");
                if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), xsub.recv()).await {
                    return m;
                }
            }
        })
        .await
        .expect("subscription reached the publisher");
        assert_eq!(text(&got), ["t1"], "{ep}");
    }
}

#[tokio::test]
async fn xpub_verbose_and_manual() {
    let name = format!("inproc://xpubv-{}", std::process::id());
    let xpub = Socket::with_options(SocketType::XPub, Options::default().xpub_verbose(true));
    xpub.bind(&name).await.expect("bind");
    let (s1, s2) = (Socket::new(SocketType::Sub), Socket::new(SocketType::Sub));
    s1.connect(&name).await.expect("c");
    s2.connect(&name).await.expect("c");
    s1.subscribe("x").expect("s");
    s2.subscribe("x").expect("s");
    assert_eq!(recv(&xpub).await, Message::from(&b"\x01x"[..]));
    assert_eq!(recv(&xpub).await, Message::from(&b"\x01x"[..]), "verbose reports duplicates");

    let name = format!("inproc://xpubm-{}", std::process::id());
    let xpub = Socket::with_options(SocketType::XPub, Options::default().xpub_manual(true));
    xpub.bind(&name).await.expect("bind");
    let sub = Socket::new(SocketType::Sub);
    sub.connect(&name).await.expect("c");
    sub.subscribe("asked").expect("s");
    assert_eq!(recv(&xpub).await, Message::from(&b"\x01asked"[..]));
    // Manual: the application decides what the peer really gets (a narrower topic here).
    xpub.subscribe("asked-2").expect("manual subscribe");
    xpub.send("asked-1").await.expect("send");
    xpub.send("asked-2").await.expect("send");
    assert_eq!(text(&recv(&sub).await), ["asked-2"]);
}

#[tokio::test]
async fn invert_matching_and_conflate() {
    let name = format!("inproc://inv-{}", std::process::id());
    let publ = Socket::with_options(SocketType::Pub, Options::default().invert_matching(true));
    publ.bind(&name).await.expect("bind");
    let sub = Socket::with_options(SocketType::Sub, Options::default().invert_matching(true));
    sub.connect(&name).await.expect("c");
    sub.subscribe("skip").expect("s");
    tokio::time::sleep(Duration::from_millis(50)).await;
    publ.send("skip-me").await.expect("send");
    publ.send("keep-me").await.expect("send");
    assert_eq!(text(&recv(&sub).await), ["keep-me"]);

    let name = format!("inproc://conf-{}", std::process::id());
    let push = Socket::new(SocketType::Push);
    push.bind(&name).await.expect("bind");
    let pull = Socket::with_options(SocketType::Pull, Options::default().conflate(true));
    pull.connect(&name).await.expect("c");
    for i in 0..100 {
        push.send(i.to_string()).await.expect("send");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(text(&recv(&pull).await), ["99"], "only the last message is kept");
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

#[tokio::test]
async fn req_correlate_relaxed_router_mandatory() {
    let name = format!("inproc://corr-{}", std::process::id());
    let router = Socket::with_options(SocketType::Router, Options::default().router_mandatory(true));
    router.bind(&name).await.expect("bind");
    match router.send(["ghost", "x"]).await {
        Err(SendError { error: Error::HostUnreachable, message }) => assert_eq!(text(&message), ["ghost", "x"]),
        other => panic!("{other:?}"),
    }
    let req =
        Socket::with_options(SocketType::Req, Options::default().req_correlate(true).req_relaxed(true).routing_id("R"));
    req.connect(&name).await.expect("c");
    req.send("first").await.expect("send");
    req.send("second").await.expect("relaxed allows a second request");
    let first = recv(&router).await;
    let second = recv(&router).await;
    assert_eq!(first.len(), 4, "id, request id, delimiter, body: {first:?}");
    // Answer the first (stale) request: dropped. Then the second: delivered.
    router.send(first).await.expect("send");
    router.send(second).await.expect("send");
    assert_eq!(text(&recv(&req).await), ["second"]);
}

/// PROBE_ROUTER: a DEALER or ROUTER with it sends each new peer an empty message first, over every
/// transport (libzmq probes when it attaches a pipe, whatever the transport; inproc once did not).
#[tokio::test]
async fn probe_router_over_every_transport() {
    for ep in endpoints("probe") {
        let router = Socket::with_options(SocketType::Router, Options::default().routing_id("S"));
        let bound = router.bind(&ep).await.expect("bind");
        let dealer = Socket::with_options(SocketType::Dealer, Options::default().probe_router(true).routing_id("D"));
        dealer.connect(&bound).await.expect("connect");
        assert_eq!(text(&recv(&router).await), ["D", ""], "{ep}: the DEALER's probe");
        dealer.send("after").await.expect("send");
        assert_eq!(text(&recv(&router).await), ["D", "after"], "{ep}");
        let client = Socket::with_options(SocketType::Router, Options::default().probe_router(true).routing_id("C"));
        client.connect(&bound).await.expect("connect");
        assert_eq!(text(&recv(&router).await), ["C", ""], "{ep}: the ROUTER's probe");
        // The probe lets the bound side answer at once.
        router.send(["C", "hello"]).await.expect("send");
        assert_eq!(text(&recv(&client).await), ["S", "hello"], "{ep}");
    }
}

#[tokio::test]
async fn monitor_events_in_order() {
    let rep = Socket::new(SocketType::Rep);
    let ep = rep.bind("tcp://127.0.0.1:*").await.expect("bind");
    let req = Socket::new(SocketType::Req);
    let mut mon = req.monitor();
    req.connect(&ep).await.expect("connect");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(T, mon.recv()).await.expect("timely").expect("event");
        seen.push(ev);
    }
    assert!(matches!(seen[0], MonitorEvent::ConnectDelayed { .. }), "{seen:?}");
    assert!(matches!(seen[1], MonitorEvent::Connected { .. }), "{seen:?}");
    assert!(matches!(seen[2], MonitorEvent::HandshakeSucceeded { .. }), "{seen:?}");
    drop(rep);
    let ev = tokio::time::timeout(T, mon.recv()).await.expect("timely").expect("event");
    assert!(matches!(ev, MonitorEvent::Disconnected { .. }), "{ev:?}");

    // A failed handshake: connect a SUB to a REP.
    let sub = Socket::new(SocketType::Sub);
    let rep2 = Socket::new(SocketType::Rep);
    let ep2 = rep2.bind("tcp://127.0.0.1:*").await.expect("bind");
    let mut mon = sub.monitor();
    sub.connect(&ep2).await.expect("connect");
    let failed = tokio::time::timeout(T, async {
        loop {
            if let Some(MonitorEvent::HandshakeFailed { reason, .. }) = mon.recv().await {
                return reason;
            }
        }
    })
    .await
    .expect("handshake failure reported");
    assert!(failed.to_string().contains("SUB"), "{failed}");
}

#[tokio::test]
async fn linger_delivers_after_drop_before_connect() {
    for ep in endpoints("linger") {
        let pull = Socket::new(SocketType::Pull);
        let bound = pull.bind(&ep).await.expect("bind");
        {
            let push = Socket::new(SocketType::Push);
            push.connect(&bound).await.expect("connect");
            push.send(["last", "words"]).await.expect("queued");
            // Dropped at once: the connection is not even up yet.
        }
        assert_eq!(text(&recv(&pull).await), ["last", "words"], "{ep}");
    }
}

#[tokio::test]
async fn proxy_router_dealer_queue() {
    let frontend = Socket::new(SocketType::Router);
    let backend = Socket::new(SocketType::Dealer);
    let fe = frontend.bind("tcp://127.0.0.1:*").await.expect("bind");
    let be = backend.bind("tcp://127.0.0.1:*").await.expect("bind");
    let control = Socket::new(SocketType::Pair);
    control.bind("inproc://proxy-control").await.expect("bind");
    let steer = Socket::new(SocketType::Pair);
    steer.connect("inproc://proxy-control").await.expect("connect");
    let proxy = tokio::spawn(async move { zmtp::proxy_steerable(&frontend, &backend, None, &control).await });
    let worker = Socket::new(SocketType::Rep);
    worker.connect(&be).await.expect("connect");
    let client = Socket::new(SocketType::Req);
    client.connect(&fe).await.expect("connect");
    for i in 0..3 {
        client.send(format!("req{i}")).await.expect("send");
        assert_eq!(text(&recv(&worker).await), [format!("req{i}")]);
        worker.send(format!("rep{i}")).await.expect("send");
        assert_eq!(text(&recv(&client).await), [format!("rep{i}")]);
    }
    steer.send("STATISTICS").await.expect("send");
    let stats = recv(&steer).await;
    assert_eq!(stats.len(), 8);
    let n = |i: usize| stats.get(i).map(|f| u64::from_ne_bytes(f[..].try_into().expect("8 octets")));
    assert_eq!(n(0), Some(3), "frontend messages in");
    assert_eq!(n(4), Some(3), "backend messages in");
    steer.send("TERMINATE").await.expect("send");
    let final_stats = tokio::time::timeout(T, proxy).await.expect("timely").expect("join").expect("proxy");
    assert_eq!(final_stats.frontend_msgs_out, 3);
}

#[test]
fn blocking_facade() {
    use zmtp::blocking;
    let rep = blocking::Socket::new(SocketType::Rep).expect("socket");
    let ep = rep.bind("tcp://127.0.0.1:*").expect("bind");
    let t = std::thread::spawn(move || {
        let m = rep.recv().expect("recv");
        rep.send(m).expect("echo");
        rep.close();
    });
    let req = blocking::Socket::new(SocketType::Req).expect("socket");
    req.connect(&ep).expect("connect");
    req.send("echo me").expect("send");
    assert_eq!(text(&req.recv_timeout(T).expect("reply")), ["echo me"]);
    t.join().expect("server thread");
}

#[tokio::test]
async fn connect_routing_id_and_welcome_message() {
    for ep in endpoints("crid") {
        let server = Socket::with_options(SocketType::Router, Options::default().routing_id("server"));
        let bound = server.bind(&ep).await.expect("bind");
        let client = Socket::with_options(SocketType::Router, Options::default().routing_id("client"));
        client.connect_with_routing_id(&bound, "srv").await.expect("connect");
        // The client knows the server as "srv", whatever id the server announces.
        let sent = tokio::time::timeout(T, async {
            loop {
                if client.send(["srv", "hello"]).await.is_ok() {
                    if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), server.recv()).await {
                        return m;
                    }
                }
            }
        })
        .await
        .expect("routed");
        assert_eq!(text(&sent), ["client", "hello"], "{ep}");
        server.send(["client", "back"]).await.expect("send");
        assert_eq!(text(&recv(&client).await), ["srv", "back"], "{ep}");
    }

    let name = format!("inproc://welcome-{}", std::process::id());
    let xpub = Socket::with_options(
        SocketType::XPub,
        Options::default().xpub_welcome_msg(Some(bytes::Bytes::from_static(b"WELCOME"))),
    );
    xpub.bind(&name).await.expect("bind");
    let sub = Socket::new(SocketType::Sub);
    sub.subscribe("WELCOME").expect("sub");
    sub.connect(&name).await.expect("connect");
    assert_eq!(text(&recv(&sub).await), ["WELCOME"]);
}

#[tokio::test]
async fn inproc_dealer_router_rep_and_router_router() {
    let pid = std::process::id();
    // DEALER <-> ROUTER, both directions of bind.
    for dealer_binds in [false, true] {
        let name = format!("inproc://dr-{dealer_binds}-{pid}");
        let router = Socket::new(SocketType::Router);
        let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("d"));
        if dealer_binds {
            dealer.bind(&name).await.expect("bind");
            router.connect(&name).await.expect("connect");
        } else {
            router.bind(&name).await.expect("bind");
            dealer.connect(&name).await.expect("connect");
        }
        dealer.send(["a", "b"]).await.expect("send");
        assert_eq!(text(&recv(&router).await), ["d", "a", "b"]);
        router.send(["d", "c"]).await.expect("send");
        assert_eq!(text(&recv(&dealer).await), ["c"]);
    }
    // DEALER -> REP with an explicit envelope.
    let name = format!("inproc://drep-{pid}");
    let rep = Socket::new(SocketType::Rep);
    rep.bind(&name).await.expect("bind");
    let dealer = Socket::new(SocketType::Dealer);
    dealer.connect(&name).await.expect("connect");
    dealer.send(["hop", "", "question"]).await.expect("send");
    assert_eq!(text(&recv(&rep).await), ["question"]);
    rep.send("answer").await.expect("send");
    assert_eq!(text(&recv(&dealer).await), ["hop", "", "answer"]);
    // ROUTER <-> ROUTER with identities.
    let name = format!("inproc://rr-{pid}");
    let server = Socket::with_options(SocketType::Router, Options::default().routing_id("server"));
    server.bind(&name).await.expect("bind");
    let client = Socket::with_options(SocketType::Router, Options::default().routing_id("client"));
    client.connect(&name).await.expect("connect");
    client.send(["server", "ping"]).await.expect("send");
    assert_eq!(text(&recv(&server).await), ["client", "ping"]);
    server.send(["client", "pong"]).await.expect("send");
    assert_eq!(text(&recv(&client).await), ["server", "pong"]);
}

/// A message that is not sent comes back, as the application passed it (as tokio's channels give
/// theirs back): REQ without a peer under `try_send` and a send timeout (without the envelope it
/// had been given), a type that cannot send, a ROUTER_MANDATORY peer at its high-water mark.
#[tokio::test]
async fn unsent_messages_come_back() {
    let timeout = Some(Duration::from_millis(20));
    let req = Socket::with_options(SocketType::Req, Options::default().req_correlate(true).send_timeout(timeout));
    match req.try_send(["a", "b"]) {
        Err(TrySendError::WouldBlock(m)) => assert_eq!(text(&m), ["a", "b"]),
        other => panic!("{other:?}"),
    }
    match req.send(["c", "d"]).await {
        Err(SendError { error: Error::WouldBlock, message }) => assert_eq!(text(&message), ["c", "d"]),
        other => panic!("{other:?}"),
    }
    let pull = Socket::new(SocketType::Pull);
    match pull.try_send("x") {
        Err(TrySendError::Failed(SendError { error: Error::NotSupported(SocketType::Pull), message })) => {
            assert_eq!(text(&message), ["x"])
        }
        other => panic!("{other:?}"),
    }

    let name = format!("inproc://unsent-{}", std::process::id());
    let router = Socket::with_options(
        SocketType::Router,
        Options::default().router_mandatory(true).sndhwm(1).send_timeout(timeout),
    );
    router.bind(&name).await.expect("bind");
    let dealer = Socket::with_options(SocketType::Dealer, Options::default().routing_id("D").rcvhwm(1));
    dealer.connect(&name).await.expect("connect");
    dealer.send("hi").await.expect("send");
    recv(&router).await;
    // The dealer does not read: its queues fill, then the router's pipe toward it.
    let mut sent = 0;
    let back = loop {
        match router.send(["D", "m"]).await {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "the pipe toward the dealer never filled");
    };
    assert!(matches!(back.error, Error::WouldBlock), "{back:?}");
    assert_eq!(text(&back.into_message()), ["D", "m"]);
}

/// What a peer sends in one go (one read) reaches the application whole and in order, across
/// the batches a connection hands its messages over in and the other events that end them: an
/// XSUB's plain messages and its subscriptions (commands on the wire, messages to a verbose
/// XPUB), 300 of them against a receive high-water mark of 7, so that batches also stop at a full
/// queue. (Our XSUB sends its subscriptions from a queue of their own, so only the order within
/// each kind is the sender's.)
#[tokio::test]
async fn a_burst_of_messages_and_subscriptions_arrives_in_order() {
    for ep in endpoints("burst") {
        let xpub = Socket::with_options(SocketType::XPub, Options::default().xpub_verbose(true).rcvhwm(7));
        let bound = xpub.bind(&ep).await.expect("bind");
        let xsub = Socket::new(SocketType::XSub);
        xsub.connect(&bound).await.expect("connect");
        // Up before the burst, so that it goes out together.
        xsub.send(&b"\x01first"[..]).await.expect("send");
        assert_eq!(recv(&xpub).await, Message::from(&b"\x01first"[..]), "{ep}");
        let burst: Vec<Vec<u8>> = (0..300)
            .map(|i| if i % 3 == 2 { format!("\x01s{i}").into_bytes() } else { format!("m{i}").into_bytes() })
            .collect();
        for m in &burst {
            xsub.send(&m[..]).await.expect("send");
        }
        let (mut subs, mut msgs) = (Vec::new(), Vec::new());
        for _ in 0..burst.len() {
            let Ok(Ok(m)) = tokio::time::timeout(T, xpub.recv()).await else {
                panic!(
                    "{ep}: {} subscriptions and {} messages of 100 and 200 came; last {:?} {:?}",
                    subs.len(),
                    msgs.len(),
                    subs.last().map(|s: &Vec<u8>| String::from_utf8_lossy(s).into_owned()),
                    msgs.last().map(|s: &Vec<u8>| String::from_utf8_lossy(s).into_owned())
                );
            };
            let body = m.iter().next().map(|f| f.to_vec()).unwrap_or_default();
            if body.first() == Some(&1) {
                subs.push(body);
            } else {
                msgs.push(body);
            }
        }
        let (want_subs, want_msgs): (Vec<Vec<u8>>, Vec<Vec<u8>>) = burst.into_iter().partition(|m| m[0] == 1);
        assert_eq!(subs, want_subs, "{ep}");
        assert_eq!(msgs, want_msgs, "{ep}");
    }
}
