//! `zpeer`: one end of a fault test, run as a child process so that the test can kill it
//! (SIGKILL), stop it (SIGSTOP), terminate it (SIGTERM) and start it again. `tests/tests/faults.rs`
//! and `scripts/soak.sh` drive it. Each role runs our sockets (`ours`) or libzmq's (`zmq`), and
//! reports on stdout, one line per fact, flushed at once (the parent may kill us at any moment).
//!
//! ```text
//! zpeer half-frame <host:port> <octets>       raw PUSH: sends half of a frame announcing <octets>, says "half", waits
//! zpeer echo <ours|zmq> <endpoint>            ROUTER bound at <endpoint>, echoes each message back to its sender
//! zpeer count <ours|zmq> <endpoint> <n>       ROUTER bound at <endpoint>: "all <n>" once <n> distinct peers said something
//! zpeer sink <ours|zmq> <pull|router> <ep>    PULL or ROUTER bound at <ep>: prints the last frame of each message
//! zpeer linger <ours|zmq> <endpoint> <n>      PUSH connected to <ep> (linger 10 s): queues <n> messages, says
//!                                             "queued", and on SIGTERM closes (sending what is queued), "closed"
//! zpeer dealers <ours|zmq> <endpoint> <n>     <n> DEALERs connect to <endpoint>, each sends its index every time a
//!                                             reply comes back or 500 ms pass (a churn peer for the soak); "up <ms>"
//!                                             once every one has had a reply
//! zpeer pusher <ours|zmq> <ep> <tag> <n>      PUSH: sends "<tag>:<i>" for i < n, 1 per ms, closes with linger, "done"
//! zpeer publisher <ours|zmq> <ep>             PUB bound at <ep>: publishes "t<k % 10> <k>" about 2 per ms
//! zpeer subscriber <ours|zmq> <ep> <topic>    SUB: counts what matches, "got <n>" every second
//! zpeer rep <ours|zmq> <endpoint>             REP bound at <endpoint>: answers each request with itself
//! zpeer requesters <ours|zmq> <ep> <n>        <n> REQs, each asking "<pid>-<i>:<k>" for k = 0, 1, ... and checking the
//!                                             reply is its request; "ok <replies>" every second, "up <ms>" once each
//!                                             had a reply, "bad <i>" on a wrong reply, "stuck <i>" on none in 5 s
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use interop_tests::RawPeer;
use zmtp::{Options, Socket, SocketType};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fail(msg: &str) -> ! {
    eprintln!("zpeer: {msg}");
    std::process::exit(2)
}

fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map(String::as_str).unwrap_or_else(|| fail(&format!("missing argument {i}")))
}

fn number(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| fail(&format!("not a number: {s}")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match arg(&args, 1) {
        "half-frame" => half_frame(arg(&args, 2), number(arg(&args, 3))),
        role => {
            let ours = match arg(&args, 2) {
                "ours" => true,
                "zmq" => false,
                other => fail(&format!("implementation {other}: ours or zmq")),
            };
            match (role, ours) {
                ("echo", true) => runtime().block_on(ours_echo(arg(&args, 3))),
                ("echo", false) => zmq_echo(arg(&args, 3)),
                ("count", true) => runtime().block_on(ours_count(arg(&args, 3), number(arg(&args, 4)))),
                ("count", false) => zmq_count(arg(&args, 3), number(arg(&args, 4))),
                ("sink", true) => runtime().block_on(ours_sink(arg(&args, 3) == "router", arg(&args, 4))),
                ("sink", false) => zmq_sink(arg(&args, 3) == "router", arg(&args, 4)),
                ("linger", true) => runtime().block_on(ours_linger(arg(&args, 3), number(arg(&args, 4)))),
                ("linger", false) => zmq_linger(arg(&args, 3), number(arg(&args, 4))),
                ("dealers", true) => runtime().block_on(ours_dealers(arg(&args, 3), number(arg(&args, 4)))),
                ("dealers", false) => zmq_dealers(arg(&args, 3), number(arg(&args, 4))),
                ("pusher", true) => {
                    runtime().block_on(ours_pusher(arg(&args, 3), arg(&args, 4), number(arg(&args, 5))))
                }
                ("pusher", false) => zmq_pusher(arg(&args, 3), arg(&args, 4), number(arg(&args, 5))),
                ("publisher", true) => runtime().block_on(ours_publisher(arg(&args, 3))),
                ("publisher", false) => zmq_publisher(arg(&args, 3)),
                ("subscriber", true) => runtime().block_on(ours_subscriber(arg(&args, 3), arg(&args, 4))),
                ("subscriber", false) => zmq_subscriber(arg(&args, 3), arg(&args, 4)),
                ("rep", true) => runtime().block_on(ours_rep(arg(&args, 3))),
                ("rep", false) => zmq_rep(arg(&args, 3)),
                ("requesters", true) => runtime().block_on(ours_requesters(arg(&args, 3), number(arg(&args, 4)))),
                ("requesters", false) => zmq_requesters(arg(&args, 3), number(arg(&args, 4))),
                _ => fail(&format!("unknown role {role}")),
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")))
}

/// A raw PUSH that completes the handshake, then writes the header of a frame of `octets` and
/// half its body, and waits to be killed.
fn half_frame(addr: &str, octets: usize) {
    let stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("connect {addr}: {e}")));
    let mut peer = RawPeer::new(stream);
    peer.handshake(1, "PUSH", None).unwrap_or_else(|e| fail(&format!("handshake: {e}")));
    let mut header = vec![0x02u8];
    header.extend_from_slice(&(octets as u64).to_be_bytes());
    let body = vec![0x5Au8; octets / 2];
    if peer.stream.write_all(&header).and_then(|()| peer.stream.write_all(&body)).is_err() {
        fail("write");
    }
    say("half");
    // Until killed; a closed connection ends us too.
    let mut buf = [0u8; 64];
    while let Ok(n) = peer.stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn ours_options() -> Options {
    Options::default().linger(Some(Duration::from_secs(1)))
}

async fn ours_bind(kind: SocketType, endpoint: &str) -> Socket {
    let s = Socket::with_options(kind, ours_options());
    s.bind(endpoint).await.unwrap_or_else(|e| fail(&format!("bind {endpoint}: {e}")));
    say("bound");
    s
}

fn zmq_socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap_or_else(|e| fail(&format!("zmq_socket: {e}")));
    s.set_linger(1000).unwrap_or_else(|e| fail(&format!("ZMQ_LINGER: {e}")));
    s
}

fn zmq_bind(ctx: &zmq::Context, kind: zmq::SocketType, endpoint: &str) -> zmq::Socket {
    let s = zmq_socket(ctx, kind);
    // A restarted process may find the port still held for a moment.
    for _ in 0..100 {
        match s.bind(endpoint) {
            Ok(()) => {
                say("bound");
                return s;
            }
            Err(zmq::Error::EADDRINUSE) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => fail(&format!("bind {endpoint}: {e}")),
        }
    }
    fail(&format!("bind {endpoint}: still in use"))
}

async fn ours_echo(endpoint: &str) {
    let router = ours_bind(SocketType::Router, endpoint).await;
    while let Ok(m) = router.recv().await {
        let _ = router.send(m).await;
    }
}

fn zmq_echo(endpoint: &str) {
    let ctx = zmq::Context::new();
    let router = zmq_bind(&ctx, zmq::ROUTER, endpoint);
    while let Ok(m) = router.recv_multipart(0) {
        let _ = router.send_multipart(m, 0);
    }
}

/// Distinct peers (by their first frame, the routing id) seen, reported as they grow.
struct Counter {
    seen: std::collections::HashSet<Vec<u8>>,
    n: usize,
}

impl Counter {
    fn add(&mut self, id: &[u8]) {
        if self.seen.insert(id.to_vec()) {
            let k = self.seen.len();
            if k == self.n {
                say(&format!("all {k}"));
            } else if k.is_multiple_of(100) {
                say(&format!("seen {k}"));
            }
        }
    }
}

async fn ours_count(endpoint: &str, n: usize) {
    let router = ours_bind(SocketType::Router, endpoint).await;
    let mut c = Counter { seen: Default::default(), n };
    while let Ok(m) = router.recv().await {
        if let Some(id) = m.iter().next() {
            c.add(id);
        }
        let _ = router.send(m).await;
    }
}

fn zmq_count(endpoint: &str, n: usize) {
    let ctx = zmq::Context::new();
    let router = zmq_bind(&ctx, zmq::ROUTER, endpoint);
    let mut c = Counter { seen: Default::default(), n };
    while let Ok(m) = router.recv_multipart(0) {
        if let Some(id) = m.first() {
            c.add(id);
        }
        let _ = router.send_multipart(m, 0);
    }
}

fn print_last(frames: &[impl AsRef<[u8]>]) {
    if let Some(last) = frames.last() {
        say(&String::from_utf8_lossy(last.as_ref()));
    }
}

async fn ours_sink(router: bool, endpoint: &str) {
    let kind = if router { SocketType::Router } else { SocketType::Pull };
    let s = ours_bind(kind, endpoint).await;
    debug_monitor(&s);
    while let Ok(m) = s.recv().await {
        print_last(&m.iter().collect::<Vec<_>>());
    }
}

fn zmq_sink(router: bool, endpoint: &str) {
    let ctx = zmq::Context::new();
    let s = zmq_bind(&ctx, if router { zmq::ROUTER } else { zmq::PULL }, endpoint);
    while let Ok(m) = s.recv_multipart(0) {
        print_last(&m);
    }
}

/// With ZPEER_DEBUG set, prints the socket's monitor events on stderr.
fn debug_monitor(s: &Socket) {
    if std::env::var_os("ZPEER_DEBUG").is_none() {
        return;
    }
    let mut mon = s.monitor();
    tokio::spawn(async move {
        while let Some(e) = mon.recv().await {
            eprintln!("{e:?}");
        }
    });
}

async fn ours_linger(endpoint: &str, n: usize) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(&format!("signal: {e}")));
    let push =
        Socket::with_options(SocketType::Push, Options::default().sndhwm(n + 1).linger(Some(Duration::from_secs(10))));
    debug_monitor(&push);
    push.connect(endpoint).await.unwrap_or_else(|e| fail(&format!("connect: {e}")));
    for i in 0..n {
        push.send(i.to_string()).await.unwrap_or_else(|e| fail(&format!("send: {e}")));
    }
    say("queued");
    term.recv().await;
    push.close().await;
    say("closed");
}

fn zmq_linger(endpoint: &str, n: usize) {
    let rt = runtime();
    let mut term = rt
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) })
        .unwrap_or_else(|e| fail(&format!("signal: {e}")));
    let ctx = zmq::Context::new();
    let push = zmq_socket(&ctx, zmq::PUSH);
    let hwm = i32::try_from(n + 1).unwrap_or(i32::MAX);
    let set = push.set_sndhwm(hwm).and_then(|()| push.set_linger(10_000));
    set.unwrap_or_else(|e| fail(&format!("options: {e}")));
    push.connect(endpoint).unwrap_or_else(|e| fail(&format!("connect: {e}")));
    for i in 0..n {
        push.send(i.to_string().as_bytes(), 0).unwrap_or_else(|e| fail(&format!("send: {e}")));
    }
    say("queued");
    rt.block_on(term.recv());
    drop(push);
    // zmq_ctx_term waits for the linger.
    drop(ctx);
    say("closed");
}

async fn ours_dealers(endpoint: &str, n: usize) {
    let started = std::time::Instant::now();
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for i in 0..n {
        let ep = endpoint.to_owned();
        let up = up_tx.clone();
        tokio::spawn(async move {
            let d = Socket::with_options(
                SocketType::Dealer,
                ours_options().routing_id(format!("d{}-{i}", std::process::id())),
            );
            d.connect(&ep).await.unwrap_or_else(|e| fail(&format!("connect: {e}")));
            let mut first = true;
            loop {
                let _ = d.send(i.to_string()).await;
                if d.recv_timeout(Duration::from_millis(500)).await.is_ok() {
                    if first {
                        first = false;
                        let _ = up.send(());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }
    for _ in 0..n {
        up_rx.recv().await;
    }
    say(&format!("up {}", started.elapsed().as_millis()));
    std::future::pending::<()>().await;
}

fn zmq_dealers(endpoint: &str, n: usize) {
    let started = std::time::Instant::now();
    // libzmq allows 1023 sockets per context by default: 500 per context.
    let contexts: Vec<zmq::Context> = (0..n.div_ceil(500)).map(|_| zmq::Context::new()).collect();
    let mut dealers = Vec::new();
    for i in 0..n {
        let d = zmq_socket(&contexts[i / 500], zmq::DEALER);
        let set = d.set_identity(format!("d{}-{i}", std::process::id()).as_bytes());
        set.unwrap_or_else(|e| fail(&format!("options: {e}")));
        d.connect(endpoint).unwrap_or_else(|e| fail(&format!("connect: {e}")));
        dealers.push(d);
    }
    let mut next = vec![std::time::Instant::now(); n];
    let mut answered = vec![false; n];
    let mut up = 0;
    loop {
        let now = std::time::Instant::now();
        for (i, d) in dealers.iter().enumerate() {
            if now >= next[i] {
                let _ = d.send(i.to_string().as_bytes(), zmq::DONTWAIT);
                next[i] = now + Duration::from_millis(500);
            }
        }
        let mut items: Vec<zmq::PollItem<'_>> = dealers.iter().map(|d| d.as_poll_item(zmq::POLLIN)).collect();
        let _ = zmq::poll(&mut items, 20);
        let readable: Vec<bool> = items.iter().map(|it| it.is_readable()).collect();
        drop(items);
        for (i, d) in dealers.iter().enumerate() {
            if readable[i] {
                while d.recv_multipart(zmq::DONTWAIT).is_ok() {}
                next[i] = now + Duration::from_millis(100);
                if !answered[i] {
                    answered[i] = true;
                    up += 1;
                    if up == n {
                        say(&format!("up {}", started.elapsed().as_millis()));
                    }
                }
            }
        }
    }
}

async fn ours_pusher(endpoint: &str, tag: &str, n: usize) {
    let push = Socket::with_options(SocketType::Push, Options::default().linger(Some(Duration::from_secs(10))));
    push.connect(endpoint).await.unwrap_or_else(|e| fail(&format!("connect: {e}")));
    for i in 0..n {
        push.send(format!("{tag}:{i}")).await.unwrap_or_else(|e| fail(&format!("send: {e}")));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    push.close().await;
    say("done");
}

fn zmq_pusher(endpoint: &str, tag: &str, n: usize) {
    let ctx = zmq::Context::new();
    let push = zmq_socket(&ctx, zmq::PUSH);
    push.set_linger(10_000).unwrap_or_else(|e| fail(&format!("ZMQ_LINGER: {e}")));
    push.connect(endpoint).unwrap_or_else(|e| fail(&format!("connect: {e}")));
    for i in 0..n {
        push.send(format!("{tag}:{i}").as_bytes(), 0).unwrap_or_else(|e| fail(&format!("send: {e}")));
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(push);
    drop(ctx);
    say("done");
}

async fn ours_publisher(endpoint: &str) {
    let publ = ours_bind(SocketType::Pub, endpoint).await;
    let mut k: u64 = 0;
    loop {
        for _ in 0..2 {
            let _ = publ.send(format!("t{} {k}", k % 10)).await;
            k += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn zmq_publisher(endpoint: &str) {
    let ctx = zmq::Context::new();
    let publ = zmq_bind(&ctx, zmq::PUB, endpoint);
    let mut k: u64 = 0;
    loop {
        for _ in 0..2 {
            let _ = publ.send(format!("t{} {k}", k % 10).as_bytes(), 0);
            k += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

async fn ours_subscriber(endpoint: &str, topic: &str) {
    let sub = Socket::with_options(SocketType::Sub, ours_options());
    sub.subscribe(topic).unwrap_or_else(|e| fail(&format!("subscribe: {e}")));
    sub.connect(endpoint).await.unwrap_or_else(|e| fail(&format!("connect: {e}")));
    let mut n = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            m = sub.recv() => if m.is_ok() { n += 1 },
            _ = tick.tick() => say(&format!("got {n}")),
        }
    }
}

fn zmq_subscriber(endpoint: &str, topic: &str) {
    let ctx = zmq::Context::new();
    let sub = zmq_socket(&ctx, zmq::SUB);
    sub.set_subscribe(topic.as_bytes()).unwrap_or_else(|e| fail(&format!("subscribe: {e}")));
    sub.set_rcvtimeo(100).unwrap_or_else(|e| fail(&format!("ZMQ_RCVTIMEO: {e}")));
    sub.connect(endpoint).unwrap_or_else(|e| fail(&format!("connect: {e}")));
    let mut n = 0u64;
    let mut last = std::time::Instant::now();
    loop {
        if sub.recv_multipart(0).is_ok() {
            n += 1;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            last = std::time::Instant::now();
            say(&format!("got {n}"));
        }
    }
}

async fn ours_rep(endpoint: &str) {
    let rep = ours_bind(SocketType::Rep, endpoint).await;
    while let Ok(m) = rep.recv().await {
        let _ = rep.send(m).await;
    }
}

fn zmq_rep(endpoint: &str) {
    let ctx = zmq::Context::new();
    let rep = zmq_bind(&ctx, zmq::REP, endpoint);
    while let Ok(m) = rep.recv_multipart(0) {
        let _ = rep.send_multipart(m, 0);
    }
}

/// A REQ that waits longer than this for a reply from a live server has lost its request.
const REQ_PATIENCE: Duration = Duration::from_secs(5);

/// What the requesters of one process have seen: replies in all, REQs answered at least once.
#[derive(Default)]
struct Asked {
    replies: std::sync::atomic::AtomicU64,
    answered: std::sync::atomic::AtomicUsize,
}

fn request(i: usize, k: u64) -> String {
    format!("{}-{i}:{k}", std::process::id())
}

async fn ours_requesters(endpoint: &str, n: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let started = std::time::Instant::now();
    let asked = std::sync::Arc::new(Asked::default());
    for i in 0..n {
        let ep = endpoint.to_owned();
        let asked = asked.clone();
        tokio::spawn(async move {
            let req = Socket::with_options(SocketType::Req, ours_options());
            req.connect(&ep).await.unwrap_or_else(|e| fail(&format!("connect: {e}")));
            for k in 0.. {
                let q = request(i, k);
                if req.send(q.as_str()).await.is_err() {
                    fail("send");
                }
                match req.recv_timeout(REQ_PATIENCE).await {
                    Ok(m) if m == zmtp::Message::from(q.as_str()) => {}
                    Ok(_) => {
                        say(&format!("bad {i}"));
                        std::process::exit(1);
                    }
                    Err(_) => {
                        say(&format!("stuck {i}"));
                        std::process::exit(1);
                    }
                }
                asked.replies.fetch_add(1, Relaxed);
                if k == 0 && asked.answered.fetch_add(1, Relaxed) + 1 == n {
                    say(&format!("up {}", started.elapsed().as_millis()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        say(&format!("ok {}", asked.replies.load(Relaxed)));
    }
}

fn zmq_requesters(endpoint: &str, n: usize) {
    let started = std::time::Instant::now();
    let contexts: Vec<zmq::Context> = (0..n.div_ceil(500)).map(|_| zmq::Context::new()).collect();
    let mut reqs = Vec::new();
    for i in 0..n {
        let r = zmq_socket(&contexts[i / 500], zmq::REQ);
        r.connect(endpoint).unwrap_or_else(|e| fail(&format!("connect: {e}")));
        reqs.push(r);
    }
    // Per REQ: the request in flight, when it was sent, and the next k.
    let mut asked_at: Vec<Option<std::time::Instant>> = vec![None; n];
    let mut next_k = vec![0u64; n];
    let mut resume = vec![std::time::Instant::now(); n];
    let (mut replies, mut answered) = (0u64, 0usize);
    let mut last_ok = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        for (i, r) in reqs.iter().enumerate() {
            match asked_at[i] {
                None if now >= resume[i] => {
                    if r.send(request(i, next_k[i]).as_bytes(), 0).is_err() {
                        fail("send");
                    }
                    asked_at[i] = Some(now);
                }
                Some(t) if now.duration_since(t) > REQ_PATIENCE => {
                    say(&format!("stuck {i}"));
                    std::process::exit(1);
                }
                _ => {}
            }
        }
        let mut items: Vec<zmq::PollItem<'_>> = reqs.iter().map(|r| r.as_poll_item(zmq::POLLIN)).collect();
        let _ = zmq::poll(&mut items, 10);
        let readable: Vec<bool> = items.iter().map(|it| it.is_readable()).collect();
        drop(items);
        for (i, r) in reqs.iter().enumerate() {
            if !readable[i] {
                continue;
            }
            let Ok(m) = r.recv_multipart(zmq::DONTWAIT) else { continue };
            if m != [request(i, next_k[i]).into_bytes()] {
                say(&format!("bad {i}"));
                std::process::exit(1);
            }
            if next_k[i] == 0 {
                answered += 1;
                if answered == n {
                    say(&format!("up {}", started.elapsed().as_millis()));
                }
            }
            replies += 1;
            next_k[i] += 1;
            asked_at[i] = None;
            resume[i] = std::time::Instant::now() + Duration::from_millis(20);
        }
        if last_ok.elapsed() >= Duration::from_secs(1) {
            last_ok = std::time::Instant::now();
            say(&format!("ok {replies}"));
        }
    }
}
