//! The NULL mechanism (ZMTP 3.1 §"The NULL Security Mechanism"): each side sends READY with its
//! metadata, then expects READY (or ERROR) from the other.

use crate::codec::{Command, Metadata};

use super::{ConnectionError, Step};

/// NULL has a single state: our READY is sent, the peer's is expected.
#[derive(Debug)]
pub struct NullHandshake {
    _expect_ready: (),
}

impl NullHandshake {
    /// Queues our READY.
    pub fn start(our_metadata: &Metadata, out: &mut Vec<Command>) -> NullHandshake {
        out.push(Command::Ready(our_metadata.clone()));
        NullHandshake { _expect_ready: () }
    }

    /// Expects READY; ERROR ends the handshake with the peer's reason.
    pub fn on_command(&mut self, cmd: Command, _out: &mut Vec<Command>) -> Result<Step, ConnectionError> {
        match cmd {
            Command::Ready(meta) => Ok(Step::Done(meta)),
            Command::Error(reason) => Err(ConnectionError::PeerError(reason)),
            other => Err(ConnectionError::PeerMisbehaved(format!(
                "expected READY during NULL handshake, got {}",
                command_name(&other)
            ))),
        }
    }
}

pub(crate) fn command_name(cmd: &Command) -> String {
    match cmd {
        Command::Ready(_) => "READY".into(),
        Command::Error(_) => "ERROR".into(),
        Command::Ping { .. } => "PING".into(),
        Command::Pong(_) => "PONG".into(),
        Command::Subscribe(_) => "SUBSCRIBE".into(),
        Command::Cancel(_) => "CANCEL".into(),
        Command::Other { name, .. } => String::from_utf8_lossy(name).into_owned(),
    }
}
