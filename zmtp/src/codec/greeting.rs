//! The 64-octet ZMTP 3.x greeting.
//!
//! ```text
//! greeting  = signature version mechanism as-server filler
//! signature = %xFF 8OCTET %x7F          ; 10 octets
//! version   = %x03 %x00-01              ; major, minor
//! mechanism = 20OCTET                   ; "NULL", "PLAIN", "CURVE", NUL-padded
//! as-server = %x00 / %x01
//! filler    = 31%x00
//! ```

use bytes::{BufMut, BytesMut};

use super::CodecError;

/// A mechanism name as carried in the greeting: up to 20 ASCII octets, NUL-padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MechanismName([u8; 20]);

impl MechanismName {
    /// The NULL mechanism (no security).
    pub const NULL: MechanismName = MechanismName::from_static("NULL");
    /// The PLAIN mechanism (clear-text user name and password).
    pub const PLAIN: MechanismName = MechanismName::from_static("PLAIN");
    /// The CURVE mechanism (CurveZMQ).
    pub const CURVE: MechanismName = MechanismName::from_static("CURVE");

    const fn from_static(name: &str) -> MechanismName {
        let src = name.as_bytes();
        let mut out = [0u8; 20];
        let mut i = 0;
        while i < src.len() && i < 20 {
            out[i] = src[i];
            i += 1;
        }
        MechanismName(out)
    }

    /// Validates a raw 20-octet field from the wire.
    pub fn from_wire(raw: [u8; 20]) -> Result<MechanismName, CodecError> {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(20);
        let valid_char = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.+".contains(b);
        if len == 0 || !raw[..len].iter().all(valid_char) || raw[len..].iter().any(|&b| b != 0) {
            return Err(CodecError::BadMechanismName);
        }
        Ok(MechanismName(raw))
    }

    /// The name without its padding.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(20);
        // Validated ASCII on construction, so this cannot fail; fall back to "" defensively.
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }

    /// The 20 octets as sent on the wire.
    pub fn as_wire(&self) -> &[u8; 20] {
        &self.0
    }
}

impl std::fmt::Debug for MechanismName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

impl std::fmt::Display for MechanismName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    /// Major and minor version. We send 3.1 and accept 3.0 and 3.1 (and later 3.x minors).
    pub version: (u8, u8),
    /// The security mechanism the sender wants.
    pub mechanism: MechanismName,
    /// Whether the sender acts as the mechanism's server.
    pub as_server: bool,
}

impl Greeting {
    /// Octets in a greeting.
    pub const SIZE: usize = 64;
    /// Octets in the signature part.
    pub const SIGNATURE_SIZE: usize = 10;

    /// The greeting we send: version 3.1.
    pub fn new(mechanism: MechanismName, as_server: bool) -> Greeting {
        Greeting { version: (3, 1), mechanism, as_server }
    }

    /// Appends the 64 octets of this greeting to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(Self::SIZE);
        dst.put_u8(0xFF);
        dst.put_bytes(0, 8);
        dst.put_u8(0x7F);
        dst.put_u8(self.version.0);
        dst.put_u8(self.version.1);
        dst.put_slice(self.mechanism.as_wire());
        dst.put_u8(u8::from(self.as_server));
        dst.put_bytes(0, 31);
    }

    /// Checks what has arrived so far and, once 64 octets are there, decodes them.
    ///
    /// Returns `Ok(None)` while fewer than 64 octets are available, but fails as early as the
    /// signature or the version show that the peer is not a ZMTP 3.x peer, so that a wrong
    /// peer is dropped without waiting for bytes it will never send. The version is judged once
    /// both of its octets are there, so the error does not depend on how the bytes were split
    /// into reads. Consumes nothing.
    pub fn decode(src: &[u8]) -> Result<Option<Greeting>, CodecError> {
        if let Some(&first) = src.first() {
            if first != 0xFF {
                return Err(CodecError::BadSignature);
            }
        }
        if src.len() >= Self::SIGNATURE_SIZE && src[9] & 0x01 != 0x01 {
            return Err(CodecError::BadSignature);
        }
        if src.len() >= 12 && src[10] != 3 {
            return Err(CodecError::UnsupportedVersion(src[10], src[11]));
        }
        if src.len() < Self::SIZE {
            return Ok(None);
        }
        let mut raw = [0u8; 20];
        raw.copy_from_slice(&src[12..32]);
        let mechanism = MechanismName::from_wire(raw)?;
        Ok(Some(Greeting { version: (src[10], src[11]), mechanism, as_server: src[32] == 1 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let g = Greeting::new(MechanismName::PLAIN, true);
        let mut buf = BytesMut::new();
        g.encode(&mut buf);
        assert_eq!(buf.len(), 64);
        assert_eq!(Greeting::decode(&buf), Ok(Some(g)));
        for cut in 0..64 {
            assert_eq!(Greeting::decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_early() {
        assert_eq!(Greeting::decode(b"G"), Err(CodecError::BadSignature));
        assert_eq!(Greeting::decode(b"\xff\0\0\0\0\0\0\0\0\x00"), Err(CodecError::BadSignature));
        assert_eq!(Greeting::decode(b"\xff\0\0\0\0\0\0\0\0\x7f\x02\x00"), Err(CodecError::UnsupportedVersion(2, 0)));
    }

    /// Regression (fuzz/regressions/greeting): 11 octets used to be rejected with minor version 0,
    /// 12 with the real minor, so the error depended on the read split.
    #[test]
    fn version_verdict_does_not_depend_on_split() {
        let src = b"\xff\0\0\0\0\0\x0a\0\x6a\x47\x47\x47";
        assert_eq!(Greeting::decode(&src[..11]), Ok(None));
        assert_eq!(Greeting::decode(src), Err(CodecError::UnsupportedVersion(0x47, 0x47)));
    }

    #[test]
    fn accepts_3_0() {
        let mut buf = BytesMut::new();
        Greeting { version: (3, 0), mechanism: MechanismName::NULL, as_server: false }.encode(&mut buf);
        assert_eq!(Greeting::decode(&buf).ok().flatten().map(|g| g.version), Some((3, 0)));
    }

    #[test]
    fn rejects_bad_mechanism() {
        let mut buf = BytesMut::new();
        Greeting::new(MechanismName::NULL, false).encode(&mut buf);
        buf[12] = b'n';
        assert_eq!(Greeting::decode(&buf), Err(CodecError::BadMechanismName));
        buf[12] = 0;
        assert_eq!(Greeting::decode(&buf), Err(CodecError::BadMechanismName));
    }
}
