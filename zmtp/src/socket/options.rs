//! [`Options`]: what libzmq calls socket options, set before the socket connects or binds.

use std::time::Duration;

use bytes::Bytes;

use super::zap::{ZapHandler, ZapHandlerRef};
use super::Error;
use crate::codec::{MechanismName, Metadata};
use crate::proto::mechanism::{CurveKeyPair, CurvePublicKey, CurveSecretKey, Security};
pub use crate::proto::HeartbeatConfig;
pub use crate::transport::TcpKeepalive;

/// Socket options. Build with [`Options::default`] and the chainable setters, or set the public
/// fields directly. Defaults follow libzmq unless noted.
#[derive(Debug, Clone)]
pub struct Options {
    /// High-water mark for outgoing messages, per peer (ZMQ_SNDHWM, default 1000; 0 = no limit).
    pub sndhwm: usize,
    /// High-water mark for incoming messages, for the socket (ZMQ_RCVHWM, default 1000; 0 = no limit).
    pub rcvhwm: usize,
    /// How long a closed socket keeps sending queued messages (ZMQ_LINGER). `None` waits until
    /// they are sent. Default 30 s (libzmq waits forever).
    pub linger: Option<Duration>,
    /// Our routing id, sent as the `Identity` property (ZMQ_ROUTING_ID).
    pub routing_id: Bytes,
    /// First reconnect delay (ZMQ_RECONNECT_IVL, default 100 ms).
    pub reconnect_ivl: Duration,
    /// Upper bound of the doubling reconnect delay (ZMQ_RECONNECT_IVL_MAX; zero = no backoff).
    pub reconnect_ivl_max: Duration,
    /// ZMTP heartbeats (ZMQ_HEARTBEAT_IVL, _TTL, _TIMEOUT).
    pub heartbeat: HeartbeatConfig,
    /// Drop a connection whose handshake takes longer (ZMQ_HANDSHAKE_IVL, default 30 s).
    pub handshake_timeout: Option<Duration>,
    /// Accepted connections still in their handshake, on all of the socket's bound endpoints
    /// together (default 1024; `None`: no cap, as libzmq). At the cap the socket stops accepting
    /// until one finishes; once the oldest has waited 1 s (or the handshake timeout, if shorter) it
    /// is dropped for the newcomer (`DisconnectReason::TooManyHandshakes`). Peers that connect and
    /// never speak thus cannot hold more than this many descriptors, nor keep others out.
    pub max_pending_handshakes: Option<usize>,
    /// Largest incoming message (ZMQ_MAXMSGSIZE), all frames together, each frame counting at
    /// least [`crate::proto::FRAME_COST`] octets; a peer sending more is disconnected. Default
    /// 256 MiB ([`crate::proto::DEFAULT_MAX_MSG_SIZE`]); libzmq's default is unlimited, which
    /// `None` gives (a peer may then make us buffer whatever it sends).
    pub max_msg_size: Option<u64>,
    /// PUB, XPUB: distinct topics one peer may subscribe to (default 100,000). Further
    /// subscriptions from that peer are ignored, logged and reported once per connection as
    /// [`crate::socket::MonitorEvent::SubscriptionLimit`]. No libzmq equivalent (unlimited there).
    pub max_topics_per_peer: usize,
    /// PUB, XPUB: octets of topics one peer may hold subscribed, all together (default 16 MiB);
    /// beyond it, as for `max_topics_per_peer`.
    pub max_topic_bytes_per_peer: usize,
    /// TCP keepalive (ZMQ_TCP_KEEPALIVE and friends); `None` leaves the OS default.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// ROUTER: fail sends to unknown or full peers instead of dropping (ZMQ_ROUTER_MANDATORY).
    pub router_mandatory: bool,
    /// ROUTER: a new peer with a routing id already in use takes it over (ZMQ_ROUTER_HANDOVER).
    pub router_handover: bool,
    /// ROUTER, DEALER: send an empty message to each new peer (ZMQ_PROBE_ROUTER).
    pub probe_router: bool,
    /// REQ: prefix requests with a request id and accept only the matching reply (ZMQ_REQ_CORRELATE).
    pub req_correlate: bool,
    /// REQ: allow a new request before the reply to the last one (ZMQ_REQ_RELAXED).
    pub req_relaxed: bool,
    /// Keep only the last message received (ZMQ_CONFLATE); for PULL, SUB, DEALER, PAIR.
    pub conflate: bool,
    /// Queue messages only for connections that are up (ZMQ_IMMEDIATE).
    pub immediate: bool,
    /// PUB, XPUB, SUB: deliver what does NOT match the subscriptions (ZMQ_INVERT_MATCHING).
    pub invert_matching: bool,
    /// XPUB: pass every subscription to the application, not only new ones (ZMQ_XPUB_VERBOSE).
    pub xpub_verbose: bool,
    /// XPUB: also pass every unsubscription (ZMQ_XPUB_VERBOSER).
    pub xpub_verboser: bool,
    /// XPUB: subscriptions are applied by the application with `subscribe` (ZMQ_XPUB_MANUAL).
    pub xpub_manual: bool,
    /// Give up a connect attempt after this long (ZMQ_CONNECT_TIMEOUT).
    pub connect_timeout: Option<Duration>,
    /// `send` fails with [`crate::Error::WouldBlock`] after this long (ZMQ_SNDTIMEO).
    pub send_timeout: Option<Duration>,
    /// `recv` fails with [`crate::Error::WouldBlock`] after this long (ZMQ_RCVTIMEO).
    pub recv_timeout: Option<Duration>,
    /// How long a `recv` that finds nothing queued keeps its thread busy before it sleeps
    /// (default zero: off; no libzmq equivalent). A latency option that costs CPU: instead of
    /// letting its thread sleep until the connection is readable, the receive yields to the
    /// runtime (tokio's `yield_now`) and polls again, until a message comes or this much time has
    /// passed since it started waiting; then it sleeps as it would have. A reply that comes
    /// within the budget is then picked up without the thread's sleep and wake-up. On a
    /// current-thread runtime each turn polls the I/O driver without blocking (one
    /// `epoll_wait` with a zero timeout); on a multi-threaded runtime the worker that holds the
    /// I/O driver still sleeps in it, and the spin saves the receiving thread's own park and
    /// unpark. While it spins, that thread (a worker, or the one in `block_on`) runs at 100%,
    /// giving the CPU up (`sched_yield`) on every turn to whatever else is runnable there. It
    /// pays only where each end has a core to itself: set it a little above the round trip you
    /// expect (tens of µs), for a socket that is asked and answers in a tight loop (REQ/REP,
    /// DEALER/ROUTER request-reply). With ZMQ_CONFLATE it has no effect.
    pub recv_spin: Duration,
    /// XPUB: a message sent to every new subscriber (ZMQ_XPUB_WELCOME_MSG).
    pub xpub_welcome_msg: Option<Bytes>,
    /// Kernel send buffer size (ZMQ_SNDBUF); unset, the OS default over tcp and
    /// [`crate::transport::IPC_SNDBUF`] over ipc.
    pub sndbuf: Option<usize>,
    /// Kernel receive buffer size (ZMQ_RCVBUF), over tcp and ipc; unset, the OS default.
    pub rcvbuf: Option<usize>,
    /// Listen backlog for bound TCP endpoints (ZMQ_BACKLOG; default 1024 here).
    pub backlog: Option<u32>,
    /// Be a CURVE server (ZMQ_CURVE_SERVER); needs `curve_secretkey`.
    pub curve_server: bool,
    /// Our long-term public key (ZMQ_CURVE_PUBLICKEY); derived from the secret key when unset.
    pub curve_publickey: Option<CurvePublicKey>,
    /// Our long-term secret key (ZMQ_CURVE_SECRETKEY).
    pub curve_secretkey: Option<CurveSecretKey>,
    /// The server's public key: setting it makes us a CURVE client (ZMQ_CURVE_SERVERKEY).
    pub curve_serverkey: Option<CurvePublicKey>,
    /// Be a PLAIN server (ZMQ_PLAIN_SERVER).
    pub plain_server: bool,
    /// PLAIN client user name (ZMQ_PLAIN_USERNAME): setting it makes us a PLAIN client.
    pub plain_username: Option<Bytes>,
    /// PLAIN client password (ZMQ_PLAIN_PASSWORD).
    pub plain_password: Option<Bytes>,
    /// The ZAP domain (ZMQ_ZAP_DOMAIN); with NULL, clients are checked only when it is set.
    pub zap_domain: Bytes,
    /// Our ZAP handler; without one, a socket bound at `inproc://zeromq.zap.01` is asked, if any.
    pub zap_handler: Option<ZapHandlerRef>,
    /// ZMQ_ZAP_ENFORCE_DOMAIN (default off, as in libzmq): see [`Options::zap_enforce_domain`].
    pub zap_enforce_domain: bool,
    /// Application properties (ZMQ_METADATA), checked when set: see [`Options::metadata`].
    metadata: Metadata,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sndhwm: 1000,
            rcvhwm: 1000,
            linger: Some(Duration::from_secs(30)),
            routing_id: Bytes::new(),
            reconnect_ivl: Duration::from_millis(100),
            reconnect_ivl_max: Duration::ZERO,
            heartbeat: HeartbeatConfig::default(),
            handshake_timeout: Some(Duration::from_secs(30)),
            max_pending_handshakes: Some(1024),
            max_msg_size: Some(crate::proto::DEFAULT_MAX_MSG_SIZE),
            max_topics_per_peer: 100_000,
            max_topic_bytes_per_peer: 16 << 20,
            tcp_keepalive: None,
            router_mandatory: false,
            router_handover: false,
            probe_router: false,
            req_correlate: false,
            req_relaxed: false,
            conflate: false,
            immediate: false,
            invert_matching: false,
            xpub_verbose: false,
            xpub_verboser: false,
            xpub_manual: false,
            connect_timeout: None,
            send_timeout: None,
            recv_timeout: None,
            recv_spin: Duration::ZERO,
            xpub_welcome_msg: None,
            sndbuf: None,
            rcvbuf: None,
            backlog: None,
            curve_server: false,
            curve_publickey: None,
            curve_secretkey: None,
            curve_serverkey: None,
            plain_server: false,
            plain_username: None,
            plain_password: None,
            zap_domain: Bytes::new(),
            zap_handler: None,
            zap_enforce_domain: false,
            metadata: Metadata::new(),
        }
    }
}

impl Options {
    /// Sets both high-water marks.
    pub fn hwm(mut self, hwm: usize) -> Self {
        self.sndhwm = hwm;
        self.rcvhwm = hwm;
        self
    }
    /// Sets ZMQ_SNDHWM.
    pub fn sndhwm(mut self, hwm: usize) -> Self {
        self.sndhwm = hwm;
        self
    }
    /// Sets ZMQ_RCVHWM.
    pub fn rcvhwm(mut self, hwm: usize) -> Self {
        self.rcvhwm = hwm;
        self
    }
    /// Sets ZMQ_LINGER.
    pub fn linger(mut self, linger: Option<Duration>) -> Self {
        self.linger = linger;
        self
    }
    /// Sets ZMQ_ROUTING_ID.
    pub fn routing_id(mut self, id: impl Into<Bytes>) -> Self {
        self.routing_id = id.into();
        self
    }
    /// Sets ZMQ_RECONNECT_IVL and ZMQ_RECONNECT_IVL_MAX.
    pub fn reconnect(mut self, ivl: Duration, max: Duration) -> Self {
        self.reconnect_ivl = ivl;
        self.reconnect_ivl_max = max;
        self
    }
    /// Sets ZMQ_HEARTBEAT_IVL, _TTL and _TIMEOUT.
    pub fn heartbeat(mut self, interval: Duration, ttl: Option<Duration>, timeout: Option<Duration>) -> Self {
        self.heartbeat = HeartbeatConfig { interval: Some(interval), ttl, timeout };
        self
    }
    /// Sets ZMQ_HANDSHAKE_IVL.
    pub fn handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.handshake_timeout = t;
        self
    }
    /// Sets the cap on pending handshakes ([`Options::max_pending_handshakes`]).
    pub fn max_pending_handshakes(mut self, max: Option<usize>) -> Self {
        self.max_pending_handshakes = max;
        self
    }
    /// Sets ZMQ_MAXMSGSIZE.
    pub fn max_msg_size(mut self, max: Option<u64>) -> Self {
        self.max_msg_size = max;
        self
    }
    /// Sets the subscription limits per peer (PUB, XPUB): distinct topics, and their octets.
    pub fn max_subscriptions_per_peer(mut self, topics: usize, bytes: usize) -> Self {
        self.max_topics_per_peer = topics;
        self.max_topic_bytes_per_peer = bytes;
        self
    }
    /// Sets TCP keepalive.
    pub fn tcp_keepalive(mut self, ka: Option<TcpKeepalive>) -> Self {
        self.tcp_keepalive = ka;
        self
    }
}

macro_rules! flag_setters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        impl Options {
            $(
                $(#[$doc])*
                pub fn $name(mut self, on: bool) -> Self {
                    self.$name = on;
                    self
                }
            )*
        }
    };
}

flag_setters! {
    /// Sets ZMQ_ROUTER_MANDATORY.
    router_mandatory,
    /// Sets ZMQ_ROUTER_HANDOVER.
    router_handover,
    /// Sets ZMQ_PROBE_ROUTER.
    probe_router,
    /// Sets ZMQ_REQ_CORRELATE.
    req_correlate,
    /// Sets ZMQ_REQ_RELAXED.
    req_relaxed,
    /// Sets ZMQ_CONFLATE.
    conflate,
    /// Sets ZMQ_IMMEDIATE.
    immediate,
    /// Sets ZMQ_INVERT_MATCHING.
    invert_matching,
    /// Sets ZMQ_XPUB_VERBOSE.
    xpub_verbose,
    /// Sets ZMQ_XPUB_VERBOSER.
    xpub_verboser,
    /// Sets ZMQ_XPUB_MANUAL.
    xpub_manual,
}

impl Options {
    /// Sets ZMQ_CONNECT_TIMEOUT.
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.connect_timeout = t;
        self
    }
    /// Sets ZMQ_SNDTIMEO.
    pub fn send_timeout(mut self, t: Option<Duration>) -> Self {
        self.send_timeout = t;
        self
    }
    /// Sets ZMQ_XPUB_WELCOME_MSG.
    pub fn xpub_welcome_msg(mut self, msg: Option<Bytes>) -> Self {
        self.xpub_welcome_msg = msg;
        self
    }
    /// Sets ZMQ_SNDBUF and ZMQ_RCVBUF.
    pub fn buffers(mut self, sndbuf: Option<usize>, rcvbuf: Option<usize>) -> Self {
        self.sndbuf = sndbuf;
        self.rcvbuf = rcvbuf;
        self
    }
    /// Sets ZMQ_BACKLOG.
    pub fn backlog(mut self, backlog: Option<u32>) -> Self {
        self.backlog = backlog;
        self
    }
    /// Sets ZMQ_RCVTIMEO.
    pub fn recv_timeout(mut self, t: Option<Duration>) -> Self {
        self.recv_timeout = t;
        self
    }
    /// Sets the busy wait of a receive before it sleeps ([`Options::recv_spin`]).
    pub fn recv_spin(mut self, budget: Duration) -> Self {
        self.recv_spin = budget;
        self
    }
}

/// tokio's bounded channels need a positive capacity; libzmq's 0 means "no limit".
pub(crate) fn capacity(hwm: usize) -> usize {
    if hwm == 0 {
        1 << 28
    } else {
        hwm
    }
}

impl Options {
    /// Sets ZMQ_CURVE_SERVER.
    pub fn curve_server(mut self, on: bool) -> Self {
        self.curve_server = on;
        self
    }
    /// Sets ZMQ_CURVE_PUBLICKEY.
    pub fn curve_publickey(mut self, key: CurvePublicKey) -> Self {
        self.curve_publickey = Some(key);
        self
    }
    /// Sets ZMQ_CURVE_SECRETKEY.
    pub fn curve_secretkey(mut self, key: CurveSecretKey) -> Self {
        self.curve_secretkey = Some(key);
        self
    }
    /// Sets ZMQ_CURVE_SERVERKEY (and so makes us a CURVE client).
    pub fn curve_serverkey(mut self, key: CurvePublicKey) -> Self {
        self.curve_serverkey = Some(key);
        self
    }
    /// Both our keys at once.
    pub fn curve_keypair(mut self, keys: &CurveKeyPair) -> Self {
        self.curve_publickey = Some(keys.public);
        self.curve_secretkey = Some(keys.secret.clone());
        self
    }
    /// Sets ZMQ_PLAIN_SERVER.
    pub fn plain_server(mut self, on: bool) -> Self {
        self.plain_server = on;
        self
    }
    /// Sets ZMQ_PLAIN_USERNAME.
    pub fn plain_username(mut self, username: impl Into<Bytes>) -> Self {
        self.plain_username = Some(username.into());
        self
    }
    /// Sets ZMQ_PLAIN_PASSWORD.
    pub fn plain_password(mut self, password: impl Into<Bytes>) -> Self {
        self.plain_password = Some(password.into());
        self
    }
    /// Sets ZMQ_ZAP_DOMAIN.
    pub fn zap_domain(mut self, domain: impl Into<Bytes>) -> Self {
        self.zap_domain = domain.into();
        self
    }
    /// Sets ZMQ_ZAP_ENFORCE_DOMAIN, libzmq's strict reading of RFC 27 (a domain is required).
    /// Who asks ZAP, off (the default) / on:
    /// - NULL: only with a `zap_domain`; no handler there: the client is accepted / refused.
    /// - PLAIN server: always; no handler: refused either way (PLAIN means nothing without one).
    ///   On, with no domain: refused (libzmq aborts).
    /// - CURVE server: with a handler, asked / asked only with a domain; no handler: accepted /
    ///   refused when a domain is set (with no domain and this on, no ZAP at all, as libzmq).
    ///
    /// A refusal for want of a handler closes the connection before its handshake
    /// ([`crate::proto::ConnectionError::Unauthorized`] with status 500; nothing is sent).
    pub fn zap_enforce_domain(mut self, on: bool) -> Self {
        self.zap_enforce_domain = on;
        self
    }
    /// Installs a ZAP handler: a value implementing [`ZapHandler`] or a closure
    /// `Fn(&ZapRequest) -> ZapReply`.
    pub fn zap_handler(mut self, handler: impl ZapHandler) -> Self {
        self.zap_handler = Some(ZapHandlerRef(std::sync::Arc::new(handler)));
        self
    }

    /// Adds an application property (ZMQ_METADATA), announced to every peer in our READY (or
    /// PLAIN's and CURVE's INITIATE) and readable there with each message (`zmq_msg_gets`, our
    /// [`crate::Message::property`]). Checked now, as libzmq checks `"X-name:value"`: the name
    /// is `X-` and more, has at most 255 characters from `[A-Za-z0-9-_.+]` (ZMTP's property
    /// names), and the value is not empty; all the properties together stay within
    /// [`MAX_METADATA`] octets on the wire, so that any peer of ours takes our READY. The
    /// same name again replaces the value. Does not touch the socket's open connections.
    pub fn metadata(mut self, name: &str, value: impl Into<Bytes>) -> Result<Self, Error> {
        let value = value.into();
        let refuse = |why: &str| Err(Error::InvalidOption(format!("ZMQ_METADATA {name:?}: {why}")));
        if !name.starts_with("X-") || name.len() == 2 {
            return refuse("an application property's name is X- and more");
        }
        if value.is_empty() {
            return refuse("the value is empty");
        }
        let mut metadata = self.metadata.clone();
        metadata.remove(name);
        if metadata.insert(name, value).is_err() {
            return refuse("a property name has 1 to 255 characters from [A-Za-z0-9-_.+]");
        }
        if metadata.encoded_len() > MAX_METADATA {
            return refuse("the properties together exceed MAX_METADATA octets");
        }
        self.metadata = metadata;
        Ok(self)
    }

    /// [`Options::metadata`] in libzmq's form, `"X-name:value"` (the value is what follows the
    /// first colon).
    pub fn metadata_property(self, property: &str) -> Result<Self, Error> {
        match property.split_once(':') {
            Some((name, value)) => self.metadata(name, Bytes::copy_from_slice(value.as_bytes())),
            None => Err(Error::InvalidOption(format!("ZMQ_METADATA {property:?}: not \"X-name:value\""))),
        }
    }

    /// The application properties set with [`Options::metadata`].
    pub fn app_metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// ZMQ_MECHANISM: the mechanism these options select: CURVE if `curve_server` or
    /// `curve_serverkey` is set, else PLAIN if `plain_server`, `plain_username` or
    /// `plain_password` is, else NULL. libzmq takes the mechanism of the last of these options
    /// set; options here are fields, without an order, so CURVE wins over PLAIN whatever came
    /// last (the two agree whenever one mechanism's options are set, or PLAIN's first).
    pub fn mechanism(&self) -> MechanismName {
        if self.curve_server || self.curve_serverkey.is_some() {
            MechanismName::CURVE
        } else if self.plain_server || self.plain_username.is_some() || self.plain_password.is_some() {
            MechanismName::PLAIN
        } else {
            MechanismName::NULL
        }
    }

    /// The [`Options::mechanism`] with its side and credentials. Incomplete CURVE or PLAIN
    /// settings are an error (checked by `bind` and `connect`).
    pub fn security(&self) -> Result<Security, String> {
        let keys = || -> Result<CurveKeyPair, String> {
            let secret = self.curve_secretkey.clone().ok_or("CURVE needs curve_secretkey")?;
            let pair = CurveKeyPair::from_secret(secret);
            match self.curve_publickey {
                Some(p) if p != pair.public => Err("curve_publickey is not the public key of curve_secretkey".into()),
                _ => Ok(pair),
            }
        };
        match self.mechanism() {
            MechanismName::CURVE => match self.curve_serverkey {
                Some(server) if !self.curve_server => Ok(Security::CurveClient { keys: keys()?, server }),
                _ => Ok(Security::CurveServer { keys: keys()? }),
            },
            MechanismName::PLAIN if self.plain_server => Ok(Security::PlainServer),
            MechanismName::PLAIN => {
                let username = self.plain_username.clone().unwrap_or_default();
                let password = self.plain_password.clone().unwrap_or_default();
                if username.len() > 255 || password.len() > 255 {
                    return Err("PLAIN user name and password are at most 255 octets".into());
                }
                Ok(Security::PlainClient { username, password })
            }
            _ => Ok(Security::Null),
        }
    }
}

/// Octets the application properties ([`Options::metadata`]) may take on the wire, all together:
/// what leaves room, under our default cap on handshake commands
/// ([`crate::proto::DEFAULT_MAX_HANDSHAKE_COMMAND`], 64 KiB), for the rest of a READY or a CURVE
/// INITIATE (`Socket-Type`, an `Identity` of up to 255 octets, the cookie, vouch and boxes).
pub const MAX_METADATA: usize = crate::proto::DEFAULT_MAX_HANDSHAKE_COMMAND as usize - 1024;
