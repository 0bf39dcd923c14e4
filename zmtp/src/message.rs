//! [`Message`]: a multipart ZeroMQ message, a list of [`Bytes`] frames.
//!
//! Frames are reference-counted: a received frame points into the connection's read buffer, and a
//! message sent to many peers shares its bodies instead of copying them.
//!
//! A message received over tcp or ipc also carries its peer's [`Properties`] (libzmq's
//! `zmq_msg_gets`): one list per connection, made when its handshake ends and shared by every
//! message from it (a reference count, not a copy).

use std::cell::RefCell;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::codec::Metadata;

/// Frames kept inline before the message allocates: most messages have one or two (a routing
/// envelope and a body).
type Frames = SmallVec<[Bytes; 2]>;

/// The properties of the peer a message came from, as libzmq's `zmq_msg_gets` reads them:
/// `Socket-Type`, `Identity` (also asked for as `Routing-Id`), `Peer-Address` (the peer's IP
/// over tcp; `:uid:gid:pid` over ipc), the ZAP handler's `User-Id` and its metadata, and the
/// peer's application properties (`X-...`, ZMQ_METADATA). `User-Id` and `Peer-Address` come
/// only from our side (ZAP, the transport), never from what the peer announced. Cheap to clone:
/// one list per connection, shared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties(pub(crate) Arc<Metadata>);

impl Properties {
    /// Shares `metadata` as a connection's properties.
    pub fn new(metadata: Metadata) -> Properties {
        Properties(Arc::new(metadata))
    }

    /// The value of the property `name` (case-insensitive); `Routing-Id` and `Identity` name the
    /// same property, as in libzmq.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0.get(name).or_else(|| {
            let alias = if name.eq_ignore_ascii_case(ROUTING_ID) {
                crate::codec::metadata::IDENTITY
            } else if name.eq_ignore_ascii_case(crate::codec::metadata::IDENTITY) {
                ROUTING_ID
            } else {
                return None;
            };
            self.0.get(alias)
        })
    }

    /// Every property, in order.
    pub fn metadata(&self) -> &Metadata {
        &self.0
    }
}

/// libzmq's name for the routing id among a message's properties (the wire's is `Identity`).
const ROUTING_ID: &str = "Routing-Id";

/// A multipart message. Most messages have one frame; an empty message has none on the API side
/// but is sent as one empty frame, as libzmq does. Two messages are equal when their frames are:
/// the [`Properties`] of a received one do not count.
#[derive(Clone, Default)]
pub struct Message {
    frames: Frames,
    properties: Option<Properties>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.frames == other.frames
    }
}

impl Eq for Message {}

impl std::hash::Hash for Message {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.frames.hash(state);
    }
}

impl Message {
    /// A message with no frames.
    #[inline]
    pub fn new() -> Message {
        Message::of(Frames::new())
    }

    #[inline]
    fn of(frames: Frames) -> Message {
        Message { frames, properties: None }
    }

    /// A message with room for `n` frames.
    pub fn with_capacity(n: usize) -> Message {
        Message::of(Frames::with_capacity(n))
    }

    /// The properties of the peer this message came from (libzmq's `zmq_msg_gets`); `None` for a
    /// message we made, or one received over inproc (which has no handshake, as in libzmq).
    #[inline]
    pub fn properties(&self) -> Option<&Properties> {
        self.properties.as_ref()
    }

    /// One property of the peer this message came from (see [`Properties`]), e.g.
    /// `msg.property("User-Id")`.
    pub fn property(&self, name: &str) -> Option<&Bytes> {
        self.properties.as_ref()?.get(name)
    }

    /// Attaches the properties of the peer the message came from.
    #[inline]
    pub(crate) fn set_properties(&mut self, properties: Option<Properties>) {
        self.properties = properties;
    }

    /// Appends a frame.
    #[inline]
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        self.frames.push(frame.into());
    }

    /// Prepends a frame (an envelope part such as a routing id or a delimiter).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames.insert(0, frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.frames.pop()
    }

    /// The frame at `i`.
    pub fn get(&self, i: usize) -> Option<&Bytes> {
        self.frames.get(i)
    }

    /// The first frame.
    #[inline]
    pub fn first(&self) -> Option<&Bytes> {
        self.frames.first()
    }

    /// Number of frames.
    #[inline]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the message has no frames.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total octets of all frame bodies.
    pub fn total_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }

    /// The frames in order.
    #[inline]
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Iterates over the frames.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames.iter()
    }

    /// Splits the message after its first `n` frames: `self` keeps the head, the tail is returned.
    pub fn split_off(&mut self, n: usize) -> Message {
        let n = n.min(self.frames.len());
        Message { frames: self.frames.drain(n..).collect(), properties: self.properties.clone() }
    }

    /// Appends all frames of `other`.
    pub fn extend(&mut self, other: Message) {
        self.frames.extend(other.frames);
    }

    /// The frames as a vector.
    pub fn into_frames(self) -> Vec<Bytes> {
        self.frames.into_vec()
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        for frame in &self.frames {
            if frame.len() <= 64 {
                l.entry(frame);
            } else {
                l.entry(&format_args!("<{} octets>", frame.len()));
            }
        }
        l.finish()
    }
}

impl IntoIterator for Message {
    type Item = Bytes;
    type IntoIter = smallvec::IntoIter<[Bytes; 2]>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(frames: Vec<Bytes>) -> Message {
        Message::of(Frames::from_vec(frames))
    }
}

impl From<Bytes> for Message {
    #[inline]
    fn from(frame: Bytes) -> Message {
        let mut frames = Frames::new();
        frames.push(frame);
        Message::of(frames)
    }
}

impl From<Vec<u8>> for Message {
    fn from(frame: Vec<u8>) -> Message {
        Message::from(Bytes::from(frame))
    }
}

impl From<String> for Message {
    fn from(frame: String) -> Message {
        Message::from(Bytes::from(frame))
    }
}

/// Bodies copied from a slice of at most this many octets share a per-thread buffer
/// ([`copy_body`]); libzmq keeps such bodies inside the message itself (its "very small
/// messages", up to 33 octets).
pub(crate) const SMALL_BODY: usize = 64;
/// The per-thread buffer small bodies are copied into: a new one is allocated only when it is
/// full and some of its bodies are still alive. A body kept alive keeps its buffer allocated, as
/// a received frame keeps its read buffer: at most this many octets per body kept.
const SMALL_CHUNK: usize = 2048;

thread_local! {
    static SMALL_BODIES: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A copy of `body` as a frame. A small one is copied into this thread's shared buffer instead
/// of an allocation of its own: one reference count taken and dropped instead of a `malloc` and
/// a `free` (PUSH→PULL 16 B, callgrind: about 150 instructions a message less, both ends); once
/// every body in the buffer is gone, the buffer is used again from its start.
pub(crate) fn copy_body(body: &[u8]) -> Bytes {
    if body.is_empty() || body.len() > SMALL_BODY {
        return Bytes::copy_from_slice(body);
    }
    SMALL_BODIES
        .try_with(|cell| {
            let mut buf = cell.try_borrow_mut().ok()?;
            if buf.capacity() - buf.len() < body.len() && !buf.try_reclaim(body.len()) {
                *buf = BytesMut::with_capacity(SMALL_CHUNK);
            }
            buf.extend_from_slice(body);
            Some(buf.split().freeze())
        })
        .ok()
        .flatten()
        // The thread is ending (its buffer is gone), or this runs inside a copy (cannot be).
        .unwrap_or_else(|| Bytes::copy_from_slice(body))
}

impl From<&str> for Message {
    fn from(frame: &str) -> Message {
        Message::from(copy_body(frame.as_bytes()))
    }
}

impl From<&[u8]> for Message {
    fn from(frame: &[u8]) -> Message {
        Message::from(copy_body(frame))
    }
}

impl<const N: usize> From<[&str; N]> for Message {
    fn from(frames: [&str; N]) -> Message {
        Message::of(frames.iter().map(|f| copy_body(f.as_bytes())).collect())
    }
}

impl<const N: usize> From<[Bytes; N]> for Message {
    fn from(frames: [Bytes; N]) -> Message {
        Message::of(frames.into_iter().collect())
    }
}

impl FromIterator<Bytes> for Message {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Message {
        Message::of(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small bodies are copies in one buffer, used again from its start once every body in it is
    /// gone and never while one is alive; larger ones are allocations of their own.
    #[test]
    fn small_bodies_share_a_buffer_reused_once_they_are_gone() {
        // A thread of its own: its buffer starts empty.
        std::thread::spawn(|| {
            let first = copy_body(&[1; 16]);
            let start = first.as_ptr();
            let second = copy_body(b"two");
            assert_eq!(second.as_ptr(), start.wrapping_add(16), "next to the first");
            assert!(!second.is_unique());
            drop((first, second));
            let fill = SMALL_CHUNK / 16 + 1;
            let reused = (0..fill).any(|i| {
                let b = copy_body(&[i as u8; 16]);
                assert_eq!(&b[..], &[i as u8; 16]);
                b.as_ptr() == start
            });
            assert!(reused, "the buffer was used again from its start");

            let kept = Message::from(&b"kept"[..]);
            let start = kept.frames()[0].as_ptr();
            for i in 0..2 * fill {
                let b = copy_body(&[i as u8; 16]);
                assert_ne!(b.as_ptr(), start, "a kept body is never overwritten");
            }
            assert_eq!(kept, Message::from(["kept"]));

            let large = copy_body(&[7; SMALL_BODY + 1]);
            assert!(large.is_unique(), "an allocation of its own");
            assert!(copy_body(&[]).is_empty());
        })
        .join()
        .expect("test thread");
    }
}
