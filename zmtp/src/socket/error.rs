//! Errors of the socket API.

use std::io;

use thiserror::Error;

use crate::proto::{ConnectionError, SocketType};
use crate::transport::InvalidEndpoint;

/// What went wrong with a socket call. Peer misbehaviour never shows up here: it closes that
/// peer's connection and is reported as a [`crate::socket::MonitorEvent`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint string could not be parsed.
    #[error(transparent)]
    InvalidEndpoint(#[from] InvalidEndpoint),
    /// Binding or another OS call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// This socket type cannot do that (e.g. `recv` on PUB).
    #[error("{0} sockets do not support this operation")]
    NotSupported(SocketType),
    /// The call is not valid in the socket's state (libzmq's EFSM), e.g. REQ sending twice.
    #[error("operation not valid in the socket's current state")]
    InvalidState,
    /// ROUTER_MANDATORY: no peer has that routing id, or its queue is full.
    #[error("no route to the peer")]
    HostUnreachable,
    /// A non-blocking call could not complete now.
    #[error("operation would block")]
    WouldBlock,
    /// The socket has been closed.
    #[error("socket closed")]
    Closed,
    /// The CURVE or PLAIN options are incomplete or inconsistent.
    #[error("invalid security options: {0}")]
    Security(String),
}

/// Why a connection ended, as reported to the application.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// A protocol violation or timeout, see [`ConnectionError`].
    #[error(transparent)]
    Protocol(#[from] ConnectionError),
    /// The peer closed the stream.
    #[error("peer closed the connection")]
    Eof,
    /// The stream failed.
    #[error("I/O error: {0}")]
    Io(String),
    /// Our socket was closed.
    #[error("socket closed")]
    Closed,
    /// The handshake was still pending when [`crate::Options::max_pending_handshakes`] were, and
    /// this one, the oldest, was dropped to admit a newcomer.
    #[error("handshake dropped: too many pending")]
    TooManyHandshakes,
}
