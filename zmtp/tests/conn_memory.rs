//! What an established, idle connection keeps on the heap: a ROUTER with many handshaken DEALER
//! peers (minimal ZMTP clients on blocking std streams, the same as the bench's), each of which
//! has sent one message that the application received and dropped. A counting allocator gives
//! the live heap octets per connection; the bound fails if a buffer, queue or task state that an
//! idle connection does not need is kept again.
//!
//! Run with `CONNMEM_REPORT=1 -- --nocapture` for the live allocations by size.

// A global allocator is unsafe to implement; each method only forwards to `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use zmtp::{Socket, SocketType};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
/// Live allocations by size class (power of two, index = bits of the size).
static BY_CLASS: [AtomicI64; 40] = [const { AtomicI64::new(0) }; 40];
/// Live octets by exact size for sizes below 64 KiB, in 16-octet steps, for the report.
static BY_SIZE: [AtomicI64; 4096] = [const { AtomicI64::new(0) }; 4096];
static TRACKING: AtomicUsize = AtomicUsize::new(0);

fn class(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()) as usize % 40
}

fn note(n: usize, sign: i64) {
    LIVE.fetch_add(sign * n as i64, Relaxed);
    if TRACKING.load(Relaxed) != 0 {
        BY_CLASS[class(n)].fetch_add(sign, Relaxed);
        if n < 4096 * 16 {
            BY_SIZE[n / 16].fetch_add(sign, Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to `System`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        note(layout.size(), -1);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A DEALER's greeting (NULL, as client) and READY, then one message `[ "", "hi" ]`.
fn hello() -> Vec<u8> {
    let mut h = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1];
    let mut mech = [0u8; 20];
    mech[..4].copy_from_slice(b"NULL");
    h.extend_from_slice(&mech);
    h.push(0);
    h.extend_from_slice(&[0u8; 31]);
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    h.extend_from_slice(&[0x04, body.len() as u8]);
    h.extend_from_slice(&body);
    h.extend_from_slice(&[0x01, 0, 0x00, 2, b'h', b'i']);
    h
}

/// A stream a peer can be: tcp or ipc.
trait PeerStream: Read + Write + Sized {
    fn open(addr: &str) -> Self;
    fn timeout(&self, t: Duration);
}

impl PeerStream for std::net::TcpStream {
    fn open(addr: &str) -> Self {
        std::net::TcpStream::connect(addr.strip_prefix("tcp://").expect("tcp")).expect("connect")
    }
    fn timeout(&self, t: Duration) {
        self.set_read_timeout(Some(t)).expect("timeout");
    }
}

impl PeerStream for std::os::unix::net::UnixStream {
    fn open(addr: &str) -> Self {
        std::os::unix::net::UnixStream::connect(addr.strip_prefix("ipc://").expect("ipc")).expect("connect")
    }
    fn timeout(&self, t: Duration) {
        self.set_read_timeout(Some(t)).expect("timeout");
    }
}

/// Opens `n` peers to `addr`; each reads our greeting and READY.
fn peers<S: PeerStream>(addr: &str, n: usize) -> Vec<S> {
    let hello = hello();
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = S::open(addr);
        c.write_all(&hello).expect("hello");
        conns.push(c);
    }
    for c in &mut conns {
        c.timeout(Duration::from_secs(20));
        let mut greeting = [0u8; 64];
        c.read_exact(&mut greeting).expect("greeting");
        let mut head = [0u8; 2];
        c.read_exact(&mut head).expect("READY head");
        let mut cmd = vec![0u8; head[1] as usize];
        c.read_exact(&mut cmd).expect("READY");
        assert!(cmd.starts_with(b"\x05READY"));
    }
    conns
}

fn report() {
    let mut rows = Vec::new();
    for (i, c) in BY_SIZE.iter().enumerate() {
        let k = c.load(Relaxed);
        if k.abs() >= 100 {
            rows.push(format!("  {:>6}..{:<6} x {k}", i * 16, i * 16 + 15));
        }
    }
    for (i, c) in BY_CLASS.iter().enumerate() {
        let k = c.load(Relaxed);
        if k.abs() >= 100 && i >= 17 {
            rows.push(format!("  class 2^{} x {k}", i - 1));
        }
    }
    eprintln!("live allocations made while the peers connected (count >= 100):\n{}", rows.join("\n"));
}

/// Live heap octets per established, idle connection of a ROUTER bound to `endpoint`. With
/// `reply`, the ROUTER first sends each peer a message of that many octets, which the peer reads;
/// then this waits (polling, up to a generous bound) for the connections to come back under
/// [`BOUND`] and gives what they keep then.
async fn per_connection<S: PeerStream + Send + 'static>(endpoint: &str, n: usize, reply: Option<usize>) -> i64 {
    let router = Socket::new(SocketType::Router);
    let addr = router.bind(endpoint).await.expect("bind");
    // Warm up: the runtime's and socket's one-off allocations are not the connections'.
    let warm = {
        let a = addr.clone();
        tokio::task::spawn_blocking(move || peers::<S>(&a, 20)).await.expect("peers")
    };
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(20), router.recv()).await.expect("timely").expect("recv");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = LIVE.load(Relaxed);
    TRACKING.store(1, Relaxed);
    let mut conns = tokio::task::spawn_blocking(move || peers::<S>(&addr, n)).await.expect("peers");
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let msg = tokio::time::timeout(Duration::from_secs(20), router.recv()).await.expect("timely").expect("recv");
        ids.push(msg.frames()[0].clone());
    }
    // Let the tasks settle (their reads come back empty and go idle).
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(size) = reply {
        for id in ids.drain(..) {
            let msg = zmtp::Message::from(vec![id, bytes::Bytes::new(), bytes::Bytes::from(vec![7u8; size])]);
            router.send(msg).await.expect("reply");
        }
        // Each peer reads the empty delimiter frame, then the body's long-frame header and body.
        conns = tokio::task::spawn_blocking(move || {
            for c in &mut conns {
                let mut got = vec![0u8; 2 + 9 + size];
                c.read_exact(&mut got).expect("reply");
            }
            conns
        })
        .await
        .expect("readers");
        let within = std::time::Instant::now() + Duration::from_secs(30);
        while (LIVE.load(Relaxed) - before) / n as i64 >= BOUND && std::time::Instant::now() < within {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop(ids);
    let after = LIVE.load(Relaxed);
    TRACKING.store(0, Relaxed);
    if std::env::var_os("CONNMEM_REPORT").is_some() {
        report();
    }
    if std::env::var_os("CONNMEM_EXIT").is_some() {
        std::process::exit(0);
    }
    drop(conns);
    drop(warm);
    (after - before) / n as i64
}

/// What an idle connection may keep. Measured (release and debug alike) at 4.7 KiB over tcp,
/// 4.8 over ipc: the connection task's future about 1.7 KiB, the boxed `Connection` 0.46 KiB,
/// tokio's task and I/O registration 0.5 KiB, the peer's message properties (Peer-Address and
/// the like, 0.2 KiB), the rest small (pipes, session strings). It was 5.8 / 5.9 KiB before the
/// connection freed, at the end of its handshake, its 1 KiB read buffer (the next read goes to
/// the stack first, `engine::poll_read_some`), its decoded-event queue (0.34 KiB), output
/// buffer (0.25 KiB) and write queue (0.16 KiB), when empty; 6.3 KiB before the `Connection` dropped its config
/// at READY (0.39 KiB: security, ZAP settings, our own properties, only the handshake needs them)
/// and the handshake's state became boxed (0.1 KiB), and before well-known property names and
/// the peer's socket type stopped being allocated per connection; 7.9 KiB before this bound was
/// first set (the future held its values two or three times, every idle connection kept its
/// fair-queue lane's buffer and the handshake's command buffer). Over the bound: look at the
/// report (`CONNMEM_REPORT=1`) and at the sizes (`-Zprint-type-sizes`) before raising it.
const BOUND: i64 = 5 * 1024 + 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_keeps_little_on_the_heap() {
    let n = 200;
    let _one = ONE.lock().await;
    let tcp = per_connection::<std::net::TcpStream>("tcp://127.0.0.1:*", n, None).await;
    eprintln!("live heap per idle tcp connection: {tcp} octets ({n} peers)");
    assert!(tcp < BOUND, "an idle tcp connection keeps {tcp} octets");
    let path = format!("/tmp/zmtp-test-{}-connmem.ipc", std::process::id());
    let ipc = per_connection::<std::os::unix::net::UnixStream>(&format!("ipc://{path}"), n, None).await;
    let _ = std::fs::remove_file(&path);
    eprintln!("live heap per idle ipc connection: {ipc} octets ({n} peers)");
    assert!(ipc < BOUND, "an idle ipc connection keeps {ipc} octets");
}

/// A message of 1,000 octets (copied into the connection's output buffer: under the by-reference
/// size) grows that buffer; once the connection has had nothing to write for a while
/// ([`zmtp::proto::OUT_IDLE_RELEASE`], 1 s) it is freed, and the connection keeps what an idle one
/// keeps. Kept, it would be about 1 KiB more per connection, over the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_after_a_large_message_frees_its_output_buffer() {
    let n = 200;
    let _one = ONE.lock().await;
    let tcp = per_connection::<std::net::TcpStream>("tcp://127.0.0.1:*", n, Some(1000)).await;
    eprintln!("live heap per tcp connection idle after a 1,000-octet message: {tcp} octets ({n} peers)");
    assert!(tcp < BOUND, "a tcp connection idle after a large message keeps {tcp} octets");
}

/// The counts are the whole process's: one measurement at a time.
static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
