//! Linger: what was queued before `close` is delivered once the peer appears, within the linger
//! time.

use std::time::Duration;

use zmtp::{Message, Options, Socket, SocketType};

/// Messages queued while the connecting endpoint waits between two connect attempts, then a
/// close: the endpoint keeps trying for the linger time and delivers them once the peer binds.
/// (The wait between attempts used to decide at its start whether anything was queued, so a close
/// during the first wait dropped everything sent after the connect.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_a_reconnect_wait_delivers_what_was_queued() {
    // A port nobody listens on yet: bind a listener to learn a free one, and let it go.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let ep = format!("tcp://{}", free.local_addr().expect("address"));
    drop(free);
    let push = Socket::with_options(
        SocketType::Push,
        Options::default().linger(Some(Duration::from_secs(10))).reconnect(Duration::from_millis(300), Duration::ZERO),
    );
    push.connect(&ep).await.expect("connect");
    // The first attempt is refused at once; the endpoint now waits 300 ms or a little more.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..100 {
        push.send(i.to_string()).await.expect("queued");
    }
    let closing = tokio::spawn(push.close());
    let pull = Socket::with_options(SocketType::Pull, Options::default().linger(Some(Duration::ZERO)));
    pull.bind(&ep).await.expect("bind");
    for i in 0..100 {
        let m = tokio::time::timeout(Duration::from_secs(5), pull.recv())
            .await
            .unwrap_or_else(|_| panic!("only {i} of 100 queued messages arrived"))
            .expect("recv");
        assert_eq!(m, Message::from(i.to_string()));
    }
    tokio::time::timeout(Duration::from_secs(5), closing).await.expect("close finishes").expect("join");
}
