//! Why a connection ended, grouped by blame.

use bytes::Bytes;
use thiserror::Error;

use crate::codec::{CodecError, MechanismName};
use crate::proto::SocketType;

/// Why the protocol core closed a connection. Every variant closes that one connection only.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer sent bytes that are not ZMTP.
    #[error("invalid ZMTP from peer: {0}")]
    InvalidMessage(#[from] CodecError),
    /// The peer sent valid ZMTP that is wrong at this point (an unexpected command, a malformed
    /// command body, ...).
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(Misbehaviour),
    /// The peer is well-behaved but cannot talk to us (mechanism or socket type mismatch, or our
    /// socket refused it).
    #[error("peer incompatible: {0}")]
    PeerIncompatible(Incompatibility),
    /// The peer sent an ERROR command.
    #[error("peer sent ERROR: {}", String::from_utf8_lossy(.0))]
    PeerError(Bytes),
    /// A security check failed: a box that does not open (tampered, or the wrong key), a bad
    /// vouch, an expired cookie, a replayed or reordered nonce.
    #[error("security check failed: {0}")]
    Crypto(String),
    /// The ZAP handler refused the client (status 300, 400 or 500); the client was sent an ERROR
    /// with the status code. Also (status 500, nothing sent) a client refused for want of a ZAP
    /// handler where one is required (`Options::zap_enforce_domain`).
    #[error("authentication refused: {status} {text}")]
    Unauthorized {
        /// The ZAP status code.
        status: u16,
        /// The ZAP status text.
        text: String,
    },
    /// The handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer sent nothing within the heartbeat timeout after our PING, or within its own TTL.
    #[error("heartbeat timed out")]
    HeartbeatTimeout,
}

/// What a peer did that ZMTP does not allow at that point ([`ConnectionError::PeerMisbehaved`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// A handshake command other than the one the mechanism expects now.
    #[error("expected {expected} during {mechanism} handshake, got {}", String::from_utf8_lossy(.got))]
    UnexpectedCommand {
        /// The mechanism (`NULL`, `PLAIN`, `CURVE`).
        mechanism: &'static str,
        /// What it expected.
        expected: &'static str,
        /// The name of the command that came.
        got: Bytes,
    },
    /// Something that is valid ZMTP only at another point of the connection (a message frame
    /// before the handshake finished, READY after it, ...).
    #[error("{0}")]
    OutOfOrder(&'static str),
    /// A command whose body does not parse (the command is named).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// READY without the Socket-Type property.
    #[error("READY without Socket-Type")]
    NoSocketType,
    /// A CURVE MESSAGE with reserved flag bits set.
    #[error("CURVE MESSAGE flags {0:#04x}")]
    ReservedFlags(u8),
}

/// Why a well-behaved peer cannot talk to us ([`ConnectionError::PeerIncompatible`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incompatibility {
    /// RFC 23: the peer's socket type cannot talk to ours (`theirs` as announced).
    #[error("{ours} cannot talk to a {theirs} peer")]
    SocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's, as it named it.
        theirs: String,
    },
    /// The peer's greeting names another security mechanism.
    #[error("peer wants mechanism {theirs}, we use {ours}")]
    Mechanism {
        /// Ours.
        ours: MechanismName,
        /// The peer's.
        theirs: MechanismName,
    },
    /// A CurveZMQ version other than 1.0.
    #[error("CurveZMQ version {0}.{1}")]
    CurveVersion(u8, u8),
    /// Our PLAIN user name or password is longer than the 255 octets HELLO can carry.
    #[error("PLAIN user name or password longer than 255 octets")]
    PlainCredentialsTooLong,
    /// Our security options are incomplete (bind and connect refuse them, so only if they changed
    /// since).
    #[error("our security options: {0}")]
    OurSecurityOptions(String),
    /// ROUTER: another peer holds the routing id this one announced, and ROUTER_HANDOVER is off.
    #[error("routing id already in use")]
    RoutingIdInUse,
    /// PAIR: the socket has a peer already.
    #[error("PAIR socket already has a peer")]
    PairHasPeer,
}

impl ConnectionError {
    /// The peer's socket type is one ours cannot talk to (RFC 23's table); `theirs` is its name as
    /// announced.
    pub(crate) fn incompatible_socket_type(ours: SocketType, theirs: impl std::fmt::Display) -> Self {
        ConnectionError::PeerIncompatible(Incompatibility::SocketType { ours, theirs: theirs.to_string() })
    }
}
