//! Salt's event framing: the bytes of one event, and the two ways the event bus carries them.
//!
//! Facts from Salt 3008.5 (`utils/event.py` `SaltEvent.pack`/`unpack`/`fire_event`,
//! `transport/frame.py` `frame_msg_ipc`, `transport/tcp.py` `TCPPuller`/`PubServer`; see
//! `shared/reference/salt-master.md` §2.1):
//!
//! - **An event** is `tag + "\n\n" + msgpack(data, use_bin_type=True)` ([`pack`], [`unpack`]).
//!   `fire_event` first sets `data["_stamp"]` to `datetime.now(timezone.utc).isoformat()`
//!   ([`stamp`], [`pack_stamped`]; the caller passes the time, so this module has no clock).
//! - **Pull side** (`*_pull.ipc`, a pusher → the event publisher): each event travels as
//!   `u32 big-endian length + msgpack({"head": {}, "body": <bin event>})` ([`frame_pull`],
//!   [`decode_pull`]).
//! - **Pub side** (`*_pub.ipc`, the publisher → every subscriber): the same msgpack map without the
//!   length prefix, maps simply concatenated on the stream ([`frame_pub`], [`decode_pub`]). Salt's
//!   subscriber runs a streaming unpacker and takes `body`, which older senders wrote as str: both
//!   are accepted.
//!
//! The decoders are sans-IO, in tokio-util's shape: given the bytes buffered so far they return
//! `Ok(None)` (need more), `Ok(Some((event, consumed)))` (the caller drops `consumed` bytes), or
//! `Err` (the stream is corrupt; close it). The size limit is checked before anything is allocated
//! for a frame: a pull frame's announced length is refused at once when it exceeds `max`, and a
//! pub-side stream is refused once more than `max` bytes are buffered without a complete map.

use crate::error::{Error, Malformed, Result};
use crate::msgpack;
use crate::value::{as_bytes, get, insert, string, Value};

/// What separates an event's tag from its data (`salt.utils.event.TAGEND`).
pub const TAGEND: &[u8] = b"\n\n";

/// The start of every frame map: `{"head": {}, "body": ` as `msgpack.dumps(use_bin_type=True)`
/// writes it (a 2-entry fixmap, fixstr keys, an empty fixmap).
const FRAME_HEAD: &[u8] = b"\x82\xa4head\x80\xa4body";

/// `SaltEvent.pack(tag, data)` (without `max_size` trimming).
pub fn pack(tag: &str, data: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + TAGEND.len() + 64);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(TAGEND);
    msgpack::encode_into(data, &mut out, true);
    out
}

/// `fire_event`'s `data["_stamp"] = datetime.now(timezone.utc).isoformat()`, for the instant
/// `unix_micros` (see [`crate::util::unix_micros`]). A non-map `data` is left alone (Salt refuses
/// to fire it).
pub fn stamp(data: &mut Value, unix_micros: i64) {
    insert(data, "_stamp", string(crate::util::isoformat_utc(unix_micros)));
}

/// [`stamp`] then [`pack`]: the bytes `fire_event` sends.
pub fn pack_stamped(tag: &str, mut data: Value, unix_micros: i64) -> Vec<u8> {
    stamp(&mut data, unix_micros);
    pack(tag, &data)
}

/// `SaltEvent.unpack(raw)`: the tag (text before the first `"\n\n"`) and the data. Without a
/// separator the whole input is the tag and the data is empty, which Salt cannot decode either.
pub fn unpack(raw: &[u8]) -> Result<(String, Value)> {
    let (tag, data) = match raw.windows(TAGEND.len()).position(|w| w == TAGEND) {
        Some(i) => (&raw[..i], &raw[i + TAGEND.len()..]),
        None => (raw, &[][..]),
    };
    let tag = std::str::from_utf8(tag).map_err(|_| Error::bad("event tag is not UTF-8"))?;
    Ok((tag.to_owned(), msgpack::decode(data)?))
}

/// The pub-side frame of an event: `msgpack({"head": {}, "body": event}, use_bin_type=True)`.
pub fn frame_pub(event: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEAD.len() + 5 + event.len());
    write_frame(event, &mut out);
    out
}

/// The pull-side frame of an event (`frame_msg_ipc`): the pub-side frame behind its length as a
/// big-endian `u32`. `None` if the frame would not fit a `u32` length.
pub fn frame_pull(event: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(4 + FRAME_HEAD.len() + 5 + event.len());
    out.extend_from_slice(&[0; 4]);
    write_frame(event, &mut out);
    let len = u32::try_from(out.len() - 4).ok()?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Some(out)
}

fn write_frame(event: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(FRAME_HEAD);
    msgpack::bin_header(event.len(), out);
    out.extend_from_slice(event);
}

/// The event carried by one decoded frame map (`msg["body"]`, bin or str).
fn body_of(frame: Value) -> Result<Vec<u8>> {
    if !matches!(frame, Value::Map(_)) {
        return Err(Error::bad("event frame is not a map"));
    }
    match get(&frame, "body") {
        Some(Value::Binary(b)) => Ok(b.clone()),
        Some(v) => as_bytes(v).map(<[u8]>::to_vec).ok_or_else(|| Error::bad("event frame body is not bytes")),
        None => Err(Error::bad("event frame has no body")),
    }
}

/// Decode the next pull-side frame from `src`: `Ok(Some((event, consumed)))`, `Ok(None)` when
/// more bytes are needed, `Err` when the stream is corrupt or announces a frame above `max`.
pub fn decode_pull(src: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>> {
    let Some(len) = src.get(..4) else { return Ok(None) };
    let mut be = [0u8; 4];
    be.copy_from_slice(len);
    let len = u32::from_be_bytes(be) as usize;
    if len > max {
        return Err(Error::Malformed(Malformed::FrameTooLarge { len, max }));
    }
    let Some(frame) = src.get(4..4 + len) else { return Ok(None) };
    Ok(Some((body_of(msgpack::decode(frame)?)?, 4 + len)))
}

/// Decode the next pub-side frame (a bare msgpack map) from `src`: as [`decode_pull`], with the
/// limit applied to the bytes buffered for one incomplete map.
pub fn decode_pub(src: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>> {
    match msgpack::decode_partial(src)? {
        Some((_, used)) if used > max => Err(Error::Malformed(Malformed::FrameTooLarge { len: used, max })),
        Some((frame, used)) => Ok(Some((body_of(frame)?, used))),
        None if src.len() > max => Err(Error::Malformed(Malformed::FrameTooLarge { len: src.len(), max })),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::map;

    fn event() -> Vec<u8> {
        pack_stamped("salt/job/1/new", map([("jid", string("1")), ("minions", Value::Array(vec![]))]), 0)
    }

    #[test]
    fn pack_and_unpack() {
        let ev = event();
        assert!(ev.starts_with(b"salt/job/1/new\n\n\x83"));
        let Ok((tag, data)) = unpack(&ev) else { panic!("unpack") };
        assert_eq!(tag, "salt/job/1/new");
        assert_eq!(get(&data, "_stamp").and_then(crate::value::as_str), Some("1970-01-01T00:00:00+00:00"));
        // The data may itself hold "\n\n": only the first separator splits.
        let ev = pack("t", &string("a\n\nb"));
        assert_eq!(unpack(&ev).ok(), Some(("t".into(), string("a\n\nb"))));
        assert!(unpack(b"\xff\n\n\xc0").is_err());
        assert!(unpack(b"no separator").is_err());
    }

    #[test]
    fn frames_round_trip_at_every_split() {
        let ev = event();
        let Some(pull) = frame_pull(&ev) else { panic!("frame") };
        let pubf = frame_pub(&ev);
        assert_eq!(&pull[4..], &pubf[..]);
        let mut stream = pubf.clone();
        stream.extend_from_slice(&pubf);
        for cut in 0..pubf.len() {
            assert!(matches!(decode_pub(&stream[..cut], 1 << 20), Ok(None)), "pub cut {cut}");
        }
        for cut in 0..pull.len() {
            assert!(matches!(decode_pull(&pull[..cut], 1 << 20), Ok(None)), "pull cut {cut}");
        }
        assert_eq!(decode_pub(&stream, 1 << 20).ok(), Some(Some((ev.clone(), pubf.len()))));
        assert_eq!(decode_pull(&pull, 1 << 20).ok(), Some(Some((ev.clone(), pull.len()))));
    }

    #[test]
    fn str_body_is_accepted() {
        let frame = msgpack::encode(&map([("head", Value::Map(vec![])), ("body", string("t\n\n\x7f"))]));
        assert_eq!(decode_pub(&frame, 100).ok(), Some(Some((b"t\n\n\x7f".to_vec(), frame.len()))));
    }

    #[test]
    fn limits_come_before_allocation() {
        // A pull frame announcing 4 GiB is refused from its 4-byte header alone.
        assert!(matches!(
            decode_pull(&[0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(Error::Malformed(Malformed::FrameTooLarge { .. }))
        ));
        // A pub-side map that has not ended within `max` bytes is refused.
        let big = frame_pub(&[b'x'; 200]);
        assert!(matches!(decode_pub(&big[..150], 100), Err(Error::Malformed(Malformed::FrameTooLarge { .. }))));
        assert!(matches!(decode_pub(&big, 100), Err(Error::Malformed(Malformed::FrameTooLarge { .. }))));
        // Corrupt streams are errors, not "need more".
        assert!(decode_pub(&[0xc1], 100).is_err());
        assert!(decode_pub(&msgpack::encode(&Value::from(1)), 100).is_err());
        assert!(decode_pull(&[0, 0, 0, 1, 0xc1], 100).is_err());
    }
}
