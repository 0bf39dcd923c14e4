//! [`Message`]: a multipart ZeroMQ message, a list of [`Bytes`] frames.
//!
//! Frames are reference-counted: a received frame points into the connection's read buffer, and a
//! message sent to many peers shares its bodies instead of copying them. A message copied from a
//! small slice (`Message::from(&[u8])`, up to [`INLINE_MAX`] octets) keeps its body inside itself
//! instead, as libzmq does, and makes it a frame only if asked for one.
//!
//! A message received over tcp or ipc also carries its peer's [`Properties`] (libzmq's
//! `zmq_msg_gets`): one list per connection, made when its handshake ends and shared by every
//! message from it (a reference count, not a copy).

use std::cell::RefCell;
use std::num::NonZeroU8;
use std::sync::{Arc, OnceLock};

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
    body: Body,
    properties: Option<Properties>,
}

/// Bodies copied from a slice of at most this many octets are kept inside the message
/// ([`Inline`]), as libzmq keeps its "very small messages" (up to 33 octets): as many as fit
/// beside the frame made on demand in the room [`Body`] takes anyway (checked by a test).
pub(crate) const INLINE_MAX: usize = 39;

/// What a message holds: its frames, or one small body copied in.
#[derive(Clone)]
enum Body {
    Frames(Frames),
    Inline(Inline),
}

impl Body {
    /// The frames (an inline body made a frame).
    #[inline]
    fn into_frames(self) -> Frames {
        match self {
            Body::Frames(frames) => frames,
            Body::Inline(inline) => {
                let mut frames = Frames::new();
                frames.push(inline.into_frame());
                frames
            }
        }
    }
}

impl Default for Body {
    #[inline]
    fn default() -> Body {
        Body::Frames(Frames::new())
    }
}

/// One body of 1 to [`INLINE_MAX`] octets, copied from a slice into the message itself: no
/// allocation and no reference count to take and drop. A message sent from
/// `Message::from(&[u8])` is framed straight from it (`wire::encode`, `Connection::send_message`)
/// and never needs a [`Bytes`]: a PUSH sending 16 B on the multi-threaded runtime made and
/// dropped a shared chunk's reference count for each body (two locked read-modify-writes and
/// about 150 instructions a message on the application's thread, callgrind). An accessor that
/// hands out `&Bytes` ([`Message::frames`], [`Message::first`], ...) makes the frame once, on
/// first use.
///
/// `repr(C)`, `len` last: its niche (never 0) tells the two forms of [`Body`] apart, past the
/// octets [`Frames`] takes, so that a [`Body`] is as large as frames and a tag.
#[derive(Clone)]
#[repr(C)]
struct Inline {
    /// The body as a frame, made by the first accessor that lends one.
    frame: OnceLock<Bytes>,
    octets: [u8; INLINE_MAX],
    len: NonZeroU8,
}

impl Inline {
    #[inline]
    fn new(body: &[u8]) -> Option<Inline> {
        if body.len() > INLINE_MAX {
            return None;
        }
        let len = NonZeroU8::new(u8::try_from(body.len()).ok()?)?;
        let mut octets = [0; INLINE_MAX];
        octets[..body.len()].copy_from_slice(body);
        Some(Inline { frame: OnceLock::new(), octets, len })
    }

    #[inline]
    fn octets(&self) -> &[u8] {
        &self.octets[..usize::from(self.len.get())]
    }

    /// The body as a frame.
    fn frame(&self) -> &Bytes {
        self.frame.get_or_init(|| copy_body(self.octets()))
    }

    fn into_frame(self) -> Bytes {
        let Inline { frame, octets, len } = self;
        frame.into_inner().unwrap_or_else(|| copy_body(&octets[..usize::from(len.get())]))
    }
}

/// The bodies of a message as slices, in order, without making a frame of an inline one.
pub(crate) enum Bodies<'a> {
    Frames(std::slice::Iter<'a, Bytes>),
    Inline(Option<&'a [u8]>),
}

impl<'a> Iterator for Bodies<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Bodies::Frames(it) => it.next().map(|b| &b[..]),
            Bodies::Inline(body) => body.take(),
        }
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.len() == other.len() && self.bodies().eq(other.bodies())
    }
}

impl Eq for Message {}

impl std::hash::Hash for Message {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for body in self.bodies() {
            body.hash(state);
        }
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
        Message { body: Body::Frames(frames), properties: None }
    }

    /// A message of one body copied from `body`: kept inline if small ([`Inline`]).
    #[inline]
    fn copied(body: &[u8]) -> Message {
        match Inline::new(body) {
            Some(inline) => Message { body: Body::Inline(inline), properties: None },
            None => Message::from(copy_body(body)),
        }
    }

    /// The frames, an inline body made a frame first, to change them.
    #[inline]
    fn frames_mut(&mut self) -> &mut Frames {
        if let Body::Inline(_) = self.body {
            self.body = Body::Frames(std::mem::take(&mut self.body).into_frames());
        }
        match &mut self.body {
            Body::Frames(frames) => frames,
            // Made frames just above.
            Body::Inline(_) => unreachable!("an inline body was made a frame"),
        }
    }

    /// The frames (an inline body made a frame on first use).
    #[inline]
    fn frames_ref(&self) -> &[Bytes] {
        match &self.body {
            Body::Frames(frames) => frames,
            Body::Inline(inline) => std::slice::from_ref(inline.frame()),
        }
    }

    /// The frames, taken (an inline body made a frame).
    #[inline]
    fn into_frames_inner(self) -> Frames {
        self.body.into_frames()
    }

    /// The bodies as slices, in order (an inline one without making it a frame).
    #[inline]
    pub(crate) fn bodies(&self) -> Bodies<'_> {
        match &self.body {
            Body::Frames(frames) => Bodies::Frames(frames.iter()),
            Body::Inline(inline) => Bodies::Inline(Some(inline.octets())),
        }
    }

    /// The first body as a slice (an inline one without making it a frame): PUB's topic match.
    #[inline]
    #[cfg_attr(not(feature = "sockets"), allow(dead_code))]
    pub(crate) fn first_body(&self) -> Option<&[u8]> {
        self.bodies().next()
    }

    /// The only body, if the message holds it inline ([`Inline`]).
    #[inline]
    pub(crate) fn inline_body(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Inline(inline) => Some(inline.octets()),
            Body::Frames(_) => None,
        }
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
        self.frames_mut().push(frame.into());
    }

    /// Prepends a frame (an envelope part such as a routing id or a delimiter).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames_mut().insert(0, frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let frames = self.frames_mut();
        if frames.is_empty() {
            None
        } else {
            Some(frames.remove(0))
        }
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.frames_mut().pop()
    }

    /// The frame at `i`.
    pub fn get(&self, i: usize) -> Option<&Bytes> {
        self.frames_ref().get(i)
    }

    /// The first frame.
    #[inline]
    pub fn first(&self) -> Option<&Bytes> {
        self.frames_ref().first()
    }

    /// Number of frames.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Frames(frames) => frames.len(),
            Body::Inline(_) => 1,
        }
    }

    /// Whether the message has no frames.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total octets of all frame bodies.
    pub fn total_len(&self) -> usize {
        self.bodies().map(<[u8]>::len).sum()
    }

    /// The frames in order.
    #[inline]
    pub fn frames(&self) -> &[Bytes] {
        self.frames_ref()
    }

    /// Iterates over the frames.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames_ref().iter()
    }

    /// Splits the message after its first `n` frames: `self` keeps the head, the tail is returned.
    pub fn split_off(&mut self, n: usize) -> Message {
        let properties = self.properties.clone();
        let frames = self.frames_mut();
        let n = n.min(frames.len());
        Message { body: Body::Frames(frames.drain(n..).collect()), properties }
    }

    /// Appends all frames of `other`.
    pub fn extend(&mut self, other: Message) {
        self.frames_mut().extend(other.into_frames_inner());
    }

    /// The frames as a vector.
    pub fn into_frames(self) -> Vec<Bytes> {
        self.into_frames_inner().into_vec()
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        for frame in self.frames_ref() {
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
        self.into_frames_inner().into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.frames_ref().iter()
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
/// ([`copy_body`]) when they are frames (those of at most [`INLINE_MAX`] are kept inside the
/// message until a frame is asked for).
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
    if body.len() > SMALL_BODY {
        return copy_chunked(body);
    }
    if body.is_empty() {
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

/// Bodies copied from a slice of [`CHUNKED_MIN`] to [`BODY_CHUNK`] octets go into this thread's
/// chunks ([`copy_chunked`]).
pub(crate) const CHUNKED_MIN: usize = 512;
/// The size of one chunk of copied bodies, and the largest body copied into one.
pub(crate) const BODY_CHUNK: usize = 64 * 1024;
/// Chunks a thread keeps at most (8 MiB): beyond them, bodies are allocations of their own.
pub(crate) const MAX_BODY_CHUNKS: usize = 128;

/// One thread's chunks of copied bodies: the one being filled, and the filled ones, oldest
/// first (bodies mostly go in the order they were made).
#[derive(Default)]
struct BodyChunks {
    current: Option<BytesMut>,
    filled: std::collections::VecDeque<BytesMut>,
}

impl BodyChunks {
    /// A copy of `body` in a chunk, or `None` if every chunk (up to [`MAX_BODY_CHUNKS`]) still
    /// holds a live body.
    fn copy(&mut self, body: &[u8]) -> Option<Bytes> {
        let fits = |c: &mut BytesMut| c.capacity() - c.len() >= body.len() || c.try_reclaim(BODY_CHUNK);
        if !self.current.as_mut().is_some_and(fits) {
            let oldest_free = self.filled.front_mut().is_some_and(|c| c.try_reclaim(BODY_CHUNK));
            let next = if oldest_free {
                self.filled.pop_front()?
            } else if self.filled.len() + 1 < MAX_BODY_CHUNKS {
                BytesMut::with_capacity(BODY_CHUNK)
            } else {
                // The oldest is kept alive (bodies not freed in order): the next one next time.
                self.filled.rotate_left(1);
                return None;
            };
            if let Some(full) = self.current.replace(next) {
                self.filled.push_back(full);
            }
        }
        let chunk = self.current.as_mut()?;
        chunk.extend_from_slice(body);
        Some(chunk.split().freeze())
    }
}

thread_local! {
    static BODY_CHUNKS: RefCell<BodyChunks> = RefCell::new(BodyChunks::default());
}

/// A copy of a body of [`CHUNKED_MIN`] to [`BODY_CHUNK`] octets, in one of this thread's chunks
/// of 64 KiB, used again from its start once every body in it is gone; other sizes, and bodies
/// that find every chunk busy, are allocations of their own. Why: a sender's bodies stay alive
/// until written (up to SNDHWM of them queued, 256 KiB more in flight) and are freed in runs after
/// each write; freed one by one to glibc, such a run that borders the heap's top made the top
/// pass glibc's trim threshold (128 KiB), glibc gave it back to the kernel, and the next bodies
/// faulted their pages in again (a sender's page faults 0.05-0.47 a message at 4 KiB). A chunk
/// stays allocated while the thread lives: at most [`MAX_BODY_CHUNKS`] of them, and a body kept
/// alive keeps its chunk (at most 64 KiB per body kept, as a received frame keeps its read
/// buffer).
fn copy_chunked(body: &[u8]) -> Bytes {
    if body.len() < CHUNKED_MIN || body.len() > BODY_CHUNK {
        return Bytes::copy_from_slice(body);
    }
    BODY_CHUNKS
        .try_with(|cell| cell.try_borrow_mut().ok()?.copy(body))
        .ok()
        .flatten()
        .unwrap_or_else(|| Bytes::copy_from_slice(body))
}

impl From<&str> for Message {
    #[inline]
    fn from(frame: &str) -> Message {
        Message::copied(frame.as_bytes())
    }
}

impl From<&[u8]> for Message {
    #[inline]
    fn from(frame: &[u8]) -> Message {
        Message::copied(frame)
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

    /// A small body copied from a slice is kept inside the message: the same message as its frame
    /// form in every accessor (equal, same hash, same frames, same debug output), made a frame
    /// when one is asked for or when the message is changed; larger or empty ones are frames.
    #[test]
    fn small_bodies_are_kept_inline_and_behave_as_frames() {
        use std::hash::{BuildHasher, RandomState};
        let hasher = RandomState::new();
        for body in [&b"a"[..], &[7; 16], &[9; INLINE_MAX]] {
            let inline = Message::from(body);
            assert_eq!(inline.inline_body(), Some(body));
            let framed = Message::from(Bytes::copy_from_slice(body));
            assert_eq!(framed.inline_body(), None);
            assert_eq!(inline, framed);
            assert_eq!(hasher.hash_one(&inline), hasher.hash_one(&framed));
            assert_eq!(format!("{inline:?}"), format!("{framed:?}"));
            assert_eq!((inline.len(), inline.total_len(), inline.is_empty()), (1, body.len(), false));
            assert_eq!(inline.first_body(), Some(body));
            assert_eq!(inline.bodies().collect::<Vec<_>>(), [body]);
            // Lent as a frame: the same frame each time, the body still inline.
            assert_eq!(&inline.frames()[0][..], body);
            assert_eq!(inline.first().map(|f| f.as_ptr()), inline.get(0).map(|f| f.as_ptr()));
            assert_eq!(inline.iter().count(), 1);
            assert_eq!(inline.inline_body(), Some(body));
            assert_eq!(inline.clone().into_frames(), [Bytes::copy_from_slice(body)]);
            assert_eq!(inline.clone().into_iter().collect::<Vec<_>>(), [Bytes::copy_from_slice(body)]);
            // Changed: made a frame first, order kept.
            let mut m = inline.clone();
            m.push_back(Bytes::from_static(b"back"));
            m.push_front(Bytes::from_static(b"front"));
            let expected = [Bytes::from_static(b"front"), Bytes::copy_from_slice(body), Bytes::from_static(b"back")];
            assert_eq!(m, Message::from(expected));
            assert_eq!(m.inline_body(), None);
            let mut m = inline.clone();
            assert_eq!(m.pop_front().as_deref(), Some(body));
            assert!(m.is_empty());
            let mut m = inline.clone();
            assert_eq!(m.pop_back().as_deref(), Some(body));
            let mut m = inline.clone();
            assert!(m.split_off(1).is_empty());
            assert_eq!(m, framed);
            let mut m = inline.clone();
            let tail = m.split_off(0);
            assert!(m.is_empty());
            assert_eq!(tail, framed);
            let mut m = Message::from(Bytes::from_static(b"head"));
            m.extend(inline);
            assert_eq!(m.bodies().collect::<Vec<_>>(), [&b"head"[..], body]);
        }
        assert_eq!(Message::from("hi").inline_body(), Some(&b"hi"[..]));
        assert_eq!(Message::from(&[1; INLINE_MAX + 1][..]).inline_body(), None);
        assert_eq!(Message::from(&b""[..]).inline_body(), None);
        assert_eq!(Message::from(&b""[..]).len(), 1, "an empty body is one empty frame");
        assert_ne!(Message::from("ab"), Message::from(["a", "b"]));
        assert_ne!(Message::from("ab"), Message::new());
    }

    /// An inline body takes no more room than the tag that tells it from frames (a message is
    /// moved into and out of every send's futures and results).
    #[test]
    fn an_inline_body_takes_the_room_of_a_tag() {
        assert_eq!(std::mem::size_of::<Body>(), std::mem::size_of::<Frames>() + std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Message>(), std::mem::size_of::<Body>() + std::mem::size_of::<usize>());
    }

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

    /// Bodies of 512 B to 64 KiB copied from a slice share this thread's 64 KiB chunks: one after
    /// the other, a chunk used again from its start once every body in it is gone and never while
    /// one is alive, at most MAX_BODY_CHUNKS chunks (bodies beyond them are allocations of their
    /// own, until chunks are free again); other sizes are allocations of their own.
    #[test]
    fn copied_bodies_share_chunks_reused_once_they_are_gone() {
        // A thread of its own: no chunk yet.
        std::thread::spawn(|| {
            const N: usize = 4096;
            let body = |i: usize| Message::from(&[i as u8; N][..]).frames()[0].clone();
            let first = body(1);
            let start = first.as_ptr();
            let second = body(2);
            assert_eq!(second.as_ptr(), start.wrapping_add(N), "next to the first");
            assert!(!second.is_unique(), "in a chunk");
            drop((first, second));
            let per_chunk = BODY_CHUNK / N;
            let reused = (0..per_chunk).any(|i| {
                let b = body(i);
                assert_eq!(&b[..], &[i as u8; N]);
                b.as_ptr() == start
            });
            assert!(reused, "the chunk was used again from its start");

            let kept = body(7);
            let kept_at = kept.as_ptr();
            for i in 0..3 * per_chunk {
                let b = body(i);
                assert_ne!(b.as_ptr(), kept_at, "a kept body is never overwritten");
            }
            assert_eq!(&kept[..], &[7; N]);

            // Every chunk busy: the next body is an allocation of its own; once bodies are gone,
            // chunks again.
            let live: Vec<Bytes> = (0..MAX_BODY_CHUNKS * per_chunk).map(body).collect();
            assert!(body(3).is_unique(), "beyond the chunks: an allocation of its own");
            drop((live, kept));
            assert!((0..2 * per_chunk).all(|i| !body(i).is_unique()), "chunks used again");

            for n in [CHUNKED_MIN - 1, BODY_CHUNK + 1] {
                assert!(copy_body(&vec![5; n]).is_unique(), "{n} octets: an allocation of its own");
            }
            let whole = copy_body(&vec![6; BODY_CHUNK]);
            assert!(!whole.is_unique(), "a chunk's worth: in a chunk");
        })
        .join()
        .expect("test thread");
    }
}
