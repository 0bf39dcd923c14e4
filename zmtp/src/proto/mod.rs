//! The ZMTP connection core, sans-IO: greeting, security handshake, READY, heartbeats and traffic.
//!
//! - [`Connection`]: one peer's state machine. It owns no socket and reads no clock; a driver feeds
//!   it bytes and the current time and writes out what it asks to send.
//! - [`mechanism`]: security mechanisms (NULL, PLAIN, CURVE), one state per expected command, and
//!   ZAP requests.
//! - [`SocketType`]: the socket types and which pairs may talk.
//! - [`ConnectionError`]: why a connection ended, grouped by blame.

mod connection;
mod error;
pub mod mechanism;
mod socket_type;

#[cfg(test)]
pub(crate) mod tests;

pub use connection::{
    message_cost, Config, Connection, Event, HeartbeatConfig, PeerInfo, DEFAULT_MAX_HANDSHAKE_COMMAND,
    DEFAULT_MAX_MSG_SIZE, FRAME_COST, MAX_QUEUED_EVENTS, OUT_IDLE_RELEASE,
};
pub use error::{ConnectionError, Incompatibility, Misbehaviour};
pub use socket_type::SocketType;
