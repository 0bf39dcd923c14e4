//! Security mechanisms: what happens between the greeting and the first message.
//!
//! Each mechanism is a state machine with one state per expected command, in the manner of
//! rustls's `Expect*` states: [`Handshake::handle`] consumes the state with the peer's command,
//! pushes the commands to send, and returns the [`Next`] state, a ZAP request to answer
//! ([`Next::Authenticate`], then [`Handshake::handle_zap`]), or the result
//! ([`Next::Done`]). Each state holds only what the next step needs (a CURVE server holds nothing
//! about the client between HELLO and INITIATE). The connection core feeds a state waiting for a
//! ZAP reply no command (it holds the input), and a state waiting for a command no ZAP reply;
//! should it, the step fails instead of panicking.
//!
//! - `null.rs`: NULL (READY both ways).
//! - `plain.rs`: PLAIN (RFC 24): HELLO, WELCOME, INITIATE, READY.
//! - `curve.rs`: CURVE (RFC 25/26): HELLO, WELCOME with the cookie, INITIATE with the vouch,
//!   READY; then [`CurveSession`] boxes every frame with short-nonce counters.
//! - `crypto.rs`: keys, boxes, randomness, the rotated cookie keys (with a `--cfg fuzzing` switch).
//! - `zap.rs`: ZAP (RFC 27) requests and replies as values.
//!
//! The connection core calls only this file's API; it never knows which mechanism runs. After
//! the handshake, NULL and PLAIN frames go on the wire as they are; CURVE's go through the
//! [`CurveSession`] the handshake produced.

mod crypto;
mod curve;
mod null;
mod plain;
mod xsalsa;
pub mod zap;

use std::time::Instant;

use bytes::Bytes;

use crate::codec::{command, Command, MechanismName, Metadata};

use super::{ConnectionError, Misbehaviour};

#[cfg(feature = "sockets")]
pub(crate) use crypto::{ct_eq, random};
pub use crypto::{CurveKeyPair, CurvePublicKey, CurveSecretKey, InvalidKey};
pub use curve::{CurveSession, MESSAGE_OVERHEAD};
pub use zap::{ZapReply, ZapRequest, ZapSettings};

/// Which mechanism a connection uses, on which side, with which credentials.
#[derive(Debug, Clone, Default)]
pub enum Security {
    /// No security (the default).
    #[default]
    Null,
    /// A PLAIN client, sending these credentials.
    PlainClient {
        /// At most 255 octets.
        username: Bytes,
        /// At most 255 octets.
        password: Bytes,
    },
    /// A PLAIN server (clients are checked by the ZAP handler, if any).
    PlainServer,
    /// A CURVE client: our long-term keys and the server's public key.
    CurveClient {
        /// Our long-term key pair (libzmq: ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY).
        keys: CurveKeyPair,
        /// The server's long-term public key (ZMQ_CURVE_SERVERKEY).
        server: CurvePublicKey,
    },
    /// A CURVE server with its long-term keys.
    CurveServer {
        /// Our long-term key pair.
        keys: CurveKeyPair,
    },
}

impl Security {
    /// The name in the greeting.
    pub fn mechanism(&self) -> MechanismName {
        match self {
            Security::Null => MechanismName::NULL,
            Security::PlainClient { .. } | Security::PlainServer => MechanismName::PLAIN,
            Security::CurveClient { .. } | Security::CurveServer { .. } => MechanismName::CURVE,
        }
    }

    /// Whether we are the mechanism's server; `None` for NULL, which has no roles.
    pub fn is_server(&self) -> Option<bool> {
        match self {
            Security::Null => None,
            Security::PlainServer | Security::CurveServer { .. } => Some(true),
            Security::PlainClient { .. } | Security::CurveClient { .. } => Some(false),
        }
    }
}

/// What a mechanism needs to know about our side.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Our READY (or INITIATE) properties.
    pub metadata: &'a Metadata,
    /// Ask the application whether the client may connect (servers; NULL with a ZAP domain).
    pub zap: Option<&'a ZapSettings>,
    /// The current time (cookie keys are rotated by it).
    pub now: Instant,
}

/// What a mechanism step produced.
#[derive(Debug)]
pub enum Next {
    /// Waiting for the peer's next command.
    Continue(Handshake),
    /// Waiting for the answer to this ZAP request, to be given to [`Handshake::handle_zap`].
    Authenticate(ZapRequest, Handshake),
    /// The handshake is done.
    Done(Established),
}

/// The result of a handshake.
#[derive(Debug)]
pub struct Established {
    /// The peer's properties, as it announced them.
    pub metadata: Metadata,
    /// What the ZAP handler said about the client: `User-Id` (when not empty) and the handler's
    /// metadata; empty without ZAP.
    pub zap: Metadata,
    /// CURVE: the boxes every frame goes through from now on.
    pub session: Option<Box<CurveSession>>,
}

/// A handshake in progress: the state expecting the peer's next command (or a ZAP reply).
#[derive(Debug)]
pub enum Handshake {
    /// NULL.
    Null(null::State),
    /// PLAIN.
    Plain(plain::State),
    /// CURVE.
    Curve(curve::State),
}

impl Handshake {
    /// Starts `security`'s handshake, queuing its first commands into `out`.
    pub fn start(security: &Security, ctx: Context<'_>, out: &mut Vec<Command>) -> Result<Next, ConnectionError> {
        match security {
            Security::Null => null::start(ctx, out),
            Security::PlainClient { username, password } => plain::start_client(username, password, out),
            Security::PlainServer => Ok(plain::start_server()),
            Security::CurveClient { keys, server } => Ok(curve::start_client(keys, server, out)),
            Security::CurveServer { keys } => Ok(curve::start_server(keys)),
        }
    }

    /// Feeds one command frame's body from the peer. An ERROR from the peer ends the handshake
    /// with its reason, whatever the state.
    pub fn handle(self, body: Bytes, ctx: Context<'_>, out: &mut Vec<Command>) -> Result<Next, ConnectionError> {
        if let Some(reason) = libzmq_plain_error(&body) {
            return Err(ConnectionError::PeerError(reason));
        }
        let (name, data) = command::split(&body)?;
        if &name[..] == b"ERROR" {
            return match Command::decode(body)? {
                Command::Error(reason) => Err(ConnectionError::PeerError(reason)),
                _ => Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("ERROR"))),
            };
        }
        match self {
            Handshake::Null(s) => s.handle(body, ctx, out),
            Handshake::Plain(s) => s.handle(&name, data, ctx, out),
            Handshake::Curve(s) => s.handle(&name, data, ctx, out),
        }
    }

    /// Feeds the ZAP handler's answer to the request of [`Next::Authenticate`]. A refusal queues
    /// an ERROR command carrying the status code (as libzmq does) and ends the handshake.
    pub fn handle_zap(
        self,
        reply: ZapReply,
        ctx: Context<'_>,
        out: &mut Vec<Command>,
    ) -> Result<Next, ConnectionError> {
        if reply.status != 200 {
            out.push(Command::Error(reply.status_text()));
            return Err(ConnectionError::Unauthorized {
                status: reply.status,
                text: String::from_utf8_lossy(&reply.text).into_owned(),
            });
        }
        match self {
            Handshake::Null(s) => s.handle_zap(reply, ctx, out),
            Handshake::Plain(s) => s.handle_zap(reply, ctx, out),
            Handshake::Curve(s) => s.handle_zap(reply, ctx, out),
        }
    }

    /// Whether the state waits for a ZAP reply rather than a command.
    pub fn awaits_zap(&self) -> bool {
        match self {
            Handshake::Null(s) => s.awaits_zap(),
            Handshake::Plain(s) => s.awaits_zap(),
            Handshake::Curve(s) => s.awaits_zap(),
        }
    }
}

/// libzmq 4.3's PLAIN server writes its ERROR command as `"\x5eRROR"` followed by the reason
/// (seen from 4.3.4 and 4.3.5: a C string escape swallowed the name's `E` into its size
/// octet). Its clients take it for an ERROR; so do we, rather than report a malformed command.
fn libzmq_plain_error(body: &Bytes) -> Option<Bytes> {
    let rest = body.strip_prefix(b"\x5eRROR")?;
    let len = usize::from(*rest.first()?);
    (rest.len() > len).then(|| body.slice(6..6 + len))
}

/// What a ZAP handler said about the client, as properties: `User-Id`, then its metadata.
fn zap_properties(reply: Option<&ZapReply>) -> Metadata {
    let mut metadata = Metadata::new();
    if let Some(r) = reply {
        if !r.user_id.is_empty() {
            // A valid constant name; the value fits in 32 bits (it came from a frame we accepted).
            let _ = metadata.insert(crate::codec::metadata::USER_ID, r.user_id.clone());
        }
        for (name, value) in r.metadata.iter() {
            let _ = metadata.insert(name, value.clone());
        }
    }
    metadata
}

/// A handshake command that was not expected now.
fn unexpected(mechanism: &'static str, expected: &'static str, got: &[u8]) -> ConnectionError {
    ConnectionError::PeerMisbehaved(Misbehaviour::UnexpectedCommand {
        mechanism,
        expected,
        got: Bytes::copy_from_slice(got),
    })
}
