//! ZMTP commands: a command frame's body is a name (1-octet size, then the name) and data.
//!
//! The connection core handles READY, ERROR, PING, PONG, SUBSCRIBE and CANCEL; any other name is
//! handed to the security mechanism (HELLO, WELCOME, INITIATE, ...) as [`Command::Other`].

use bytes::{BufMut, Bytes, BytesMut};

use super::{frame, CodecError, Metadata};

/// Longest ping context a peer may send; longer ones are truncated, as libzmq does.
pub const MAX_PING_CONTEXT: usize = 16;

/// A decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// READY with the sender's metadata.
    Ready(Metadata),
    /// ERROR with a reason the peer may show to a person.
    Error(Bytes),
    /// PING: the sender's time-to-live in tenths of a second and an opaque context to echo.
    Ping {
        /// Deciseconds the receiver may wait for traffic before considering the sender gone; 0 is none.
        ttl: u16,
        /// Echoed in the PONG.
        context: Bytes,
    },
    /// PONG echoing a PING's context.
    Pong(Bytes),
    /// SUBSCRIBE to messages beginning with the topic.
    Subscribe(Bytes),
    /// CANCEL a subscription.
    Cancel(Bytes),
    /// Any other command, such as a security mechanism's.
    Other {
        /// The command name.
        name: Bytes,
        /// The data after the name.
        data: Bytes,
    },
}

/// A command body's name and data, sharing `body`'s memory.
pub fn split(body: &Bytes) -> Result<(Bytes, Bytes), CodecError> {
    let Some(&name_len) = body.first() else {
        return Err(CodecError::MalformedCommand("empty"));
    };
    let name_len = usize::from(name_len);
    if name_len == 0 || body.len() < 1 + name_len {
        return Err(CodecError::MalformedCommand("truncated name"));
    }
    Ok((body.slice(1..1 + name_len), body.slice(1 + name_len..)))
}

impl Command {
    /// Parses a command frame's body; fields share `body`'s memory.
    pub fn decode(body: Bytes) -> Result<Command, CodecError> {
        let (name, data) = split(&body)?;
        Ok(match &name[..] {
            b"READY" => Command::Ready(Metadata::decode(&data)?),
            b"ERROR" => {
                let Some(&reason_len) = data.first() else {
                    return Err(CodecError::MalformedCommand("ERROR"));
                };
                let reason_len = usize::from(reason_len);
                if data.len() < 1 + reason_len {
                    return Err(CodecError::MalformedCommand("ERROR"));
                }
                Command::Error(data.slice(1..1 + reason_len))
            }
            b"PING" => {
                if data.len() < 2 {
                    return Err(CodecError::MalformedCommand("PING"));
                }
                let ttl = u16::from_be_bytes([data[0], data[1]]);
                let end = data.len().min(2 + MAX_PING_CONTEXT);
                Command::Ping { ttl, context: data.slice(2..end) }
            }
            b"PONG" => Command::Pong(data.slice(..data.len().min(MAX_PING_CONTEXT))),
            b"SUBSCRIBE" => Command::Subscribe(data),
            b"CANCEL" => Command::Cancel(data),
            _ => Command::Other { name, data },
        })
    }

    /// The command's name as on the wire (`READY`, `PING`, ...).
    pub fn name(&self) -> &[u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error(_) => b"ERROR",
            Command::Ping { .. } => b"PING",
            Command::Pong(_) => b"PONG",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Other { name, .. } => name,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Command::Ready(m) => m.encoded_len(),
            Command::Error(r) => 1 + r.len().min(255),
            Command::Ping { context, .. } => 2 + context.len().min(MAX_PING_CONTEXT),
            Command::Pong(c) => c.len().min(MAX_PING_CONTEXT),
            Command::Subscribe(t) | Command::Cancel(t) => t.len(),
            Command::Other { data, .. } => data.len(),
        }
    }

    /// Appends the whole command frame (header, name, data) to `dst`. Over-long fields are cut to
    /// what the wire format can carry (ERROR reasons to 255 octets, contexts to 16).
    pub fn encode(&self, dst: &mut BytesMut) {
        let body_len = self.body_len();
        dst.reserve(frame::MAX_HEADER + body_len);
        frame::encode_header(dst, false, true, body_len);
        self.encode_body(dst);
    }

    /// Octets of the command's body (name and data).
    pub fn body_len(&self) -> usize {
        1 + self.name().len().min(255) + self.data_len()
    }

    /// Appends the command's body (name size, name, data) without a frame header: what a
    /// mechanism that encrypts commands puts in its box.
    pub fn encode_body(&self, dst: &mut BytesMut) {
        let name = self.name();
        let name_len = name.len().min(255);
        dst.reserve(self.body_len());
        dst.put_u8(name_len as u8);
        dst.put_slice(&name[..name_len]);
        match self {
            Command::Ready(m) => m.encode(dst),
            Command::Error(r) => {
                let r = &r[..r.len().min(255)];
                dst.put_u8(r.len() as u8);
                dst.put_slice(r);
            }
            Command::Ping { ttl, context } => {
                dst.put_u16(*ttl);
                dst.put_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
            }
            Command::Pong(c) => dst.put_slice(&c[..c.len().min(MAX_PING_CONTEXT)]),
            Command::Subscribe(t) | Command::Cancel(t) => dst.put_slice(t),
            Command::Other { data, .. } => dst.put_slice(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Frame, FrameDecoder};

    fn round_trip(c: Command) {
        let mut buf = BytesMut::new();
        c.encode(&mut buf);
        let frame = FrameDecoder::new(1 << 20).decode(&mut buf).expect("valid").expect("whole");
        let Frame::Command(body) = frame else { panic!("not a command") };
        assert_eq!(Command::decode(body), Ok(c));
    }

    #[test]
    fn round_trips() {
        let mut m = Metadata::new();
        m.insert("Socket-Type", Bytes::from_static(b"SUB")).expect("valid");
        round_trip(Command::Ready(m));
        round_trip(Command::Error(Bytes::from_static(b"nope")));
        round_trip(Command::Ping { ttl: 300, context: Bytes::from_static(b"ctx") });
        round_trip(Command::Pong(Bytes::from_static(b"ctx")));
        round_trip(Command::Subscribe(Bytes::from_static(b"topic")));
        round_trip(Command::Cancel(Bytes::new()));
        round_trip(Command::Other { name: Bytes::from_static(b"HELLO"), data: Bytes::from_static(b"x") });
    }

    #[test]
    fn truncated() {
        for b in [&b""[..], b"\x05REA", b"\x00", b"\x04PING\x01", b"\x05ERROR", b"\x05ERROR\x05ab"] {
            assert!(Command::decode(Bytes::copy_from_slice(b)).is_err(), "{b:?}");
        }
        let long_ctx = Command::decode(Bytes::from_static(b"\x04PING\x00\x0a0123456789abcdefXYZ"));
        assert_eq!(long_ctx, Ok(Command::Ping { ttl: 10, context: Bytes::from_static(b"0123456789abcdef") }));
    }
}
