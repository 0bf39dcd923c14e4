//! Interop test tier against real peers: libzmq (through the `zmq` crate) and hand-written ZMTP
//! peers that speak raw bytes over a TCP stream.
//!
//! Helpers shared by the tests in `tests/`:
//!
//! - [`Transport`] and [`ipc_endpoint`]: endpoints unique per test and process.
//! - [`Z`]: a libzmq socket with send / receive timeouts and linger set, whose blocking calls run
//!   on tokio's blocking pool so that a test fails instead of hanging.
//! - [`RawPeer`]: a byte-level ZMTP 3.x peer (greeting, NULL handshake, frames, commands).
//! - [`ZapThread`]: libzmq's kind of ZAP handler (a libzmq REP at `inproc://zeromq.zap.01`).
//! - [`within`], [`recv`], [`frames`], [`msg_frames`], [`big_frame`]: assertions and test data.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zmtp::socket::{DisconnectReason, Monitor, MonitorEvent};
use zmtp::{Message, Socket};

/// Turns each `async fn name(Transport, ours_binds: bool)` scenario into four tests:
/// `name::{ours_binds,zmq_binds}_{tcp,ipc}`.
#[macro_export]
macro_rules! matrix {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::Transport::{Ipc, Tcp};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours_binds_tcp() {
                super::$name(Tcp, true).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours_binds_ipc() {
                super::$name(Ipc, true).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn zmq_binds_tcp() {
                super::$name(Tcp, false).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn zmq_binds_ipc() {
                super::$name(Ipc, false).await
            }
        }
    )*};
}

/// Turns each `async fn name(Transport)` scenario into two tests: `name::{tcp,ipc}`.
#[macro_export]
macro_rules! over_tcp_and_ipc {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::Transport::{Ipc, Tcp};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tcp() {
                super::$name(Tcp).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ipc() {
                super::$name(Ipc).await
            }
        }
    )*};
}

/// How long any single step of a test may take before the test fails.
pub const T: Duration = Duration::from_secs(5);
/// The same, in milliseconds, for libzmq's options.
pub const T_MS: i32 = 5000;
/// Size of the "large" message every pair exchanges: above 255 octets, so it uses long frames,
/// and above our zero-copy threshold and libzmq's buffers.
pub const BIG: usize = 4 << 20;

/// A transport to run a scenario over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://127.0.0.1:*`.
    Tcp,
    /// `ipc:///tmp/...`, unique per call.
    Ipc,
}

impl Transport {
    /// An endpoint to bind: a wildcard TCP port on loopback, or a fresh ipc path named after `name`.
    pub fn bind_endpoint(self, name: &str) -> String {
        match self {
            Transport::Tcp => "tcp://127.0.0.1:*".to_owned(),
            Transport::Ipc => ipc_endpoint(name),
        }
    }
}

/// A fresh `ipc://` endpoint under /tmp, unique per test (`name`), process and call.
pub fn ipc_endpoint(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ipc:///tmp/zmtp-interop-{}-{name}-{n}.sock", std::process::id())
}

/// Awaits `f` for at most [`T`]; panics naming `what` on expiry.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {T:?}: {what}"),
    }
}

/// Receives one message on our socket within [`T`], as a list of frames.
pub async fn recv(s: &Socket) -> Vec<Vec<u8>> {
    let msg = within("our socket receiving", s.recv()).await.expect("our recv failed");
    msg_frames(&msg)
}

/// Our socket's next message if one arrives within `ms` milliseconds.
pub async fn try_recv(s: &Socket, ms: u64) -> Option<Vec<Vec<u8>>> {
    match tokio::time::timeout(Duration::from_millis(ms), s.recv()).await {
        Ok(Ok(m)) => Some(msg_frames(&m)),
        Ok(Err(e)) => panic!("our recv failed: {e}"),
        Err(_) => None,
    }
}

/// Sends on our socket within [`T`].
pub async fn send(s: &Socket, frames: Vec<Vec<u8>>) {
    within("our socket sending", s.send(message(frames))).await.expect("our send failed");
}

/// A message from a list of frames.
pub fn message(frames: Vec<Vec<u8>>) -> Message {
    frames.into_iter().map(bytes::Bytes::from).collect()
}

/// The frames of a message, copied, for comparisons.
pub fn msg_frames(m: &Message) -> Vec<Vec<u8>> {
    m.iter().map(|f| f.to_vec()).collect()
}

/// Frames from string-ish literals: `frames(&["a", "", "b"])`.
pub fn frames<S: AsRef<[u8]>>(parts: &[S]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_ref().to_vec()).collect()
}

/// A [`BIG`] frame whose content depends on `seed`, so that a corrupted or reordered chunk shows.
pub fn big_frame(seed: u8) -> Vec<u8> {
    let pattern: Vec<u8> = (0..251u8).map(|i| i ^ seed).collect();
    let mut out = Vec::with_capacity(BIG);
    while out.len() < BIG {
        let n = pattern.len().min(BIG - out.len());
        out.extend_from_slice(&pattern[..n]);
    }
    out
}

/// Compares frames, printing big ones by size instead of content.
#[track_caller]
pub fn assert_frames(got: &[Vec<u8>], want: &[Vec<u8>]) {
    if got != want {
        panic!("frames differ:\n  got:  {}\n  want: {}", show(got), show(want));
    }
}

fn show(frames: &[Vec<u8>]) -> String {
    let parts: Vec<String> = frames
        .iter()
        .map(|f| {
            if f.len() <= 64 {
                format!("{:?}", String::from_utf8_lossy(f))
            } else {
                format!("<{} octets, starting {:?}>", f.len(), &f[..8])
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Drains the events already queued on our monitor.
pub fn drain_events(m: &mut Monitor) -> Vec<MonitorEvent> {
    std::iter::from_fn(|| m.try_recv()).collect()
}

/// Waits for our monitor's next `Disconnected` event and returns its reason.
pub async fn next_disconnect(m: &mut Monitor) -> DisconnectReason {
    within("a Disconnected event", async {
        loop {
            match m.recv().await {
                Some(MonitorEvent::Disconnected { reason, .. }) => return reason,
                Some(_) => {}
                None => panic!("monitor ended"),
            }
        }
    })
    .await
}

/// Waits for our monitor's next `HandshakeSucceeded` event.
pub async fn next_handshake(m: &mut Monitor) {
    within("a HandshakeSucceeded event", async {
        loop {
            match m.recv().await {
                Some(MonitorEvent::HandshakeSucceeded { .. }) => return,
                Some(_) => {}
                None => panic!("monitor ended"),
            }
        }
    })
    .await
}

/// A libzmq ZAP handler: a libzmq REP bound at `inproc://zeromq.zap.01` in a context, on a thread
/// of its own, answering every request alike. Stopped (and its socket closed, so that the context
/// can end) when dropped. libzmq 4.3's PLAIN server refuses every client without one.
#[derive(Debug)]
pub struct ZapThread {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ZapThread {
    /// Answers every request in `ctx` with `status` (`"200"`, `"400"`, ...) and, when it is
    /// 200, the user id `user_id` (empty: none).
    pub fn start(ctx: &zmq::Context, status: &'static str, user_id: &'static str) -> ZapThread {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rep = ctx.socket(zmq::REP).expect("zap socket");
        rep.bind("inproc://zeromq.zap.01").expect("bind the ZAP endpoint");
        rep.set_rcvtimeo(100).expect("ZMQ_RCVTIMEO");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok(req) = rep.recv_multipart(0) else { continue };
                let id = req.get(1).cloned().unwrap_or_default();
                let text: &[u8] = if status == "200" { b"OK" } else { b"go away" };
                let user: &[u8] = if status == "200" { user_id.as_bytes() } else { b"" };
                let reply = vec![b"1.0".to_vec(), id, status.as_bytes().to_vec(), text.to_vec(), user.to_vec(), vec![]];
                let _ = rep.send_multipart(reply, 0);
            }
        });
        ZapThread { stop, thread: Some(thread) }
    }
}

impl Drop for ZapThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A libzmq socket, shareable between the test's task and tokio's blocking pool.
///
/// Every socket gets ZMQ_RCVTIMEO and ZMQ_SNDTIMEO of [`T`] and a ZMQ_LINGER of one second, so no
/// blocking call outlives a failing test by much. Blocking calls (`send`, `recv`) run on the
/// blocking pool; the others are non-blocking in libzmq and run in place. The mutex serialises
/// access, as libzmq sockets must not be used by two threads at once.
pub struct Z {
    sock: Arc<Mutex<zmq::Socket>>,
    ctx: zmq::Context,
    ipc_files: IpcFiles,
}

/// The socket files of the ipc endpoints a libzmq socket bound: libzmq 4.3 unlinks them only on
/// an explicit unbind, so they are removed when the [`Z`] goes.
#[derive(Debug, Default)]
struct IpcFiles(Mutex<Vec<std::path::PathBuf>>);

impl Drop for IpcFiles {
    fn drop(&mut self) {
        for path in self.0.get_mut().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl std::fmt::Debug for Z {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Z").finish_non_exhaustive()
    }
}

impl Z {
    /// A libzmq socket of `kind` in a context of its own.
    pub fn new(kind: zmq::SocketType) -> Z {
        Z::in_context(&zmq::Context::new(), kind)
    }

    /// A libzmq socket of `kind` in `ctx`.
    pub fn in_context(ctx: &zmq::Context, kind: zmq::SocketType) -> Z {
        let s = ctx.socket(kind).expect("zmq_socket");
        s.set_rcvtimeo(T_MS).expect("ZMQ_RCVTIMEO");
        s.set_sndtimeo(T_MS).expect("ZMQ_SNDTIMEO");
        s.set_linger(1000).expect("ZMQ_LINGER");
        s.set_reconnect_ivl(50).expect("ZMQ_RECONNECT_IVL");
        Z { sock: Arc::new(Mutex::new(s)), ctx: ctx.clone(), ipc_files: IpcFiles::default() }
    }

    /// The context this socket lives in.
    pub fn context(&self) -> &zmq::Context {
        &self.ctx
    }

    /// Runs `f` on the socket, in place: only for calls that do not block.
    pub fn with<R>(&self, f: impl FnOnce(&zmq::Socket) -> R) -> R {
        let guard = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Binds on `transport` and returns the endpoint actually bound (ZMQ_LAST_ENDPOINT).
    pub fn bind(&self, transport: Transport, name: &str) -> String {
        self.bind_exact(&transport.bind_endpoint(name))
    }

    /// Binds `endpoint` and returns the endpoint actually bound.
    pub fn bind_exact(&self, endpoint: &str) -> String {
        self.try_bind(endpoint).unwrap_or_else(|e| panic!("libzmq bind {endpoint}: {e}"))
    }

    /// Binds `endpoint` and returns the endpoint actually bound, or libzmq's error.
    pub fn try_bind(&self, endpoint: &str) -> zmq::Result<String> {
        let bound = self.with(|s| {
            s.bind(endpoint)?;
            Ok(s.get_last_endpoint()?.expect("endpoint is UTF-8"))
        })?;
        if let Some(path) = bound.strip_prefix("ipc://") {
            self.ipc_files.0.lock().unwrap_or_else(|e| e.into_inner()).push(path.into());
        }
        Ok(bound)
    }

    /// Connects to `endpoint` (in the background, as libzmq does).
    pub fn connect(&self, endpoint: &str) {
        self.with(|s| s.connect(endpoint).unwrap_or_else(|e| panic!("libzmq connect {endpoint}: {e}")));
    }

    /// Sends a multipart message, waiting at most ZMQ_SNDTIMEO.
    pub async fn send(&self, frames: Vec<Vec<u8>>) {
        self.send_result(frames).await.expect("libzmq send");
    }

    /// Sends a multipart message, waiting at most ZMQ_SNDTIMEO, and returns libzmq's verdict.
    pub async fn send_result(&self, frames: Vec<Vec<u8>>) -> zmq::Result<()> {
        let sock = self.sock.clone();
        tokio::task::spawn_blocking(move || {
            let guard = sock.lock().unwrap_or_else(|e| e.into_inner());
            guard.send_multipart(frames, 0)
        })
        .await
        .expect("libzmq send task")
    }

    /// Runs `f` with the socket on tokio's blocking pool: for a whole blocking script (each call
    /// still bounded by the socket's timeouts).
    pub async fn run_blocking<R: Send + 'static>(&self, f: impl FnOnce(&zmq::Socket) -> R + Send + 'static) -> R {
        let sock = self.sock.clone();
        tokio::task::spawn_blocking(move || {
            let guard = sock.lock().unwrap_or_else(|e| e.into_inner());
            f(&guard)
        })
        .await
        .expect("libzmq task panicked")
    }

    /// Sends without waiting (ZMQ_DONTWAIT).
    pub fn try_send(&self, frames: Vec<Vec<u8>>) -> zmq::Result<()> {
        self.with(|s| s.send_multipart(frames, zmq::DONTWAIT))
    }

    /// Receives a multipart message, waiting at most ZMQ_RCVTIMEO; panics on timeout.
    pub async fn recv(&self) -> Vec<Vec<u8>> {
        let sock = self.sock.clone();
        tokio::task::spawn_blocking(move || {
            let guard = sock.lock().unwrap_or_else(|e| e.into_inner());
            guard.recv_multipart(0)
        })
        .await
        .expect("libzmq recv task")
        .expect("libzmq recv (timed out?)")
    }

    /// The next message if one arrives within `ms` milliseconds.
    pub async fn try_recv(&self, ms: i64) -> Option<Vec<Vec<u8>>> {
        let sock = self.sock.clone();
        tokio::task::spawn_blocking(move || {
            let guard = sock.lock().unwrap_or_else(|e| e.into_inner());
            match guard.poll(zmq::POLLIN, ms) {
                Ok(n) if n > 0 => Some(guard.recv_multipart(zmq::DONTWAIT).expect("libzmq recv after poll")),
                Ok(_) => None,
                Err(e) => panic!("libzmq poll: {e}"),
            }
        })
        .await
        .expect("libzmq recv task")
    }

    /// Closes the socket now, dropping what is queued (ZMQ_LINGER 0). Panics if a clone is alive.
    pub fn close(self) {
        self.with(|s| s.set_linger(0).expect("ZMQ_LINGER"));
        match Arc::try_unwrap(self.sock) {
            Ok(sock) => drop(sock),
            Err(_) => panic!("another handle to the libzmq socket is alive"),
        }
    }

    /// Sets ZMQ_INVERT_MATCHING, which the `zmq` crate (0.9) does not expose.
    pub fn set_invert_matching(&self, on: bool) -> zmq::Result<()> {
        self.set_int_option(74, on.into())
    }

    /// Sets ZMQ_ZAP_ENFORCE_DOMAIN (a draft in libzmq 4.3's header, always compiled in), which
    /// the `zmq` crate does not expose.
    pub fn set_zap_enforce_domain(&self, on: bool) -> zmq::Result<()> {
        self.set_int_option(93, on.into())
    }

    /// Sets ZMQ_METADATA (`"X-name:value"`, a draft in libzmq 4.3's header, always compiled
    /// in), which the `zmq` crate does not expose.
    pub fn set_metadata(&self, property: &str) -> zmq::Result<()> {
        self.set_raw_option(95, property.as_bytes())
    }

    /// An int socket option through libzmq's C API.
    fn set_int_option(&self, option: std::ffi::c_int, value: std::ffi::c_int) -> zmq::Result<()> {
        self.set_raw_option(option, &value.to_ne_bytes())
    }

    /// A socket option through libzmq's C API, its value as octets.
    #[allow(unsafe_code)]
    fn set_raw_option(&self, option: std::ffi::c_int, value: &[u8]) -> zmq::Result<()> {
        use std::ffi::{c_int, c_void};
        extern "C" {
            fn zmq_setsockopt(socket: *mut c_void, option: c_int, optval: *const c_void, optvallen: usize) -> c_int;
        }
        let mut guard = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the pointer is the live libzmq socket that `guard` owns and keeps to this thread
        // for the call; `optval` points to `value`, whose length is passed along.
        let rc = unsafe { zmq_setsockopt(guard.as_mut_ptr(), option, value.as_ptr().cast(), value.len()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(zmq::Error::from_raw(io::Error::last_os_error().raw_os_error().unwrap_or(0)))
        }
    }

    /// Starts libzmq's socket monitor for `events` and returns a PAIR socket receiving them.
    pub fn monitor(&self, name: &str, events: zmq::SocketEvent) -> ZMonitor {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let ep = format!("inproc://monitor-{name}-{n}");
        self.with(|s| s.monitor(&ep, events as i32)).expect("zmq_socket_monitor");
        let pair = Z::in_context(&self.ctx, zmq::PAIR);
        pair.connect(&ep);
        ZMonitor { pair }
    }
}

/// The receiving end of a libzmq socket monitor.
#[derive(Debug)]
pub struct ZMonitor {
    pair: Z,
}

impl ZMonitor {
    /// Events received so far, without waiting for more than `ms` for each.
    pub async fn events(&self, ms: i64) -> Vec<zmq::SocketEvent> {
        let mut out = Vec::new();
        while let Some(m) = self.pair.try_recv(ms).await {
            let first = m.first().expect("monitor frame");
            let raw = u16::from_le_bytes([first[0], first[1]]);
            out.push(zmq::SocketEvent::from_raw(raw));
        }
        out
    }
}

/// One frame read from a raw peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// A command frame.
    pub command: bool,
    /// More frames follow in this message.
    pub more: bool,
    /// The body.
    pub body: Vec<u8>,
}

impl RawFrame {
    /// For a command frame, its name.
    pub fn command_name(&self) -> Option<&[u8]> {
        if !self.command {
            return None;
        }
        let len = usize::from(*self.body.first()?);
        self.body.get(1..1 + len)
    }
}

/// What a raw peer learned from our greeting and READY.
#[derive(Debug, Clone)]
pub struct RawHandshake {
    /// Our greeting's version.
    pub version: (u8, u8),
    /// Our greeting's mechanism, without padding.
    pub mechanism: Vec<u8>,
    /// Our READY's properties.
    pub properties: HashMap<String, Vec<u8>>,
}

/// A ZMTP 3.x peer written by hand over a byte stream, for tests that need a peer that misbehaves
/// (goes silent) or speaks an older version.
#[derive(Debug)]
pub struct RawPeer<S> {
    /// The stream.
    pub stream: S,
}

/// A ZMTP greeting, NULL mechanism, as-server off, version 3.`minor`.
pub fn raw_greeting(minor: u8) -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = minor;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// The body of a command: name length, name, data.
pub fn command_body(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(1 + name.len() + data.len());
    b.push(u8::try_from(name.len()).expect("command name fits"));
    b.extend_from_slice(name);
    b.extend_from_slice(data);
    b
}

/// The body of a READY command announcing `socket_type` (and `identity`, when given).
pub fn ready_body(socket_type: &str, identity: Option<&[u8]>) -> Vec<u8> {
    let mut props = Vec::new();
    let mut prop = |name: &str, value: &[u8]| {
        props.push(u8::try_from(name.len()).expect("property name fits"));
        props.extend_from_slice(name.as_bytes());
        props.extend_from_slice(&u32::try_from(value.len()).expect("value fits").to_be_bytes());
        props.extend_from_slice(value);
    };
    prop("Socket-Type", socket_type.as_bytes());
    if let Some(id) = identity {
        prop("Identity", id);
    }
    command_body(b"READY", &props)
}

fn parse_properties(mut data: &[u8]) -> io::Result<HashMap<String, Vec<u8>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed READY properties");
    let mut out = HashMap::new();
    while !data.is_empty() {
        let n = usize::from(data[0]);
        let name = data.get(1..1 + n).ok_or_else(bad)?;
        let len_at = 1 + n;
        let len = data.get(len_at..len_at + 4).ok_or_else(bad)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let value = data.get(len_at + 4..len_at + 4 + len).ok_or_else(bad)?;
        out.insert(String::from_utf8_lossy(name).into_owned(), value.to_vec());
        data = &data[len_at + 4 + len..];
    }
    Ok(out)
}

impl<S: Read + Write> RawPeer<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> RawPeer<S> {
        RawPeer { stream }
    }

    /// Does the NULL handshake as a ZMTP 3.`minor` peer of `socket_type`: sends our greeting and
    /// READY, reads and checks the other side's. Returns what the other side announced.
    pub fn handshake(&mut self, minor: u8, socket_type: &str, identity: Option<&[u8]>) -> io::Result<RawHandshake> {
        self.stream.write_all(&raw_greeting(minor))?;
        let mut g = [0u8; 64];
        self.stream.read_exact(&mut g)?;
        if g[0] != 0xFF || g[9] & 1 != 1 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad signature {:?}", &g[..10])));
        }
        let mech_end = g[12..32].iter().position(|&b| b == 0).map_or(32, |p| 12 + p);
        let mechanism = g[12..mech_end].to_vec();
        self.write_frame(true, false, &ready_body(socket_type, identity))?;
        let ready = self.read_frame()?;
        if ready.command_name() != Some(b"READY") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected READY, got {ready:?}")));
        }
        let properties = parse_properties(&ready.body[6..])?;
        Ok(RawHandshake { version: (g[10], g[11]), mechanism, properties })
    }

    /// Writes one frame.
    pub fn write_frame(&mut self, command: bool, more: bool, body: &[u8]) -> io::Result<()> {
        let mut flags = 0u8;
        if more {
            flags |= 0x01;
        }
        if command {
            flags |= 0x04;
        }
        let mut header = Vec::with_capacity(9);
        if body.len() > 255 {
            header.push(flags | 0x02);
            header.extend_from_slice(&(body.len() as u64).to_be_bytes());
        } else {
            header.push(flags);
            header.push(body.len() as u8);
        }
        self.stream.write_all(&header)?;
        self.stream.write_all(body)?;
        self.stream.flush()
    }

    /// Writes a message, one frame per element.
    pub fn write_message(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        for (i, f) in frames.iter().enumerate() {
            self.write_frame(false, i + 1 < frames.len(), f)?;
        }
        Ok(())
    }

    /// Reads one frame.
    pub fn read_frame(&mut self) -> io::Result<RawFrame> {
        let mut flags = [0u8; 1];
        self.stream.read_exact(&mut flags)?;
        let flags = flags[0];
        if flags & 0xF8 != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("reserved flag bits set: {flags:#x}")));
        }
        let len = if flags & 0x02 != 0 {
            let mut l = [0u8; 8];
            self.stream.read_exact(&mut l)?;
            u64::from_be_bytes(l)
        } else {
            let mut l = [0u8; 1];
            self.stream.read_exact(&mut l)?;
            u64::from(l[0])
        };
        let len = usize::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too long"))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok(RawFrame { command: flags & 0x04 != 0, more: flags & 0x01 != 0, body })
    }

    /// Reads the next message, answering nothing and collecting the commands seen on the way.
    pub fn read_message(&mut self, commands: &mut Vec<RawFrame>) -> io::Result<Vec<Vec<u8>>> {
        let mut msg = Vec::new();
        loop {
            let f = self.read_frame()?;
            if f.command {
                commands.push(f);
                continue;
            }
            msg.push(f.body);
            if !f.more {
                return Ok(msg);
            }
        }
    }
}

/// Connects our socket and a libzmq socket over `transport`; `ours_binds` chooses which side binds
/// (the other connects to the endpoint it resolved). Returns the bound endpoint.
pub async fn link(ours: &Socket, z: &Z, ours_binds: bool, transport: Transport, name: &str) -> String {
    if ours_binds {
        let ep = ours.bind(&transport.bind_endpoint(name)).await.expect("our bind");
        z.connect(&ep);
        ep
    } else {
        let ep = z.bind(transport, name);
        ours.connect(&ep).await.expect("our connect");
        ep
    }
}

/// Our socket's next message whose first frame is not `skip` (warm-up traffic still in flight).
pub async fn recv_skipping(s: &Socket, skip: &[u8]) -> Vec<Vec<u8>> {
    loop {
        let m = recv(s).await;
        if m.first().map(Vec::as_slice) != Some(skip) {
            return m;
        }
    }
}

/// The libzmq socket's next message whose first frame is not `skip`.
pub async fn z_recv_skipping(z: &Z, skip: &[u8]) -> Vec<Vec<u8>> {
    loop {
        let m = z.recv().await;
        if m.first().map(Vec::as_slice) != Some(skip) {
            return m;
        }
    }
}
