//! [`Connection`]: the state machine of one ZMTP peer, deterministic and without IO.
//!
//! # Driving contract
//!
//! Inputs are `handle_*` and `send_*` calls; outputs are `poll_*` calls:
//!
//! - [`Connection::handle_input`] with bytes read from the peer and the current time; again, with
//!   no new bytes, once the events are taken if [`Connection::input_paused`] says it stopped
//!   with [`MAX_QUEUED_EVENTS`] queued;
//! - [`Connection::handle_timeout`] when [`Connection::poll_timeout`]'s instant has passed;
//! - [`Connection::send_message`] and [`Connection::send_subscription`] once [`Event::Ready`] was seen;
//! - [`Connection::poll_transmit`] gives the bytes to write, in order, until it returns `None`
//!   (a PONG is owed, not queued: a driver that stops taking output while its writes are blocked
//!   holds one PONG whatever the peer's PINGs);
//! - [`Connection::poll_event`] gives what the peer said (ready, messages, subscriptions).
//!
//! An `Err` from a `handle_*` call is final: the connection is closed, [`Connection::poll_transmit`]
//! may still hold an ERROR command worth flushing, [`Connection::poll_event`] still gives what the
//! peer said before the violation (so what is delivered does not depend on how the input was split
//! into reads), and nothing else will come out of it.
//!
//! States: `ExpectGreeting` (our greeting is queued at construction) → `Handshake` (the security
//! mechanism's own states) → `Ready` (traffic and heartbeats) → `Closed`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::mechanism::{self, CurveSession, Handshake, Next, Security, ZapReply, ZapRequest, ZapSettings};
use super::{ConnectionError, Incompatibility, Misbehaviour, SocketType};
use crate::codec::command::MAX_PING_CONTEXT;
use crate::codec::{frame, metadata, CodecError, Command, Frame, FrameDecoder, Greeting, Metadata};
use crate::message::{Message, Properties};

/// A handshake step after the config was dropped (at READY): cannot happen, the state says
/// which steps are left; an error rather than a panic all the same.
const AFTER_HANDSHAKE: ConnectionError =
    ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder("handshake step after the handshake"));

/// Room reserved at once for the headers of bodies written by reference.
const HEADER_AREA: usize = 512;

/// The output buffer an idle connection keeps. One that grew past it (for messages whose bodies
/// are copied, under the by-reference size) is freed once the connection has had nothing to write
/// for [`OUT_IDLE_RELEASE`] ([`Connection::output_drained`]) instead of staying at its high-water
/// size: a ~1 KiB publish to 10,000 subscribers left every connection's buffer at that size (about
/// 9 MiB in the master's Publisher process), and each minion's largest reply did the same in the
/// request server.
const OUT_KEPT: usize = 256;

/// A fresh output buffer is made at most this large at once ([`Connection::grow_out`]); a larger
/// output grows it.
const OUT_FRESH_MAX: usize = 512 * 1024;

/// How long a grown output buffer is kept unused before it is freed. Not freed at every drain: a
/// connection that sends a message of a few hundred octets at a time (a paced fan-out, a request
/// and reply stream) drains between any two of them, and freeing then made every message allocate
/// the buffer again (allocations per message sent by a PUB to 100 SUBs: 2.99 before, 12.40 with).
pub const OUT_IDLE_RELEASE: Duration = Duration::from_secs(1);

/// The default [`Config::max_msg_size`] (and `Options::max_msg_size`): 256 MiB. libzmq has no
/// limit; with none, a peer announcing a 2^63-1 octet frame makes us buffer whatever it sends
/// until memory runs out. See ARCHITECTURE.md, "Bounded memory".
pub const DEFAULT_MAX_MSG_SIZE: u64 = 256 << 20;

/// What one frame counts toward [`Config::max_msg_size`] at least, however small its body: the
/// memory a received frame takes (its handle) whatever its size, so that a message of many empty
/// frames is bounded like one of few large ones.
pub const FRAME_COST: u64 = 32;

/// The default [`Config::max_handshake_command`]: 64 KiB, room for any READY a real peer sends.
pub const DEFAULT_MAX_HANDSHAKE_COMMAND: u64 = 64 << 10;

/// Events [`Connection::handle_input`] queues before it stops decoding (see
/// [`Connection::input_paused`]): what one read of tiny messages can make us hold is bounded by
/// this, not by the read's size. Small, so that the queue stays in the L1 cache: every message
/// is written into it and read back out (64 events of 96 octets: 6 KiB). At 1,024 (96 KiB, twice
/// a core's L1) each event cost about three cache misses, its 1.5 lines written and read back
/// after a whole read's decoding had evicted them (PULL 16 B receiver, callgrind's cache model:
/// 6.9 → 4.0 L1 misses a message). One decoding step feeds one hand-over batch (the engine's 64).
pub const MAX_QUEUED_EVENTS: usize = 64;

/// What a message of these frames counts toward [`Config::max_msg_size`]: its bodies' sizes,
/// each at least [`FRAME_COST`].
pub fn message_cost<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    frames.into_iter().map(|f| (f.len() as u64).max(FRAME_COST)).sum()
}

/// ZMTP 3.1 heartbeat settings (libzmq's ZMQ_HEARTBEAT_IVL / _TTL / _TIMEOUT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Send a PING this often once ready; `None` sends none.
    pub interval: Option<Duration>,
    /// The TTL announced in our PINGs: how long the peer may wait for our traffic.
    pub ttl: Option<Duration>,
    /// How long after a PING we wait for any traffic before dropping the peer; defaults to
    /// `interval`.
    pub timeout: Option<Duration>,
}

/// What a connection needs to know about its own side.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our socket type, announced in READY and checked against the peer's.
    pub socket_type: SocketType,
    /// Our routing id, announced as `Identity` (empty: none).
    pub routing_id: Bytes,
    /// The security mechanism, our side of it and its credentials.
    pub security: Security,
    /// The greeting's as-server bit under NULL (PLAIN and CURVE take it from `security`).
    pub as_server: bool,
    /// Ask a ZAP handler about the client (see [`Event::Authenticate`]); `None` accepts every
    /// client. NULL asks only when the domain is not empty, as libzmq.
    pub zap: Option<ZapSettings>,
    /// Largest message accepted from the peer, all frames together, each counting at least
    /// [`FRAME_COST`]; `None` is unlimited. Default [`DEFAULT_MAX_MSG_SIZE`].
    pub max_msg_size: Option<u64>,
    /// Largest command accepted before the handshake is done (READY and the mechanism's
    /// commands); default [`DEFAULT_MAX_HANDSHAKE_COMMAND`]. `max_msg_size` applies too.
    pub max_handshake_command: u64,
    /// Heartbeats.
    pub heartbeat: HeartbeatConfig,
    /// Close the connection if the handshake has not finished this long after it started.
    pub handshake_timeout: Option<Duration>,
    /// Extra properties (`X-...`, ZMQ_METADATA) announced in READY (or INITIATE).
    pub properties: Metadata,
    /// The peer's address as the transport sees it, given to the application as the
    /// `Peer-Address` property of the peer's messages (empty: none).
    pub peer_address: Bytes,
    /// Frame bodies at least this large are handed out by reference (`poll_transmit` yields them
    /// as their own chunks, for vectored writes) instead of being copied into the write buffer.
    pub zero_copy_threshold: usize,
}

impl Config {
    /// Defaults for a socket of type `socket_type`: NULL, no heartbeats, 30 s handshake timeout,
    /// [`DEFAULT_MAX_MSG_SIZE`].
    pub fn new(socket_type: SocketType) -> Config {
        Config {
            socket_type,
            routing_id: Bytes::new(),
            security: Security::Null,
            as_server: false,
            zap: None,
            max_msg_size: Some(DEFAULT_MAX_MSG_SIZE),
            max_handshake_command: DEFAULT_MAX_HANDSHAKE_COMMAND,
            heartbeat: HeartbeatConfig::default(),
            handshake_timeout: Some(Duration::from_secs(30)),
            properties: Metadata::new(),
            peer_address: Bytes::new(),
            zero_copy_threshold: 8 * 1024,
        }
    }

    fn ready_metadata(&self) -> Metadata {
        let mut m = Metadata::new();
        // Both names are valid constants, so insert cannot fail; ignore the Result.
        let _ = m.insert(metadata::SOCKET_TYPE, Bytes::from_static(self.socket_type.as_str().as_bytes()));
        if matches!(self.socket_type, SocketType::Req | SocketType::Dealer | SocketType::Router)
            || !self.routing_id.is_empty()
        {
            let _ = m.insert(metadata::IDENTITY, self.routing_id.clone());
        }
        for (name, value) in self.properties.iter() {
            let _ = m.insert(name, value.clone());
        }
        m
    }
}

/// What we learned about the peer in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's socket type.
    pub socket_type: SocketType,
    /// The peer's `Identity` property (empty when it sent none).
    pub routing_id: Bytes,
    /// The peer's properties, the ones each of its messages carries (see [`Properties`]):
    /// `Peer-Address`, the ZAP handler's `User-Id` and metadata, then what the peer announced.
    pub properties: Properties,
    /// The ZMTP version from the peer's greeting.
    pub version: (u8, u8),
}

/// What the peer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished; messages may flow.
    Ready(PeerInfo),
    /// A whole message.
    Message(Message),
    /// The peer subscribed (PUB and XPUB only), by command or by a `0x01` message.
    Subscribe(Bytes),
    /// The peer cancelled a subscription (PUB and XPUB only).
    Cancel(Bytes),
    /// The handshake waits for the application's verdict on this client: answer with
    /// [`Connection::handle_zap_reply`]. Input is held meanwhile.
    Authenticate(Box<ZapRequest>),
}

#[derive(Debug)]
enum State {
    ExpectGreeting,
    /// Boxed: an established connection keeps no room for the mechanism's state.
    Handshake {
        peer_version: (u8, u8),
        handshake: Box<Handshake>,
    },
    Ready {
        peer_version: (u8, u8),
    },
    Closed,
}

/// One peer's protocol state. See the module docs for the driving contract.
#[derive(Debug)]
pub struct Connection {
    /// The config, for the handshake; dropped once it is done (an established connection keeps
    /// only what traffic needs, the fields below: 390 octets less per connection).
    setup: Option<Box<Config>>,
    socket_type: SocketType,
    heartbeat: HeartbeatConfig,
    max_msg_size: Option<u64>,
    zero_copy_threshold: usize,
    state: State,
    decoder: FrameDecoder,
    out: BytesMut,
    /// Chunks split off the output, each marked if it is a message's body written by reference.
    chunks: VecDeque<(Bytes, bool)>,
    events: VecDeque<Event>,
    partial: Message,
    partial_size: u64,
    commands: Vec<Command>,
    handshake_deadline: Option<Instant>,
    last_recv: Instant,
    next_ping: Option<Instant>,
    ping_outstanding: Option<Instant>,
    peer_ttl: Option<Duration>,
    /// The PONG owed to the peer, if any: the context of its latest PING. One at most: a PING
    /// that comes while a PONG is still owed replaces its context, as libzmq does, so a peer that
    /// sends PINGs and does not read cannot grow what we hold for it.
    pong: Option<PingContext>,
    /// Decoding stopped with [`MAX_QUEUED_EVENTS`] events queued.
    paused: bool,
    /// CURVE: every frame after the handshake is boxed through this. `None` (NULL, PLAIN): frames
    /// go on the wire as they are.
    session: Option<Box<CurveSession>>,
    /// The peer's properties, attached to each of its messages once the handshake is done.
    properties: Option<Properties>,
    /// When the grown output buffer is freed unless output was taken meanwhile
    /// ([`Connection::output_drained`]).
    out_release_at: Option<Instant>,
    /// Output was taken since `out_release_at` was set.
    out_used: bool,
    /// The output buffer before `out`, kept while its chunks are being written, to be taken back
    /// once they are ([`Connection::out_room`]).
    out_spare: Option<BytesMut>,
    /// The size a fresh output buffer is made ([`Connection::grow_out`]).
    out_size: u32,
    /// `out` was made by [`Connection::grow_out`] (not the small first one): kept as the spare
    /// when the next one is made.
    out_made: bool,
}

/// A PING's context, kept without holding on to the read buffer it arrived in.
#[derive(Debug, Clone, Copy)]
struct PingContext {
    len: u8,
    bytes: [u8; MAX_PING_CONTEXT],
}

impl Connection {
    /// A new connection whose greeting is already queued for transmission.
    pub fn new(config: Config, now: Instant) -> Connection {
        let mut out = BytesMut::with_capacity(OUT_KEPT);
        Greeting::new(config.security.mechanism(), config.security.is_server().unwrap_or(config.as_server))
            .encode(&mut out);
        Connection {
            decoder: FrameDecoder::new(config.max_handshake_command.min(config.max_msg_size.unwrap_or(u64::MAX))),
            handshake_deadline: config.handshake_timeout.map(|t| now + t),
            socket_type: config.socket_type,
            heartbeat: config.heartbeat,
            max_msg_size: config.max_msg_size,
            zero_copy_threshold: config.zero_copy_threshold,
            setup: Some(Box::new(config)),
            state: State::ExpectGreeting,
            out,
            chunks: VecDeque::new(),
            events: VecDeque::new(),
            partial: Message::new(),
            partial_size: 0,
            commands: Vec::new(),
            last_recv: now,
            next_ping: None,
            ping_outstanding: None,
            peer_ttl: None,
            pong: None,
            paused: false,
            session: None,
            properties: None,
            out_release_at: None,
            out_used: false,
            out_spare: None,
            out_size: 0,
            out_made: false,
        }
    }

    /// Whether messages may be sent.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Feeds bytes read from the peer. Consumes what it can from `src`; payloads share its memory.
    ///
    /// Decoding stops early once [`MAX_QUEUED_EVENTS`] events are queued: then
    /// [`Connection::input_paused`] is true, and the driver takes the events and calls this
    /// again with the same buffer (and no new bytes needed) to go on.
    pub fn handle_input(&mut self, src: &mut BytesMut, now: Instant) -> Result<(), ConnectionError> {
        if !src.is_empty() {
            self.last_recv = now;
            self.ping_outstanding = None;
        }
        let result = self.process(src, now);
        if let Err(e) = &result {
            self.fail(e);
            src.clear();
        }
        result
    }

    /// Whether [`Connection::handle_input`] stopped with bytes left because too many events were
    /// queued; call it again once they are taken.
    #[inline]
    pub fn input_paused(&self) -> bool {
        self.paused
    }

    fn process(&mut self, src: &mut BytesMut, now: Instant) -> Result<(), ConnectionError> {
        self.paused = false;
        loop {
            if self.events.len() >= MAX_QUEUED_EVENTS {
                self.paused = !src.is_empty() && !self.is_closed();
                return Ok(());
            }
            match &mut self.state {
                State::Closed => {
                    src.clear();
                    return Ok(());
                }
                State::ExpectGreeting => {
                    let Some(greeting) = Greeting::decode(src)? else { return Ok(()) };
                    src.advance(Greeting::SIZE);
                    let setup = self.setup.as_deref().ok_or(AFTER_HANDSHAKE)?;
                    let ours = setup.security.mechanism();
                    if greeting.mechanism != ours {
                        return Err(ConnectionError::PeerIncompatible(Incompatibility::Mechanism {
                            ours,
                            theirs: greeting.mechanism,
                        }));
                    }
                    // The peer's as-server bit is not checked: libzmq 4.3 sends 0 from PLAIN and
                    // CURVE servers too. Two clients or two servers fail on the first command.
                    let meta = setup.ready_metadata();
                    let ctx = mechanism::Context { metadata: &meta, zap: setup.zap.as_ref(), now };
                    let next = Handshake::start(&setup.security, ctx, &mut self.commands);
                    self.flush_commands();
                    self.advance(next?, greeting.version, now)?;
                }
                State::Handshake { handshake, .. } if handshake.awaits_zap() => return Ok(()),
                State::Handshake { peer_version, .. } => {
                    let peer_version = *peer_version;
                    let Some(frame) = self.decoder.decode(src)? else { return Ok(()) };
                    let Frame::Command(body) = frame else {
                        return Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder(
                            "message frame before the handshake finished",
                        )));
                    };
                    let State::Handshake { handshake, .. } = std::mem::replace(&mut self.state, State::Closed) else {
                        unreachable!("matched above");
                    };
                    let setup = self.setup.as_deref().ok_or(AFTER_HANDSHAKE)?;
                    let meta = setup.ready_metadata();
                    let ctx = mechanism::Context { metadata: &meta, zap: setup.zap.as_ref(), now };
                    let next = handshake.handle(body, ctx, &mut self.commands);
                    self.flush_commands();
                    self.advance(next?, peer_version, now)?;
                }
                State::Ready { .. } => {
                    // What is left of the message's budget; a frame within it may still cost
                    // more (FRAME_COST), checked in on_frame. CURVE boxes add their overhead.
                    let budget = self.max_msg_size.map_or(u64::MAX, |m| m.saturating_sub(self.partial_size));
                    let overhead = if self.session.is_some() { mechanism::MESSAGE_OVERHEAD as u64 } else { 0 };
                    self.decoder.set_max_frame(budget.saturating_add(overhead));
                    let frame = match &mut self.session {
                        None => self.decoder.decode(src)?,
                        Some(session) => match self.decoder.decode_mut(src)? {
                            Some((_, body)) => Some(session.open_frame(body)?),
                            None => None,
                        },
                    };
                    let Some(frame) = frame else { return Ok(()) };
                    match frame {
                        Frame::Command(body) => self.on_command(Command::decode(body)?)?,
                        Frame::Message { more, body } => self.on_frame(more, body, budget)?,
                    }
                }
            }
        }
    }

    /// Moves to what a mechanism step produced.
    fn advance(&mut self, next: Next, peer_version: (u8, u8), now: Instant) -> Result<(), ConnectionError> {
        match next {
            Next::Continue(handshake) => self.state = State::Handshake { peer_version, handshake: Box::new(handshake) },
            Next::Authenticate(request, handshake) => {
                self.events.push_back(Event::Authenticate(Box::new(request)));
                self.state = State::Handshake { peer_version, handshake: Box::new(handshake) };
            }
            Next::Done(established) => {
                // The session first: an ERROR about the peer's metadata is boxed too.
                self.session = established.session;
                let info = self.check_peer(established.metadata, established.zap, peer_version)?;
                self.properties = Some(info.properties.clone());
                self.state = State::Ready { peer_version };
                self.handshake_deadline = None;
                // The mechanism's commands went out before this (`flush_commands`); an
                // established connection keeps no room for them.
                if self.commands.is_empty() {
                    self.commands = Vec::new();
                }
                self.next_ping = self.heartbeat.interval.map(|i| now + i);
                self.setup = None;
                self.events.push_back(Event::Ready(info));
            }
        }
        Ok(())
    }

    /// Gives the application's verdict on the client of [`Event::Authenticate`]. A refusal
    /// queues an ERROR for the peer (with the status code) and closes the connection. Input held
    /// while waiting is not processed here: call [`Connection::handle_input`] again.
    pub fn handle_zap_reply(&mut self, reply: ZapReply, now: Instant) -> Result<(), ConnectionError> {
        let result = self.zap_reply(reply, now);
        if let Err(e) = &result {
            self.fail(e);
        }
        result
    }

    fn zap_reply(&mut self, reply: ZapReply, now: Instant) -> Result<(), ConnectionError> {
        let peer_version = match &self.state {
            State::Handshake { peer_version, handshake } if handshake.awaits_zap() => *peer_version,
            _ => {
                return Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder(
                    "ZAP reply while not authenticating",
                )))
            }
        };
        let State::Handshake { handshake, .. } = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("matched above");
        };
        let setup = self.setup.as_deref().ok_or(AFTER_HANDSHAKE)?;
        let meta = setup.ready_metadata();
        let ctx = mechanism::Context { metadata: &meta, zap: setup.zap.as_ref(), now };
        let next = handshake.handle_zap(reply, ctx, &mut self.commands);
        self.flush_commands();
        self.advance(next?, peer_version, now)
    }

    /// Queues a command after the handshake: boxed under CURVE, as it is otherwise.
    fn put_command(&mut self, cmd: &Command) {
        match &mut self.session {
            None => cmd.encode(&mut self.out),
            Some(session) => session.seal_command(&mut self.out, cmd),
        }
    }

    fn check_peer(
        &mut self,
        metadata: Metadata,
        zap: Metadata,
        version: (u8, u8),
    ) -> Result<PeerInfo, ConnectionError> {
        let ours = self.socket_type;
        let Some(raw) = metadata.get(metadata::SOCKET_TYPE) else {
            return Err(ConnectionError::PeerMisbehaved(Misbehaviour::NoSocketType));
        };
        let peer = SocketType::from_wire(raw);
        match peer {
            Some(peer) if ours.is_compatible(peer) => {
                // Ours first (the transport's, then ZAP's), then the peer's but for the names
                // only our side may fill. Copies: the values point into a read buffer, which
                // whoever keeps the properties (a message, a monitor event) would otherwise keep
                // allocated. Names and values were valid on the wire, so insert cannot fail.
                let mut own = Metadata::new();
                if let Some(setup) = self.setup.as_deref().filter(|c| !c.peer_address.is_empty()) {
                    let _ = own.insert(metadata::PEER_ADDRESS, setup.peer_address.clone());
                }
                let theirs = metadata.iter().filter(|(name, _)| {
                    !name.eq_ignore_ascii_case(metadata::USER_ID) && !name.eq_ignore_ascii_case(metadata::PEER_ADDRESS)
                });
                for (name, value) in zap.iter().chain(theirs) {
                    // The socket type's name is one of ours (checked above): not copied.
                    let value = if name == metadata::SOCKET_TYPE && peer.as_str().as_bytes() == &value[..] {
                        Bytes::from_static(peer.as_str().as_bytes())
                    } else {
                        Bytes::copy_from_slice(value)
                    };
                    let _ = own.insert(name, value);
                }
                own.shrink_to_fit();
                Ok(PeerInfo {
                    socket_type: peer,
                    routing_id: own.get(metadata::IDENTITY).cloned().unwrap_or_default(),
                    properties: Properties::new(own),
                    version,
                })
            }
            _ => {
                let name = String::from_utf8_lossy(raw).into_owned();
                self.put_command(&Command::Error(Bytes::from_static(b"Invalid socket type")));
                Err(ConnectionError::incompatible_socket_type(ours, name))
            }
        }
    }

    fn on_command(&mut self, cmd: Command) -> Result<(), ConnectionError> {
        match cmd {
            Command::Ping { ttl, context } => {
                self.peer_ttl = (ttl > 0).then(|| Duration::from_millis(u64::from(ttl) * 100));
                // Owed until poll_transmit hands it out; a later PING replaces it.
                let mut pong = PingContext { len: 0, bytes: [0; MAX_PING_CONTEXT] };
                let n = context.len().min(MAX_PING_CONTEXT);
                pong.bytes[..n].copy_from_slice(&context[..n]);
                pong.len = n as u8;
                self.pong = Some(pong);
            }
            Command::Pong(_) => {}
            Command::Subscribe(topic) if self.socket_type.receives_subscriptions() => {
                self.events.push_back(Event::Subscribe(topic));
            }
            Command::Cancel(topic) if self.socket_type.receives_subscriptions() => {
                self.events.push_back(Event::Cancel(topic));
            }
            Command::Subscribe(_) | Command::Cancel(_) => {}
            Command::Error(reason) => return Err(ConnectionError::PeerError(reason)),
            Command::Ready(_) => {
                return Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder("READY after the handshake")));
            }
            Command::Other { name, .. } => {
                tracing::debug!(command = %String::from_utf8_lossy(&name), "ignoring unknown command");
            }
        }
        Ok(())
    }

    fn on_frame(&mut self, more: bool, body: Bytes, budget: u64) -> Result<(), ConnectionError> {
        let cost = (body.len() as u64).max(FRAME_COST);
        if cost > budget {
            return Err(CodecError::TooLarge { size: body.len() as u64, limit: budget }.into());
        }
        let mut msg = if !more && self.partial.is_empty() {
            // A message of one frame (the usual): made from its body, not pushed into `partial`
            // and taken out again (PULL 16 B, callgrind: about 20 instructions a message).
            Message::from(body)
        } else {
            self.partial_size += cost;
            self.partial.push_back(body);
            if more {
                return Ok(());
            }
            self.partial_size = 0;
            std::mem::take(&mut self.partial)
        };
        msg.set_properties(self.properties.clone());
        if self.socket_type.receives_subscriptions() {
            if let Some(first) = msg.first() {
                match first.first() {
                    Some(1) => {
                        self.events.push_back(Event::Subscribe(first.slice(1..)));
                        return Ok(());
                    }
                    Some(0) => {
                        self.events.push_back(Event::Cancel(first.slice(1..)));
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        self.events.push_back(Event::Message(msg));
        Ok(())
    }

    fn flush_commands(&mut self) {
        for cmd in self.commands.drain(..) {
            cmd.encode(&mut self.out);
        }
    }

    fn fail(&mut self, e: &ConnectionError) {
        tracing::debug!(error = %e, "closing connection");
        self.state = State::Closed;
        // Events decoded before the violation stay queued: had they arrived in an earlier read,
        // they would have been delivered already.
    }

    /// Octets still to come for the frame being received, given what `handle_input` left in its
    /// buffer (`buffered`); 0 between frames. A driver sizes its next read with it.
    pub fn missing(&self, buffered: usize) -> usize {
        self.decoder.missing(buffered)
    }

    /// Queues a message for the peer. Returns `false` (and queues nothing) unless the connection is
    /// ready. A message with no frames is sent as one empty frame.
    pub fn send_message(&mut self, msg: &Message) -> bool {
        if !self.is_ready() {
            return false;
        }
        self.out_room(self.output_for(msg));
        if let Some(session) = &mut self.session {
            if msg.is_empty() {
                session.seal_frame(&mut self.out, false, false, b"");
            }
            let last = msg.len().saturating_sub(1);
            for (i, body) in msg.bodies().enumerate() {
                session.seal_frame(&mut self.out, i < last, false, body);
            }
            return true;
        }
        if msg.is_empty() {
            frame::encode_header(&mut self.out, false, false, 0);
            return true;
        }
        let last = msg.len() - 1;
        // Bodies as slices: a small one kept inside the message (`Message::from(&[u8])`) is
        // copied without being made a frame; only a body written by reference is taken as one.
        for (i, body) in msg.bodies().enumerate() {
            let by_reference = if body.len() >= self.zero_copy_threshold { msg.get(i) } else { None };
            if by_reference.is_some() && self.out.capacity() - self.out.len() < frame::MAX_HEADER {
                // Headers of bodies written by reference are split off one by one: give them a
                // shared area instead of an allocation each.
                self.out.reserve(HEADER_AREA);
            } else {
                self.out.reserve(frame::MAX_HEADER);
            }
            frame::encode_header(&mut self.out, i < last, false, body.len());
            match by_reference {
                Some(whole) => {
                    self.chunks.push_back((self.out.split().freeze(), false));
                    self.chunks.push_back((whole.clone(), true));
                }
                None => self.out.extend_from_slice(body),
            }
        }
        true
    }

    /// Whether messages go out as plaintext frames: ready, with a mechanism that does not encrypt
    /// (NULL, PLAIN).
    pub fn frames_in_plaintext(&self) -> bool {
        self.is_ready() && self.session.is_none()
    }

    /// Queues messages already encoded as plaintext ZMTP 3 frames (whole messages, in order):
    /// copied into the output, or, from `by_reference` octets, a chunk of their own after what is
    /// queued (not copied). `Ok` with the buffer if it was copied (the caller may use it again),
    /// `Ok(None)` if it was taken by reference; `Err` gives the frames back, nothing queued,
    /// unless [`Connection::frames_in_plaintext`].
    pub fn send_encoded(&mut self, frames: BytesMut, by_reference: usize) -> Result<Option<BytesMut>, BytesMut> {
        if !self.frames_in_plaintext() {
            return Err(frames);
        }
        if frames.len() < by_reference {
            self.out_room(frames.len());
            self.out.extend_from_slice(&frames);
            return Ok(Some(frames));
        }
        if !self.out.is_empty() {
            self.chunks.push_back((self.out.split().freeze(), false));
        }
        self.chunks.push_back((frames.freeze(), false));
        Ok(None)
    }

    /// Queues a subscription (or its cancellation): a SUBSCRIBE / CANCEL command toward a ZMTP 3.1
    /// peer, a `0x01` / `0x00`-prefixed message toward 3.0. Returns `false` unless ready.
    pub fn send_subscription(&mut self, topic: &[u8], subscribe: bool) -> bool {
        let State::Ready { peer_version } = self.state else { return false };
        if peer_version >= (3, 1) {
            let topic = Bytes::copy_from_slice(topic);
            let cmd = if subscribe { Command::Subscribe(topic) } else { Command::Cancel(topic) };
            self.put_command(&cmd);
        } else if let Some(session) = &mut self.session {
            let mut body = Vec::with_capacity(1 + topic.len());
            body.push(u8::from(subscribe));
            body.extend_from_slice(topic);
            session.seal_frame(&mut self.out, false, false, &body);
        } else {
            self.out.reserve(frame::MAX_HEADER + 1 + topic.len());
            frame::encode_header(&mut self.out, false, false, 1 + topic.len());
            self.out.put_u8(u8::from(subscribe));
            self.out.put_slice(topic);
        }
        true
    }

    /// The next bytes to write, in order; `None` when nothing is pending. A PONG owed to the peer
    /// goes out after what was queued before it (between messages, never inside one).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit_marked().map(|(chunk, _)| chunk)
    }

    /// As [`Connection::poll_transmit`], each chunk marked `true` if it is the body of a message
    /// passed to [`Connection::send_message`], written by reference (the sender's memory, which a
    /// driver may hand back to the sender to free once written).
    pub fn poll_transmit_marked(&mut self) -> Option<(Bytes, bool)> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Some(chunk);
        }
        if let Some(pong) = self.pong.take() {
            // Owed before any failure (none is recorded after one), so it goes out like an ERROR.
            let context = Bytes::copy_from_slice(&pong.bytes[..usize::from(pong.len)]);
            self.put_command(&Command::Pong(context));
        }
        if self.out.is_empty() {
            None
        } else {
            self.out_used = true;
            Some((self.out.split().freeze(), false))
        }
    }

    /// Octets `msg` copies into the output at most: its frames copied, boxed under CURVE, with a
    /// header for each body written by reference among them. 0 if every body is written by
    /// reference: their headers are split off one by one from a small area of their own
    /// ([`HEADER_AREA`], in [`Connection::send_message`]), never from the two output buffers.
    #[inline]
    fn output_for(&self, msg: &Message) -> usize {
        let boxed = if self.session.is_some() { mechanism::MESSAGE_OVERHEAD } else { 0 };
        let mut n = frame::MAX_HEADER + boxed;
        let mut copied = self.session.is_some() || msg.is_empty();
        for body in msg.bodies() {
            n += frame::MAX_HEADER + boxed;
            if self.session.is_some() || body.len() < self.zero_copy_threshold {
                n += body.len();
                copied = true;
            }
        }
        if copied {
            n
        } else {
            0
        }
    }

    /// Makes room for `additional` octets in the output.
    #[inline]
    fn out_room(&mut self, additional: usize) {
        if self.out.capacity() - self.out.len() < additional {
            self.grow_out(additional);
        }
    }

    /// The output buffer is full. Taken back whole if its chunks were written. Else, when it holds
    /// nothing (all of it taken as chunks still being written), the buffer before it (the spare)
    /// is taken back if its own chunks were written; if they were not, the buffers are too small
    /// for what is in flight, and a fresh one is made twice as large (up to [`OUT_FRESH_MAX`]).
    /// The full one becomes the spare. So a connection streaming output alternates between two
    /// buffers as large as what it has in flight. Before, each output taken was a fresh buffer
    /// grown by doubling (`realloc`: each step copied what it held, and pages fresh from the
    /// kernel were faulted in) and freed once written; with glibc's allocator, the heap's top was
    /// given back to the kernel and taken again every few writes.
    #[inline(never)]
    fn grow_out(&mut self, additional: usize) {
        if self.out.try_reclaim(additional) {
            return;
        }
        let size = usize::try_from(self.out_size).unwrap_or(OUT_FRESH_MAX).max(HEADER_AREA);
        if !self.out.is_empty() {
            // Output waiting in it: grows as a vector does (a message larger than the buffer, or
            // more output before it is taken than the buffer holds).
            self.out.reserve(additional.max(size));
            self.out_size = u32::try_from(self.out.capacity().min(OUT_FRESH_MAX)).unwrap_or(u32::MAX);
            return;
        }
        let mut spare = self.out_spare.take();
        // Taken back at the size it has once written: asking it for the next fresh size instead
        // (larger than it after a doubling) failed for every spare after the first doubling, so
        // one spare still in flight doubled the buffers on every turn up to OUT_FRESH_MAX (the
        // headers of 4 KiB bodies written by reference over tcp ended in 512 KiB buffers).
        let next = if spare.as_mut().is_some_and(|s| s.try_reclaim(additional)) {
            spare.unwrap_or_default()
        } else {
            // A spare still being written (or too small for this output) is dropped: freed once
            // written.
            let size = if spare.is_some() { (size * 2).min(OUT_FRESH_MAX) } else { size };
            self.out_size = u32::try_from(size).unwrap_or(u32::MAX);
            BytesMut::with_capacity(additional.max(size))
        };
        let old = std::mem::replace(&mut self.out, next);
        if std::mem::replace(&mut self.out_made, true) {
            self.out_spare = Some(old);
        }
    }

    /// For the driver, whenever the connection has nothing left to write: if the output buffer
    /// grew past [`OUT_KEPT`], starts the [`OUT_IDLE_RELEASE`] wait after which
    /// [`Connection::handle_timeout`] frees it unless output was taken meanwhile (then the wait
    /// starts over). `now` is called only to start a wait, not on every drain.
    pub fn output_drained(&mut self, now: impl FnOnce() -> Instant) {
        if self.out_release_at.is_none()
            && matches!(self.state, State::Ready { .. })
            && self.out.is_empty()
            && self.chunks.is_empty()
            && self.out_grown()
        {
            self.out_release_at = Some(now() + OUT_IDLE_RELEASE);
            self.out_used = false;
        }
    }

    /// At the release instant: frees the grown output buffer if it was not used since the wait
    /// started and nothing waits in it; starts the wait over if it was.
    fn release_idle_output(&mut self, now: Instant) {
        match self.out_release_at {
            Some(at) if now >= at => {}
            _ => return,
        }
        self.out_release_at = None;
        if !(self.out.is_empty() && self.chunks.is_empty()) {
            return;
        }
        if self.out_used {
            if self.out_grown() {
                self.out_release_at = Some(now + OUT_IDLE_RELEASE);
                self.out_used = false;
            }
        } else if self.out_grown() {
            self.out = BytesMut::new();
            self.out_spare = None;
            self.out_made = false;
        }
    }

    /// Whether the output buffer holds more than [`OUT_KEPT`] and none of it is being written (a
    /// spare is freed with it).
    fn out_grown(&mut self) -> bool {
        self.out.try_reclaim(OUT_KEPT + 1)
    }

    /// Whether the output holds more than [`OUT_KEPT`] (tests).
    #[cfg(test)]
    pub(crate) fn output_grown(&mut self) -> bool {
        self.out_grown()
    }

    /// Octets waiting in [`Connection::poll_transmit`], a PONG owed included.
    pub fn pending_transmit(&self) -> usize {
        // A PONG frame: 2-octet header (the body is under 256 octets), name size, "PONG", the
        // context; boxed under CURVE.
        let boxed = if self.session.is_some() { mechanism::MESSAGE_OVERHEAD } else { 0 };
        let pong = self.pong.map_or(0, |p| 2 + 5 + usize::from(p.len) + boxed);
        self.out.len() + pong + self.chunks.iter().map(|(c, _)| c.len()).sum::<usize>()
    }

    /// For the driver, once it has taken the [`Event::Ready`]: frees the room the handshake grew
    /// and the established connection may never use, if nothing waits in it: the event queue
    /// (four events, 352 octets) and the output buffer ([`OUT_KEPT`]). An idle connection keeps
    /// neither; a busy one allocates each again once, with its first message or command.
    pub fn shed_handshake_room(&mut self) {
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.out.is_empty() && self.chunks.is_empty() && self.pong.is_none() {
            self.out = BytesMut::new();
            self.out_spare = None;
            self.out_made = false;
            self.chunks = VecDeque::new();
        }
    }

    /// The next thing the peer said. After an error, what was decoded before it is still here.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How many events [`Connection::poll_event`] has queued.
    #[inline]
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// When [`Connection::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::ExpectGreeting | State::Handshake { .. } => self.handshake_deadline,
            State::Ready { .. } => {
                let hb = &self.heartbeat;
                let timeout = hb.timeout.or(hb.interval);
                [
                    self.next_ping,
                    self.ping_outstanding.zip(timeout).map(|(t, d)| t + d),
                    self.peer_ttl.map(|ttl| self.last_recv + ttl),
                    self.out_release_at,
                ]
                .into_iter()
                .flatten()
                .min()
            }
        }
    }

    /// Runs the timers due at `now`: handshake timeout, PING, heartbeat timeout, peer TTL.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let result = self.timers(now);
        if let Err(e) = &result {
            self.fail(e);
        }
        result
    }

    fn timers(&mut self, now: Instant) -> Result<(), ConnectionError> {
        match self.state {
            State::Closed => Ok(()),
            State::ExpectGreeting | State::Handshake { .. } => match self.handshake_deadline {
                Some(d) if now >= d => Err(ConnectionError::HandshakeTimeout),
                _ => Ok(()),
            },
            State::Ready { .. } => {
                let hb = self.heartbeat;
                if let (Some(sent), Some(timeout)) = (self.ping_outstanding, hb.timeout.or(hb.interval)) {
                    if now >= sent + timeout {
                        return Err(ConnectionError::HeartbeatTimeout);
                    }
                }
                if let Some(ttl) = self.peer_ttl {
                    if now >= self.last_recv + ttl {
                        return Err(ConnectionError::HeartbeatTimeout);
                    }
                }
                if let (Some(due), Some(interval)) = (self.next_ping, hb.interval) {
                    if now >= due {
                        let ttl = hb.ttl.map_or(0, |t| (t.as_millis() / 100).min(u128::from(u16::MAX)) as u16);
                        self.put_command(&Command::Ping { ttl, context: Bytes::new() });
                        self.ping_outstanding.get_or_insert(now);
                        self.next_ping = Some(now + interval);
                    }
                }
                self.release_idle_output(now);
                Ok(())
            }
        }
    }
}
