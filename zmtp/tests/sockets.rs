//! Our sockets talking to each other over tcp and ipc (the libzmq interop tier is in `tests/`).

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Message, Socket, SocketType};

const T: Duration = Duration::from_secs(5);

fn ipc(name: &str) -> String {
    format!("ipc:///tmp/zmtp-test-{}-{name}.ipc", std::process::id())
}

async fn bind_connect(a: &Socket, b: &Socket, transport: &str, name: &str) {
    let ep = if transport == "tcp" { "tcp://127.0.0.1:*".to_owned() } else { ipc(name) };
    let bound = a.bind(&ep).await.expect("bind");
    b.connect(&bound).await.expect("connect");
}

#[tokio::test]
async fn req_rep() {
    for t in ["tcp", "ipc"] {
        let rep = Socket::new(SocketType::Rep);
        let req = Socket::new(SocketType::Req);
        bind_connect(&rep, &req, t, "reqrep").await;
        for i in 0..3 {
            req.send(["hello", &i.to_string()]).await.expect("send");
            let got = tokio::time::timeout(T, rep.recv()).await.expect("timely").expect("recv");
            assert_eq!(got, Message::from(["hello", &i.to_string()]));
            assert!(matches!(req.send("again").await, Err(zmtp::Error::InvalidState)));
            rep.send("world").await.expect("reply");
            let reply = tokio::time::timeout(T, req.recv()).await.expect("timely").expect("recv");
            assert_eq!(reply, Message::from("world"));
        }
    }
}

#[tokio::test]
async fn dealer_router_identities() {
    let router = Socket::new(SocketType::Router);
    let dealer = Socket::with_options(SocketType::Dealer, zmtp::Options::default().routing_id("d1"));
    bind_connect(&router, &dealer, "tcp", "dr").await;
    dealer.send(["", "ping"]).await.expect("send");
    let got = tokio::time::timeout(T, router.recv()).await.expect("timely").expect("recv");
    assert_eq!(got, Message::from(["d1", "", "ping"]));
    router.send(["d1", "", "pong"]).await.expect("send");
    router.send(["nobody", "lost"]).await.expect("unroutable is dropped");
    let got = tokio::time::timeout(T, dealer.recv()).await.expect("timely").expect("recv");
    assert_eq!(got, Message::from(["", "pong"]));
}

#[tokio::test]
async fn pub_sub_filters_and_large() {
    let publ = Socket::new(SocketType::Pub);
    let sub = Socket::new(SocketType::Sub);
    bind_connect(&publ, &sub, "tcp", "ps").await;
    sub.subscribe("a").expect("subscribe");
    let big = Bytes::from(vec![7u8; 4 << 20]);
    // Subscriptions travel asynchronously: publish until the first one arrives.
    let first = tokio::time::timeout(T, async {
        loop {
            publ.send("b-ignored").await.expect("send");
            publ.send(Message::from(vec![Bytes::from_static(b"a"), big.clone()])).await.expect("send");
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await {
                return m;
            }
        }
    })
    .await
    .expect("subscription took effect");
    assert_eq!(first.first().map(|f| &f[..]), Some(&b"a"[..]));
    assert_eq!(first.get(1).map(Bytes::len), Some(4 << 20));
}
