//! Transports: endpoint parsing, listening and connecting over `tcp://` and `ipc://` (`inproc://`
//! is parsed here and served by `socket::inproc`).
//!
//! A transport hands the socket layer a pair of owned stream halves; it knows nothing of ZMTP.
//! Writes go through [`nosigpipe`]: a peer that has gone gives the writer an error (`EPIPE`),
//! never a SIGPIPE, even in a process that has not ignored the signal.

mod nosigpipe;
/// `send` flags that keep a write to a gone peer from raising SIGPIPE (where they exist).
pub(crate) use nosigpipe::FLAGS as NOSIGNAL;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `tcp://host:port`; `host` may be `*`, a name, an IPv4 address or a bracketed IPv6 address;
    /// `port` may be `*` or `0` (any free port) when binding.
    Tcp {
        /// Host part without brackets.
        host: String,
        /// Port; 0 means "any" when binding.
        port: u16,
    },
    /// `ipc://path` (a Unix domain socket); a leading `@` names the Linux abstract namespace.
    Ipc(PathBuf),
    /// `inproc://name`: sockets of one process, connected without the wire codec (handled by the
    /// socket layer, not by this module).
    Inproc(String),
}

/// Why an endpoint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint {0:?}")]
pub struct InvalidEndpoint(pub String);

impl Endpoint {
    /// Parses `tcp://...` or `ipc://...`.
    pub fn parse(s: &str) -> Result<Endpoint, InvalidEndpoint> {
        let bad = || InvalidEndpoint(s.to_owned());
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        match scheme {
            "tcp" => {
                let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
                let port = if port == "*" { 0 } else { port.parse().map_err(|_| bad())? };
                let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
                if host.is_empty() {
                    return Err(bad());
                }
                Ok(Endpoint::Tcp { host: host.to_owned(), port })
            }
            "ipc" if !rest.is_empty() => Ok(Endpoint::Ipc(PathBuf::from(rest))),
            "inproc" if !rest.is_empty() => Ok(Endpoint::Inproc(rest.to_owned())),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Ipc(path) => write!(f, "ipc://{}", path.display()),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

/// TCP keepalive settings (libzmq's ZMQ_TCP_KEEPALIVE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Idle time before the first probe.
    pub idle: Option<Duration>,
    /// Time between probes.
    pub interval: Option<Duration>,
    /// Probes before the connection is dropped.
    pub retries: Option<u32>,
}

/// Transport-level settings applied to every stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamOptions {
    /// Enable TCP keepalive with these settings.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Kernel send buffer size (ZMQ_SNDBUF); `None` leaves the OS default over tcp (which grows
    /// the buffer with the connection's traffic) and sets [`IPC_SNDBUF`] over ipc.
    pub sndbuf: Option<usize>,
    /// Kernel receive buffer size (ZMQ_RCVBUF).
    pub rcvbuf: Option<usize>,
    /// Pending connections a listener queues (ZMQ_BACKLOG, default 100 in libzmq).
    pub backlog: Option<u32>,
}

/// The read half of a connected stream.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connected stream.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A connected stream, split, with a printable peer address.
pub struct Stream {
    /// Reads from the peer.
    pub read: ReadHalf,
    /// Writes to the peer.
    pub write: WriteHalf,
    /// The peer's address, for events and logs.
    pub peer: String,
    /// The peer's address as libzmq gives it in the `Peer-Address` message property: its IP
    /// over tcp; over ipc (Linux), `localhost:uid:gid:pid` from the peer's credentials (what
    /// libzmq's `getnameinfo` and `SO_PEERCRED` give). Empty when unknown.
    pub peer_address: String,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("peer", &self.peer).finish()
    }
}

fn tcp_stream(s: TcpStream, opts: &StreamOptions) -> io::Result<Stream> {
    s.set_nodelay(true)?;
    let sock = socket2::SockRef::from(&s);
    if let Some(n) = opts.sndbuf {
        sock.set_send_buffer_size(n)?;
    }
    if let Some(n) = opts.rcvbuf {
        sock.set_recv_buffer_size(n)?;
    }
    if let Some(ka) = opts.tcp_keepalive {
        let mut k = socket2::TcpKeepalive::new();
        if let Some(t) = ka.idle {
            k = k.with_time(t);
        }
        if let Some(t) = ka.interval {
            k = k.with_interval(t);
        }
        if let Some(n) = ka.retries {
            k = k.with_retries(n);
        }
        sock.set_tcp_keepalive(&k)?;
    }
    let (peer, peer_address) = match s.peer_addr() {
        Ok(a) => (format!("tcp://{a}"), a.ip().to_string()),
        Err(_) => (String::new(), String::new()),
    };
    let (r, w) = s.into_split();
    Ok(Stream { read: Box::new(r), write: Box::new(nosigpipe::Writer::new(w)), peer, peer_address })
}

/// The send buffer of an ipc stream, unless set (`StreamOptions::sndbuf`). A unix stream socket's
/// buffer does not grow with its traffic as tcp's does (tcp_wmem, up to 4 MiB), and its writer is
/// woken only once what is in flight falls to a quarter of it: with the default (212,992 octets
/// here, `net.core.wmem_default`) a streaming sender slept every 40-60 messages of 4 KiB and its
/// reader as often, and both ends' threads handed each other the work in lock-step. The kernel
/// doubles the value asked for and caps it at `net.core.wmem_max` (on a stock kernel, 208 KiB:
/// then this changes nothing). What it bounds is memory the kernel holds for a reader that does
/// not keep up, beside the up to `SNDHWM` messages the pipe holds.
pub const IPC_SNDBUF: usize = 1 << 20;

#[cfg(unix)]
fn unix_stream(s: UnixStream, path: &std::path::Path, opts: &StreamOptions) -> io::Result<Stream> {
    let sock = socket2::SockRef::from(&s);
    match opts.sndbuf {
        Some(n) => sock.set_send_buffer_size(n)?,
        // Best effort: a kernel that refuses it leaves its own default.
        None => {
            let _ = sock.set_send_buffer_size(IPC_SNDBUF);
        }
    }
    if let Some(n) = opts.rcvbuf {
        sock.set_recv_buffer_size(n)?;
    }
    let peer_address = match s.peer_cred() {
        Ok(c) => format!("localhost:{}:{}:{}", c.uid(), c.gid(), c.pid().unwrap_or(0)),
        Err(_) => String::new(),
    };
    let (r, w) = s.into_split();
    Ok(Stream {
        read: Box::new(r),
        write: Box::new(nosigpipe::Writer::new(w)),
        peer: format!("ipc://{}", path.display()),
        peer_address,
    })
}

#[cfg(unix)]
fn unix_addr(path: &std::path::Path) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let raw = path.as_os_str().as_bytes();
    if let Some(name) = raw.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::linux::net::SocketAddrExt;
            return std::os::unix::net::SocketAddr::from_abstract_name(name);
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = name;
            return Err(io::Error::new(io::ErrorKind::Unsupported, "abstract ipc needs Linux"));
        }
    }
    std::os::unix::net::SocketAddr::from_pathname(path)
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix domain socket, with the path to unlink when done.
    #[cfg(unix)]
    Ipc(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `endpoint` and returns the listener and the endpoint actually bound (port resolved).
    pub async fn bind(endpoint: &Endpoint, opts: &StreamOptions) -> io::Result<(Listener, String)> {
        let backlog = opts.backlog.unwrap_or(1024);
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let host = if host == "*" { "0.0.0.0" } else { host.as_str() };
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, *port)).await?.collect();
                let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind");
                for addr in addrs {
                    match bind_tcp(addr, backlog) {
                        Ok(l) => {
                            let local = l.local_addr()?;
                            let ep = Endpoint::Tcp { host: local.ip().to_string(), port: local.port() };
                            return Ok((Listener::Tcp(l), ep.to_string()));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            #[cfg(unix)]
            Endpoint::Ipc(path) => {
                let abstract_ns = path.as_os_str().to_string_lossy().starts_with('@');
                if !abstract_ns {
                    // libzmq removes a stale socket file before binding.
                    let _ = std::fs::remove_file(path);
                }
                let std_listener = std::os::unix::net::UnixListener::bind_addr(&unix_addr(path)?)?;
                std_listener.set_nonblocking(true)?;
                let l = UnixListener::from_std(std_listener)?;
                let owned = if abstract_ns { PathBuf::new() } else { path.clone() };
                Ok((Listener::Ipc(l, owned), endpoint.to_string()))
            }
            #[cfg(not(unix))]
            Endpoint::Ipc(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "ipc needs Unix")),
            Endpoint::Inproc(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "inproc has no listener")),
        }
    }

    /// Accepts the next connection.
    pub async fn accept(&self, opts: &StreamOptions) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                tcp_stream(s, opts)
            }
            #[cfg(unix)]
            Listener::Ipc(l, path) => {
                let (s, _) = l.accept().await?;
                unix_stream(s, path, opts)
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Listener::Ipc(_, path) = self {
            if !path.as_os_str().is_empty() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn bind_tcp(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Connects to `endpoint` once.
pub async fn connect(endpoint: &Endpoint, opts: &StreamOptions) -> io::Result<Stream> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let s = TcpStream::connect((host.as_str(), *port)).await?;
            tcp_stream(s, opts)
        }
        #[cfg(unix)]
        Endpoint::Ipc(path) => {
            let std_stream = std::os::unix::net::UnixStream::connect_addr(&unix_addr(path)?)?;
            std_stream.set_nonblocking(true)?;
            unix_stream(UnixStream::from_std(std_stream)?, path, opts)
        }
        #[cfg(not(unix))]
        Endpoint::Ipc(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "ipc needs Unix")),
        Endpoint::Inproc(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "inproc has no stream")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(Endpoint::parse("tcp://*:5555"), Ok(Endpoint::Tcp { host: "*".into(), port: 5555 }));
        assert_eq!(Endpoint::parse("tcp://[::1]:*"), Ok(Endpoint::Tcp { host: "::1".into(), port: 0 }));
        assert_eq!(Endpoint::parse("tcp://[::1]:1").map(|e| e.to_string()), Ok("tcp://[::1]:1".into()));
        assert_eq!(Endpoint::parse("ipc:///tmp/x"), Ok(Endpoint::Ipc("/tmp/x".into())));
        assert_eq!(Endpoint::parse("inproc://x"), Ok(Endpoint::Inproc("x".into())));
        for bad in ["inproc://", "tcp://:1", "tcp://host", "tcp://h:99999", "udp://h:1", "ipc://", "nonsense"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
