//! Errors of the socket API.

use std::io;

use thiserror::Error;

use crate::proto::{ConnectionError, SocketType};
use crate::transport::InvalidEndpoint;
use crate::Message;

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
    /// An option's value is refused (libzmq's EINVAL from `zmq_setsockopt`).
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

/// A message [`crate::Socket::send`] did not send, given back with why (as tokio's channels give
/// theirs back): `send(..).await?` in a function returning [`Error`] keeps working, and a caller
/// that wants to retry or re-route has the message.
#[derive(Debug, Error)]
#[error("{error}")]
pub struct SendError {
    /// Why it was not sent.
    pub error: Error,
    /// The message, as the application passed it.
    pub message: Message,
}

impl SendError {
    /// The message that was not sent.
    pub fn into_message(self) -> Message {
        self.message
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Error {
        e.error
    }
}

/// A message [`crate::Socket::try_send`] did not send, given back.
#[derive(Debug, Error)]
pub enum TrySendError {
    /// It cannot be queued now (every peer at its high-water mark, or no peer yet): where
    /// [`crate::Socket::send`] would wait.
    #[error("operation would block")]
    WouldBlock(Message),
    /// It cannot be sent at all.
    #[error(transparent)]
    Failed(SendError),
}

impl TrySendError {
    /// The message that was not sent.
    pub fn into_message(self) -> Message {
        match self {
            TrySendError::WouldBlock(m) => m,
            TrySendError::Failed(e) => e.message,
        }
    }

    /// Whether it would only have had to wait.
    pub fn is_would_block(&self) -> bool {
        matches!(self, TrySendError::WouldBlock(_))
    }
}

impl From<TrySendError> for Error {
    fn from(e: TrySendError) -> Error {
        match e {
            TrySendError::WouldBlock(_) => Error::WouldBlock,
            TrySendError::Failed(e) => e.error,
        }
    }
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
