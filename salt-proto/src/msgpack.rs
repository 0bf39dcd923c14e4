//! Salt's msgpack dialect, over [`rmpv::Value`].
//!
//! `salt.payload.dumps` packs with `use_bin_type=False` (payload.py), which
//! selects the *old* msgpack spec for strings and bytes alike:
//!
//! * Python `str` **and** `bytes` are both packed as a "raw" string: fixstr
//!   (`0xa0..0xbf`) up to 31 bytes, then **raw16 (`0xda`)** up to 65535
//!   bytes and raw32 (`0xdb`) above. `str8` (`0xd9`) and the `bin` family
//!   are never emitted. Ciphertexts and signatures therefore travel as
//!   "strings" whose content is not UTF-8.
//! * ints use the smallest encoding, unsigned formats for values `>= 0`
//!   and signed formats for negative values; floats are always float64.
//! * ext types: 78 = datetime (`"%Y%m%dT%H:%M:%S.%f"` text), 79 = Salt
//!   constant. They are kept as [`Value::Ext`] here.
//!
//! `salt.payload.loads` unpacks raw strings as bytes and then turns those
//! that are valid UTF-8 into `str` (`decode_embedded_strs`). [`decode`]
//! mirrors that: a msgpack str/raw whose content is UTF-8 becomes
//! [`Value::String`], any other becomes [`Value::Binary`]; `bin` objects
//! stay [`Value::Binary`]. Use [`crate::value::as_bytes`] / [`crate::value::as_str`] to read fields
//! without caring which of the two a peer used.
//!
//! [`encode`] writes [`Value::String`] and [`Value::Binary`] both as raw
//! strings, so `encode(v)` is byte-identical to `salt.payload.dumps` of the
//! equivalent Python object (dict order = [`Value::Map`] order).
//! [`encode_bin_type`] is the `use_bin_type=True` variant Salt uses inside
//! event-bus payloads.

use rmpv::{Integer, Value};

use crate::error::{Error, Malformed, Result};

/// msgpack ext type Salt uses for `datetime` objects.
pub const EXT_DATETIME: i8 = 78;
/// msgpack ext type Salt uses for `salt.defaults._Constant` objects.
pub const EXT_CONSTANT: i8 = 79;

/// Maximum nesting depth accepted by [`decode`].
pub const MAX_DEPTH: usize = 512;

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Encode `v` exactly as `salt.payload.dumps` (msgpack `use_bin_type=False`)
/// would encode the equivalent Python object.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(v, &mut out, false);
    out
}

/// Encode `v` as `salt.payload.dumps(obj, use_bin_type=True)` would:
/// [`Value::String`] as str (with `str8`), [`Value::Binary`] as bin.
pub fn encode_bin_type(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(v, &mut out, true);
    out
}

/// Append the encoding of `v` to `out`; `bin_type` selects
/// `use_bin_type=True` (see [`encode_bin_type`]).
pub fn encode_into(v: &Value, out: &mut Vec<u8>, bin_type: bool) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(false) => out.push(0xc2),
        Value::Boolean(true) => out.push(0xc3),
        Value::Integer(i) => encode_int(i, out),
        Value::F32(f) => {
            out.push(0xca);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::F64(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::String(s) => {
            let b = s.as_bytes();
            str_header(b.len(), out, bin_type);
            out.extend_from_slice(b);
        }
        Value::Binary(b) => {
            if bin_type {
                bin_header(b.len(), out);
            } else {
                str_header(b.len(), out, false);
            }
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            let n = items.len();
            if n <= 15 {
                out.push(0x90 | n as u8);
            } else if n <= 0xffff {
                out.push(0xdc);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdd);
                out.extend_from_slice(&len32(n).to_be_bytes());
            }
            for item in items {
                encode_into(item, out, bin_type);
            }
        }
        Value::Map(pairs) => {
            let n = pairs.len();
            if n <= 15 {
                out.push(0x80 | n as u8);
            } else if n <= 0xffff {
                out.push(0xde);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdf);
                out.extend_from_slice(&len32(n).to_be_bytes());
            }
            for (k, val) in pairs {
                encode_into(k, out, bin_type);
                encode_into(val, out, bin_type);
            }
        }
        Value::Ext(ty, data) => {
            let n = data.len();
            match n {
                1 => out.push(0xd4),
                2 => out.push(0xd5),
                4 => out.push(0xd6),
                8 => out.push(0xd7),
                16 => out.push(0xd8),
                _ if n <= 0xff => {
                    out.push(0xc7);
                    out.push(n as u8);
                }
                _ if n <= 0xffff => {
                    out.push(0xc8);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                _ => {
                    out.push(0xc9);
                    out.extend_from_slice(&len32(n).to_be_bytes());
                }
            }
            out.push(*ty as u8);
            out.extend_from_slice(data);
        }
    }
}

/// msgpack cannot express lengths above `u32::MAX`; nothing Salt sends comes
/// close (Python raises). We saturate rather than panic.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn encode_int(i: &Integer, out: &mut Vec<u8>) {
    if let Some(u) = i.as_u64() {
        if u < 0x80 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.push(0xcc);
            out.push(u as u8);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if let Some(s) = i.as_i64() {
        // Only negative values get here.
        if s >= -32 {
            out.push(s as i8 as u8);
        } else if s >= i64::from(i8::MIN) {
            out.push(0xd0);
            out.push(s as i8 as u8);
        } else if s >= i64::from(i16::MIN) {
            out.push(0xd1);
            out.extend_from_slice(&(s as i16).to_be_bytes());
        } else if s >= i64::from(i32::MIN) {
            out.push(0xd2);
            out.extend_from_slice(&(s as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&s.to_be_bytes());
        }
    }
}

fn str_header(n: usize, out: &mut Vec<u8>, bin_type: bool) {
    if n <= 31 {
        out.push(0xa0 | n as u8);
    } else if bin_type && n <= 0xff {
        out.push(0xd9);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&len32(n).to_be_bytes());
    }
}

pub(crate) fn bin_header(n: usize, out: &mut Vec<u8>) {
    if n <= 0xff {
        out.push(0xc4);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&len32(n).to_be_bytes());
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decode exactly one msgpack object that must span all of `data`.
///
/// Accepts every msgpack format (old raw strings, `str8`, `bin`, ext). A
/// str whose content is not UTF-8 becomes [`Value::Binary`]. Lengths are
/// checked against the input before anything is allocated, and nesting is
/// limited to [`MAX_DEPTH`], so hostile input cannot exhaust memory or the
/// stack.
pub fn decode(data: &[u8]) -> Result<Value> {
    let (v, used) = decode_prefix(data)?;
    if used != data.len() {
        return Err(Error::Malformed(Malformed::Msgpack { offset: used, msg: "trailing bytes after msgpack object" }));
    }
    Ok(v)
}

/// Decode one msgpack object from the start of `data`; returns it and the
/// number of bytes it used (for streams of concatenated objects).
pub fn decode_prefix(data: &[u8]) -> Result<(Value, usize)> {
    let mut r = Reader { data, pos: 0, short: false };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// Like [`decode_prefix`] for a stream that may not hold the whole object yet:
/// `Ok(None)` when `data` ends before the object does (read more and retry),
/// `Err` when the bytes can never be msgpack.
pub fn decode_partial(data: &[u8]) -> Result<Option<(Value, usize)>> {
    let mut r = Reader { data, pos: 0, short: false };
    match r.value(0) {
        Ok(v) => Ok(Some((v, r.pos))),
        Err(_) if r.short => Ok(None),
        Err(e) => Err(e),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// The last error was the input ending early (not bad bytes).
    short: bool,
}

impl<'a> Reader<'a> {
    fn err(&self, msg: &'static str) -> Error {
        Error::Malformed(Malformed::Msgpack { offset: self.pos, msg })
    }

    fn short(&mut self, msg: &'static str) -> Error {
        self.short = true;
        self.err(msg)
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.short("unexpected end of data"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn raw(&mut self, n: usize) -> Result<Value> {
        let b = self.take(n)?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.into()),
            Err(_) => Value::Binary(b.to_vec()),
        })
    }

    fn bin(&mut self, n: usize) -> Result<Value> {
        Ok(Value::Binary(self.take(n)?.to_vec()))
    }

    fn ext(&mut self, n: usize) -> Result<Value> {
        let ty = self.u8()? as i8;
        Ok(Value::Ext(ty, self.take(n)?.to_vec()))
    }

    /// Read one object; containers recurse. The per-level stack frame is
    /// kept small (the big format `match` lives in [`Reader::header`]) so
    /// that [`MAX_DEPTH`] levels fit in a 2 MiB thread stack even in debug
    /// builds.
    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err("msgpack nesting too deep"));
        }
        match self.header()? {
            Item::Scalar(v) => Ok(v),
            Item::Array(n) => {
                if n > self.remaining() {
                    return Err(self.short("array length exceeds input"));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(v))
            }
            Item::Map(n) => {
                if n > self.remaining() / 2 {
                    return Err(self.short("map length exceeds input"));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.value(depth + 1)?;
                    let val = self.value(depth + 1)?;
                    v.push((k, val));
                }
                Ok(Value::Map(v))
            }
        }
    }

    #[inline(never)]
    fn header(&mut self) -> Result<Item> {
        let m = self.u8()?;
        let v = match m {
            0x00..=0x7f => Value::from(m),
            0x80..=0x8f => return Ok(Item::Map(usize::from(m & 0x0f))),
            0x90..=0x9f => return Ok(Item::Array(usize::from(m & 0x0f))),
            0xa0..=0xbf => self.raw(usize::from(m & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => return Err(self.err("reserved marker 0xc1")),
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 => {
                let n = self.u8()?;
                self.bin(usize::from(n))?
            }
            0xc5 => {
                let n = self.u16()?;
                self.bin(usize::from(n))?
            }
            0xc6 => {
                let n = self.u32()?;
                self.bin(n as usize)?
            }
            0xc7 => {
                let n = self.u8()?;
                self.ext(usize::from(n))?
            }
            0xc8 => {
                let n = self.u16()?;
                self.ext(usize::from(n))?
            }
            0xc9 => {
                let n = self.u32()?;
                self.ext(n as usize)?
            }
            0xca => Value::F32(f32::from_bits(self.u32()?)),
            0xcb => Value::F64(f64::from_bits(self.u64()?)),
            0xcc => Value::from(self.u8()?),
            0xcd => Value::from(self.u16()?),
            0xce => Value::from(self.u32()?),
            0xcf => Value::from(self.u64()?),
            0xd0 => Value::from(self.u8()? as i8),
            0xd1 => Value::from(self.u16()? as i16),
            0xd2 => Value::from(self.u32()? as i32),
            0xd3 => Value::from(self.u64()? as i64),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => {
                let n = self.u8()?;
                self.raw(usize::from(n))?
            }
            0xda => {
                let n = self.u16()?;
                self.raw(usize::from(n))?
            }
            0xdb => {
                let n = self.u32()?;
                self.raw(n as usize)?
            }
            0xdc => return Ok(Item::Array(usize::from(self.u16()?))),
            0xdd => return Ok(Item::Array(self.u32()? as usize)),
            0xde => return Ok(Item::Map(usize::from(self.u16()?))),
            0xdf => return Ok(Item::Map(self.u32()? as usize)),
            0xe0..=0xff => Value::from(m as i8),
        };
        Ok(Item::Scalar(v))
    }
}

/// What a format marker starts: a complete scalar, or a container header.
enum Item {
    Scalar(Value),
    Array(usize),
    Map(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::string;

    #[test]
    fn raw16_for_32_byte_strings() {
        let s = "a".repeat(32);
        let out = encode(&string(s.clone()));
        assert_eq!(&out[..3], &[0xda, 0x00, 0x20]);
        let out = encode_bin_type(&string(s));
        assert_eq!(&out[..2], &[0xd9, 0x20]);
    }

    #[test]
    fn ints() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (300, &[0xcd, 0x01, 0x2c]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-129, &[0xd1, 0xff, 0x7f]),
        ];
        for (i, want) in cases {
            assert_eq!(&encode(&Value::from(*i)), want, "{i}");
            assert_eq!(decode(want).ok(), Some(Value::from(*i)));
        }
    }

    #[test]
    fn non_utf8_str_decodes_to_binary() {
        let v = decode(&[0xa2, 0xff, 0xfe]).ok();
        assert_eq!(v, Some(Value::Binary(vec![0xff, 0xfe])));
        assert_eq!(encode(&Value::Binary(vec![0xff, 0xfe])), vec![0xa2, 0xff, 0xfe]);
    }

    #[test]
    fn partial_input_is_not_an_error() {
        let full =
            encode_bin_type(&crate::value::map([("head", Value::Map(vec![])), ("body", Value::Binary(vec![7; 300]))]));
        for cut in 0..full.len() {
            assert!(matches!(decode_partial(&full[..cut]), Ok(None)), "cut at {cut}");
        }
        let mut two = full.clone();
        two.extend_from_slice(&full);
        assert!(matches!(decode_partial(&two), Ok(Some((_, n))) if n == full.len()));
        assert!(decode_partial(&[0xc1]).is_err());
        assert!(decode_partial(&[0x91, 0xc1]).is_err());
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xdb, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xc1]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x01, 0x02]).is_err());
        let deep = vec![0x91u8; MAX_DEPTH + 10];
        assert!(decode(&deep).is_err());
        // The deepest accepted nesting fits in a test thread's stack.
        let mut ok = vec![0x91u8; MAX_DEPTH];
        ok.push(0xc0);
        assert!(decode(&ok).is_ok());
    }
}
