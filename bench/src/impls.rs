//! One small adapter per implementation, so that every role runs the same code over each.
//!
//! Every message is built the way an application would build it from a byte slice
//! (`make(body)`: a fresh message per send, the body copied in), so each implementation pays its
//! own per-message construction cost. Receivers look only at the last frame (the body; ROUTER
//! puts the peer's routing id in front).
//!
//! libzmq is synchronous: its "async" methods block the calling thread, which is fine because a
//! role process runs one socket loop on a current-thread runtime with nothing else on it.

#![allow(async_fn_in_trait)]

use std::str::FromStr;

pub type R<T> = Result<T, String>;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Push,
    Pull,
    Pub,
    Sub,
    Dealer,
    Router,
    Req,
    Rep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    Zmtp,
    Libzmq,
    Zeromq,
    Omq,
    /// Ours at another git revision (`zmtp@REV`, the whole name kept here): the same-run A/B of
    /// old and new zmtp. Its roles run in `zbench-zmtp-REV`, this harness built against that
    /// revision's `zmtp/` by `scripts/bench.sh` (see bench/README.md), as `--impl zmtp`.
    ZmtpAt(&'static str),
}

pub const ALL_IMPLS: [Impl; 4] = [Impl::Zmtp, Impl::Libzmq, Impl::Zeromq, Impl::Omq];

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Zmtp => "zmtp",
            Impl::Libzmq => "libzmq",
            Impl::Zeromq => "zeromq",
            Impl::Omq => "omq",
            Impl::ZmtpAt(name) => name,
        }
    }
    /// The revision of a `zmtp@REV`.
    pub fn rev(self) -> Option<&'static str> {
        match self {
            Impl::ZmtpAt(name) => name.strip_prefix("zmtp@"),
            _ => None,
        }
    }
    /// The binary that runs this implementation's roles (next to the driver's own), and the
    /// `--impl` it is given there.
    pub fn role_exe(self, driver: &std::path::Path) -> (std::path::PathBuf, &'static str) {
        match self.rev() {
            Some(rev) => (driver.with_file_name(format!("zbench-zmtp-{rev}")), "zmtp"),
            None => (driver.to_path_buf(), self.name()),
        }
    }
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Impl::Zmtp => "zmtp (ours)",
            Impl::Libzmq => "libzmq",
            Impl::Zeromq => "zmq.rs",
            Impl::Omq => "OMQ.rs",
            Impl::ZmtpAt(name) => name,
        }
    }
    pub fn supports_ipc(self) -> bool {
        true
    }
}

impl FromStr for Impl {
    type Err = String;
    fn from_str(s: &str) -> R<Impl> {
        match s {
            "zmtp" | "ours" => Ok(Impl::Zmtp),
            "libzmq" | "zmq" => Ok(Impl::Libzmq),
            "zeromq" | "zmq.rs" | "zmqrs" => Ok(Impl::Zeromq),
            "omq" | "omq-tokio" | "omq.rs" => Ok(Impl::Omq),
            _ => match s.strip_prefix("zmtp@") {
                // The revision names a binary and a cargo package: letters, digits, '-' and '_'.
                Some(rev)
                    if !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    // Parsed once per process from the command line: leaking the name keeps `Impl` `Copy`.
                    Ok(Impl::ZmtpAt(Box::leak(s.to_string().into_boxed_str())))
                }
                _ => Err(format!("unknown implementation {s:?} (zmtp, libzmq, zeromq, omq, zmtp@REV)")),
            },
        }
    }
}

/// What this build's zmtp has, printed by `zbench caps` (one JSON line): an older revision built
/// for the A/B (`zmtp@REV`) may lack options the suite would otherwise use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    pub curve: bool,
    pub recv_spin: bool,
}

impl Caps {
    pub const OF_THIS_BUILD: Caps =
        Caps { curve: cfg!(feature = "zmtp-curve"), recv_spin: cfg!(feature = "zmtp-recv-spin") };
}

/// The capabilities of an implementation's role binary: this build's for ours, asked of
/// `zbench-zmtp-REV caps` (once per process) for a `zmtp@REV`; none if that binary cannot say.
pub fn caps(imp: Impl) -> Caps {
    static ASKED: std::sync::Mutex<Vec<(Impl, Caps)>> = std::sync::Mutex::new(Vec::new());
    if imp.rev().is_none() {
        return Caps::OF_THIS_BUILD;
    }
    let mut asked = ASKED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = asked.iter().find(|(i, _)| *i == imp) {
        return *c;
    }
    let c = std::env::current_exe()
        .ok()
        .and_then(|exe| std::process::Command::new(imp.role_exe(&exe).0).arg("caps").output().ok())
        .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok())
        .map(|v| Caps { curve: v["curve"] == true, recv_spin: v["recv_spin"] == true })
        .unwrap_or_default();
    asked.push((imp, c));
    c
}

/// The socket operations the roles need.
pub trait BenchSocket: Sized {
    type Msg;
    async fn open(kind: Kind) -> R<Self>;
    async fn bind(&mut self, ep: &str) -> R<()>;
    async fn connect(&mut self, ep: &str) -> R<()>;
    async fn subscribe_all(&mut self) -> R<()>;
    fn make(body: &[u8]) -> Self::Msg;
    async fn send(&mut self, m: Self::Msg) -> R<()>;
    async fn recv(&mut self) -> R<Self::Msg>;
    /// The body: the last frame.
    fn body(m: &Self::Msg) -> &[u8];
}

// ---------------------------------------------------------------------------------------------
// zmtp (ours)

static RECV_SPIN: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Ours only: `Options::recv_spin` for the role's socket (`--recv-spin-us`; zero: off).
pub fn set_recv_spin(budget: std::time::Duration) {
    let _ = RECV_SPIN.set(budget);
}

pub struct Zmtp(zmtp::Socket);

impl BenchSocket for Zmtp {
    type Msg = zmtp::Message;
    async fn open(kind: Kind) -> R<Self> {
        use zmtp::SocketType as T;
        let t = match kind {
            Kind::Push => T::Push,
            Kind::Pull => T::Pull,
            Kind::Pub => T::Pub,
            Kind::Sub => T::Sub,
            Kind::Dealer => T::Dealer,
            Kind::Router => T::Router,
            Kind::Req => T::Req,
            Kind::Rep => T::Rep,
        };
        #[allow(unused_mut)]
        let mut o = zmtp::Options::default();
        // Built against an older zmtp (`zmtp@REV`, see bench/README.md), the options it does not
        // have are left out: `scripts/bench.sh` turns these features off for such a revision.
        #[cfg(feature = "zmtp-recv-spin")]
        {
            o = o.recv_spin(RECV_SPIN.get().copied().unwrap_or_default());
        }
        #[cfg(feature = "zmtp-curve")]
        if let Some(side) = crate::curve::side() {
            let key = |k: &[u8; 32]| zmtp::CurveSecretKey::from_slice(k).map_err(e);
            o = match side {
                crate::curve::Side::Server => o.curve_server(true).curve_secretkey(key(&crate::curve::SERVER_SECRET)?),
                crate::curve::Side::Client => o
                    .curve_secretkey(key(&crate::curve::CLIENT_SECRET)?)
                    .curve_serverkey(zmtp::CurvePublicKey(crate::curve::server_public())),
            };
        }
        #[cfg(not(feature = "zmtp-curve"))]
        if crate::curve::side().is_some() {
            return Err("this zmtp has no CURVE".into());
        }
        Ok(Zmtp(zmtp::Socket::with_options(t, o)))
    }
    async fn bind(&mut self, ep: &str) -> R<()> {
        self.0.bind(ep).await.map(|_| ()).map_err(e)
    }
    async fn connect(&mut self, ep: &str) -> R<()> {
        self.0.connect(ep).await.map_err(e)
    }
    async fn subscribe_all(&mut self) -> R<()> {
        self.0.subscribe(b"").map_err(e)
    }
    fn make(body: &[u8]) -> Self::Msg {
        zmtp::Message::from(body)
    }
    async fn send(&mut self, m: Self::Msg) -> R<()> {
        self.0.send(m).await.map_err(e)
    }
    async fn recv(&mut self) -> R<Self::Msg> {
        self.0.recv().await.map_err(e)
    }
    fn body(m: &Self::Msg) -> &[u8] {
        m.frames().last().map_or(&[][..], |b| &b[..])
    }
}

// ---------------------------------------------------------------------------------------------
// libzmq through the `zmq` crate

pub struct Libzmq {
    // Keep the context alive as long as the socket.
    _ctx: zmq::Context,
    sock: zmq::Socket,
}

thread_local! {
    static ZMQ_CTX: zmq::Context = zmq::Context::new();
}

impl BenchSocket for Libzmq {
    type Msg = zmq::Message;
    async fn open(kind: Kind) -> R<Self> {
        let t = match kind {
            Kind::Push => zmq::PUSH,
            Kind::Pull => zmq::PULL,
            Kind::Pub => zmq::PUB,
            Kind::Sub => zmq::SUB,
            Kind::Dealer => zmq::DEALER,
            Kind::Router => zmq::ROUTER,
            Kind::Req => zmq::REQ,
            Kind::Rep => zmq::REP,
        };
        // One context per process (one I/O thread, libzmq's default).
        let ctx = ZMQ_CTX.with(|c| c.clone());
        let sock = ctx.socket(t).map_err(e)?;
        sock.set_linger(0).map_err(e)?;
        match crate::curve::side() {
            None => {}
            Some(crate::curve::Side::Server) => {
                sock.set_curve_server(true).map_err(e)?;
                sock.set_curve_secretkey(&crate::curve::SERVER_SECRET).map_err(e)?;
            }
            Some(crate::curve::Side::Client) => {
                sock.set_curve_serverkey(&crate::curve::server_public()).map_err(e)?;
                sock.set_curve_publickey(&crate::curve::client_public()).map_err(e)?;
                sock.set_curve_secretkey(&crate::curve::CLIENT_SECRET).map_err(e)?;
            }
        }
        Ok(Libzmq { _ctx: ctx, sock })
    }
    async fn bind(&mut self, ep: &str) -> R<()> {
        self.sock.bind(ep).map_err(e)
    }
    async fn connect(&mut self, ep: &str) -> R<()> {
        self.sock.connect(ep).map_err(e)
    }
    async fn subscribe_all(&mut self) -> R<()> {
        self.sock.set_subscribe(b"").map_err(e)
    }
    fn make(body: &[u8]) -> Self::Msg {
        zmq::Message::from(body)
    }
    async fn send(&mut self, m: Self::Msg) -> R<()> {
        self.sock.send(m, 0).map_err(e)
    }
    async fn recv(&mut self) -> R<Self::Msg> {
        let mut m = zmq::Message::new();
        loop {
            self.sock.recv(&mut m, 0).map_err(e)?;
            if !m.get_more() {
                return Ok(m);
            }
        }
    }
    fn body(m: &Self::Msg) -> &[u8] {
        m
    }
}

// ---------------------------------------------------------------------------------------------
// zmq.rs (`zeromq`)

pub enum Zeromq {
    Push(zeromq::PushSocket),
    Pull(zeromq::PullSocket),
    Pub(zeromq::PubSocket),
    Sub(zeromq::SubSocket),
    Dealer(zeromq::DealerSocket),
    Router(zeromq::RouterSocket),
    Req(zeromq::ReqSocket),
    Rep(zeromq::RepSocket),
}

macro_rules! zq_each {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            Zeromq::Push($v) => $body,
            Zeromq::Pull($v) => $body,
            Zeromq::Pub($v) => $body,
            Zeromq::Sub($v) => $body,
            Zeromq::Dealer($v) => $body,
            Zeromq::Router($v) => $body,
            Zeromq::Req($v) => $body,
            Zeromq::Rep($v) => $body,
        }
    };
}

impl BenchSocket for Zeromq {
    type Msg = zeromq::ZmqMessage;
    async fn open(kind: Kind) -> R<Self> {
        use zeromq::Socket;
        if crate::curve::side().is_some() {
            return Err("zmq.rs has no CURVE".into());
        }
        Ok(match kind {
            Kind::Push => Zeromq::Push(zeromq::PushSocket::new()),
            Kind::Pull => Zeromq::Pull(zeromq::PullSocket::new()),
            Kind::Pub => Zeromq::Pub(zeromq::PubSocket::new()),
            Kind::Sub => Zeromq::Sub(zeromq::SubSocket::new()),
            Kind::Dealer => Zeromq::Dealer(zeromq::DealerSocket::new()),
            Kind::Router => Zeromq::Router(zeromq::RouterSocket::new()),
            Kind::Req => Zeromq::Req(zeromq::ReqSocket::new()),
            Kind::Rep => Zeromq::Rep(zeromq::RepSocket::new()),
        })
    }
    async fn bind(&mut self, ep: &str) -> R<()> {
        use zeromq::Socket;
        zq_each!(self, s => s.bind(ep).await.map(|_| ()).map_err(e))
    }
    async fn connect(&mut self, ep: &str) -> R<()> {
        use zeromq::Socket;
        zq_each!(self, s => s.connect(ep).await.map_err(e))
    }
    async fn subscribe_all(&mut self) -> R<()> {
        match self {
            Zeromq::Sub(s) => s.subscribe("").await.map_err(e),
            _ => Err("not a SUB".into()),
        }
    }
    fn make(body: &[u8]) -> Self::Msg {
        zeromq::ZmqMessage::from(bytes::Bytes::copy_from_slice(body))
    }
    async fn send(&mut self, m: Self::Msg) -> R<()> {
        use zeromq::SocketSend;
        match self {
            Zeromq::Push(s) => s.send(m).await.map_err(e),
            Zeromq::Pub(s) => s.send(m).await.map_err(e),
            Zeromq::Dealer(s) => s.send(m).await.map_err(e),
            Zeromq::Router(s) => s.send(m).await.map_err(e),
            Zeromq::Req(s) => s.send(m).await.map_err(e),
            Zeromq::Rep(s) => s.send(m).await.map_err(e),
            _ => Err("socket cannot send".into()),
        }
    }
    async fn recv(&mut self) -> R<Self::Msg> {
        use zeromq::SocketRecv;
        match self {
            Zeromq::Pull(s) => s.recv().await.map_err(e),
            Zeromq::Sub(s) => s.recv().await.map_err(e),
            Zeromq::Dealer(s) => s.recv().await.map_err(e),
            Zeromq::Router(s) => s.recv().await.map_err(e),
            Zeromq::Req(s) => s.recv().await.map_err(e),
            Zeromq::Rep(s) => s.recv().await.map_err(e),
            _ => Err("socket cannot receive".into()),
        }
    }
    fn body(m: &Self::Msg) -> &[u8] {
        m.iter().last().map_or(&[][..], |b| &b[..])
    }
}

// ---------------------------------------------------------------------------------------------
// OMQ.rs (`omq-tokio`), its socket driver on the caller's runtime

pub struct Omq(omq_tokio::Socket);

impl BenchSocket for Omq {
    type Msg = omq_tokio::Message;
    async fn open(kind: Kind) -> R<Self> {
        use omq_tokio::SocketType as T;
        let t = match kind {
            Kind::Push => T::Push,
            Kind::Pull => T::Pull,
            Kind::Pub => T::Pub,
            Kind::Sub => T::Sub,
            Kind::Dealer => T::Dealer,
            Kind::Router => T::Router,
            Kind::Req => T::Req,
            Kind::Rep => T::Rep,
        };
        let pair = |secret: [u8; 32], public: [u8; 32]| omq_tokio::CurveKeypair {
            public: omq_tokio::CurvePublicKey::from_bytes(public),
            secret: omq_tokio::CurveSecretKey::from_bytes(secret),
        };
        let o = match crate::curve::side() {
            None => omq_tokio::Options::default(),
            Some(crate::curve::Side::Server) => omq_tokio::Options::default()
                .curve_server(pair(crate::curve::SERVER_SECRET, crate::curve::server_public())),
            Some(crate::curve::Side::Client) => omq_tokio::Options::default().curve_client(
                pair(crate::curve::CLIENT_SECRET, crate::curve::client_public()),
                omq_tokio::CurvePublicKey::from_bytes(crate::curve::server_public()),
            ),
        };
        Ok(Omq(omq_tokio::Socket::new(t, o)))
    }
    async fn bind(&mut self, ep: &str) -> R<()> {
        self.0.bind(ep).await.map(|_| ()).map_err(e)
    }
    async fn connect(&mut self, ep: &str) -> R<()> {
        self.0.connect(ep).await.map(|_| ()).map_err(e)
    }
    async fn subscribe_all(&mut self) -> R<()> {
        self.0.subscribe(bytes::Bytes::new()).await.map_err(e)
    }
    fn make(body: &[u8]) -> Self::Msg {
        omq_tokio::Message::from_slice(body)
    }
    async fn send(&mut self, m: Self::Msg) -> R<()> {
        self.0.send(m).await.map_err(e)
    }
    async fn recv(&mut self) -> R<Self::Msg> {
        self.0.recv().await.map_err(e)
    }
    fn body(m: &Self::Msg) -> &[u8] {
        let n = m.len();
        if n == 0 {
            return &[];
        }
        m.part_slice(n - 1).unwrap_or(&[])
    }
}
