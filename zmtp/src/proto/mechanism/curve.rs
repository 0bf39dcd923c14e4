//! CURVE (RFC 25, CurveZMQ RFC 26).
//!
//! ```text
//! C:HELLO    version, 72 zero octets of padding, C', short nonce, Box[64 zeros](C'->S)
//! S:WELCOME  long nonce, Box[S' + cookie](S->C'); cookie = long nonce, SecretBox[C' + s'](K)
//! C:INITIATE cookie, short nonce, Box[C + vouch + metadata](C'->S'); vouch = long nonce, Box[C' + S](C->S')
//! S:READY    short nonce, Box[metadata](S'->C')
//! MESSAGE    short nonce, Box[flags + frame](C'->S' or S'->C')
//! ```
//!
//! The server keeps nothing per client between HELLO and INITIATE: its transient secret key s'
//! travels in the cookie, sealed with the process's cookie key (rotated every minute, see
//! `crypto.rs`). Short nonces are counters from 1 on each side; a MESSAGE whose nonce is not
//! above the last one seen closes the connection (libzmq's rule). Box sizes are checked before
//! anything is opened, and every comparison of secrets is constant-time.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{frame, CodecError, Command, Frame, MechanismName, Metadata};

use super::crypto::{self, Boxer, CookieKeys, CurveKeyPair, CurvePublicKey, CurveSecretKey, TAG};
use super::xsalsa::{self, MessageKey};
use super::{unexpected, zap_properties, ConnectionError, Context, Established, Handshake, Next, ZapReply, ZapRequest};
use crate::proto::{Incompatibility, Misbehaviour};

const HELLO_DATA: usize = 2 + 72 + 32 + 8 + 80;
const WELCOME_DATA: usize = 16 + 144;
const COOKIE: usize = 16 + 80;
const VOUCH: usize = 16 + 80;
/// The INITIATE's data: cookie, short nonce, then a box of C, the vouch and the metadata.
const INITIATE_MIN: usize = COOKIE + 8 + TAG + 32 + VOUCH;
/// "\x07MESSAGE", the short nonce and the tag.
pub const MESSAGE_OVERHEAD: usize = 8 + 8 + TAG + 1;

const MORE: u8 = 0x01;
const COMMAND: u8 = 0x02;

fn other(name: &'static [u8], data: Vec<u8>) -> Command {
    Command::Other { name: Bytes::from_static(name), data: Bytes::from(data) }
}

fn nonce8(data: &[u8]) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&data[..8]);
    u64::from_be_bytes(n)
}

fn crypto_error(what: &str) -> ConnectionError {
    ConnectionError::Crypto(what.into())
}

/// CURVE's states.
#[derive(Debug)]
pub enum State {
    /// Client: HELLO sent, WELCOME expected.
    ExpectWelcome(Box<ClientHello>),
    /// Client: INITIATE sent, READY expected.
    ExpectReady(Box<CurveSession>),
    /// Server: HELLO expected.
    ExpectHello(Box<CurveKeyPair>),
    /// Server: WELCOME sent (and forgotten), INITIATE expected.
    ExpectInitiate(Box<CurveKeyPair>),
    /// Server: the client is known; the ZAP handler judges its key.
    AwaitZap(Box<CurveSession>, Metadata),
}

/// What a client keeps between HELLO and WELCOME.
#[derive(Debug)]
pub struct ClientHello {
    keys: CurveKeyPair,
    server: CurvePublicKey,
    transient: CurveKeyPair,
    /// C' to S, precomputed: the HELLO's signature and the WELCOME's box.
    to_server: Boxer,
}

pub(super) fn start_client(keys: &CurveKeyPair, server: &CurvePublicKey, out: &mut Vec<Command>) -> Next {
    let transient = CurveKeyPair::generate();
    let to_server = Boxer::new(&server.0, &transient.secret);
    let nonce = 1u64;
    let signature = to_server.seal(&crypto::short_nonce(b"CurveZMQHELLO---", nonce), &[0u8; 64]);
    let mut data = Vec::with_capacity(HELLO_DATA);
    data.extend_from_slice(&[1, 0]);
    data.extend_from_slice(&[0u8; 72]);
    data.extend_from_slice(&transient.public.0);
    data.extend_from_slice(&nonce.to_be_bytes());
    data.extend_from_slice(&signature);
    out.push(other(b"HELLO", data));
    Next::Continue(Handshake::Curve(State::ExpectWelcome(Box::new(ClientHello {
        keys: keys.clone(),
        server: *server,
        transient,
        to_server,
    }))))
}

pub(super) fn start_server(keys: &CurveKeyPair) -> Next {
    Next::Continue(Handshake::Curve(State::ExpectHello(Box::new(keys.clone()))))
}

impl State {
    pub(super) fn handle(
        self,
        name: &[u8],
        data: Bytes,
        ctx: Context<'_>,
        out: &mut Vec<Command>,
    ) -> Result<Next, ConnectionError> {
        match (self, name) {
            (State::ExpectWelcome(hello), b"WELCOME") => client_welcome(*hello, &data, ctx, out),
            (State::ExpectWelcome(_), got) => Err(unexpected("CURVE", "WELCOME", got)),
            (State::ExpectReady(session), b"READY") => client_ready(session, &data),
            (State::ExpectReady(_), got) => Err(unexpected("CURVE", "READY", got)),
            (State::ExpectHello(keys), b"HELLO") => server_hello(keys, &data, ctx, out),
            (State::ExpectHello(_), got) => Err(unexpected("CURVE", "HELLO", got)),
            (State::ExpectInitiate(keys), b"INITIATE") => server_initiate(&keys, &data, ctx, out),
            (State::ExpectInitiate(_), got) => Err(unexpected("CURVE", "INITIATE", got)),
            (State::AwaitZap(..), got) => Err(unexpected("CURVE", "nothing while authenticating", got)),
        }
    }

    pub(super) fn handle_zap(
        self,
        reply: ZapReply,
        ctx: Context<'_>,
        out: &mut Vec<Command>,
    ) -> Result<Next, ConnectionError> {
        match self {
            State::AwaitZap(session, metadata) => {
                Ok(server_ready(session, metadata, zap_properties(Some(&reply)), ctx, out))
            }
            _ => Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder("unexpected ZAP reply"))),
        }
    }

    pub(super) fn awaits_zap(&self) -> bool {
        matches!(self, State::AwaitZap(..))
    }
}

fn client_welcome(
    hello: ClientHello,
    data: &[u8],
    ctx: Context<'_>,
    out: &mut Vec<Command>,
) -> Result<Next, ConnectionError> {
    if data.len() != WELCOME_DATA {
        return Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("CURVE WELCOME")));
    }
    let plain = hello
        .to_server
        .open(&crypto::long_nonce(b"WELCOME-", &data[..16]), &data[16..])
        .ok_or_else(|| crypto_error("WELCOME box does not open (wrong server key?)"))?;
    let mut server_transient = [0u8; 32];
    server_transient.copy_from_slice(&plain[..32]);
    let cookie = &plain[32..32 + COOKIE];
    let mut session = CurveSession::new(&server_transient, &hello.transient.secret, false);
    // The vouch: C' and S, from our long-term key to S'.
    let mut vouch_nonce = [0u8; 16];
    crypto::random(&mut vouch_nonce);
    let mut vouched = [0u8; 64];
    vouched[..32].copy_from_slice(&hello.transient.public.0);
    vouched[32..].copy_from_slice(&hello.server.0);
    let vouch_box = Boxer::new(&server_transient, &hello.keys.secret)
        .seal(&crypto::long_nonce(b"VOUCH---", &vouch_nonce), &vouched);
    let mut inner = Vec::with_capacity(32 + VOUCH + ctx.metadata.encoded_len());
    inner.extend_from_slice(&hello.keys.public.0);
    inner.extend_from_slice(&vouch_nonce);
    inner.extend_from_slice(&vouch_box);
    let mut meta = BytesMut::new();
    ctx.metadata.encode(&mut meta);
    inner.extend_from_slice(&meta);
    let nonce = session.take_nonce();
    let initiate_box = session.boxer.seal(&crypto::short_nonce(b"CurveZMQINITIATE", nonce), &inner);
    let mut initiate = Vec::with_capacity(COOKIE + 8 + initiate_box.len());
    initiate.extend_from_slice(cookie);
    initiate.extend_from_slice(&nonce.to_be_bytes());
    initiate.extend_from_slice(&initiate_box);
    out.push(other(b"INITIATE", initiate));
    Ok(Next::Continue(Handshake::Curve(State::ExpectReady(Box::new(session)))))
}

fn client_ready(mut session: Box<CurveSession>, data: &[u8]) -> Result<Next, ConnectionError> {
    if data.len() < 8 + TAG {
        return Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("CURVE READY")));
    }
    let nonce = nonce8(data);
    let plain = session
        .boxer
        .open(&crypto::short_nonce(b"CurveZMQREADY---", nonce), &data[8..])
        .ok_or_else(|| crypto_error("READY box does not open"))?;
    session.peer_nonce = nonce;
    let metadata = Metadata::decode(&Bytes::copy_from_slice(&plain))?;
    Ok(Next::Done(Established { metadata, zap: Metadata::new(), session: Some(session) }))
}

fn server_hello(
    keys: Box<CurveKeyPair>,
    data: &[u8],
    ctx: Context<'_>,
    out: &mut Vec<Command>,
) -> Result<Next, ConnectionError> {
    if data.len() != HELLO_DATA {
        return Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("CURVE HELLO (wrong size)")));
    }
    if data[..2] != [1, 0] {
        return Err(ConnectionError::PeerIncompatible(Incompatibility::CurveVersion(data[0], data[1])));
    }
    let mut client_transient = [0u8; 32];
    client_transient.copy_from_slice(&data[74..106]);
    let nonce = nonce8(&data[106..114]);
    let to_client = Boxer::new(&client_transient, &keys.secret);
    let signature = to_client
        .open(&crypto::short_nonce(b"CurveZMQHELLO---", nonce), &data[114..])
        .ok_or_else(|| crypto_error("HELLO signature does not open (client has the wrong server key?)"))?;
    if !crypto::ct_eq(&signature, &[0u8; 64]) {
        return Err(crypto_error("HELLO signature is not 64 zeros"));
    }
    // A transient key pair for this connection, forgotten once sealed into the cookie.
    let transient = CurveKeyPair::generate();
    let mut cookie_nonce = [0u8; 16];
    crypto::random(&mut cookie_nonce);
    let mut sealed = zeroize::Zeroizing::new([0u8; 64]);
    sealed[..32].copy_from_slice(&client_transient);
    sealed[32..].copy_from_slice(transient.secret.as_bytes());
    let cookie_box =
        CookieKeys::global().seal_at(ctx.now, &crypto::long_nonce(b"COOKIE--", &cookie_nonce), &sealed[..]);
    let mut welcome_plain = Vec::with_capacity(32 + COOKIE);
    welcome_plain.extend_from_slice(&transient.public.0);
    welcome_plain.extend_from_slice(&cookie_nonce);
    welcome_plain.extend_from_slice(&cookie_box);
    let mut welcome_nonce = [0u8; 16];
    crypto::random(&mut welcome_nonce);
    let welcome_box = to_client.seal(&crypto::long_nonce(b"WELCOME-", &welcome_nonce), &welcome_plain);
    let mut welcome = Vec::with_capacity(WELCOME_DATA);
    welcome.extend_from_slice(&welcome_nonce);
    welcome.extend_from_slice(&welcome_box);
    out.push(other(b"WELCOME", welcome));
    Ok(Next::Continue(Handshake::Curve(State::ExpectInitiate(keys))))
}

fn server_initiate(
    keys: &CurveKeyPair,
    data: &[u8],
    ctx: Context<'_>,
    out: &mut Vec<Command>,
) -> Result<Next, ConnectionError> {
    if data.len() < INITIATE_MIN {
        return Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("CURVE INITIATE (too short)")));
    }
    let cookie = CookieKeys::global()
        .open(ctx.now, &crypto::long_nonce(b"COOKIE--", &data[..16]), &data[16..COOKIE])
        .ok_or_else(|| crypto_error("INITIATE cookie does not open (forged or expired)"))?;
    let mut client_transient = [0u8; 32];
    client_transient.copy_from_slice(&cookie[..32]);
    let transient_secret = CurveSecretKey::from_slice(&cookie[32..64]).map_err(|_| crypto_error("cookie"))?;
    let mut session = CurveSession::new(&client_transient, &transient_secret, true);
    let nonce = nonce8(&data[COOKIE..COOKIE + 8]);
    let plain = session
        .boxer
        .open(&crypto::short_nonce(b"CurveZMQINITIATE", nonce), &data[COOKIE + 8..])
        .ok_or_else(|| crypto_error("INITIATE box does not open"))?;
    let mut client_key = [0u8; 32];
    client_key.copy_from_slice(&plain[..32]);
    let vouch = &plain[32..32 + VOUCH];
    let vouched = Boxer::new(&client_key, &transient_secret)
        .open(&crypto::long_nonce(b"VOUCH---", &vouch[..16]), &vouch[16..])
        .ok_or_else(|| crypto_error("INITIATE vouch does not open"))?;
    if !crypto::ct_eq(&vouched[..32], &client_transient) || !crypto::ct_eq(&vouched[32..], &keys.public.0) {
        return Err(crypto_error("INITIATE vouch is for another key"));
    }
    session.peer_nonce = nonce;
    let metadata = Metadata::decode(&Bytes::copy_from_slice(&plain[32 + VOUCH..]))?;
    match ctx.zap {
        Some(settings) => Ok(Next::Authenticate(
            ZapRequest::new(settings, MechanismName::CURVE, vec![Bytes::copy_from_slice(&client_key)]),
            Handshake::Curve(State::AwaitZap(Box::new(session), metadata)),
        )),
        None => Ok(server_ready(Box::new(session), metadata, Metadata::new(), ctx, out)),
    }
}

fn server_ready(
    mut session: Box<CurveSession>,
    metadata: Metadata,
    zap: Metadata,
    ctx: Context<'_>,
    out: &mut Vec<Command>,
) -> Next {
    let mut meta = BytesMut::new();
    ctx.metadata.encode(&mut meta);
    let nonce = session.take_nonce();
    let ready_box = session.boxer.seal(&crypto::short_nonce(b"CurveZMQREADY---", nonce), &meta);
    let mut ready = Vec::with_capacity(8 + ready_box.len());
    ready.extend_from_slice(&nonce.to_be_bytes());
    ready.extend_from_slice(&ready_box);
    out.push(other(b"READY", ready));
    Next::Done(Established { metadata, zap, session: Some(session) })
}

/// An established CURVE connection: every frame, message or command, travels as a MESSAGE
/// whose box holds a flags octet (MORE, COMMAND) and the frame's body.
#[derive(Debug)]
pub struct CurveSession {
    /// INITIATE and READY (whole nonces).
    boxer: Boxer,
    /// MESSAGE boxes, each direction's nonce prefix folded in (see `xsalsa.rs`).
    send: MessageKey,
    recv: MessageKey,
    /// The short nonce of our next box.
    next_nonce: u64,
    /// The last short nonce the peer used.
    peer_nonce: u64,
}

impl CurveSession {
    /// The session between our transient secret key and the peer's transient public key.
    fn new(their_public: &[u8; 32], our_secret: &CurveSecretKey, server: bool) -> CurveSession {
        let (send_prefix, recv_prefix) = if server {
            (b"CurveZMQMESSAGES", b"CurveZMQMESSAGEC")
        } else {
            (b"CurveZMQMESSAGEC", b"CurveZMQMESSAGES")
        };
        let key = xsalsa::box_key(their_public, our_secret.as_bytes());
        // The client's HELLO used nonce 1.
        let next_nonce = if server { 1 } else { 2 };
        CurveSession {
            boxer: Boxer::from_key(&key),
            send: MessageKey::new(&key, send_prefix),
            recv: MessageKey::new(&key, recv_prefix),
            next_nonce,
            peer_nonce: 0,
        }
    }

    fn take_nonce(&mut self) -> u64 {
        let n = self.next_nonce;
        // 2^64 boxes cannot be sent in the life of a connection; saturate rather than wrap.
        self.next_nonce = self.next_nonce.saturating_add(1);
        n
    }

    /// Appends one frame (a message part, or a command's body with `command`) as a MESSAGE
    /// command frame, encrypted in place in `out`.
    pub fn seal_frame(&mut self, out: &mut BytesMut, more: bool, command: bool, body: &[u8]) {
        let nonce = self.take_nonce();
        let len = MESSAGE_OVERHEAD + body.len();
        out.reserve(frame::MAX_HEADER + len);
        // libzmq sends MESSAGE as a plain frame without MORE (the flags travel inside the box).
        frame::encode_header(out, false, false, len);
        out.put_slice(b"\x07MESSAGE");
        out.put_u64(nonce);
        let tag_at = out.len();
        out.put_bytes(0, TAG);
        let start = out.len();
        out.put_u8(if more { MORE } else { 0 } | if command { COMMAND } else { 0 });
        out.put_slice(body);
        let tag = self.send.seal(nonce, &mut out[start..]);
        out[tag_at..start].copy_from_slice(&tag);
    }

    /// Appends a command, boxed.
    pub fn seal_command(&mut self, out: &mut BytesMut, cmd: &Command) {
        let mut body = BytesMut::new();
        cmd.encode_body(&mut body);
        self.seal_frame(out, false, true, &body);
    }

    /// Opens a MESSAGE frame's body (decrypted in place) into the frame it carries. A nonce
    /// that does not increase, a box that does not open or reserved flags close the connection.
    pub fn open_frame(&mut self, mut body: BytesMut) -> Result<Frame, ConnectionError> {
        if body.len() < MESSAGE_OVERHEAD || &body[..8] != b"\x07MESSAGE" {
            let what = if body.starts_with(b"\x07MESSAGE") {
                "CURVE: short MESSAGE after the handshake"
            } else {
                "CURVE: a frame that is not MESSAGE after the handshake"
            };
            return Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed(what)));
        }
        let nonce = nonce8(&body[8..16]);
        if nonce <= self.peer_nonce {
            return Err(crypto_error("MESSAGE nonce replayed or out of order"));
        }
        let (head, text) = body.split_at_mut(8 + 8 + TAG);
        if !self.recv.open(nonce, &head[16..], text) {
            return Err(crypto_error("MESSAGE box does not open"));
        }
        self.peer_nonce = nonce;
        body.advance(8 + 8 + TAG);
        let flags = body[0];
        body.advance(1);
        if flags & !(MORE | COMMAND) != 0 {
            return Err(ConnectionError::PeerMisbehaved(Misbehaviour::ReservedFlags(flags)));
        }
        if flags & COMMAND != 0 {
            if flags & MORE != 0 {
                return Err(CodecError::CommandWithMore.into());
            }
            return Ok(Frame::Command(body.freeze()));
        }
        Ok(Frame::Message { more: flags & MORE != 0, body: body.freeze() })
    }
}

#[cfg(all(test, not(fuzzing)))]
mod tests {
    use super::*;

    fn session_pair() -> (CurveSession, CurveSession) {
        let c = CurveKeyPair::generate();
        let s = CurveKeyPair::generate();
        (CurveSession::new(&s.public.0, &c.secret, false), CurveSession::new(&c.public.0, &s.secret, true))
    }

    fn one_frame(out: &mut BytesMut) -> BytesMut {
        let mut d = crate::codec::FrameDecoder::new(u64::MAX);
        d.decode_mut(out).expect("valid").expect("whole").1
    }

    #[test]
    fn frames_round_trip_and_nonces_only_increase() {
        let (mut c, mut s) = session_pair();
        let mut wire = BytesMut::new();
        c.seal_frame(&mut wire, true, false, b"part");
        c.seal_command(&mut wire, &Command::Ping { ttl: 1, context: Bytes::new() });
        let first = one_frame(&mut wire);
        let replay = first.clone();
        assert_eq!(s.open_frame(first), Ok(Frame::Message { more: true, body: Bytes::from_static(b"part") }));
        let second = one_frame(&mut wire);
        assert!(matches!(s.open_frame(second), Ok(Frame::Command(b)) if &b[..] == b"\x04PING\x00\x01"));
        assert!(matches!(s.open_frame(replay), Err(ConnectionError::Crypto(_))));
    }

    #[test]
    fn a_flipped_bit_does_not_open() {
        let (mut c, mut s) = session_pair();
        let mut wire = BytesMut::new();
        c.seal_frame(&mut wire, false, false, &[7u8; 300]);
        let mut f = one_frame(&mut wire);
        let last = f.len() - 1;
        f[last] ^= 0x10;
        assert!(matches!(s.open_frame(f), Err(ConnectionError::Crypto(_))));
    }
}
