//! Z85 (ZeroMQ RFC 32): the printable encoding of CURVE keys, four octets to five characters.
//!
//! A 32-octet key is 40 characters. Input to [`encode`] must be a multiple of 4 octets, input to
//! [`decode`] a multiple of 5 characters; anything else, or a character outside the alphabet, or
//! a group whose value overflows 32 bits, is refused.

use thiserror::Error;

const ALPHABET: &[u8; 85] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Why a Z85 string or input was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Z85Error {
    /// The input length is not a multiple of 4 (encode) or 5 (decode).
    #[error("Z85 length {0} is not a multiple of the group size")]
    Length(usize),
    /// A character outside the Z85 alphabet.
    #[error("invalid Z85 character {0:?}")]
    Char(char),
    /// A five-character group above 2^32 - 1.
    #[error("Z85 group out of range")]
    Overflow,
}

/// Encodes `data` (a multiple of 4 octets long).
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if !data.len().is_multiple_of(4) {
        return Err(Z85Error::Length(data.len()));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut group = [0u8; 5];
        for slot in group.iter_mut().rev() {
            *slot = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        // The alphabet is ASCII.
        out.extend(group.iter().map(|&b| char::from(b)));
    }
    Ok(out)
}

fn digit(c: u8) -> Result<u32, Z85Error> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32).ok_or(Z85Error::Char(char::from(c)))
}

/// Decodes `text` (a multiple of 5 characters long).
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let raw = text.as_bytes();
    if !raw.len().is_multiple_of(5) {
        return Err(Z85Error::Length(raw.len()));
    }
    let mut out = Vec::with_capacity(raw.len() / 5 * 4);
    for group in raw.chunks_exact(5) {
        let mut value: u64 = 0;
        for &c in group {
            value = value * 85 + u64::from(digit(c)?);
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow)?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_test_vector() {
        let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&data).as_deref(), Ok("HelloWorld"));
        assert_eq!(decode("HelloWorld"), Ok(data.to_vec()));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::Length(3)));
        assert_eq!(decode("abcd"), Err(Z85Error::Length(4)));
        assert_eq!(decode("abc d"), Err(Z85Error::Char(' ')));
        assert_eq!(decode("#####"), Err(Z85Error::Overflow));
        assert_eq!(decode("%nSc0"), Ok(vec![0xff; 4]));
    }

    #[test]
    fn round_trips_every_group_boundary() {
        let data: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decode(&encode(&data).expect("multiple of 4")), Ok(data));
    }
}
