//! The NULL mechanism (ZMTP 3.1 §"The NULL Security Mechanism"): each side sends READY with its
//! metadata, then expects READY (or ERROR) from the other. With a ZAP domain set, our READY waits
//! for the ZAP handler's verdict on the peer's address (libzmq's rule).

use bytes::Bytes;

use crate::codec::{Command, MechanismName};

use super::{unexpected, zap_properties, ConnectionError, Context, Established, Handshake, Next, ZapReply, ZapRequest};
use crate::proto::Misbehaviour;

/// NULL's states.
#[derive(Debug)]
pub enum State {
    /// Waiting for the ZAP handler before sending READY.
    AwaitZap,
    /// Our READY is sent; the peer's is expected.
    ExpectReady {
        /// What the ZAP handler said, if it was asked.
        zap: Option<ZapReply>,
    },
}

pub(super) fn start(ctx: Context<'_>, out: &mut Vec<Command>) -> Result<Next, ConnectionError> {
    match ctx.zap {
        Some(settings) if !settings.domain.is_empty() => Ok(Next::Authenticate(
            ZapRequest::new(settings, MechanismName::NULL, Vec::new()),
            Handshake::Null(State::AwaitZap),
        )),
        _ => {
            out.push(Command::Ready(ctx.metadata.clone()));
            Ok(Next::Continue(Handshake::Null(State::ExpectReady { zap: None })))
        }
    }
}

impl State {
    pub(super) fn handle(
        self,
        body: Bytes,
        _ctx: Context<'_>,
        _out: &mut Vec<Command>,
    ) -> Result<Next, ConnectionError> {
        match self {
            State::ExpectReady { zap } => match Command::decode(body)? {
                Command::Ready(meta) => {
                    Ok(Next::Done(Established { metadata: meta, zap: zap_properties(zap.as_ref()), session: None }))
                }
                other => Err(unexpected("NULL", "READY", other.name())),
            },
            State::AwaitZap => {
                Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder("command while authenticating")))
            }
        }
    }

    pub(super) fn handle_zap(
        self,
        reply: ZapReply,
        ctx: Context<'_>,
        out: &mut Vec<Command>,
    ) -> Result<Next, ConnectionError> {
        match self {
            State::AwaitZap => {
                out.push(Command::Ready(ctx.metadata.clone()));
                Ok(Next::Continue(Handshake::Null(State::ExpectReady { zap: Some(reply) })))
            }
            State::ExpectReady { .. } => {
                Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder("unexpected ZAP reply")))
            }
        }
    }

    pub(super) fn awaits_zap(&self) -> bool {
        matches!(self, State::AwaitZap)
    }
}
