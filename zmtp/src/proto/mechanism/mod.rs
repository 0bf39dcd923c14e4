//! Security mechanisms: what happens between the greeting and the first message.
//!
//! Each mechanism is a small state machine with one state per expected command, in the manner of
//! rustls's `Expect*` states. It receives commands and pushes the commands to send; when it is done
//! it yields the peer's metadata. Adding PLAIN or CURVE means adding a variant here and a file beside
//! `null.rs`; the connection core does not change.

mod null;

use crate::codec::{Command, MechanismName, Metadata};

use super::ConnectionError;

pub use null::NullHandshake;

/// What a mechanism step produced.
#[derive(Debug)]
pub enum Step {
    /// More commands are expected.
    Continue,
    /// The handshake is done; here is the peer's metadata.
    Done(Metadata),
}

/// A handshake in progress.
#[derive(Debug)]
pub enum Handshake {
    /// The NULL mechanism.
    Null(NullHandshake),
}

impl Handshake {
    /// Starts the mechanism named `name`, queuing its first commands into `out`.
    pub fn start(
        name: MechanismName,
        our_metadata: &Metadata,
        out: &mut Vec<Command>,
    ) -> Result<Handshake, ConnectionError> {
        if name == MechanismName::NULL {
            Ok(Handshake::Null(NullHandshake::start(our_metadata, out)))
        } else {
            Err(ConnectionError::PeerIncompatible(format!("mechanism {name} is not supported")))
        }
    }

    /// Feeds one command from the peer.
    pub fn on_command(&mut self, cmd: Command, out: &mut Vec<Command>) -> Result<Step, ConnectionError> {
        match self {
            Handshake::Null(h) => h.on_command(cmd, out),
        }
    }
}
