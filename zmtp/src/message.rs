//! [`Message`]: a multipart ZeroMQ message, a list of [`Bytes`] frames.
//!
//! Frames are reference-counted: a received frame points into the connection's read buffer, and a
//! message sent to many peers shares its bodies instead of copying them.

use bytes::Bytes;
use smallvec::SmallVec;

/// Frames kept inline before the message allocates: most messages have one or two (a routing
/// envelope and a body).
type Frames = SmallVec<[Bytes; 2]>;

/// A multipart message. Most messages have one frame; an empty message has none on the API side
/// but is sent as one empty frame, as libzmq does.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    frames: Frames,
}

impl Message {
    /// A message with no frames.
    pub fn new() -> Message {
        Message { frames: Frames::new() }
    }

    /// A message with room for `n` frames.
    pub fn with_capacity(n: usize) -> Message {
        Message { frames: Frames::with_capacity(n) }
    }

    /// Appends a frame.
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
    pub fn first(&self) -> Option<&Bytes> {
        self.frames.first()
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the message has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total octets of all frame bodies.
    pub fn total_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }

    /// The frames in order.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames.iter()
    }

    /// Splits the message after its first `n` frames: `self` keeps the head, the tail is returned.
    pub fn split_off(&mut self, n: usize) -> Message {
        let n = n.min(self.frames.len());
        Message { frames: self.frames.drain(n..).collect() }
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
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(frames: Vec<Bytes>) -> Message {
        Message { frames: Frames::from_vec(frames) }
    }
}

impl From<Bytes> for Message {
    fn from(frame: Bytes) -> Message {
        let mut frames = Frames::new();
        frames.push(frame);
        Message { frames }
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

impl From<&str> for Message {
    fn from(frame: &str) -> Message {
        Message::from(Bytes::copy_from_slice(frame.as_bytes()))
    }
}

impl From<&[u8]> for Message {
    fn from(frame: &[u8]) -> Message {
        Message::from(Bytes::copy_from_slice(frame))
    }
}

impl<const N: usize> From<[&str; N]> for Message {
    fn from(frames: [&str; N]) -> Message {
        Message { frames: frames.iter().map(|f| Bytes::copy_from_slice(f.as_bytes())).collect() }
    }
}

impl<const N: usize> From<[Bytes; N]> for Message {
    fn from(frames: [Bytes; N]) -> Message {
        Message { frames: frames.into_iter().collect() }
    }
}

impl FromIterator<Bytes> for Message {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Message {
        Message { frames: iter.into_iter().collect() }
    }
}
