//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay test
//! (`zmtp/tests/fuzz_corpus.rs`), so that a stable `cargo test` runs exactly the code the fuzzer ran.
//!
//! Each function takes arbitrary bytes, drives one layer with them and asserts its properties with
//! panics (that is how libFuzzer learns of a finding). None of them may allocate more than a few
//! megabytes whatever the input: every limit (frame size, message size) is configured here.
//!
//! | entry point       | what it drives                          | properties                                   |
//! |-------------------|-----------------------------------------|----------------------------------------------|
//! | [`greeting`]      | [`Greeting::decode`]                    | prefix-consistent verdicts; canonical fields re-encode |
//! | [`frame`]         | [`FrameDecoder`]                        | same frames whatever the read split; bounded buffer growth; re-encode round trip |
//! | [`command`]       | [`Command::decode`], [`Metadata::decode`] | re-encoding gives a prefix of the input (exactly the input for metadata) |
//! | [`connection`]    | one [`Connection`] fed peer bytes       | events, result and output identical whatever the read split; nothing after close |
//! | [`pair`]          | two [`Connection`]s, virtual clock      | what one side sends the other receives, in order; heartbeat verdicts are justified |
//! | [`subscriptions`] | [`Subscriptions`]                       | agrees with a naive counted model            |
//! | [`roundtrip`]     | encoders then decoders                  | `decode(encode(x)) == x` for greetings, frames, commands, metadata |
//! | [`plain`]         | one PLAIN client or server, ZAP answered | result and events identical whatever the read split; refusals and user ids |
//! | [`curve`]         | one CURVE client or server (`--cfg fuzzing`: identity boxes) | the same |
//! | [`sockets`]       | a real `Socket` (feature `sockets`) on ipc, a raw peer and application calls | no panic in any task, no hang (closed within 5 s), nothing over `max_msg_size` |
//!
//! Input layouts (the seed generator `fuzz/capture_seeds.py` writes them) are documented on each
//! function. A missing byte reads as zero, so every input is valid.
//!
//! Socket types are chosen by index into [`SOCKET_TYPES`].

#[cfg(feature = "sockets")]
mod sockets;
#[cfg(feature = "sockets")]
pub use sockets::sockets;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::{frame, metadata, CodecError, Command, Frame, FrameDecoder, Greeting, MechanismName, Metadata};
use crate::proto::{Config, Connection, ConnectionError, Event, HeartbeatConfig};
use crate::subscriptions::Subscriptions;
use crate::{Message, SocketType};

/// Socket types by the index the fuzz inputs use (`byte % 11`).
pub const SOCKET_TYPES: [SocketType; 11] = [
    SocketType::Pair,
    SocketType::Pub,
    SocketType::Sub,
    SocketType::Req,
    SocketType::Rep,
    SocketType::Dealer,
    SocketType::Router,
    SocketType::Pull,
    SocketType::Push,
    SocketType::XPub,
    SocketType::XSub,
];

/// Frame size limits by the index the [`frame`] input uses (`byte % 8`).
pub const FRAME_LIMITS: [u64; 8] = [0, 1, 16, 255, 256, 4096, 1 << 20, u64::MAX];

/// Message size limits by the index the [`connection`] input uses (`byte % 4`).
pub const MSG_LIMITS: [Option<u64>; 4] = [None, Some(64), Some(1024), Some(65536)];

/// The names the codec gives a meaning to; [`Command::Other`] never carries one of them.
const KNOWN_COMMANDS: [&[u8]; 6] = [b"READY", b"ERROR", b"PING", b"PONG", b"SUBSCRIBE", b"CANCEL"];

/// Characters allowed in metadata property names.
const NAME_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+";

/// Characters allowed in mechanism names.
const MECHANISM_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+";

/// Reads fuzz input front to back; past the end every read yields zeros / nothing.
#[derive(Debug)]
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// `n` octets: as many as the input still has, then a filler pattern (so that large bodies do
    /// not need large inputs).
    fn body(&mut self, n: usize) -> Bytes {
        let mut v = self.bytes(n).to_vec();
        let have = v.len();
        v.extend((have..n).map(|i| i as u8));
        Bytes::from(v)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Read sizes chosen by the fuzzer, applied cyclically to a stream: `count = byte % 17`, then
/// `count` octets, each a read size (0 is a read that brings nothing new). No sizes: one read.
#[derive(Debug)]
struct Splits {
    sizes: Vec<usize>,
}

impl Splits {
    fn read(r: &mut Reader<'_>) -> Splits {
        let n = usize::from(r.u8() % 17);
        Splits { sizes: r.bytes(n).iter().map(|&b| usize::from(b)).collect() }
    }

    fn chunks<'s>(&self, stream: &'s [u8]) -> Vec<&'s [u8]> {
        if self.sizes.is_empty() || self.sizes.iter().all(|&s| s == 0) {
            let mut v = vec![&[][..]; self.sizes.len()];
            v.push(stream);
            return v;
        }
        let mut out = Vec::new();
        let mut rest = stream;
        for &size in self.sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(size.min(rest.len()));
            out.push(head);
            rest = tail;
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// greeting
// ---------------------------------------------------------------------------------------------

/// Greeting decoder. Input: the bytes a peer sends first.
///
/// Decoding any prefix gives a verdict consistent with decoding more: once a prefix is rejected
/// every longer input is rejected for the same reason, and a complete greeting re-encodes to the
/// same version, mechanism and role.
pub fn greeting(data: &[u8]) {
    let full = Greeting::decode(data);
    for cut in 0..data.len().min(Greeting::SIZE) {
        match Greeting::decode(&data[..cut]) {
            Ok(None) => {}
            Ok(Some(g)) => panic!("greeting decoded from {cut} octets: {g:?}"),
            Err(e) => assert_eq!(Err(e), full, "prefix of {cut} octets rejected, the whole is not"),
        }
    }
    match full {
        Ok(None) => assert!(data.len() < Greeting::SIZE, "64 octets but no verdict"),
        Ok(Some(g)) => {
            let mut out = BytesMut::new();
            g.encode(&mut out);
            assert_eq!(out.len(), Greeting::SIZE);
            assert_eq!(Greeting::decode(&out), Ok(Some(g)));
            assert_eq!(&out[10..32], &data[10..32], "version and mechanism re-encode");
            assert_eq!(out[32] == 1, data[32] == 1, "as-server re-encodes");
        }
        Err(CodecError::BadSignature | CodecError::UnsupportedVersion(..) | CodecError::BadMechanismName) => {}
        Err(e) => panic!("unexpected greeting error {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// frame
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct FrameTrace {
    frames: Vec<Frame>,
    error: Option<CodecError>,
    /// Unconsumed octets and what the decoder still waits for (only compared without error).
    rest: Vec<u8>,
    remaining: Option<usize>,
}

fn decode_frames(limit: u64, chunks: &[&[u8]]) -> FrameTrace {
    let mut decoder = FrameDecoder::new(limit);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let cap_before = buf.capacity();
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => {
                    let len = match &f {
                        Frame::Message { body, .. } | Frame::Command(body) => body.len(),
                    };
                    assert!(len as u64 <= limit, "frame of {len} octets past the limit {limit}");
                    frames.push(f);
                }
                Ok(None) => {
                    // Growth toward an announced size is bounded, whatever the limit: at most
                    // 1 MiB past what is buffered, doubled by the allocator's policy (with slack
                    // for the header octets already advanced past).
                    let bound = (cap_before.max(buf.len() + (1 << 20)) + 64) * 2;
                    assert!(buf.capacity() <= bound, "buffer grew to {} (bound {bound})", buf.capacity());
                    if let Some(r) = decoder.body_remaining(buf.len()) {
                        assert!(r as u64 <= limit, "waits for {r} octets past the limit {limit}");
                    }
                    break;
                }
                Err(e) => {
                    return FrameTrace { frames, error: Some(e), rest: Vec::new(), remaining: None };
                }
            }
        }
    }
    let remaining = decoder.body_remaining(buf.len());
    FrameTrace { frames, error: None, rest: buf.to_vec(), remaining }
}

/// Frame decoder. Input: `limit = FRAME_LIMITS[byte % 8]`, then [`Splits`], then the stream.
///
/// The stream decoded in one read and in the chosen reads gives the same frames and the same
/// verdict; no frame exceeds the limit; the buffer grows toward an announced size in bounded steps;
/// every frame re-encodes and decodes to itself.
pub fn frame(data: &[u8]) {
    let mut r = Reader::new(data);
    let limit = FRAME_LIMITS[usize::from(r.u8() % 8)];
    let splits = Splits::read(&mut r);
    let stream = r.rest();
    let whole = decode_frames(limit, &[stream]);
    let split = decode_frames(limit, &splits.chunks(stream));
    assert_eq!(whole, split, "frames depend on how the stream was split");
    for f in &whole.frames {
        let (more, command, body) = match f {
            Frame::Message { more, body } => (*more, false, body),
            Frame::Command(body) => (false, true, body),
        };
        let mut out = BytesMut::new();
        frame::encode_frame(&mut out, more, command, body);
        let header = if body.len() > 255 { 9 } else { 2 };
        assert_eq!(out.len(), header + body.len(), "canonical header");
        let again = FrameDecoder::new(limit).decode(&mut out);
        assert_eq!(again.as_ref(), Ok(&Some(f.clone())), "re-encoded frame");
        assert!(out.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// command + metadata
// ---------------------------------------------------------------------------------------------

fn encode_command_body(c: &Command) -> Bytes {
    let mut out = BytesMut::new();
    c.encode(&mut out);
    match FrameDecoder::new(u64::MAX).decode(&mut out) {
        Ok(Some(Frame::Command(body))) if out.is_empty() => body,
        other => panic!("{c:?} encoded as {other:?}"),
    }
}

/// Command and metadata parsers. Input: a command frame's body (also parsed as a bare property
/// list).
///
/// A parsed command re-encodes to a prefix of the input (fields too long for the wire are cut, as
/// libzmq cuts them) and parses back to itself; a parsed property list re-encodes to exactly the
/// input; errors blame the command or the metadata, nothing else.
pub fn command(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    match Command::decode(body.clone()) {
        Ok(c) => {
            let again = encode_command_body(&c);
            assert!(data.starts_with(&again[..]), "{c:?} re-encodes to {again:?}, not a prefix of the input");
            assert_eq!(Command::decode(again), Ok(c));
        }
        Err(CodecError::MalformedCommand(_) | CodecError::MalformedMetadata(_)) => {}
        Err(e) => panic!("unexpected command error {e:?}"),
    }
    match Metadata::decode(&body) {
        Ok(m) => {
            assert_eq!(m.encoded_len(), data.len());
            let mut out = BytesMut::new();
            m.encode(&mut out);
            assert_eq!(&out[..], data, "metadata re-encodes to the input");
            for (name, value) in m.iter() {
                let first = m.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
                assert_eq!(m.get(&name.to_ascii_lowercase()), first);
                assert_eq!(m.get(&name.to_ascii_uppercase()), first);
                assert!(first.is_some() && value.len() <= data.len());
            }
        }
        Err(CodecError::MalformedMetadata(_)) => {}
        Err(e) => panic!("unexpected metadata error {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// connection
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Trace {
    result: Result<(), ConnectionError>,
    events: Vec<Event>,
    /// What was sent, PONGs left out: how many PINGs one PONG answers depends on the reads (a
    /// PONG still owed takes the context of a later PING).
    transmit: Vec<u8>,
    /// The context of the last PONG sent.
    last_pong: Option<Bytes>,
    ready: bool,
    closed: bool,
    timeout: Option<Instant>,
    /// After the input: (send_message accepted, send_subscription accepted, two timer results).
    after: (bool, bool, Result<(), ConnectionError>, Result<(), ConnectionError>),
}

fn transmit_into(conn: &mut Connection, out: &mut Vec<u8>) -> usize {
    let pending = conn.pending_transmit();
    let start = out.len();
    while let Some(chunk) = conn.poll_transmit() {
        assert!(!chunk.is_empty(), "poll_transmit gave an empty chunk");
        out.extend_from_slice(&chunk);
    }
    assert_eq!(out.len() - start, pending, "pending_transmit disagrees with poll_transmit");
    out.len() - start
}

/// Feeds `chunks` as successive reads. With `drain_each`, events are taken after every read,
/// otherwise once at the end.
fn drive(config: &Config, chunks: &[&[u8]], drain_each: bool, now: Instant) -> Trace {
    let mut conn = Connection::new(config.clone(), now);
    let mut transmit = Vec::new();
    transmit_into(&mut conn, &mut transmit);
    let mut events = Vec::new();
    let mut buf = BytesMut::new();
    let mut result = Ok(());
    for chunk in chunks {
        let closed_before = result.is_err();
        if closed_before {
            // What was decoded before the failure, still queued.
            events.extend(std::iter::from_fn(|| conn.poll_event()));
        }
        buf.extend_from_slice(chunk);
        let mut r = conn.handle_input(&mut buf, now);
        while r.is_ok() && conn.input_paused() {
            // Decoding paused with MAX_QUEUED_EVENTS queued: take them and go on.
            let before = events.len();
            events.extend(std::iter::from_fn(|| conn.poll_event()));
            assert!(events.len() - before >= crate::proto::MAX_QUEUED_EVENTS, "paused with few events");
            r = conn.handle_input(&mut buf, now);
        }
        let sent = transmit_into(&mut conn, &mut transmit);
        if drain_each && !closed_before {
            events.extend(std::iter::from_fn(|| conn.poll_event()));
        }
        if closed_before {
            assert_eq!(conn.poll_event(), None, "events after the connection closed");
            assert_eq!(r, Ok(()), "input after close must be ignored");
            assert_eq!(sent, 0, "output after the connection closed");
            assert!(conn.is_closed());
            continue;
        }
        match r {
            Ok(()) => assert!(!conn.is_closed(), "closed without an error"),
            Err(e) => {
                assert!(conn.is_closed(), "error {e:?} but not closed");
                assert!(buf.is_empty(), "input kept after close");
                result = Err(e);
            }
        }
    }
    events.extend(std::iter::from_fn(|| conn.poll_event()));
    check_events(config.socket_type, &events);
    let ready = conn.is_ready();
    let closed = conn.is_closed();
    assert!(!(ready && closed));
    if ready {
        assert!(matches!(events.first(), Some(Event::Ready(_))), "ready without a Ready event");
    }
    let timeout = conn.poll_timeout();
    if closed {
        assert_eq!(timeout, None, "a closed connection has no timer");
    }
    let msg = Message::from(["x", "y"]);
    let sent_msg = conn.send_message(&msg);
    let sent_sub = conn.send_subscription(b"topic", true);
    assert_eq!(sent_msg, ready);
    assert_eq!(sent_sub, ready);
    let t1 = conn.handle_timeout(now + Duration::from_secs(1));
    let t2 = conn.handle_timeout(now + Duration::from_secs(60));
    transmit_into(&mut conn, &mut transmit);
    assert_eq!(conn.poll_event(), None, "events from timers");
    let (transmit, last_pong) = without_pongs(&transmit);
    Trace { result, events, transmit, last_pong, ready, closed, timeout, after: (sent_msg, sent_sub, t1, t2) }
}

/// `transmit` (our greeting, then whole frames) without its PONG commands, and the context of
/// the last PONG.
fn without_pongs(transmit: &[u8]) -> (Vec<u8>, Option<Bytes>) {
    let split = transmit.len().min(Greeting::SIZE);
    let mut out = transmit[..split].to_vec();
    let mut rest = BytesMut::from(&transmit[split..]);
    let mut decoder = FrameDecoder::new(u64::MAX);
    let mut last_pong = None;
    loop {
        let before = rest.clone();
        match decoder.decode(&mut rest) {
            Ok(Some(Frame::Command(body))) if body.starts_with(b"\x04PONG") => {
                last_pong = Some(body.slice(5..));
                continue;
            }
            Ok(Some(_)) => out.extend_from_slice(&before[..before.len() - rest.len()]),
            Ok(None) | Err(_) => {
                // A partial frame (the greeting itself, cut short) or not ours to judge: as is.
                out.extend_from_slice(&before);
                return (out, last_pong);
            }
        }
    }
}

/// Structural rules of an event sequence: Ready first and once, subscriptions only for the types
/// that receive them, messages never empty.
fn check_events(ours: SocketType, events: &[Event]) {
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Ready(info) => {
                assert_eq!(i, 0, "Ready is not the first event");
                assert!(ours.is_compatible(info.socket_type), "{ours} accepted {}", info.socket_type);
                assert_eq!(info.version.0, 3);
                assert_eq!(
                    info.properties.get(metadata::SOCKET_TYPE).map(|v| &v[..]),
                    Some(info.socket_type.as_str().as_bytes())
                );
            }
            Event::Message(m) => {
                assert!(i > 0, "message before Ready");
                assert!(!m.is_empty(), "message without frames");
            }
            Event::Subscribe(_) | Event::Cancel(_) => {
                assert!(i > 0, "subscription before Ready");
                assert!(matches!(ours, SocketType::Pub | SocketType::XPub), "{ours} got a subscription");
            }
            Event::Authenticate(_) => panic!("a ZAP request without a ZAP handler configured"),
        }
    }
}

/// The greeting and READY a well-behaved peer of type `peer` would send.
fn peer_prefix(peer: SocketType, minor: u8, as_server: bool, identity: Option<&[u8]>) -> Vec<u8> {
    let mut out = BytesMut::new();
    Greeting { version: (3, minor), mechanism: MechanismName::NULL, as_server }.encode(&mut out);
    let mut m = Metadata::new();
    m.insert(metadata::SOCKET_TYPE, Bytes::from_static(peer.as_str().as_bytes())).expect("valid name");
    if let Some(id) = identity {
        m.insert(metadata::IDENTITY, Bytes::copy_from_slice(id)).expect("valid name");
    }
    Command::Ready(m).encode(&mut out);
    out.to_vec()
}

/// Flags of the [`connection`] input.
mod flags {
    pub const AS_SERVER: u8 = 0x01;
    pub const AUTO_GREETING: u8 = 0x02;
    pub const AUTO_READY: u8 = 0x04;
    pub const ZMTP_3_0: u8 = 0x08;
    pub const HEARTBEAT: u8 = 0x10;
    pub const PEER_IDENTITY: u8 = 0x20;
    pub const OUR_ROUTING_ID: u8 = 0x40;
}

/// The whole [`Connection`] fed peer bytes. Input:
///
/// ```text
/// our-type  = OCTET            ; SOCKET_TYPES[x % 11]
/// peer-type = OCTET            ; type announced by the generated READY (AUTO_READY)
/// flags     = OCTET            ; 0x01 as-server, 0x02 generated greeting, 0x04 generated READY,
///                              ; 0x08 greeting says 3.0, 0x10 heartbeats, 0x20 READY has Identity,
///                              ; 0x40 we have a routing id
/// max-msg   = OCTET            ; MSG_LIMITS[x % 4]
/// splits    = count *OCTET     ; read sizes, see Splits
/// stream    = *OCTET           ; what the peer sends (after the generated prefix, if any)
/// ```
///
/// The stream in one read and in the chosen reads gives the same result, events and output,
/// whether events are taken after every read or once at the end (a failure keeps what was decoded
/// before it); after close nothing comes out. PONGs aside: one PONG answers the PINGs read while
/// it was owed, so their number depends on the reads; the last one's context does not.
pub fn connection(data: &[u8]) {
    let mut r = Reader::new(data);
    let ours = SOCKET_TYPES[usize::from(r.u8() % 11)];
    let peer = SOCKET_TYPES[usize::from(r.u8() % 11)];
    let f = r.u8();
    let max_msg_size = MSG_LIMITS[usize::from(r.u8() % 4)];
    let splits = Splits::read(&mut r);
    let mut stream = Vec::new();
    if f & flags::AUTO_GREETING != 0 {
        let minor = if f & flags::ZMTP_3_0 != 0 { 0 } else { 1 };
        let identity = (f & flags::PEER_IDENTITY != 0).then_some(&b"peer"[..]);
        let mut prefix = peer_prefix(peer, minor, f & flags::AS_SERVER == 0, identity);
        if f & flags::AUTO_READY == 0 {
            prefix.truncate(Greeting::SIZE);
        }
        stream.extend_from_slice(&prefix);
    }
    stream.extend_from_slice(r.rest());

    let mut config = Config::new(ours);
    config.as_server = f & flags::AS_SERVER != 0;
    config.max_msg_size = max_msg_size;
    if f & flags::OUR_ROUTING_ID != 0 {
        config.routing_id = Bytes::from_static(b"us");
    }
    if f & flags::HEARTBEAT != 0 {
        config.heartbeat = HeartbeatConfig {
            interval: Some(Duration::from_millis(500)),
            ttl: Some(Duration::from_secs(3)),
            timeout: Some(Duration::from_secs(2)),
        };
    }

    let now = Instant::now();
    let chunks = splits.chunks(&stream);
    let single = drive(&config, &[&stream], false, now);
    let split = drive(&config, &chunks, false, now);
    assert_eq!(single, split, "the connection depends on how its input was split");
    let each = drive(&config, &chunks, true, now);
    assert_eq!(single, each, "the connection depends on when its events are taken");
}

// ---------------------------------------------------------------------------------------------
// pair
// ---------------------------------------------------------------------------------------------

/// What the receiving side must see next for something its peer sent.
#[derive(Debug)]
enum Expect {
    Event(Event),
    /// The message or command exceeds the receiver's `max_msg_size`: it must fail on it.
    TooLarge,
}

#[derive(Debug)]
struct Side {
    conn: Connection,
    config: Config,
    /// Bytes this side has sent that the other has not read yet.
    wire: BytesMut,
    /// The receive buffer of this side.
    input: BytesMut,
    /// What this side must receive, in order.
    expect: std::collections::VecDeque<Expect>,
    last_input: Instant,
}

impl Side {
    fn new(config: Config, now: Instant) -> Side {
        Side {
            conn: Connection::new(config.clone(), now),
            config,
            wire: BytesMut::new(),
            input: BytesMut::new(),
            expect: Default::default(),
            last_input: now,
        }
    }

    fn flush(&mut self) {
        while let Some(chunk) = self.conn.poll_transmit() {
            self.wire.extend_from_slice(&chunk);
        }
    }

    fn receives_subscriptions(&self) -> bool {
        matches!(self.config.socket_type, SocketType::Pub | SocketType::XPub)
    }

    fn too_large(&self, size: u64) -> bool {
        self.config.max_msg_size.is_some_and(|m| size > m)
    }
}

const HEARTBEATS: [HeartbeatConfig; 3] = [
    HeartbeatConfig { interval: None, ttl: None, timeout: None },
    HeartbeatConfig {
        interval: Some(Duration::from_secs(1)),
        ttl: Some(Duration::from_secs(3)),
        timeout: Some(Duration::from_secs(2)),
    },
    HeartbeatConfig { interval: Some(Duration::from_millis(500)), ttl: None, timeout: None },
];

const PAIR_MSG_LIMITS: [Option<u64>; 4] = [None, Some(100), Some(1024), Some(1 << 20)];

const STEPS: [Duration; 5] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(10),
];

/// Moves up to `n` octets (all if `n == 0`) of `from`'s output into `to`. `Err` ends the run.
fn deliver(from: &mut Side, to: &mut Side, n: usize, now: Instant) -> Result<(), ()> {
    from.flush();
    let n = if n == 0 { from.wire.len() } else { n.min(from.wire.len()) };
    let bytes = from.wire.split_to(n);
    to.input.extend_from_slice(&bytes);
    if !bytes.is_empty() {
        to.last_input = now;
    }
    let mut result = to.conn.handle_input(&mut to.input, now);
    loop {
        while let Some(event) = to.conn.poll_event() {
            match to.expect.pop_front() {
                Some(Expect::Event(e)) => {
                    assert_eq!(event, e, "{} received the wrong event", to.config.socket_type)
                }
                other => panic!("{} received {event:?}, expected {other:?}", to.config.socket_type),
            }
        }
        if result.is_err() || !to.conn.input_paused() {
            break;
        }
        result = to.conn.handle_input(&mut to.input, now);
    }
    to.flush();
    match result {
        Ok(()) => Ok(()),
        Err(ConnectionError::InvalidMessage(CodecError::TooLarge { .. }))
            if matches!(to.expect.front(), Some(Expect::TooLarge)) =>
        {
            Err(())
        }
        Err(e) => panic!("{} failed on its peer's well-formed output: {e:?}", to.config.socket_type),
    }
}

fn gen_message(r: &mut Reader<'_>) -> Message {
    let n = r.u8() % 5;
    let mut m = Message::new();
    for _ in 0..n {
        let b = r.u8();
        let len = if b & 0x80 != 0 { usize::from(b & 0x7f) * 700 } else { usize::from(b) };
        m.push_back(r.body(len));
    }
    m
}

/// Queues `msg` from `from` and records what `to` must see.
fn send_message(from: &mut Side, to: &mut Side, msg: Message) {
    assert!(from.conn.send_message(&msg), "ready side refused a message");
    let wire_msg = if msg.is_empty() { Message::from(Bytes::new()) } else { msg };
    let expect = if to.too_large(crate::proto::message_cost(wire_msg.iter().map(|f| &f[..]))) {
        Expect::TooLarge
    } else {
        let first = wire_msg.first().cloned().unwrap_or_default();
        match first.first() {
            Some(1) if to.receives_subscriptions() => Expect::Event(Event::Subscribe(first.slice(1..))),
            Some(0) if to.receives_subscriptions() => Expect::Event(Event::Cancel(first.slice(1..))),
            _ => Expect::Event(Event::Message(wire_msg)),
        }
    };
    to.expect.push_back(expect);
}

fn send_subscription(from: &mut Side, to: &mut Side, topic: &[u8], subscribe: bool) {
    assert!(from.conn.send_subscription(topic, subscribe), "ready side refused a subscription");
    let name_len = if subscribe { 9 } else { 6 };
    if to.too_large((1 + name_len + topic.len()) as u64) {
        to.expect.push_back(Expect::TooLarge);
    } else if to.receives_subscriptions() {
        let topic = Bytes::copy_from_slice(topic);
        to.expect.push_back(Expect::Event(if subscribe { Event::Subscribe(topic) } else { Event::Cancel(topic) }));
    }
}

/// Runs `side`'s timers at `now`. `Err` (a justified heartbeat timeout) ends the run.
fn timers(side: &mut Side, peer: &Config, now: Instant) -> Result<(), ()> {
    if side.conn.poll_timeout().is_some_and(|t| t <= now) {
        match side.conn.handle_timeout(now) {
            Ok(()) => {}
            Err(ConnectionError::HeartbeatTimeout) => {
                let hb = side.config.heartbeat;
                let ours = hb.timeout.or(hb.interval);
                let theirs = peer.heartbeat.ttl.filter(|t| t.as_millis() >= 100);
                let Some(bound) = [ours, theirs].into_iter().flatten().min() else {
                    panic!("heartbeat timeout without heartbeats configured");
                };
                let silent = now - side.last_input;
                assert!(silent >= bound, "heartbeat timeout after only {silent:?} of silence (bound {bound:?})");
                return Err(());
            }
            Err(e) => panic!("timer failed a ready connection: {e:?}"),
        }
    }
    if let Some(t) = side.conn.poll_timeout() {
        assert!(t > now, "timer due at {now:?} still pending after handle_timeout");
    }
    side.flush();
    Ok(())
}

/// One read of at most `size` octets (at least one) of `from`'s output by `to`, during the
/// handshake; a side that failed reads nothing more.
fn handshake_read(
    from: &mut Side,
    to: &mut Side,
    size: usize,
    to_result: &mut Result<(), ConnectionError>,
    now: Instant,
) {
    from.flush();
    if to_result.is_err() {
        from.wire.clear();
        return;
    }
    if from.wire.is_empty() {
        return;
    }
    let bytes = from.wire.split_to(size.clamp(1, from.wire.len()));
    to.input.extend_from_slice(&bytes);
    *to_result = to.conn.handle_input(&mut to.input, now);
    to.flush();
}

/// Two connections talking in memory under a virtual clock. Input:
///
/// ```text
/// a-type, b-type = 2OCTET      ; SOCKET_TYPES[x % 11] each
/// a-conf, b-conf = 2OCTET      ; bit 0 routing id, bits 1-2 HEARTBEATS, bits 3-4 PAIR_MSG_LIMITS
/// splits         = count *OCTET; read sizes of the handshake
/// ops            = *(op args)  ; op % 6: 0 a sends a message, 1 b sends a message,
///                              ; 2 subscription (side, subscribe, len, topic),
///                              ; 3 deliver (side, octets; 0 = all), 4 advance the clock (step),
///                              ; 5 deliver everything both ways
/// message        = count *(len body) ; count % 5 frames; len & 0x80: (len & 0x7f) * 700 filler octets
/// ```
///
/// Incompatible types both fail the handshake; compatible ones both see `Ready` with the other's
/// type and routing id; every message and subscription arrives once, in order, as the receiver's
/// type and size limit dictate; a heartbeat timeout only comes after enough silence.
pub fn pair(data: &[u8]) {
    let mut r = Reader::new(data);
    let types = [SOCKET_TYPES[usize::from(r.u8() % 11)], SOCKET_TYPES[usize::from(r.u8() % 11)]];
    let mut configs = Vec::new();
    for (i, ty) in types.into_iter().enumerate() {
        let c = r.u8();
        let mut config = Config::new(ty);
        if c & 1 != 0 {
            config.routing_id = Bytes::from(vec![b'a' + i as u8; 3]);
        }
        config.heartbeat = HEARTBEATS[usize::from((c >> 1) & 3) % HEARTBEATS.len()];
        config.max_msg_size = PAIR_MSG_LIMITS[usize::from((c >> 3) & 3)];
        configs.push(config);
    }
    let splits = Splits::read(&mut r);
    let t0 = Instant::now();
    let mut now = t0;
    let mut a = Side::new(configs[0].clone(), now);
    let mut b = Side::new(configs[1].clone(), now);

    // Handshake, in the chosen read sizes.
    let sizes = if splits.sizes.is_empty() { vec![0] } else { splits.sizes.clone() };
    let compatible = types[0].is_compatible(types[1]);
    assert_eq!(compatible, types[1].is_compatible(types[0]), "compatibility is not symmetric");
    let mut results = [Ok(()), Ok(())];
    for &size in sizes.iter().cycle().take(100_000) {
        a.flush();
        b.flush();
        if a.wire.is_empty() && b.wire.is_empty() {
            break;
        }
        let [ra, rb] = &mut results;
        handshake_read(&mut a, &mut b, size, rb, now);
        handshake_read(&mut b, &mut a, size, ra, now);
    }
    if !compatible {
        for (side, res) in [(&mut a, &results[0]), (&mut b, &results[1])] {
            assert!(res.is_err(), "{} accepted an incompatible peer", side.config.socket_type);
            assert!(side.conn.poll_event().is_none(), "events from a failed handshake");
        }
        return;
    }
    for (side, peer, res) in [(&mut a, &configs[1], &results[0]), (&mut b, &configs[0], &results[1])] {
        assert_eq!(res, &Ok(()), "{} failed the handshake", side.config.socket_type);
        assert!(side.conn.is_ready());
        match side.conn.poll_event() {
            Some(Event::Ready(info)) => {
                assert_eq!(info.socket_type, peer.socket_type);
                assert_eq!(info.routing_id, peer.routing_id);
                assert_eq!(info.version, (3, 1));
            }
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    while !r.is_empty() {
        let step = match r.u8() % 6 {
            0 => {
                let m = gen_message(&mut r);
                send_message(&mut a, &mut b, m);
                Ok(())
            }
            1 => {
                let m = gen_message(&mut r);
                send_message(&mut b, &mut a, m);
                Ok(())
            }
            2 => {
                let (from_a, subscribe) = (r.bool(), r.bool());
                let len = usize::from(r.u8());
                let topic = r.body(len);
                if from_a {
                    send_subscription(&mut a, &mut b, &topic, subscribe);
                } else {
                    send_subscription(&mut b, &mut a, &topic, subscribe);
                }
                Ok(())
            }
            3 => {
                let from_a = r.bool();
                let n = usize::from(r.u16());
                if from_a {
                    deliver(&mut a, &mut b, n, now)
                } else {
                    deliver(&mut b, &mut a, n, now)
                }
            }
            4 => {
                now += STEPS[usize::from(r.u8()) % STEPS.len()];
                timers(&mut a, &configs[1], now).and_then(|()| timers(&mut b, &configs[0], now))
            }
            _ => deliver(&mut a, &mut b, 0, now).and_then(|()| deliver(&mut b, &mut a, 0, now)),
        };
        if step.is_err() {
            return;
        }
    }
    // Everything still in flight arrives, twice over for PONGs answering PINGs.
    for _ in 0..2 {
        if deliver(&mut a, &mut b, 0, now).and_then(|()| deliver(&mut b, &mut a, 0, now)).is_err() {
            return;
        }
    }
    for side in [&a, &b] {
        assert!(side.expect.is_empty(), "{} never received {:?}", side.config.socket_type, side.expect);
        assert!(side.input.is_empty(), "{} left {} octets unread", side.config.socket_type, side.input.len());
    }
}

// ---------------------------------------------------------------------------------------------
// subscriptions
// ---------------------------------------------------------------------------------------------

/// The subscription matcher against a naive counted model. Input: ops, `op % 4`:
/// 0 add, 1 remove, 2 match, 3 compare the topic lists; each followed by `len` and `len` octets
/// (ops 0-2). Topic octets are folded into a small alphabet when bit 2 of the op is set, so that
/// topics share prefixes.
pub fn subscriptions(data: &[u8]) {
    let mut r = Reader::new(data);
    let mut subs = Subscriptions::new();
    let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    while !r.is_empty() {
        let op = r.u8();
        let len = usize::from(r.u8());
        let mut topic = r.bytes(len).to_vec();
        if op & 4 != 0 {
            for b in &mut topic {
                *b = b'a' + *b % 3;
            }
        }
        match op % 4 {
            0 => {
                let count = model.entry(topic.clone()).or_insert(0);
                *count += 1;
                assert_eq!(subs.add(&topic), *count == 1, "add {topic:?}");
            }
            1 => {
                let last = match model.get_mut(&topic) {
                    Some(count) if *count > 1 => {
                        *count -= 1;
                        false
                    }
                    Some(_) => {
                        model.remove(&topic);
                        true
                    }
                    None => false,
                };
                assert_eq!(subs.remove(&topic), last, "remove {topic:?}");
            }
            2 => {
                let expected = model.keys().any(|t| topic.starts_with(t));
                assert_eq!(subs.matches(&topic), expected, "match {topic:?} against {:?}", model.keys());
            }
            _ => {
                let got: Vec<&[u8]> = subs.topics().map(|t| &t[..]).collect();
                let want: Vec<&[u8]> = model.keys().map(Vec::as_slice).collect();
                assert_eq!(got, want, "topic lists differ");
            }
        }
        assert_eq!(subs.len(), model.len());
        assert_eq!(subs.is_empty(), model.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// roundtrip
// ---------------------------------------------------------------------------------------------

fn gen_name(r: &mut Reader<'_>, max: usize, alphabet: &[u8]) -> Vec<u8> {
    let len = 1 + usize::from(r.u8()) % max;
    (0..len).map(|_| alphabet[usize::from(r.u8()) % alphabet.len()]).collect()
}

fn gen_metadata(r: &mut Reader<'_>) -> Metadata {
    let mut m = Metadata::new();
    for _ in 0..r.u8() % 6 {
        let mut name = gen_name(r, 255, NAME_CHARS);
        let bad = r.u8();
        if bad & 0xf0 == 0xf0 {
            // An invalid character (or an over-long name) must be refused.
            if bad & 1 == 0 {
                let at = usize::from(bad) % name.len();
                name[at] = b' ';
            } else {
                name.resize(256, b'x');
            }
            let name = String::from_utf8(name).expect("ascii");
            assert!(m.insert(&name, Bytes::new()).is_err(), "accepted property name {name:?}");
            continue;
        }
        let len = usize::from(r.u16() % 1024);
        let value = r.body(len);
        let name = String::from_utf8(name).expect("ascii");
        m.insert(&name, value).expect("valid property");
    }
    m
}

/// A command and what decoding its encoding must give (over-long fields cut to the wire's limits).
fn gen_command(r: &mut Reader<'_>) -> (Command, Result<Command, CodecError>) {
    let ctx = |r: &mut Reader<'_>| {
        let len = usize::from(r.u8() % 24);
        r.body(len)
    };
    match r.u8() % 7 {
        0 => {
            let c = Command::Ready(gen_metadata(r));
            (c.clone(), Ok(c))
        }
        1 => {
            let len = usize::from(r.u16() % 320);
            let reason = r.body(len);
            (Command::Error(reason.clone()), Ok(Command::Error(reason.slice(..len.min(255)))))
        }
        2 => {
            let ttl = r.u16();
            let context = ctx(r);
            let cut = context.slice(..context.len().min(16));
            (Command::Ping { ttl, context }, Ok(Command::Ping { ttl, context: cut }))
        }
        3 => {
            let context = ctx(r);
            let cut = context.slice(..context.len().min(16));
            (Command::Pong(context), Ok(Command::Pong(cut)))
        }
        4 | 5 => {
            let len = usize::from(r.u16() % 1024);
            let topic = r.body(len);
            let c = if r.bool() { Command::Subscribe(topic) } else { Command::Cancel(topic) };
            (c.clone(), Ok(c))
        }
        _ => {
            let len = usize::from(r.u16() % 300);
            let mut name = r.body(len).to_vec();
            if KNOWN_COMMANDS.contains(&&name[..]) {
                name.push(b'X');
            }
            let len = usize::from(r.u16() % 1024);
            let data = r.body(len);
            let c = Command::Other { name: Bytes::from(name.clone()), data: data.clone() };
            let expected = if name.is_empty() {
                Err(CodecError::MalformedCommand("truncated name"))
            } else {
                name.truncate(255);
                Ok(Command::Other { name: Bytes::from(name), data })
            };
            (c, expected)
        }
    }
}

/// Encoders against decoders on generated values. Input: items, `tag % 4`: 0 greeting, 1 frames,
/// 2 command, 3 metadata, each followed by the octets its generator reads.
///
/// `decode(encode(x)) == x` for greetings, frame sequences (in the chosen reads, with the limit at
/// the largest body and one below it), commands (with fields cut to the wire's limits) and
/// property lists; invalid property and mechanism names are refused.
pub fn roundtrip(data: &[u8]) {
    let mut r = Reader::new(data);
    while !r.is_empty() {
        match r.u8() % 4 {
            0 => {
                let name = gen_name(&mut r, 20, MECHANISM_CHARS);
                let mut raw = [0u8; 20];
                raw[..name.len()].copy_from_slice(&name);
                let bad = r.u8();
                if bad & 0xf0 == 0xf0 {
                    // Lower case is refused inside the name, and anything is refused in the padding.
                    raw[usize::from(bad) % 20] = b'a';
                    assert_eq!(MechanismName::from_wire(raw), Err(CodecError::BadMechanismName), "{raw:?}");
                    continue;
                }
                let mechanism = MechanismName::from_wire(raw).expect("valid mechanism name");
                assert_eq!(mechanism.as_str().as_bytes(), &name[..]);
                let g = Greeting { version: (3, r.u8()), mechanism, as_server: r.bool() };
                let mut out = BytesMut::new();
                g.encode(&mut out);
                assert_eq!(out.len(), Greeting::SIZE);
                assert_eq!(Greeting::decode(&out), Ok(Some(g)));
                for cut in 0..Greeting::SIZE {
                    assert_eq!(Greeting::decode(&out[..cut]), Ok(None), "cut at {cut}");
                }
            }
            1 => {
                let mut frames = Vec::new();
                for _ in 0..r.u8() % 8 {
                    let flags = r.u8();
                    let len = if flags & 0x80 != 0 { usize::from(r.u16()) } else { usize::from(r.u8()) };
                    let body = r.body(len);
                    frames.push(if flags & 1 != 0 {
                        Frame::Command(body)
                    } else {
                        Frame::Message { more: flags & 2 != 0, body }
                    });
                }
                let splits = Splits::read(&mut r);
                let mut wire = BytesMut::new();
                for f in &frames {
                    match f {
                        Frame::Message { more, body } => frame::encode_frame(&mut wire, *more, false, body),
                        Frame::Command(body) => frame::encode_frame(&mut wire, false, true, body),
                    }
                }
                let body_len = |f: &Frame| match f {
                    Frame::Message { body, .. } | Frame::Command(body) => body.len(),
                };
                let max = frames.iter().map(body_len).max().unwrap_or(0) as u64;
                let got = decode_frames(max, &splits.chunks(&wire));
                assert_eq!(got.error, None);
                assert_eq!(got.frames, frames);
                assert!(got.rest.is_empty() && got.remaining.is_none());
                if max > 0 {
                    let got = decode_frames(max - 1, &splits.chunks(&wire));
                    let fits = frames.iter().take_while(|f| (body_len(f) as u64) < max).count();
                    assert_eq!(got.frames, frames[..fits]);
                    assert_eq!(got.error, Some(CodecError::TooLarge { size: max, limit: max - 1 }));
                }
            }
            2 => {
                let (c, expected) = gen_command(&mut r);
                let body = encode_command_body(&c);
                assert_eq!(Command::decode(body), expected, "round trip of {c:?}");
            }
            _ => {
                let m = gen_metadata(&mut r);
                let mut out = BytesMut::new();
                m.encode(&mut out);
                assert_eq!(out.len(), m.encoded_len());
                assert_eq!(Metadata::decode(&out.freeze()), Ok(m));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// plain, curve
// ---------------------------------------------------------------------------------------------

/// ZAP statuses by the index the mechanism inputs use (`(role >> 2) % 4`).
const ZAP_STATUSES: [u16; 4] = [200, 300, 400, 500];

/// One side of a mechanism handshake fed peer bytes, ZAP requests answered as it goes.
#[derive(Debug, PartialEq)]
struct MechTrace {
    result: Result<(), ConnectionError>,
    events: Vec<Event>,
    ready: bool,
    closed: bool,
}

fn drive_mechanism(config: &Config, chunks: &[&[u8]], zap_status: u16, now: Instant) -> MechTrace {
    let mut conn = Connection::new(config.clone(), now);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut result = Ok(());
    for chunk in chunks {
        let closed_before = conn.is_closed();
        buf.extend_from_slice(chunk);
        let mut r = conn.handle_input(&mut buf, now);
        loop {
            let mut answered = false;
            while let Some(ev) = conn.poll_event() {
                match ev {
                    Event::Authenticate(req) => {
                        assert!(config.zap.is_some(), "a ZAP request without ZAP settings");
                        assert_eq!(req.mechanism, config.security.mechanism());
                        let reply = if zap_status == 200 {
                            crate::proto::mechanism::ZapReply::allow("user")
                        } else {
                            crate::proto::mechanism::ZapReply::deny(zap_status, "no")
                        };
                        let z = conn.handle_zap_reply(reply, now);
                        if zap_status != 200 {
                            assert!(matches!(z, Err(ConnectionError::Unauthorized { .. })), "{z:?}");
                        }
                        r = r.and(z).and_then(|()| conn.handle_input(&mut buf, now));
                        answered = true;
                    }
                    other => events.push(other),
                }
            }
            // Decoding stopped at MAX_QUEUED_EVENTS: the events are taken, go on (the driving
            // contract; a single read of many small frames gets there).
            if conn.input_paused() && r.is_ok() {
                r = conn.handle_input(&mut buf, now);
                continue;
            }
            if !answered {
                break;
            }
        }
        while conn.poll_transmit().is_some() {}
        if closed_before {
            assert!(r.is_ok() && conn.poll_event().is_none(), "something came out after close");
        }
        if result.is_ok() {
            result = r;
        }
    }
    check_events(config.socket_type, &events);
    if let Some(Event::Ready(info)) = events.first() {
        if config.zap.is_some() && config.security.is_server() == Some(true) {
            assert_eq!(info.properties.get("User-Id").map(|v| &v[..]), Some(&b"user"[..]), "ZAP user id lost");
        }
    }
    MechTrace { result, events, ready: conn.is_ready(), closed: conn.is_closed() }
}

/// A mechanism handshake from one side. Input:
///
/// ```text
/// role    = OCTET   ; bit 0: we are the server; bit 1: ZAP configured; (x >> 2) % 4: ZAP status
/// ours    = OCTET   ; SOCKET_TYPES[x % 11]
/// splits  = count *OCTET
/// stream  = *OCTET  ; what the peer sends after its greeting (generated: same mechanism, other role)
/// ```
///
/// Result and events do not depend on how the stream is split into reads (ZAP requests are
/// answered whenever they come: input is held meanwhile), nothing comes out after close, a
/// refusal is `Unauthorized`, an accepted client carries the ZAP user id.
fn mechanism_target(data: &[u8], security: impl Fn(bool) -> crate::proto::mechanism::Security) {
    let mut r = Reader::new(data);
    let role = r.u8();
    let server = role & 1 == 1;
    let ours = SOCKET_TYPES[usize::from(r.u8() % 11)];
    let splits = Splits::read(&mut r);
    let mut config = Config::new(ours);
    config.security = security(server);
    if role & 2 != 0 {
        config.zap = Some(crate::proto::mechanism::ZapSettings::default());
    }
    let zap_status = ZAP_STATUSES[usize::from((role >> 2) % 4)];
    let mut stream = Vec::new();
    let peer = Greeting { version: (3, 1), mechanism: config.security.mechanism(), as_server: !server };
    let mut g = BytesMut::new();
    peer.encode(&mut g);
    stream.extend_from_slice(&g);
    stream.extend_from_slice(r.rest());
    let now = Instant::now();
    let single = drive_mechanism(&config, &[&stream], zap_status, now);
    let split = drive_mechanism(&config, &splits.chunks(&stream), zap_status, now);
    assert_eq!(single, split, "the handshake depends on how its input was split");
}

/// PLAIN, client or server: see `mechanism_target` for the layout.
pub fn plain(data: &[u8]) {
    use crate::proto::mechanism::Security;
    mechanism_target(data, |server| {
        if server {
            Security::PlainServer
        } else {
            Security::PlainClient { username: Bytes::from_static(b"admin"), password: Bytes::from_static(b"secret") }
        }
    });
}

/// CURVE, client or server, with fixed keys: see `mechanism_target` for the layout. Built with
/// `--cfg fuzzing` (as cargo-fuzz does), boxes are the identity with a zero tag, so the fuzzer
/// can reach INITIATE, READY and MESSAGE; replayed without it, boxes are real and inputs stop at
/// the first one.
pub fn curve(data: &[u8]) {
    use crate::proto::mechanism::{CurveKeyPair, CurveSecretKey, Security};
    let key =
        |b: u8| CurveKeyPair::from_secret(CurveSecretKey::from_slice(&[b; 32]).unwrap_or_else(|_| unreachable!()));
    mechanism_target(data, |server| {
        if server {
            Security::CurveServer { keys: key(1) }
        } else {
            Security::CurveClient { keys: key(2), server: key(1).public }
        }
    });
}

/// Under `--cfg fuzzing`, the hand-made CURVE seed gets through the whole handshake and a
/// MESSAGE: the identity boxes let the fuzzer past the crypto.
#[cfg(all(test, fuzzing))]
mod fuzzing_switch {
    use super::*;

    #[test]
    fn the_curve_seed_reaches_traffic() {
        let data =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/curve/server-hello")).expect("seed");
        let mut r = Reader::new(&data);
        let _role = r.u8();
        let ours = SOCKET_TYPES[usize::from(r.u8() % 11)];
        let _ = Splits::read(&mut r);
        let mut config = Config::new(ours);
        let key = crate::proto::mechanism::CurveSecretKey::from_slice(&[1; 32]).expect("32 octets");
        config.security = crate::proto::mechanism::Security::CurveServer {
            keys: crate::proto::mechanism::CurveKeyPair::from_secret(key),
        };
        config.zap = Some(crate::proto::mechanism::ZapSettings::default());
        let mut stream = BytesMut::new();
        Greeting { version: (3, 1), mechanism: MechanismName::CURVE, as_server: false }.encode(&mut stream);
        stream.extend_from_slice(r.rest());
        let trace = drive_mechanism(&config, &[&stream], 200, Instant::now());
        assert_eq!(trace.result, Ok(()));
        assert!(
            matches!(trace.events.as_slice(), [Event::Ready(_), Event::Message(m)] if m.first().map(|f| &f[..]) == Some(&b"hi"[..])),
            "{trace:?}"
        );
    }
}
