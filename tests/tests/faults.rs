//! Faults, survived: the other end is a child process (`zpeer`, `tests/src/bin/zpeer.rs`) that the
//! test kills with SIGKILL, stops with SIGSTOP, terminates with SIGTERM or restarts; each scenario
//! runs with our sockets and with libzmq's as the reference, side by side, and prints both.
//!
//! - A peer killed half-way through a 64 MiB frame: only its connection ends, nothing partial is
//!   delivered, the other peers' traffic goes on.
//! - A peer that stops answering without closing (SIGSTOP): heartbeats drop it within their
//!   timeout, and the connection is remade when it comes back (SIGCONT).
//! - The bound side killed and restarted while 1,000 peers are connected: every peer reconnects
//!   (with backoff and jitter) and is heard again.
//! - PUSH→PULL and DEALER→ROUTER across a receiver killed and restarted: what was lost is counted
//!   exactly; nothing is duplicated, and nothing sent after the new receiver got its first message
//!   is lost.
//! - SIGTERM with linger: a sender that queued 10,000 messages while no receiver existed delivers
//!   them all while closing.
//!
//! Fixed ports 26001–26099 (the restarts need the same endpoint twice).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop_tests::{within, T};
use zmtp::proto::ConnectionError;
use zmtp::socket::{DisconnectReason, MonitorEvent};
use zmtp::{Message, Options, Socket, SocketType};

/// One scenario at a time: several spawn processes and open a thousand connections.
static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `zpeer` child process, its stdout read line by line; killed when dropped.
struct Child {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zpeer"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn zpeer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child { child, lines }
    }

    /// The next line, within [`T`]; `None` once the child's stdout is closed.
    async fn line(&mut self) -> Option<String> {
        within("a line from the child", self.lines.recv()).await
    }

    /// Waits for the line `want`, skipping others; at most [`T`] between lines.
    async fn expect(&mut self, want: &str) {
        let mut last = None;
        loop {
            match tokio::time::timeout(T, self.lines.recv()).await {
                Ok(Some(l)) if l == want => return,
                Ok(Some(l)) => last = Some(l),
                Ok(None) => panic!("child ended before saying {want:?}"),
                Err(_) => panic!("no {want:?} from the child after {T:?}; its last line: {last:?}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill").success();
        assert!(ok, "kill {sig} failed");
    }

    /// SIGKILL, and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the child to exit by itself; its exit status.
    async fn exit_status(&mut self) -> std::process::ExitStatus {
        within("the child to exit", async {
            loop {
                if let Some(s) = self.child.try_wait().expect("try_wait") {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A stopped child cannot die of SIGKILL until continued.
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        self.kill();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imp {
    Ours,
    Zmq,
}

impl Imp {
    fn arg(self) -> &'static str {
        match self {
            Imp::Ours => "ours",
            Imp::Zmq => "zmq",
        }
    }
}

fn zmq_socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).expect("zmq_socket");
    s.set_linger(0).expect("ZMQ_LINGER");
    s.set_rcvtimeo(interop_tests::T_MS).expect("ZMQ_RCVTIMEO");
    s.set_sndtimeo(interop_tests::T_MS).expect("ZMQ_SNDTIMEO");
    s
}

/// Runs a blocking libzmq script off the async threads.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

// ---------------------------------------------------------------------------------------------
// A peer killed in the middle of a large message.

/// Our PULL: a raw peer (a child process) sends half of a 64 MiB frame and is SIGKILLed. The
/// connection ends (EOF or reset), nothing of the half frame is delivered, and a healthy PUSH on
/// the same socket keeps delivering, a 4 MiB message included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_frame_ours() {
    let _one = ONE.lock().await;
    let pull = Socket::with_options(SocketType::Pull, Options::default().linger(Some(Duration::ZERO)));
    let mut monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:*").await.expect("bind");
    let push = Socket::with_options(SocketType::Push, Options::default().linger(Some(Duration::ZERO)));
    push.connect(&ep).await.expect("connect");
    push.send("before").await.expect("send");
    assert_eq!(within("before", pull.recv()).await.expect("recv"), Message::from("before"));

    let mut child = Child::spawn(&["half-frame", ep.trim_start_matches("tcp://"), &(64 << 20).to_string()]);
    child.expect("half").await;
    child.kill();
    let reason = within("the killed peer's disconnect", async {
        loop {
            match monitor.recv().await {
                Some(MonitorEvent::Disconnected { reason, .. }) => return reason,
                Some(_) => {}
                None => panic!("monitor ended"),
            }
        }
    })
    .await;
    assert!(matches!(reason, DisconnectReason::Eof | DisconnectReason::Io(_)), "{reason}");
    println!("ours: peer killed after 32 MiB of a 64 MiB frame: {reason}");

    let big = interop_tests::big_frame(7);
    push.send(vec![bytes::Bytes::from("after"), bytes::Bytes::from(big.clone())]).await.expect("send");
    let got = within("after", pull.recv()).await.expect("recv");
    let frames: Vec<&[u8]> = got.iter().map(|f| &f[..]).collect();
    assert_eq!(frames, vec![&b"after"[..], &big[..]], "the next message is the healthy peer's, whole");
    assert!(pull.try_recv().is_err(), "nothing else was delivered");
}

/// The same against libzmq's PULL: the reference behaviour (the connection ends, nothing partial
/// is delivered, the healthy peer goes on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_frame_zmq() {
    let _one = ONE.lock().await;
    let ctx = zmq::Context::new();
    let pull = zmq_socket(&ctx, zmq::PULL);
    pull.bind("tcp://127.0.0.1:*").expect("bind");
    let ep = pull.get_last_endpoint().expect("endpoint").expect("utf-8");
    pull.monitor("inproc://faults-mid-frame", zmq::SocketEvent::DISCONNECTED as i32).expect("monitor");
    let mon = zmq_socket(&ctx, zmq::PAIR);
    mon.connect("inproc://faults-mid-frame").expect("monitor connect");
    let push = zmq_socket(&ctx, zmq::PUSH);
    push.connect(&ep).expect("connect");
    push.send("before", 0).expect("send");
    let (pull, mon) = blocking(move || {
        assert_eq!(pull.recv_multipart(0).expect("recv"), vec![b"before".to_vec()]);
        (pull, mon)
    })
    .await;

    let mut child = Child::spawn(&["half-frame", ep.trim_start_matches("tcp://"), &(64 << 20).to_string()]);
    child.expect("half").await;
    child.kill();
    let big = interop_tests::big_frame(7);
    let big2 = big.clone();
    blocking(move || {
        let ev = mon.recv_multipart(0).expect("libzmq reports the disconnect");
        let event = u16::from_le_bytes([ev[0][0], ev[0][1]]);
        assert_eq!(zmq::SocketEvent::from_raw(event), zmq::SocketEvent::DISCONNECTED);
        println!("libzmq: peer killed after 32 MiB of a 64 MiB frame: disconnected");
        push.send_multipart([b"after".to_vec(), big2], 0).expect("send");
        let got = pull.recv_multipart(0).expect("recv");
        assert_eq!(got, vec![b"after".to_vec(), big], "the next message is the healthy peer's, whole");
        assert!(pull.recv_multipart(zmq::DONTWAIT).is_err(), "nothing else was delivered");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A peer that stops answering without closing.

/// A ROUTER echo server (`child`, ours or libzmq) is SIGSTOPped while our DEALER and a libzmq
/// DEALER are connected to it with heartbeats (every 100 ms, timeout 300 ms): both drop the
/// connection; after SIGCONT both are heard again through a new connection.
async fn stopped_peer(child: Imp, port: u16) {
    let _one = ONE.lock().await;
    let ep = format!("tcp://127.0.0.1:{port}");
    let mut server = Child::spawn(&["echo", child.arg(), &ep]);
    server.expect("bound").await;

    let dealer = Socket::with_options(
        SocketType::Dealer,
        Options::default().linger(Some(Duration::ZERO)).routing_id("ours").heartbeat(
            Duration::from_millis(100),
            None,
            Some(Duration::from_millis(300)),
        ),
    );
    let mut monitor = dealer.monitor();
    dealer.connect(&ep).await.expect("connect");
    let ctx = zmq::Context::new();
    let zd = zmq_socket(&ctx, zmq::DEALER);
    zd.set_identity(b"zmq").expect("identity");
    zd.set_heartbeat_ivl(100).expect("ZMQ_HEARTBEAT_IVL");
    zd.set_heartbeat_timeout(300).expect("ZMQ_HEARTBEAT_TIMEOUT");
    zd.set_reconnect_ivl(100).expect("ZMQ_RECONNECT_IVL");
    zd.monitor("inproc://faults-stopped", zmq::SocketEvent::ALL as i32).expect("monitor");
    let zmon = zmq_socket(&ctx, zmq::PAIR);
    zmon.connect("inproc://faults-stopped").expect("monitor connect");
    zd.connect(&ep).expect("connect");

    let zd = std::sync::Arc::new(std::sync::Mutex::new(zd));
    // libzmq's DEALER: sends `word` until it comes back (a message sent while its new connection
    // was being refused by the server, which still held the old one under the same id, is lost,
    // as restart.rs shows); returns the attempts, or `None` after 20.
    let zmq_round = |zd: std::sync::Arc<std::sync::Mutex<zmq::Socket>>, word: &'static str| {
        blocking(move || {
            let zd = zd.lock().expect("lock");
            for attempt in 1..=20 {
                zd.send(word, 0).expect("libzmq send");
                if zd.poll(zmq::POLLIN, 100).expect("poll") > 0 {
                    assert_eq!(zd.recv_multipart(0).expect("libzmq echo"), vec![word.as_bytes().to_vec()]);
                    while zd.poll(zmq::POLLIN, 50).expect("poll") > 0 {
                        assert_eq!(zd.recv_multipart(0).expect("libzmq echo"), vec![word.as_bytes().to_vec()]);
                    }
                    return Some(attempt);
                }
            }
            None
        })
    };
    dealer.send("one").await.expect("send");
    assert_eq!(within("echo", dealer.recv()).await.expect("recv"), Message::from("one"));
    assert!(zmq_round(zd.clone(), "one").await.is_some(), "libzmq's DEALER is answered before the stop");
    while monitor.try_recv().is_some() {}

    server.signal("-STOP");
    let stopped = Instant::now();
    let reason = within("our heartbeat to drop the stopped peer", async {
        loop {
            if let Some(MonitorEvent::Disconnected { reason, .. }) = monitor.recv().await {
                return reason;
            }
        }
    })
    .await;
    let ours_after = stopped.elapsed();
    assert_eq!(reason, DisconnectReason::Protocol(ConnectionError::HeartbeatTimeout));
    let zmq_after = blocking(move || loop {
        let ev = zmon.recv_multipart(0).expect("libzmq monitor event");
        let event = zmq::SocketEvent::from_raw(u16::from_le_bytes([ev[0][0], ev[0][1]]));
        if event == zmq::SocketEvent::DISCONNECTED {
            return stopped.elapsed();
        }
    })
    .await;
    println!(
        "{child:?} peer stopped: our heartbeat dropped it after {ours_after:?}, libzmq's after {zmq_after:?} (timeout 300 ms)"
    );

    server.signal("-CONT");
    let resumed = Instant::now();
    dealer.send("two").await.expect("send");
    assert_eq!(within("echo after SIGCONT", dealer.recv()).await.expect("recv"), Message::from("two"));
    let ours_back = resumed.elapsed();
    // libzmq is the reference here, not under test: how it fares is reported, not asserted.
    // (Seen on this machine: its DEALER was not answered again within 20 sends, 2 s, nor 50, 5 s.)
    let zmq_back = match zmq_round(zd, "two").await {
        Some(n) => format!("after {:?} ({n} sends)", resumed.elapsed()),
        None => format!("not within {:?} (20 sends)", resumed.elapsed()),
    };
    println!("{child:?} peer continued: ours heard again after {ours_back:?} (1 send), libzmq {zmq_back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_peer_ours() {
    stopped_peer(Imp::Ours, 26001).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_peer_zmq() {
    stopped_peer(Imp::Zmq, 26002).await
}

// ---------------------------------------------------------------------------------------------
// The bound side restarted under 1,000 peers.

const PEERS: usize = 1000;

/// 1,000 DEALERs (ours or libzmq's, in this process) connect to an echoing ROUTER in a child
/// process (of the same implementation); the child is SIGKILLed and started again on the same
/// port, and every DEALER must be answered by the new one. Each sends a word and sends it again
/// if no echo came back within 1 s (a message written into a connection that was dying is lost,
/// with libzmq as with us): the resends needed count those losses. Reconnect: 100 ms doubling up
/// to 1 s, plus the jitter (both implementations add one below 100 ms).
async fn restart_under_peers(imp: Imp, port: u16) {
    let _one = ONE.lock().await;
    let ep = format!("tcp://127.0.0.1:{port}");
    let mut server = Child::spawn(&["count", imp.arg(), &ep, &PEERS.to_string()]);
    server.expect("bound").await;

    enum Peers {
        Ours(Vec<Socket>),
        Zmq(Vec<zmq::Socket>, #[allow(dead_code)] Vec<zmq::Context>),
    }
    impl Peers {
        fn send(&self, i: usize, word: &str) {
            match self {
                Peers::Ours(v) => v[i].try_send(word).expect("queued"),
                Peers::Zmq(v, _) => v[i].send(word, zmq::DONTWAIT).expect("queued"),
            }
        }
        /// Whether peer `i` has an echo of `word` waiting (others are dropped).
        fn heard(&self, i: usize, word: &str) -> bool {
            loop {
                let got = match self {
                    Peers::Ours(v) => {
                        v[i].try_recv().ok().map(|m| m.iter().next().is_some_and(|f| f[..] == *word.as_bytes()))
                    }
                    Peers::Zmq(v, _) => v[i]
                        .recv_multipart(zmq::DONTWAIT)
                        .ok()
                        .map(|m| m.first().is_some_and(|f| f[..] == *word.as_bytes())),
                };
                match got {
                    Some(true) => return true,
                    Some(false) => {}
                    None => return false,
                }
            }
        }
        /// Until every peer has been answered: returns the time it took and the resends.
        async fn hear_all(&self, word: &str) -> (Duration, usize) {
            let start = Instant::now();
            let mut last = vec![start; PEERS];
            let mut waiting: Vec<usize> = (0..PEERS).collect();
            for &i in &waiting {
                self.send(i, word);
            }
            let mut resends = 0;
            let deadline = start + Duration::from_secs(30);
            while !waiting.is_empty() {
                assert!(Instant::now() < deadline, "{} peers never answered after 30 s", waiting.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
                waiting.retain(|&i| {
                    if self.heard(i, word) {
                        return false;
                    }
                    if last[i].elapsed() >= Duration::from_secs(1) {
                        self.send(i, word);
                        last[i] = Instant::now();
                        resends += 1;
                    }
                    true
                });
            }
            (start.elapsed(), resends)
        }
    }
    let peers = match imp {
        Imp::Ours => {
            let mut v = Vec::new();
            for i in 0..PEERS {
                let d = Socket::with_options(
                    SocketType::Dealer,
                    Options::default()
                        .linger(Some(Duration::ZERO))
                        .routing_id(format!("d{i}"))
                        .reconnect(Duration::from_millis(100), Duration::from_secs(1)),
                );
                d.connect(&ep).await.expect("connect");
                v.push(d);
            }
            Peers::Ours(v)
        }
        Imp::Zmq => {
            let contexts: Vec<zmq::Context> = (0..PEERS.div_ceil(500)).map(|_| zmq::Context::new()).collect();
            let mut v = Vec::new();
            for i in 0..PEERS {
                let d = zmq_socket(&contexts[i / 500], zmq::DEALER);
                d.set_identity(format!("d{i}").as_bytes()).expect("identity");
                d.set_reconnect_ivl(100).expect("ZMQ_RECONNECT_IVL");
                d.set_reconnect_ivl_max(1000).expect("ZMQ_RECONNECT_IVL_MAX");
                d.connect(&ep).expect("connect");
                v.push(d);
            }
            Peers::Zmq(v, contexts)
        }
    };
    let (first, first_resends) = peers.hear_all("first").await;

    server.kill();
    let restarted = Instant::now();
    let mut server = Child::spawn(&["count", imp.arg(), &ep, &PEERS.to_string()]);
    server.expect("bound").await;
    let (again, resends) = peers.hear_all("second").await;
    println!(
        "{imp:?}: {PEERS} peers answered in {first:?} at start ({first_resends} resends); after SIGKILL and restart, \
         all {PEERS} answered again {:?} after the restart ({again:?} after the first send; {resends} resends)",
        restarted.elapsed()
    );
    drop(peers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_1000_peers_ours() {
    restart_under_peers(Imp::Ours, 26003).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_1000_peers_zmq() {
    restart_under_peers(Imp::Zmq, 26004).await
}

// ---------------------------------------------------------------------------------------------
// Counted loss across a receiver restart.

const SENT: usize = 6000;
/// Messages sent back to back before a 1 ms pause.
const BURST: usize = 10;
/// The first receiver is killed once it has printed this number.
const KILL_AT: usize = 2000;

/// A sender in this process sends numbered messages (10 per millisecond) to a receiver in a
/// child process, which prints each number; after it has printed 2,000 the receiver is SIGKILLed
/// and started again. Returns the numbers lost. Checks: nothing twice, each receiver in order, and
/// nothing lost after the new receiver's first message.
async fn receiver_restart(imp: Imp, router: bool, port: u16) -> usize {
    let _one = ONE.lock().await;
    let ep = format!("tcp://127.0.0.1:{port}");
    let kind = if router { "router" } else { "pull" };
    let mut first = Child::spawn(&["sink", imp.arg(), kind, &ep]);
    first.expect("bound").await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = {
        let stop = stop.clone();
        move || stop.load(std::sync::atomic::Ordering::Relaxed)
    };
    let ep2 = ep.clone();
    let sender = tokio::spawn(async move {
        match imp {
            Imp::Ours => {
                let kind = if router { SocketType::Dealer } else { SocketType::Push };
                let s = Socket::with_options(kind, Options::default().linger(Some(Duration::ZERO)).routing_id("s"));
                s.connect(&ep2).await.expect("connect");
                for i in 0..SENT {
                    s.send(i.to_string()).await.expect("send");
                    if i % BURST == BURST - 1 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                while !stopped() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Imp::Zmq => {
                blocking(move || {
                    let ctx = zmq::Context::new();
                    let s = zmq_socket(&ctx, if router { zmq::DEALER } else { zmq::PUSH });
                    s.set_identity(b"s").expect("identity");
                    s.set_reconnect_ivl(100).expect("ZMQ_RECONNECT_IVL");
                    s.connect(&ep2).expect("connect");
                    for i in 0..SENT {
                        s.send(i.to_string().as_bytes(), 0).expect("send");
                        if i % BURST == BURST - 1 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    while !stopped() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
                .await;
            }
        }
    });

    let number = |l: &str| l.parse::<usize>().unwrap_or_else(|_| panic!("not a number: {l}"));
    let mut got_first = Vec::new();
    while !matches!(got_first.last(), Some(&n) if n >= KILL_AT) {
        let line = first.line().await.expect("first receiver's output");
        got_first.push(number(&line));
    }
    first.kill();
    // What it printed before dying.
    while let Ok(line) = first.lines.try_recv() {
        got_first.push(number(&line));
    }
    let mut second = Child::spawn(&["sink", imp.arg(), kind, &ep]);
    second.expect("bound").await;
    let mut got_second = Vec::new();
    while got_second.last() != Some(&(SENT - 1)) {
        let line = second.line().await.expect("second receiver's output");
        got_second.push(number(&line));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.await.expect("sender");

    for got in [&got_first, &got_second] {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{imp:?}: a receiver got numbers out of order or twice");
    }
    let all: BTreeSet<usize> = got_first.iter().chain(&got_second).copied().collect();
    assert_eq!(all.len(), got_first.len() + got_second.len(), "{imp:?}: a number was delivered twice");
    let resumed = got_second[0];
    assert!((resumed..SENT).all(|n| all.contains(&n)), "{imp:?}: lost after the new receiver's first message");
    let lost: Vec<usize> = (0..SENT).filter(|n| !all.contains(n)).collect();
    let last_first = got_first.last().copied().unwrap_or(0);
    println!(
        "{imp:?} {}: {SENT} sent, first receiver got {} (last {last_first}), second got {} from {resumed}: {} lost ({:?}..)",
        if router { "DEALER→ROUTER" } else { "PUSH→PULL" },
        got_first.len(),
        got_second.len(),
        lost.len(),
        lost.first()
    );
    lost.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_receiver_restart_ours() {
    receiver_restart(Imp::Ours, false, 26005).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_receiver_restart_zmq() {
    receiver_restart(Imp::Zmq, false, 26006).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_router_receiver_restart_ours() {
    receiver_restart(Imp::Ours, true, 26007).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_router_receiver_restart_zmq() {
    receiver_restart(Imp::Zmq, true, 26008).await;
}

// ---------------------------------------------------------------------------------------------
// SIGTERM with linger.

const QUEUED: usize = 10_000;

/// A PUSH in a child process (ours or libzmq's, linger 10 s) queues 10,000 messages toward an
/// endpoint where nothing listens yet, and is sent SIGTERM; it closes its socket (libzmq: and
/// terminates its context). Then our PULL binds the endpoint: every message arrives, and the child
/// exits by itself.
async fn sigterm_linger(imp: Imp, port: u16) {
    let _one = ONE.lock().await;
    let ep = format!("tcp://127.0.0.1:{port}");
    let mut child = Child::spawn(&["linger", imp.arg(), &ep, &QUEUED.to_string()]);
    child.expect("queued").await;
    child.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pull = Socket::with_options(SocketType::Pull, Options::default().linger(Some(Duration::ZERO)));
    pull.bind(&ep).await.expect("bind");
    for i in 0..QUEUED {
        let m = tokio::time::timeout(T, pull.recv())
            .await
            .unwrap_or_else(|_| panic!("{imp:?}: only {i} of {QUEUED} queued messages arrived"))
            .expect("recv");
        assert_eq!(m, Message::from(i.to_string()), "{imp:?}: message {i}");
    }
    child.expect("closed").await;
    let status = child.exit_status().await;
    assert!(status.success(), "{imp:?}: {status}");
    println!("{imp:?}: SIGTERM with {QUEUED} queued and no receiver yet: all {QUEUED} delivered, clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_linger_delivers_queued_ours() {
    sigterm_linger(Imp::Ours, 26009).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_linger_delivers_queued_zmq() {
    sigterm_linger(Imp::Zmq, 26010).await
}
