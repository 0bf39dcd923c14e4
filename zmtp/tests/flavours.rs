//! REQ/REP on both of tokio's runtime flavours: the hand-offs between the application's task and
//! the connection's (a send that goes out from the application's task, a receive that polls the
//! connection itself and wakes only the application) must not lose a wake-up whichever thread
//! runs which side. A lost one shows as a round trip that never completes (the timeouts below).

use std::sync::Arc;
use std::time::Duration;

use zmtp::{Message, Socket, SocketType};

const T: Duration = Duration::from_secs(5);

fn runtimes() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    let ct = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    vec![("current-thread", ct), ("multi-threaded", mt)]
}

fn endpoints(name: &str) -> Vec<String> {
    vec!["tcp://127.0.0.1:*".to_owned(), format!("ipc:///tmp/zmtp-flavours-{}-{name}.ipc", std::process::id())]
}

/// An echo server on its own task: answers every request with the request.
async fn echo(ep: &str) -> (Arc<Socket>, String) {
    let rep = Arc::new(Socket::new(SocketType::Rep));
    let bound = rep.bind(ep).await.expect("bind");
    let server = rep.clone();
    tokio::spawn(async move {
        while let Ok(m) = server.recv().await {
            if server.send(m).await.is_err() {
                break;
            }
        }
    });
    (rep, bound)
}

#[test]
fn req_rep_round_trips() {
    for (flavour, rt) in runtimes() {
        rt.block_on(async {
            for ep in endpoints("rtt") {
                let (rep, bound) = echo(&ep).await;
                let req = Socket::new(SocketType::Req);
                req.connect(&bound).await.expect("connect");
                for i in 0..2000u32 {
                    let body = i.to_be_bytes();
                    tokio::time::timeout(T, req.send(&body[..])).await.expect("timely send").expect("send");
                    let got = tokio::time::timeout(T, req.recv())
                        .await
                        .unwrap_or_else(|_| panic!("{flavour} {ep}: round trip {i} never completed"))
                        .expect("recv");
                    assert_eq!(got, Message::from(&body[..]), "{flavour} {ep}");
                }
                req.close().await;
                drop(rep);
            }
        });
    }
}

/// Receives cancelled while the reply is on its way (the connection was woken for the
/// application, which then left), and a pause with no receive waiting: the next receive still
/// gets the reply, and the connection keeps working.
#[test]
fn cancelled_receives() {
    for (flavour, rt) in runtimes() {
        rt.block_on(async {
            for ep in endpoints("cancel") {
                let rep = Arc::new(Socket::new(SocketType::Rep));
                let bound = rep.bind(&ep).await.expect("bind");
                let server = rep.clone();
                tokio::spawn(async move {
                    while let Ok(m) = server.recv().await {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        if server.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                let req = Socket::new(SocketType::Req);
                req.connect(&bound).await.expect("connect");
                for i in 0..20u32 {
                    let body = i.to_be_bytes();
                    req.send(&body[..]).await.expect("send");
                    let mut early = 0;
                    let got = loop {
                        match req.recv_timeout(Duration::from_micros(300)).await {
                            Ok(m) => break m,
                            Err(zmtp::Error::WouldBlock) => {
                                early += 1;
                                if early == 2 {
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                                assert!(early < 20_000, "{flavour} {ep}: no reply to {i}");
                            }
                            Err(e) => panic!("{flavour} {ep}: {e}"),
                        }
                    };
                    assert_eq!(got, Message::from(&body[..]), "{flavour} {ep}");
                }
                req.send("last").await.expect("send");
                let got = tokio::time::timeout(T, req.recv()).await.expect("timely").expect("recv");
                assert_eq!(got, Message::from("last"), "{flavour} {ep}");
                req.close().await;
                drop(rep);
            }
        });
    }
}
