//! Metadata: the property list carried by READY (and by the INITIATE / HELLO family of mechanism
//! commands).
//!
//! ```text
//! metadata = *property
//! property = name value
//! name     = OCTET 1*255name-char          ; size, then name
//! value    = 4OCTET *OCTET                 ; network-order size, then value
//! ```
//!
//! Names are compared case-insensitively. ZeroMQ defines `Socket-Type` and `Identity`; applications
//! add their own under the `X-` prefix.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::CodecError;

/// The `Socket-Type` property name.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// The `Identity` property name (the peer's routing id).
pub const IDENTITY: &str = "Identity";
/// The `User-Id` property: the ZAP handler's name for the client (never taken from the peer).
pub const USER_ID: &str = "User-Id";
/// The `Peer-Address` property: the peer's address as the transport saw it (never taken from
/// the peer).
pub const PEER_ADDRESS: &str = "Peer-Address";

/// An ordered list of properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    props: Vec<(Cow<'static, str>, Bytes)>,
}

/// A property's name, not allocated when it is one of the names every connection has (a
/// connection keeps its peer's list for as long as it lives).
fn name_of(name: &str) -> Cow<'static, str> {
    match [SOCKET_TYPE, IDENTITY, PEER_ADDRESS, USER_ID].into_iter().find(|known| *known == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

fn valid_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.+".contains(&b)
}

impl Metadata {
    /// An empty list.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Adds a property. Names longer than 255 octets or with characters outside `[A-Za-z0-9-_.+]`
    /// are refused, as the peer would refuse them.
    pub fn insert(&mut self, name: &str, value: impl Into<Bytes>) -> Result<(), CodecError> {
        if name.is_empty() || name.len() > 255 || !name.bytes().all(valid_name_char) {
            return Err(CodecError::MalformedMetadata("invalid property name"));
        }
        let value = value.into();
        if u32::try_from(value.len()).is_err() {
            return Err(CodecError::MalformedMetadata("property value too long"));
        }
        self.props.push((name_of(name), value));
        Ok(())
    }

    /// Gives back the room of the list beyond its properties (for a list kept long).
    pub fn shrink_to_fit(&mut self) {
        self.props.shrink_to_fit();
    }

    /// Removes every property called `name` (case-insensitive).
    pub fn remove(&mut self, name: &str) {
        self.props.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The value of the first property called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.props.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// All properties in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.props.iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// Octets this list takes on the wire.
    pub fn encoded_len(&self) -> usize {
        self.props.iter().map(|(n, v)| 1 + n.len() + 4 + v.len()).sum()
    }

    /// Appends the wire form to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        for (name, value) in &self.props {
            dst.put_u8(name.len() as u8);
            dst.put_slice(name.as_bytes());
            dst.put_u32(value.len() as u32);
            dst.put_slice(value);
        }
    }

    /// Parses a whole property list; values share `src`'s memory.
    pub fn decode(src: &Bytes) -> Result<Metadata, CodecError> {
        let mut props = Vec::new();
        let mut pos = 0;
        while pos < src.len() {
            let name_len = usize::from(src[pos]);
            pos += 1;
            if name_len == 0 {
                return Err(CodecError::MalformedMetadata("empty property name"));
            }
            let name = src.get(pos..pos + name_len).ok_or(CodecError::MalformedMetadata("truncated property name"))?;
            if !name.iter().all(|&b| valid_name_char(b)) {
                return Err(CodecError::MalformedMetadata("invalid property name"));
            }
            // Valid name characters are ASCII.
            let name = name_of(&String::from_utf8_lossy(name));
            pos += name_len;
            let size = src.get(pos..pos + 4).ok_or(CodecError::MalformedMetadata("truncated value size"))?;
            let value_len = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
            pos += 4;
            if value_len > src.len() - pos {
                return Err(CodecError::MalformedMetadata("value size exceeds the command"));
            }
            props.push((name, src.slice(pos..pos + value_len)));
            pos += value_len;
        }
        Ok(Metadata { props })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let mut m = Metadata::new();
        m.insert(SOCKET_TYPE, Bytes::from_static(b"DEALER")).expect("valid");
        m.insert(IDENTITY, Bytes::new()).expect("valid");
        m.insert("X-Hello", Bytes::from_static(b"world")).expect("valid");
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        assert_eq!(buf.len(), m.encoded_len());
        let back = Metadata::decode(&buf.freeze()).expect("valid");
        assert_eq!(back, m);
        assert_eq!(back.get("socket-type").map(|v| &v[..]), Some(&b"DEALER"[..]));
        assert_eq!(back.get("x-hello").map(|v| &v[..]), Some(&b"world"[..]));
    }

    #[test]
    fn lying_lengths() {
        let bad: &[&[u8]] = &[
            b"\x0bSocket-Type\x00\x00\x00\x07DEALER",
            b"\x0bSocket-Type\xff\xff\xff\xff",
            b"\x0bSocket",
            b"\x0bSocket-Type\x00\x00",
            b"\x00",
            b"\x02a b\x00\x00\x00\x00",
        ];
        for b in bad {
            assert!(Metadata::decode(&Bytes::copy_from_slice(b)).is_err(), "{b:?}");
        }
    }
}
