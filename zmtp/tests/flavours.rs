//! REQ/REP on both of tokio's runtime flavours: the hand-offs between the application's task and
//! the connection's (a send that goes out from the application's task, a receive that polls the
//! connection itself and wakes only the application) must not lose a wake-up whichever thread
//! runs which side. A lost one shows as a round trip that never completes (the timeouts below).

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use zmtp::socket::{Monitor, MonitorEvent};
use zmtp::{Message, Options, Socket, SocketType};

const T: Duration = Duration::from_secs(5);

fn runtimes() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    let ct = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    vec![("current-thread", ct), ("multi-threaded", mt)]
}

fn endpoints(name: &str) -> Vec<String> {
    vec!["tcp://127.0.0.1:*".to_owned(), format!("ipc:///tmp/zmtp-flavours-{}-{name}.ipc", std::process::id())]
}

/// Both ways of waiting: sleeping at once (the default), and spinning for a while first
/// (`Options::recv_spin`).
const SPINS: [Duration; 2] = [Duration::ZERO, Duration::from_micros(200)];

/// An echo server on its own task: answers every request with the request.
async fn echo(ep: &str, options: Options) -> (Arc<Socket>, String) {
    let rep = Arc::new(Socket::with_options(SocketType::Rep, options));
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
            for (ep, spin) in endpoints("rtt").into_iter().flat_map(|ep| SPINS.map(|s| (ep.clone(), s))) {
                let (rep, bound) = echo(&ep, Options::default().recv_spin(spin)).await;
                let req = Socket::with_options(SocketType::Req, Options::default().recv_spin(spin));
                req.connect(&bound).await.expect("connect");
                for i in 0..2000u32 {
                    let body = i.to_be_bytes();
                    tokio::time::timeout(T, req.send(&body[..])).await.expect("timely send").expect("send");
                    let got = tokio::time::timeout(T, req.recv())
                        .await
                        .unwrap_or_else(|_| panic!("{flavour} {ep} spin {spin:?}: round trip {i} never completed"))
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
            // A spin longer than the receive's timeout: cancelled while it spins, too.
            for (ep, spin) in endpoints("cancel")
                .into_iter()
                .flat_map(|ep| [(ep.clone(), Duration::ZERO), (ep, Duration::from_millis(1))])
            {
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
                let req = Socket::with_options(SocketType::Req, Options::default().recv_spin(spin));
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

/// Counts the polls of the future it wraps.
struct Counted<F> {
    polls: Arc<AtomicUsize>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

/// `recv_spin`: a receive with nothing to take is polled again and again (spins), but only within
/// its budget; then it sleeps (is not polled at all) until a message comes, which it gets. With
/// one peer (the receive polls the connection itself) and with two (it waits on the queue).
#[test]
fn a_spinning_receive_sleeps_after_its_budget() {
    for (flavour, rt) in runtimes() {
        rt.block_on(async {
            for (peers, spin) in [(1, Duration::ZERO), (1, Duration::from_millis(2)), (2, Duration::from_millis(2))] {
                let what = format!("{flavour}, {peers} peer(s), spin {spin:?}");
                let pull = Arc::new(Socket::with_options(SocketType::Pull, Options::default().recv_spin(spin)));
                let bound = pull.bind("tcp://127.0.0.1:*").await.expect("bind");
                let mut pushes = Vec::new();
                for _ in 0..peers {
                    let push = Socket::new(SocketType::Push);
                    push.connect(&bound).await.expect("connect");
                    // Up: what it sends arrives (PUSH round-robins, so each peer's own message).
                    push.send("hello").await.expect("send");
                    let got = tokio::time::timeout(T, pull.recv()).await.expect("timely").expect("recv");
                    assert_eq!(got, Message::from("hello"), "{what}");
                    pushes.push(push);
                }
                let polls = Arc::new(AtomicUsize::new(0));
                let receiver = pull.clone();
                let recv = tokio::spawn(Counted {
                    polls: polls.clone(),
                    inner: Box::pin(async move { receiver.recv().await }),
                });
                // Idle: the count must settle (the spin ended) — checked across 50 ms pauses, for
                // up to 5 s, so that a loaded machine cannot make it fail, while a spin that never
                // ends does.
                let deadline = tokio::time::Instant::now() + T;
                let mut last = polls.load(Ordering::SeqCst);
                let settled = loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let now = polls.load(Ordering::SeqCst);
                    if now == last {
                        break now;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "{what}: still polled after 5 s ({now} polls)");
                    last = now;
                };
                if spin.is_zero() {
                    assert_eq!(settled, 1, "{what}: an idle receive without a spin is polled once");
                } else {
                    assert!(settled >= 2, "{what}: the receive did not spin ({settled} polls)");
                }
                assert!(!recv.is_finished(), "{what}: nothing was sent");
                pushes[0].send("late").await.expect("send");
                let got =
                    tokio::time::timeout(T, recv).await.expect("the receive woke up").expect("task").expect("recv");
                assert_eq!(got, Message::from("late"), "{what}");
            }
        });
    }
}

/// A body of `n` octets that records the thread it is freed on.
struct Traced {
    data: Vec<u8>,
    freed_on: Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
}

impl AsRef<[u8]> for Traced {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Ok(mut v) = self.freed_on.lock() {
            v.push(std::thread::current().id());
        }
    }
}

/// On the multi-threaded runtime, bodies written by reference (from 8 KiB over ipc, 2 KiB over
/// tcp) go back to the application's thread to be freed by its next send, instead of being
/// freed on the connection task's worker (a `free` across threads contends on glibc's arena lock
/// with the application's `malloc`). Messages queued before the peer exists, so that the
/// connection's first writes finish while the pipe still holds messages (the rule for handing
/// back); then the application sends until one is freed on its thread. Every body is freed.
#[test]
fn bodies_written_by_reference_are_freed_by_the_sender() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let freed_on = Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = std::thread::current().id();
    const N: usize = 300;
    let freed = freed_on.clone();
    rt.block_on(async move {
        let ep = format!("ipc:///tmp/zmtp-flavours-{}-give-back.ipc", std::process::id());
        let push = Socket::new(SocketType::Push);
        push.connect(&ep).await.expect("connect");
        for _ in 0..N {
            let body = Traced { data: vec![7u8; 16 * 1024], freed_on: freed.clone() };
            push.try_send(bytes::Bytes::from_owner(body)).expect("queued before the peer");
        }
        let pull = Socket::new(SocketType::Pull);
        pull.bind(&ep).await.expect("bind");
        for _ in 0..N {
            let m = tokio::time::timeout(T, pull.recv()).await.expect("timely").expect("recv");
            assert_eq!(m.total_len(), 16 * 1024);
        }
        tokio::time::timeout(T, async {
            loop {
                push.send(Message::from("small")).await.expect("send");
                let m = pull.recv().await.expect("recv");
                assert_eq!(m.total_len(), 5);
                if freed.lock().expect("lock").contains(&app) {
                    break;
                }
            }
        })
        .await
        .expect("a body freed on the application's thread");
        drop(push);
        drop(pull);
    });
    drop(rt);
    let freed = freed_on.lock().expect("lock");
    assert_eq!(freed.len(), N, "every body freed once");
}

/// A PULL whose receive high-water mark its peer keeps reaching: each receive that takes the
/// lane down to the low-water mark makes the connection, waiting for room, due; on the
/// multi-threaded runtime the application's task then drives the connection itself instead of
/// waking its task (`Socket::take_inbound`). Every message arrives, in order, on both flavours
/// and transports: a wake-up lost in that hand-off leaves the connection waiting with its peer's
/// messages unread (the timeout below).
#[test]
fn receives_at_the_low_water_mark_keep_the_connection_going() {
    const N: u32 = 20_000;
    for (flavour, rt) in runtimes() {
        rt.block_on(async {
            for ep in endpoints("lwm") {
                let pull = Socket::with_options(SocketType::Pull, Options::default().rcvhwm(8));
                let bound = pull.bind(&ep).await.expect("bind");
                let push = Socket::new(SocketType::Push);
                push.connect(&bound).await.expect("connect");
                let sender = tokio::spawn(async move {
                    for i in 0..N {
                        push.send(&i.to_be_bytes()[..]).await.expect("send");
                    }
                    push
                });
                for i in 0..N {
                    let got = tokio::time::timeout(T, pull.recv())
                        .await
                        .unwrap_or_else(|_| panic!("{flavour} {ep}: message {i} never came"))
                        .expect("recv");
                    assert_eq!(got, Message::from(&i.to_be_bytes()[..]), "{flavour} {ep}");
                }
                drop(tokio::time::timeout(T, sender).await.expect("sender ends").expect("sender"));
            }
        });
    }
}

/// An application that sends from outside the runtime's tasks (`block_on`, as `#[tokio::main]`
/// does) wakes its connection through the pipe's doorbell on the multi-threaded runtime (see
/// `socket/bell.rs`), through the waker on the current-thread one. Bursts of 1 to 40 messages,
/// each sent once the one before has all arrived: the connection has emptied the pipe and waits
/// on it (and on the bell), so the first message of every burst must wake it. A lost wake-up
/// leaves a burst in the pipe (the timeout below). Over ipc, the receiver is then replaced: the
/// pipe outlives the first connection (its bell taken out with it) and the next connection is
/// woken the same way.
#[test]
fn sends_from_outside_the_tasks_wake_the_connection_after_every_pause() {
    for (flavour, rt) in runtimes() {
        rt.block_on(async {
            for ep in endpoints("bell") {
                let push = Socket::new(SocketType::Push);
                let mut events = push.monitor();
                let mut bound = String::new();
                let rounds = if ep.starts_with("ipc") { 2 } else { 1 };
                for round in 0..rounds {
                    if round > 0 {
                        // The old connection gone first: a message sent into it while it closes
                        // would be lost (as with libzmq), which is not what this test is about.
                        until(&mut events, |e| matches!(e, MonitorEvent::Disconnected { .. })).await;
                    }
                    let pull = Socket::new(SocketType::Pull);
                    bound = pull.bind(if round == 0 { &ep } else { &bound }).await.expect("bind");
                    if round == 0 {
                        push.connect(&bound).await.expect("connect");
                    } else {
                        until(&mut events, |e| matches!(e, MonitorEvent::HandshakeSucceeded { .. })).await;
                    }
                    let got = Arc::new(AtomicUsize::new(0));
                    let receiver = {
                        let got = got.clone();
                        tokio::spawn(async move {
                            let mut next = 0u32;
                            while let Ok(m) = pull.recv().await {
                                assert_eq!(m, Message::from(&next.to_be_bytes()[..]), "in order");
                                next += 1;
                                got.store(next as usize, Ordering::SeqCst);
                            }
                        })
                    };
                    let mut sent = 0u32;
                    for burst in 0..200u32 {
                        for _ in 0..=burst % 40 {
                            push.send(&sent.to_be_bytes()[..]).await.expect("send");
                            sent += 1;
                        }
                        let want = sent as usize;
                        tokio::time::timeout(T, async {
                            while got.load(Ordering::SeqCst) < want {
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                        })
                        .await
                        .unwrap_or_else(|_| {
                            panic!(
                                "{flavour} {ep} round {round}: burst {burst} stuck at {} of {want}",
                                got.load(Ordering::SeqCst)
                            )
                        });
                    }
                    receiver.abort();
                    let _ = receiver.await;
                }
            }
        });
    }
}

/// Waits (bounded) for the first event that `want` accepts.
async fn until(events: &mut Monitor, want: impl Fn(&MonitorEvent) -> bool) {
    tokio::time::timeout(T, async {
        while let Some(e) = events.recv().await {
            if want(&e) {
                return;
            }
        }
        panic!("monitor ended");
    })
    .await
    .expect("the event comes");
}
