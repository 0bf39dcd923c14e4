//! PLAIN (RFC 24): the client sends HELLO with a user name and password, the server answers
//! WELCOME (after asking the ZAP handler, if there is one) or ERROR, the client sends INITIATE
//! with its metadata, the server READY with its own. Nothing is encrypted.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Command, MechanismName, Metadata};

use super::{unexpected, zap_properties, ConnectionError, Context, Established, Handshake, Next, ZapReply, ZapRequest};
use crate::proto::{Incompatibility, Misbehaviour};

/// PLAIN's states.
#[derive(Debug)]
pub enum State {
    /// Client: HELLO sent, WELCOME expected.
    ExpectWelcome,
    /// Client: INITIATE sent, READY expected.
    ExpectReady,
    /// Server: HELLO expected.
    ExpectHello,
    /// Server: the ZAP handler is judging the HELLO's credentials.
    AwaitZap,
    /// Server: WELCOME sent, INITIATE expected.
    ExpectInitiate {
        /// What the ZAP handler said, if it was asked.
        zap: Option<ZapReply>,
    },
}

fn other(name: &'static [u8], data: Bytes) -> Command {
    Command::Other { name: Bytes::from_static(name), data }
}

pub(super) fn start_client(
    username: &Bytes,
    password: &Bytes,
    out: &mut Vec<Command>,
) -> Result<Next, ConnectionError> {
    let (Ok(u), Ok(p)) = (u8::try_from(username.len()), u8::try_from(password.len())) else {
        return Err(ConnectionError::PeerIncompatible(Incompatibility::PlainCredentialsTooLong));
    };
    let mut data = BytesMut::with_capacity(2 + username.len() + password.len());
    data.put_u8(u);
    data.put_slice(username);
    data.put_u8(p);
    data.put_slice(password);
    out.push(other(b"HELLO", data.freeze()));
    Ok(Next::Continue(Handshake::Plain(State::ExpectWelcome)))
}

pub(super) fn start_server() -> Next {
    Next::Continue(Handshake::Plain(State::ExpectHello))
}

/// The user name and password of a HELLO's data.
fn parse_hello(data: &Bytes) -> Result<(Bytes, Bytes), ConnectionError> {
    let bad = || ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("PLAIN HELLO"));
    let ulen = usize::from(*data.first().ok_or_else(bad)?);
    let plen = usize::from(*data.get(1 + ulen).ok_or_else(bad)?);
    let start = 2 + ulen;
    if data.len() != start + plen {
        return Err(bad());
    }
    Ok((data.slice(1..1 + ulen), data.slice(start..)))
}

fn welcome(zap: Option<ZapReply>, out: &mut Vec<Command>) -> Next {
    out.push(other(b"WELCOME", Bytes::new()));
    Next::Continue(Handshake::Plain(State::ExpectInitiate { zap }))
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
            (State::ExpectWelcome, b"WELCOME") => {
                if !data.is_empty() {
                    return Err(ConnectionError::PeerMisbehaved(Misbehaviour::Malformed("PLAIN WELCOME")));
                }
                let mut meta = BytesMut::new();
                ctx.metadata.encode(&mut meta);
                out.push(other(b"INITIATE", meta.freeze()));
                Ok(Next::Continue(Handshake::Plain(State::ExpectReady)))
            }
            (State::ExpectWelcome, got) => Err(unexpected("PLAIN", "WELCOME", got)),
            (State::ExpectReady, b"READY") => {
                Ok(Next::Done(Established { metadata: Metadata::decode(&data)?, zap: Metadata::new(), session: None }))
            }
            (State::ExpectReady, got) => Err(unexpected("PLAIN", "READY", got)),
            (State::ExpectHello, b"HELLO") => {
                let (username, password) = parse_hello(&data)?;
                match ctx.zap {
                    Some(settings) => Ok(Next::Authenticate(
                        ZapRequest::new(settings, MechanismName::PLAIN, vec![username, password]),
                        Handshake::Plain(State::AwaitZap),
                    )),
                    // No handler: refused, as libzmq 4.3 does (it closes without a word).
                    None => Err(ConnectionError::Unauthorized {
                        status: 500,
                        text: "a PLAIN server needs a ZAP handler to check passwords".into(),
                    }),
                }
            }
            (State::ExpectHello, got) => Err(unexpected("PLAIN", "HELLO", got)),
            (State::ExpectInitiate { zap }, b"INITIATE") => {
                let metadata = Metadata::decode(&data)?;
                out.push(Command::Ready(ctx.metadata.clone()));
                Ok(Next::Done(Established { metadata, zap: zap_properties(zap.as_ref()), session: None }))
            }
            (State::ExpectInitiate { .. }, got) => Err(unexpected("PLAIN", "INITIATE", got)),
            (State::AwaitZap, got) => Err(unexpected("PLAIN", "nothing while authenticating", got)),
        }
    }

    pub(super) fn handle_zap(
        self,
        reply: ZapReply,
        _ctx: Context<'_>,
        out: &mut Vec<Command>,
    ) -> Result<Next, ConnectionError> {
        match self {
            State::AwaitZap => Ok(welcome(Some(reply), out)),
            _ => Err(ConnectionError::PeerMisbehaved(Misbehaviour::OutOfOrder("unexpected ZAP reply"))),
        }
    }

    pub(super) fn awaits_zap(&self) -> bool {
        matches!(self, State::AwaitZap)
    }
}
