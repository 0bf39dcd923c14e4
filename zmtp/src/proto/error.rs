//! Why a connection ended, grouped by blame.

use bytes::Bytes;
use thiserror::Error;

use crate::codec::CodecError;

/// Why the protocol core closed a connection. Every variant closes that one connection only.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer sent bytes that are not ZMTP.
    #[error("invalid ZMTP from peer: {0}")]
    InvalidMessage(#[from] CodecError),
    /// The peer sent valid ZMTP that is wrong at this point (an unexpected command, an oversized
    /// message, ...).
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(String),
    /// The peer is well-behaved but cannot talk to us (mechanism or socket type mismatch).
    #[error("peer incompatible: {0}")]
    PeerIncompatible(String),
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

impl ConnectionError {
    /// The peer's socket type is one ours cannot talk to (RFC 23's table); `theirs` is its name as
    /// announced.
    pub(crate) fn incompatible_socket_type(ours: crate::proto::SocketType, theirs: impl std::fmt::Display) -> Self {
        ConnectionError::PeerIncompatible(format!("{ours} cannot talk to a {theirs} peer"))
    }
}
