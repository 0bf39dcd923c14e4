//! A pipe's queue, from the application to one connection: messages, and runs of small messages
//! the application's `send` already framed for the wire.
//!
//! On tokio's multi-threaded runtime the application and the connection task run on different
//! threads. A small message (`Message::from(&[u8])`: one allocation for its body) was allocated by
//! the application and freed by the connection task once encoded, on another thread: glibc's
//! `malloc` and `free` were 13–20% of a PUSH sender's samples at 16 B (cross-thread frees contend
//! on the arena lock, perf, session 6). So while the pipe's connection frames messages in
//! plaintext (NULL, PLAIN: [`Wire::set_encode`], set by the connection when its handshake ends,
//! cleared when it ends), a message of at most [`ENCODE_MAX`] framed octets is encoded into a run
//! at the back of the queue under the lock the send takes anyway, and dropped by the application
//! on its own thread. The connection takes a run whole and copies its octets to its output; the
//! run's buffer comes back to the queue as a spare for the next run.
//!
//! The rules around it:
//! - the high-water mark still counts messages (a run counts as many as it holds, `Slot::packed`);
//! - the order between runs and messages is the order of the sends (a run only grows at the
//!   back of the queue);
//! - larger messages stay as they are (bodies written by reference, without a copy);
//! - a run is plaintext ZMTP 3 frames; a consumer that does not frame in plaintext (a CURVE
//!   connection that took over the pipe after a reconnect, inproc) takes its messages back out
//!   of it ([`Run::into_messages`]), so no run is ever written for another framing.

use std::collections::VecDeque;
use std::task::Waker;

use bytes::{Bytes, BytesMut};

use super::queue::{self, Chan, Slot, Store, TrySendError, Tx};
use crate::codec::frame::{self, Frame, FrameDecoder};
use crate::proto::Connection;
use crate::Message;

/// Messages of at most this many octets framed (headers included) are encoded by the sender.
/// Larger ones are copied once into the connection's output anyway, or written by reference
/// (from 2 KiB over tcp).
pub(crate) const ENCODE_MAX: usize = 512;
/// A run stops growing at this many octets; the next message starts another.
const RUN_MAX: usize = 32 * 1024;
/// A run's first allocation.
const RUN_START: usize = 1024;
/// Runs of at least this many octets are written by reference, not copied into the output.
const RUN_BY_REFERENCE: usize = 16 * 1024;

/// What a pipe holds: a message, or a run of messages framed already.
#[derive(Debug)]
pub(crate) enum Out {
    Msg(Message),
    /// A message fanned out to several pipes (a PUB's), never encoded by the sender: its bodies
    /// are shared, so it would be encoded once per subscriber, one after the other on the
    /// application's thread, each pipe's run allocated anew (PUB to 100 SUBs, 256 B: 4.1
    /// allocations per message published on the current-thread runtime and 5.1-5.6 on the
    /// multi-threaded one, against 2.9-3.1 and 2.3-2.5 with its connections encoding it, each on
    /// its own).
    Shared(Message),
    Run(Run),
}

/// Messages encoded as plaintext ZMTP 3 frames, in order.
#[derive(Debug)]
pub(crate) struct Run {
    /// The frames.
    pub frames: BytesMut,
    /// How many messages they make.
    pub count: usize,
}

impl Run {
    /// The messages back (for a consumer that does not frame in plaintext). The frames were
    /// encoded here, so they decode; an incomplete tail (none is ever written) would be dropped.
    pub(crate) fn into_messages(mut self) -> Vec<Message> {
        let mut out = Vec::with_capacity(self.count);
        let mut decoder = FrameDecoder::new(u64::MAX);
        let mut parts = Message::new();
        let mut empty = true;
        while let Ok(Some(Frame::Message { more, body })) = decoder.decode(&mut self.frames) {
            // A message of no frames is sent as one empty frame: it comes back as sent.
            if !(body.is_empty() && !more && empty) {
                parts.push_back(body);
            }
            empty = false;
            if !more {
                out.push(std::mem::take(&mut parts));
                empty = true;
            }
        }
        out
    }
}

impl Out {
    /// Queues this for the peer on `conn`: a message, or a run's frames as they are (taken
    /// apart into messages if `conn` does not frame in plaintext). A run's buffer goes to `spare`
    /// to be given back to the queue ([`PipeQueue::try_recv_many`]); a message's bodies, copied
    /// into the output (or shared with it, then handed back again once written), to `written`
    /// if given, for the application to free ([`PipeQueue::give_back`]).
    #[inline]
    pub(crate) fn send(self, conn: &mut Connection, spare: &mut Option<BytesMut>, written: Option<&mut Vec<Bytes>>) {
        match self {
            Out::Msg(m) | Out::Shared(m) => {
                conn.send_message(&m);
                // An inline body (`Message::from(&[u8])`, small) was copied: nothing to free.
                if let (Some(written), None) = (written, m.inline_body()) {
                    written.extend(m);
                }
            }
            // A large run is written as it is: copying it into the output cost a copy of every
            // octet (PUSH→PULL 256 B: about 250 instructions a message, callgrind, which counts
            // a `rep movsb` per octet). Its buffer is not given back: the next run after a full
            // one is allocated whole anyway.
            Out::Run(Run { frames, count }) => match conn.send_encoded(frames, RUN_BY_REFERENCE) {
                Ok(Some(copied)) => recycle(copied, spare),
                Ok(None) => {}
                Err(frames) => {
                    for m in (Run { frames, count }).into_messages() {
                        conn.send_message(&m);
                    }
                }
            },
        }
    }
}

/// The messages an [`Out`] holds, in order.
pub(crate) enum Messages {
    One(Option<Message>),
    Many(std::vec::IntoIter<Message>),
}

impl Iterator for Messages {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        match self {
            Messages::One(m) => m.take(),
            Messages::Many(it) => it.next(),
        }
    }
}

impl IntoIterator for Out {
    type Item = Message;
    type IntoIter = Messages;
    fn into_iter(self) -> Messages {
        match self {
            Out::Msg(m) | Out::Shared(m) => Messages::One(Some(m)),
            Out::Run(run) => Messages::Many(run.into_messages().into_iter()),
        }
    }
}

/// Octets `msg` takes framed, if at most [`ENCODE_MAX`].
#[inline]
fn framed_len(msg: &Message) -> Option<usize> {
    let mut n = 0;
    for body in msg.bodies() {
        n += frame::header_len(body.len()) + body.len();
        if n > ENCODE_MAX {
            return None;
        }
    }
    // A message of no frames is one empty frame.
    Some(n.max(2))
}

/// Appends `msg`'s frames to `dst`.
#[inline]
fn encode(dst: &mut BytesMut, msg: &Message) {
    if msg.is_empty() {
        frame::encode_header(dst, false, false, 0);
        return;
    }
    let last = msg.len() - 1;
    for (i, body) in msg.bodies().enumerate() {
        frame::encode_header(dst, i < last, false, body.len());
        dst.extend_from_slice(body);
    }
}

/// A small message framed once, to be copied into the runs of several pipes (a PUB's fan-out):
/// each subscriber's copy is then a copy of octets into a buffer only its connection touches,
/// not a clone of the message's bodies (a reference count shared by every subscriber's
/// connection, on every thread, and a body freed by whichever drops it last) encoded again by
/// each connection.
#[derive(Debug, Default)]
pub(crate) struct Framed {
    frames: BytesMut,
}

impl Framed {
    /// Frames `msg`, if it takes at most [`ENCODE_MAX`] octets framed; `false` (and nothing
    /// framed) if it takes more.
    pub(crate) fn set(&mut self, msg: &Message) -> bool {
        self.frames.clear();
        let Some(len) = framed_len(msg) else { return false };
        self.frames.reserve(len);
        encode(&mut self.frames, msg);
        true
    }
}

/// The store of a pipe's queue.
pub(crate) struct Wire {
    slot: Slot<Out>,
    /// Whether the connection frames in plaintext now (small messages are encoded here).
    encode: bool,
    /// A run's buffer given back by the connection, for the next run.
    spare: BytesMut,
    /// Octets of the run last appended to: a run started in an empty queue is made that large at
    /// once, not grown from [`RUN_START`] by doubling (only in an empty queue: a queue of runs
    /// split by larger messages keeps each one small). A run the connection wrote by reference
    /// (at least [`RUN_BY_REFERENCE`]) never comes back as a spare, so each one after it was
    /// grown anew: a PUB on the current-thread runtime, whose connections take a run of up to
    /// 64 messages at each of the publisher's yields, allocated about one buffer per message
    /// published (10 SUBs, 256 B: 2.2 allocations per message published against 1.2 on the
    /// multi-threaded runtime, where the connections take shorter runs that come back).
    last_run: usize,
    /// Bodies the connection wrote by reference, handed back for the application's next send
    /// to free on its own thread ([`PipeQueue::give_back`]).
    written: Vec<Bytes>,
    /// Their octets.
    written_len: usize,
    /// The doorbell an application outside the runtime's tasks rings instead of waking the
    /// connection (`bell`).
    #[cfg(unix)]
    bell: super::bell::Want,
    /// The socket may stage messages for this pipe on its side ([`Staged`]): set under this lock
    /// by the push that lets it, before any is staged; never cleared (a staged run may wait for
    /// the pipe's next connection). Its connection then looks at the socket's side too before
    /// it waits.
    staging: bool,
}

/// At most this many bodies, and [`GIVE_BACK_OCTETS`], wait in a pipe for the application to
/// free them; beyond, the connection frees them itself.
const GIVE_BACK_MAX: usize = 1024;
const GIVE_BACK_OCTETS: usize = 1 << 20;

impl Wire {
    /// Appends one message of `len` octets framed, written by `write`, at the back of the queue.
    #[inline]
    fn push_encoded(&mut self, len: usize, write: impl FnOnce(&mut BytesMut)) {
        let mut start = RUN_START;
        if let Some(Out::Run(run)) = self.slot.items.back_mut() {
            if run.frames.len() + len <= RUN_MAX {
                run.frames.reserve(len);
                write(&mut run.frames);
                run.count += 1;
                self.slot.packed += 1;
                self.last_run = run.frames.len();
                return;
            }
            // The run before is full: the application streams, and this one will fill too. Made
            // whole at once, not grown from RUN_START by doubling: five `realloc`s per run, each
            // copying what it held (PUSH→PULL 256 B, callgrind: about 4,600 per 120,000 messages,
            // when only one spare comes back per take).
            start = RUN_MAX;
        } else if self.slot.items.is_empty() {
            // The connection took everything: the next run is likely as long as the last one.
            start = self.last_run.clamp(RUN_START, RUN_MAX);
        }
        let mut frames = std::mem::take(&mut self.spare);
        frames.reserve(len.max(start));
        write(&mut frames);
        self.last_run = frames.len();
        self.slot.items.push_back(Out::Run(Run { frames, count: 1 }));
    }

    /// Queues `msg`: encoded into the run at the back if the connection frames in plaintext and
    /// it is small (then given back, to be dropped after the lock), else as it is. Taken as a
    /// message, not as an [`Out`]: wrapped into one and unwrapped again, it was copied twice more
    /// (PUSH 16 B, callgrind: about 25 instructions a message).
    #[inline(always)]
    fn push_message(&mut self, msg: Message) -> Option<Message> {
        if self.encode {
            if let Some(len) = framed_len(&msg) {
                self.push_encoded(len, |dst| encode(dst, &msg));
                return self.with_written(Some(msg));
            }
        }
        self.slot.items.push_back(Out::Msg(msg));
        self.with_written(None)
    }

    /// Queues a fanned-out message: its frames copied into the run if the connection frames in
    /// plaintext, else a clone of the message ([`Out::Shared`]).
    #[inline]
    fn push_framed(&mut self, framed: &Framed, msg: &Message) -> Option<Message> {
        if self.encode {
            self.push_encoded(framed.frames.len(), |dst| dst.extend_from_slice(&framed.frames));
        } else {
            self.slot.items.push_back(Out::Shared(msg.clone()));
        }
        self.with_written(None)
    }

    /// `spent`, with the bodies handed back if there are (taken: the application frees them).
    #[inline(always)]
    fn with_written(&mut self, spent: Option<Message>) -> Option<Message> {
        if self.written.is_empty() {
            return spent;
        }
        self.written_len = 0;
        let mut written = std::mem::take(&mut self.written);
        written.extend(spent.into_iter().flatten());
        Some(Message::from(written))
    }

    /// Queues a run staged on the socket's side ([`Staged`]) at the back, and notes what the
    /// stage needs to know: how many are queued or reserved, and whether the connection frames
    /// in plaintext (staging is allowed from now on if so).
    #[inline]
    fn push_staged(&mut self, run: Run) -> Look {
        self.slot.packed += run.count - 1;
        self.slot.items.push_back(Out::Run(run));
        self.look()
    }

    /// What [`Staged`] needs to know after a push.
    #[inline(always)]
    fn look(&mut self) -> Look {
        self.staging |= self.encode;
        Look { held: self.slot.queued() + self.slot.reserved, encode: self.encode }
    }

    /// `out` taken from the queue: the messages it held no longer count.
    #[inline(always)]
    fn taken(&mut self, out: &Out) {
        if let Out::Run(run) = out {
            self.slot.packed -= run.count - 1;
        }
    }
}

impl Store for Wire {
    type Item = Out;
    type Key = ();
    type Place = ();
    type Drained = VecDeque<Out>;
    /// What to drop after the lock: the message encoded, and the bodies handed back (carried as
    /// the frames of one `Message`: the common case, nothing handed back, costs what it did before
    /// they were; a struct of both cost about 70 instructions a message in moves and drop glue).
    type Spent = Option<Message>;

    #[inline(always)]
    fn key(_: &Out) {}

    #[inline(always)]
    fn place(&mut self, (): ()) {}

    #[inline(always)]
    fn slot(&mut self, (): ()) -> &mut Slot<Out> {
        &mut self.slot
    }

    #[inline(always)]
    fn push(&mut self, (): (), item: Out) -> Option<Message> {
        match item {
            Out::Msg(msg) => self.push_message(msg),
            item => {
                self.slot.items.push_back(item);
                self.with_written(None)
            }
        }
    }

    #[inline(always)]
    fn pop(&mut self, capacity: usize, woken: &mut Vec<Waker>) -> Option<Out> {
        let out = self.slot.items.pop_front()?;
        self.taken(&out);
        *woken = self.slot.waiters_after_take(capacity);
        Some(out)
    }

    fn released(&mut self, (): ()) {}

    fn drain(&mut self, waiters: &mut Vec<Waker>) -> VecDeque<Out> {
        waiters.append(&mut self.slot.tx_waiters);
        self.slot.packed = 0;
        std::mem::take(&mut self.slot.items)
    }

    #[cfg(unix)]
    #[inline]
    fn bell(&mut self) -> Option<std::sync::Arc<queue::Ring>> {
        self.bell.ring_for_sender()
    }
}

/// What [`Wire::look`] tells a [`Staged`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Look {
    /// Messages queued or reserved.
    held: usize,
    /// Whether the connection frames in plaintext.
    encode: bool,
}

/// Small messages a PUSH's or DEALER's only pipe holds on the socket's side, under the socket's
/// lock (which every send takes anyway), while the pipe's connection is busy: each such send then
/// takes one lock, not two. The connection takes them (`Core::take_staged`) when it finds its
/// queue empty, before it waits; having found nothing there either, it marks itself waiting
/// (under the socket's lock too), and the next send goes into the queue and wakes it, so that a
/// message sent and not followed is never left behind. What is staged comes after everything
/// queued: the connection takes it only while the queue is empty, and any other push into the
/// queue puts it in first ([`PipeTx::try_send_staging`], [`PipeTx::publish`]).
///
/// The high-water mark: at most the capacity less what was queued or reserved at the last push
/// (`room`) is staged; the connection only ever takes from the queue, so what is queued plus what
/// is staged stays within the capacity. A run is staged only while the connection frames in
/// plaintext (seen at the last push).
#[derive(Debug)]
pub(crate) struct Staged {
    /// The pipe's capacity.
    capacity: usize,
    /// Made once a push saw the connection framing in plaintext: a pipe that never stages keeps
    /// a pointer, not the run and its counts (a ROUTER's thousands of idle pipes).
    stage: Option<Box<Stage>>,
}

/// What a [`Staged`] that stages holds.
#[derive(Debug, Default)]
struct Stage {
    run: Option<Run>,
    /// How many more may be staged.
    room: usize,
    /// The connection framed in plaintext at the last push.
    encode: bool,
    /// The connection found the queue and this empty and waits.
    waiting: bool,
    /// No more staging (the socket is closing).
    closed: bool,
    /// A written run's buffer, given back by the connection, for the next run.
    spare: BytesMut,
    /// Octets of the last run: the next one starts that large.
    last_run: usize,
}

impl Staged {
    pub(crate) fn new(capacity: usize) -> Staged {
        Staged { capacity, stage: None }
    }

    /// Stages `msg` if it may be (given back if not: the caller queues it, after what is
    /// staged). Returns the message, encoded, to drop.
    #[inline]
    pub(crate) fn stage(&mut self, msg: Message) -> Result<Message, Message> {
        let Some(st) = self.stage.as_deref_mut() else { return Err(msg) };
        if st.waiting || st.room == 0 || !st.encode || st.closed {
            return Err(msg);
        }
        let Some(len) = framed_len(&msg) else { return Err(msg) };
        match &mut st.run {
            Some(run) if run.frames.len() + len <= RUN_MAX => {
                run.frames.reserve(len);
                encode(&mut run.frames, &msg);
                run.count += 1;
                st.last_run = run.frames.len();
            }
            Some(_) => return Err(msg),
            None => {
                let mut frames = std::mem::take(&mut st.spare);
                frames.reserve(len.max(st.last_run.clamp(RUN_START, RUN_MAX)));
                encode(&mut frames, &msg);
                st.last_run = frames.len();
                st.run = Some(Run { frames, count: 1 });
            }
        }
        st.room -= 1;
        Ok(msg)
    }

    /// The run staged, taken.
    #[inline]
    fn take_run(&mut self) -> Option<Run> {
        self.stage.as_mut()?.run.take()
    }

    /// After a push into the queue (the connection, if it waited, is woken).
    #[inline]
    fn looked(&mut self, look: Look) {
        if self.stage.is_none() {
            if !look.encode {
                return;
            }
            self.stage = Some(Box::default());
        }
        if let Some(st) = self.stage.as_deref_mut() {
            let staged = st.run.as_ref().map_or(0, |r| r.count);
            st.room = self.capacity.saturating_sub(look.held + staged);
            st.encode = look.encode;
            st.waiting = false;
        }
    }

    /// No more staging: the socket is closing (what is staged was published).
    pub(crate) fn close(&mut self) {
        if let Some(st) = self.stage.as_deref_mut() {
            st.closed = true;
        }
    }
}

/// The socket's end of a pipe's queue.
#[derive(Clone, Debug)]
pub(crate) struct PipeTx(Tx<Wire>);

impl PipeTx {
    /// Queues `msg` if there is room (encoded if small and the connection frames in plaintext).
    #[inline]
    pub(crate) fn try_send(&self, msg: Message) -> Result<(), TrySendError<Message>> {
        self.0.try_send_with((), msg, |w, (), msg| w.push_message(msg))
    }

    /// [`PipeTx::try_send`] for a pipe that stages (`staged`): what is staged goes into the
    /// queue first, then `msg`; `staged` notes what it needs to stage the next ones (see
    /// [`Staged`]).
    #[inline]
    pub(crate) fn try_send_staging(&self, msg: Message, staged: &mut Staged) -> Result<(), TrySendError<Message>> {
        self.publish(staged);
        let mut look = None;
        self.0.try_send_with((), msg, |w, (), msg| {
            let spent = w.push_message(msg);
            look = Some(w.look());
            spent
        })?;
        if let Some(look) = look {
            staged.looked(look);
        }
        Ok(())
    }

    /// Queues what `staged` holds, waking the connection if it waits: before a message that is
    /// not staged goes into the queue, at close, and when another pipe comes.
    #[inline]
    pub(crate) fn publish(&self, staged: &mut Staged) {
        if let Some(run) = staged.take_run() {
            if let Some(look) = self.0.push_waking(|w| w.push_staged(run)) {
                staged.looked(look);
            }
        }
    }

    /// The connection's side, under the socket's lock, once it found the queue empty: takes what
    /// is staged if the queue is still empty (else `None`: what was put in the queue meanwhile
    /// comes first, and its push woke the connection). With nothing staged and `wait` set, the
    /// connection is about to wait: the next send goes into the queue and wakes it. `spare`, a
    /// written run's buffer, is kept for the next staged run.
    pub(crate) fn take_staged(&self, staged: &mut Staged, spare: &mut Option<BytesMut>, wait: bool) -> Option<Out> {
        let st = staged.stage.as_deref_mut()?;
        if st.spare.capacity() == 0 {
            if let Some(buf) = spare.take() {
                st.spare = buf;
            }
        }
        let Some(run) = st.run.take() else {
            st.waiting |= wait;
            return None;
        };
        if !self.0.with_store(|w| w.slot.items.is_empty()) {
            st.run = Some(run);
            return None;
        }
        st.room += run.count;
        st.waiting = false;
        Some(Out::Run(run))
    }

    /// Queues `msg`, one of several pipes' copies (fan-out), if there is room; never encoded here
    /// ([`Out::Shared`]).
    #[inline]
    pub(crate) fn try_send_shared(&self, msg: Message) -> Result<(), TrySendError<Message>> {
        self.0.try_send_as((), msg, Out::Shared)
    }

    /// Queues `msg`, one of several pipes' copies (fan-out) framed once as `framed`, if there
    /// is room: `framed`'s octets are copied into the run, or (a connection that does not frame
    /// in plaintext) a clone of `msg` is queued.
    #[inline]
    pub(crate) fn try_send_framed(&self, framed: &Framed, msg: &Message) -> Result<(), TrySendError<()>> {
        self.0.try_send_with((), (), |w, (), ()| w.push_framed(framed, msg))
    }

    /// Registers `cx` to be woken when there is room, unless there is (tests).
    #[cfg(all(test, not(zmtp_loom)))]
    pub(crate) fn poll_reserve(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), ()>> {
        self.0.poll_reserve((), cx)
    }

    /// Waits for room and reserves it. `Err` once the connection's end is gone. Cancel safe.
    pub(crate) async fn reserve(&self) -> Result<Permit<'_>, ()> {
        self.0.reserve_for(()).await.map(Permit)
    }
}

/// Room reserved in a pipe's queue.
pub(crate) struct Permit<'a>(queue::Reserved<'a, Wire>);

impl Permit<'_> {
    /// Queues `msg` into the reserved room.
    pub(crate) fn send(self, msg: Message) {
        self.0.send(Out::Msg(msg));
    }
}

/// The connection's end of a pipe's queue.
#[derive(Debug)]
pub(crate) struct PipeQueue(Chan<Wire>);

/// A pipe's queue of `capacity` messages (at least one).
pub(crate) fn channel(capacity: usize) -> (PipeTx, PipeQueue) {
    let store = Wire {
        slot: Slot::new(),
        encode: false,
        spare: BytesMut::new(),
        last_run: 0,
        written: Vec::new(),
        written_len: 0,
        #[cfg(unix)]
        bell: super::bell::Want::No,
        staging: false,
    };
    let (tx, rx) = queue::channel_of(store, capacity);
    (PipeTx(tx), PipeQueue(rx))
}

impl PipeQueue {
    /// Whether the application may encode small messages for this connection: set when a
    /// connection framing in plaintext is ready, cleared when it ends.
    pub(crate) fn set_encode(&self, encode: bool) {
        self.0.with_store(|w| w.encode = encode);
    }

    /// The connection ends: nothing is encoded for the next one until it says so; returns the
    /// bodies handed back and not freed yet, for the connection to free.
    pub(crate) fn end(&self) -> Vec<Bytes> {
        self.0.with_store(|w| {
            w.encode = false;
            w.written_len = 0;
            #[cfg(unix)]
            {
                w.bell = super::bell::Want::No;
            }
            std::mem::take(&mut w.written)
        })
    }

    /// The connection polls `ring`'s bell on every turn from now on (`Some`), or no longer
    /// (`None`: from then on the application wakes it through its waker).
    #[cfg(unix)]
    pub(crate) fn set_bell(&self, ring: Option<std::sync::Arc<queue::Ring>>) {
        self.0.with_store(|w| {
            w.bell = match ring {
                Some(ring) => super::bell::Want::Ready(ring),
                None => super::bell::Want::No,
            }
        });
    }

    /// Hands the bodies in `written` (written by reference, done with) back to the application,
    /// whose next send frees them on its own thread: freed by the connection's thread, each was
    /// a `free` across threads, contending on glibc's arena lock with the application's
    /// `malloc` (PUSH 4 KiB over tcp on the multi-threaded runtime: 80% of the sender's futex
    /// calls, perf). Only while messages are queued (the application is sending: it will take
    /// them soon), and up to [`GIVE_BACK_MAX`] bodies and [`GIVE_BACK_OCTETS`]: the first ones
    /// that fit go back, the rest are freed here (one write can be larger than the limit: a
    /// vectored write of 256 slices over ipc, with its 1 MiB send buffer, took 2 MiB of 16 KiB
    /// bodies, and all of them were freed here). `written` is empty after.
    pub(crate) fn give_back(&self, written: &mut Vec<Bytes>) {
        if written.is_empty() {
            return;
        }
        self.0.with_store(|w| {
            if w.slot.items.is_empty() {
                return;
            }
            let mut room = GIVE_BACK_OCTETS.saturating_sub(w.written_len);
            let mut n = 0;
            for body in written.iter().take(GIVE_BACK_MAX.saturating_sub(w.written.len())) {
                if body.len() > room {
                    break;
                }
                room -= body.len();
                n += 1;
            }
            w.written_len = GIVE_BACK_OCTETS - room;
            w.written.extend(written.drain(..n));
        });
        written.clear();
    }

    /// Wakes the senders waiting for room now, before the queue is down to its low-water mark
    /// (the engine's `EARLY_WAKE`: large bodies written). A woken sender finds room (messages
    /// were taken since it waited) or waits again.
    /// Whether one was waiting.
    pub(crate) fn wake_senders(&self) -> bool {
        let waiters = self.0.with_store(|w| std::mem::take(&mut w.slot.tx_waiters));
        let any = !waiters.is_empty();
        queue::wake_all(waiters);
        any
    }

    /// Waits for the next item; `None` once the socket's end is gone and nothing is queued.
    /// Cancel safe.
    pub(crate) async fn recv(&self) -> Option<Out> {
        self.0.recv().await
    }

    /// Takes the next item, or registers `cx` to be woken when one comes (`None` once the
    /// socket's end is gone and nothing is queued); and, when nothing is queued, whether the
    /// socket may have staged messages for this pipe on its side ([`Staged`]: the connection
    /// looks there before it waits).
    #[inline]
    pub(crate) fn poll_recv_staging(&self, cx: &mut std::task::Context<'_>) -> (std::task::Poll<Option<Out>>, bool) {
        let (poll, staging) = self.0.poll_recv_noting(cx, |w| w.staging);
        (poll, staging.unwrap_or(false))
    }

    /// The next item, if one is queued.
    pub(crate) fn try_recv(&self) -> Option<Out> {
        self.0.try_recv()
    }

    /// Moves up to `max` queued items to the back of `out` under one lock, and gives back the
    /// buffer of a run written meanwhile (`spare`, kept for the next run); returns how many.
    /// `bell_asked` is set if the application asked for a doorbell (`bell`) and has none.
    pub(crate) fn try_recv_many(
        &self,
        out: &mut VecDeque<Out>,
        max: usize,
        spare: &mut Option<BytesMut>,
        bell_asked: &mut bool,
    ) -> usize {
        self.0.take_with(|w, capacity| {
            #[cfg(unix)]
            {
                *bell_asked = matches!(w.bell, super::bell::Want::Asked);
            }
            #[cfg(not(unix))]
            {
                *bell_asked = false;
            }
            // Kept by the connection if the queue has one: a pipe that stages (`Staged`) wants
            // it back for its next staged run (dropped here, each was freed on this thread and
            // allocated again on the application's: glibc's arena lock, half of a PUSH 16 B
            // sender's futex calls).
            if w.spare.capacity() == 0 {
                if let Some(buf) = spare.take() {
                    w.spare = buf;
                }
            }
            let n = w.slot.items.len().min(max);
            if n == 0 {
                return (0, Vec::new());
            }
            if n == w.slot.items.len() && out.is_empty() {
                // All of it: swap buffers rather than move items one by one.
                std::mem::swap(&mut w.slot.items, out);
                w.slot.packed = 0;
                return (n, w.slot.waiters_after_take(capacity));
            }
            for _ in 0..n {
                let Some(item) = w.slot.items.pop_front() else { break };
                w.taken(&item);
                out.push_back(item);
            }
            (n, w.slot.waiters_after_take(capacity))
        })
    }

    /// Puts back at the front an item just taken, which could not be sent (its connection had
    /// gone): it keeps its place for the next connection. It may exceed the capacity.
    pub(crate) fn put_back(&self, out: Out) {
        self.0.with_store(|w| {
            if let Out::Run(run) = &out {
                w.slot.packed += run.count - 1;
            }
            w.slot.items.push_front(out);
        });
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.with_store(|w| w.slot.items.is_empty())
    }

    /// The next item if it is a message (tests: pipes whose connection frames nothing).
    #[cfg(test)]
    pub(crate) fn try_recv_msg(&self) -> Option<Message> {
        match self.try_recv()? {
            Out::Msg(m) | Out::Shared(m) => Some(m),
            Out::Run(_) => None,
        }
    }
}

/// A run's buffer once written, kept to be given back to the queue (small ones only).
#[inline]
pub(crate) fn recycle(mut frames: BytesMut, spare: &mut Option<BytesMut>) {
    if spare.is_none() && frames.capacity() <= 2 * RUN_MAX {
        frames.clear();
        *spare = Some(frames);
    }
}

#[cfg(all(test, not(zmtp_loom)))]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::proto::tests::{curve_configs, drain, pair, shuttle_all};
    use crate::proto::{Config, Event, SocketType};

    /// Small and large, single and multipart, an empty message and empty frames, a body with a
    /// long header, in an order that interleaves runs and messages.
    fn mixed() -> Vec<Message> {
        vec![
            Message::from(&b"one"[..]),
            Message::from(["two", "", "parts"]),
            Message::new(),
            Message::from(vec![7u8; 300]),
            Message::from(vec![8u8; 4000]),
            Message::from(&b"after a large one"[..]),
            Message::from(vec![Bytes::from(vec![1u8; 200]), Bytes::from(vec![2u8; 400])]),
            Message::from(&b"last"[..]),
        ]
    }

    fn items(q: &PipeQueue) -> Vec<Out> {
        std::iter::from_fn(|| q.try_recv()).collect()
    }

    /// A run started in a queue the connection emptied is made as large as the last run at once;
    /// one started behind a message that is not a run is not.
    #[test]
    fn a_run_after_a_long_one_is_allocated_whole() {
        let (tx, rx) = channel(1000);
        rx.set_encode(true);
        let body = vec![5u8; 256];
        for _ in 0..64 {
            tx.try_send(Message::from(&body[..])).expect("room");
        }
        let long = match items(&rx).as_slice() {
            [Out::Run(run)] => run.frames.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(long, 64 * (9 + 256));
        tx.try_send(Message::from(&body[..])).expect("room");
        match items(&rx).as_slice() {
            [Out::Run(run)] => assert!(run.frames.capacity() >= long, "{}", run.frames.capacity()),
            other => panic!("{other:?}"),
        }
        // Behind a large message, the run starts small again.
        tx.try_send(Message::from(vec![1u8; 4000])).expect("room");
        tx.try_send(Message::from(&body[..])).expect("room");
        match items(&rx).as_slice() {
            [Out::Msg(_), Out::Run(run)] => assert!(run.frames.capacity() < long, "{}", run.frames.capacity()),
            other => panic!("{other:?}"),
        }
    }

    /// The high-water mark counts messages, not runs; what a run holds comes out in order with
    /// the messages around it; taking a run frees room for all it held.
    #[test]
    fn runs_count_as_their_messages_and_keep_the_order() {
        let (tx, rx) = channel(5);
        rx.set_encode(true);
        for i in 0..5u8 {
            tx.try_send(Message::from(vec![i])).expect("room");
        }
        assert!(matches!(tx.try_send(Message::from(&b"6"[..])), Err(TrySendError::Full(_))));
        let taken = items(&rx);
        assert!(matches!(taken.as_slice(), [Out::Run(Run { count: 5, .. })]), "{taken:?}");
        for i in 0..5u8 {
            tx.try_send(Message::from(vec![i])).expect("room again");
        }
        let _ = items(&rx);

        let (tx, rx) = channel(100);
        rx.set_encode(true);
        for m in mixed() {
            tx.try_send(m).expect("room");
        }
        let taken = items(&rx);
        let kinds: Vec<_> = taken
            .iter()
            .map(|o| match o {
                Out::Msg(_) | Out::Shared(_) => 0,
                Out::Run(r) => r.count,
            })
            .collect();
        // Three small ones in a run, the one of 606 octets framed and the 4000 as they are.
        assert_eq!(kinds, [4, 0, 1, 0, 1]);
        let back: Vec<Message> = taken.into_iter().flatten().collect();
        assert_eq!(back, mixed());

        // A fanned-out message is left to the connection.
        let (tx, rx) = channel(100);
        rx.set_encode(true);
        tx.try_send_shared(Message::from(&b"fanned out"[..])).expect("room");
        tx.try_send(Message::from(&b"alone"[..])).expect("room");
        assert!(matches!(items(&rx).as_slice(), [Out::Shared(_), Out::Run(Run { count: 1, .. })]));

        // A small fanned-out message framed once: its octets join the run, counted as one
        // message each, in order with what is sent around them; a large one is not framed.
        let mut framed = Framed::default();
        let fanned = Message::from(["fanned", "out"]);
        assert!(framed.set(&fanned));
        assert!(!Framed::default().set(&Message::from(vec![0u8; ENCODE_MAX])));
        let (tx, rx) = channel(3);
        rx.set_encode(true);
        tx.try_send_framed(&framed, &fanned).expect("room");
        tx.try_send(Message::from(&b"alone"[..])).expect("room");
        tx.try_send_framed(&framed, &fanned).expect("room");
        assert!(matches!(tx.try_send_framed(&framed, &fanned), Err(TrySendError::Full(()))));
        let taken = items(&rx);
        assert!(matches!(taken.as_slice(), [Out::Run(Run { count: 3, .. })]), "{taken:?}");
        let back: Vec<Message> = taken.into_iter().flatten().collect();
        assert_eq!(back, [fanned.clone(), Message::from(&b"alone"[..]), fanned.clone()]);
        // To a connection that does not frame in plaintext, a clone of the message.
        let (tx, rx) = channel(3);
        tx.try_send_framed(&framed, &fanned).expect("room");
        let taken = items(&rx);
        assert!(matches!(taken.as_slice(), [Out::Shared(m)] if *m == fanned), "{taken:?}");
        drop(rx);
        assert!(matches!(tx.try_send_framed(&framed, &fanned), Err(TrySendError::Closed(()))));

        // Not encoded unless the connection said so.
        let (tx, rx) = channel(100);
        tx.try_send(Message::from(&b"x"[..])).expect("room");
        assert!(matches!(items(&rx).as_slice(), [Out::Msg(_)]));
    }

    /// A run starts small; the one after a full run is made whole at once (no growing by
    /// `realloc` while the application streams).
    #[test]
    fn a_run_after_a_full_one_is_made_whole() {
        let (tx, rx) = channel(10_000);
        rx.set_encode(true);
        let body = vec![5u8; 250];
        tx.try_send(Message::from(body.clone())).expect("room");
        let first_capacity = rx.0.with_store(|w| match w.slot.items.back() {
            Some(Out::Run(run)) => run.frames.capacity(),
            other => panic!("{other:?}"),
        });
        assert!(first_capacity < RUN_MAX, "{first_capacity}");
        let mut sent = 1;
        while rx.0.with_store(|w| w.slot.items.len()) < 2 {
            tx.try_send(Message::from(body.clone())).expect("room");
            sent += 1;
        }
        let (full, next) = rx.0.with_store(|w| match (w.slot.items.front(), w.slot.items.back()) {
            (Some(Out::Run(a)), Some(Out::Run(b))) => (a.frames.len(), b.frames.capacity()),
            other => panic!("{other:?}"),
        });
        assert!(full > RUN_MAX - 252 && full <= RUN_MAX, "{full}");
        assert!(next >= RUN_MAX, "{next}");
        let back: Vec<Message> = items(&rx).into_iter().flatten().collect();
        assert_eq!(back.len(), sent);
        assert!(back.iter().all(|m| m.frames()[0][..] == body[..]));
    }

    /// A run put back (its connection had gone) keeps its place and its count.
    #[test]
    fn a_run_put_back_counts_again() {
        let (tx, rx) = channel(4);
        rx.set_encode(true);
        for i in 0..3u8 {
            tx.try_send(Message::from(vec![i])).expect("room");
        }
        let run = rx.try_recv().expect("queued");
        tx.try_send(Message::from(&b"3"[..])).expect("room");
        rx.put_back(run);
        assert!(matches!(tx.try_send(Message::from(&b"4"[..])), Err(TrySendError::Full(_))));
        let back: Vec<Message> = items(&rx).into_iter().flatten().collect();
        assert_eq!(back.len(), 4);
        assert_eq!(back[3], Message::from(&b"3"[..]));
    }

    /// Written bodies are handed back only while messages are queued, up to the bounds (the
    /// first ones that fit); the next send takes them (to free after its lock); the connection's end takes the rest.
    #[test]
    fn written_bodies_wait_for_the_next_send_within_bounds() {
        let (tx, rx) = channel(1000);
        let body = Bytes::from(vec![1u8; 16]);
        let mut written = vec![body.clone()];
        rx.give_back(&mut written);
        assert!(written.is_empty());
        assert!(body.is_unique(), "nothing queued: freed by the connection");
        tx.try_send(Message::from(&b"queued"[..])).expect("room");
        let mut written = vec![body.clone(); GIVE_BACK_MAX];
        rx.give_back(&mut written);
        assert!(!body.is_unique(), "kept for the application");
        let mut more = vec![body.clone()];
        rx.give_back(&mut more);
        assert!(more.is_empty(), "beyond the bound: freed by the connection");
        tx.try_send(Message::from(&b"next"[..])).expect("room");
        assert!(body.is_unique(), "the send took them");
        let mut written = vec![body.clone()];
        rx.give_back(&mut written);
        assert!(!body.is_unique());
        drop(rx.end());
        assert!(body.is_unique(), "the connection's end took them");
        // One write's bodies beyond the octets: the first ones that fit go back, the rest are
        // freed by the connection.
        let first = Bytes::from(vec![1u8; GIVE_BACK_OCTETS / 2 + 1]);
        let second = Bytes::from(vec![2u8; GIVE_BACK_OCTETS / 2 + 1]);
        let mut written = vec![first.clone(), second.clone()];
        rx.give_back(&mut written);
        assert!(written.is_empty());
        assert!(!first.is_unique(), "within the octets: kept for the application");
        assert!(second.is_unique(), "beyond the octets: freed by the connection");
        tx.try_send(Message::from(&b"last"[..])).expect("room");
        assert!(first.is_unique(), "the send took it");
    }

    /// A sender waiting for room is woken at the low-water mark, or earlier when the connection
    /// asks (`wake_senders`, after writing large bodies); never with nothing waiting.
    #[test]
    fn a_waiting_sender_is_woken_early_when_asked() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let count = std::sync::Arc::new(Count(0.into()));
        let waker = std::task::Waker::from(count.clone());
        let woken = || count.0.load(std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = channel(10);
        for i in 0..10u8 {
            tx.try_send(Message::from(vec![i; 100])).expect("room");
        }
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(tx.poll_reserve(&mut cx).is_pending());
        assert!(rx.try_recv().is_some());
        assert_eq!(woken(), 0, "above the low-water mark: not woken by a take");
        assert!(rx.wake_senders());
        assert_eq!(woken(), 1, "woken when asked");
        assert!(tx.poll_reserve(&mut cx).is_ready(), "and finds room");
        assert!(!rx.wake_senders());
        assert_eq!(woken(), 1, "nothing waiting: nobody woken");
    }

    /// What the peer decodes from messages sent through a pipe whose sender encoded them: the
    /// same as from the messages sent one by one, over a NULL connection (the run written as
    /// it is) and over a CURVE one (a reconnect to a CURVE peer: the run taken apart and each
    /// message sealed).
    fn through_a_pipe(client: Config, server: Config) {
        let now = Instant::now();
        let (mut a, mut b) = pair(client.clone(), server.clone(), now);
        let (mut ref_a, mut ref_b) = pair(client, server, now);
        assert!(a.is_ready() && b.is_ready());
        drain(&mut b);
        drain(&mut ref_b);
        let (tx, rx) = channel(1000);
        // Encoded as for a plaintext connection, whatever takes them. The mixed ones, then a run
        // large enough to be written by reference.
        rx.set_encode(true);
        let bulk: Vec<Message> = (0..200u8).map(|i| Message::from(vec![i; 100])).collect();
        let sent: Vec<Message> = mixed().into_iter().chain(bulk).collect();
        for m in &sent {
            tx.try_send(m.clone()).expect("room");
            assert!(ref_a.send_message(m));
        }
        let mut spare = None;
        let taken = items(&rx);
        assert!(taken.iter().any(|o| matches!(o, Out::Run(r) if r.frames.len() >= RUN_BY_REFERENCE)));
        for out in taken {
            out.send(&mut a, &mut spare, None);
        }
        assert_eq!(spare.is_some(), a.frames_in_plaintext(), "a written run's buffer is kept");
        let got = shuttle_all(&mut a, &mut b, now).expect("traffic");
        let want = shuttle_all(&mut ref_a, &mut ref_b, now).expect("reference");
        assert_eq!(got.len(), sent.len());
        assert_eq!(got, want);
        assert!(got.iter().all(|e| matches!(e, Event::Message(_))));
    }

    #[test]
    fn runs_reach_a_null_peer_and_a_curve_peer_as_sent() {
        through_a_pipe(Config::new(SocketType::Push), Config::new(SocketType::Pull));
        let (c, s, _) = curve_configs(SocketType::Push, SocketType::Pull);
        through_a_pipe(c, s);
    }
}

/// Model check (`scripts/loom.sh`): a sender waiting for room in a pipe whose messages sit in a
/// run is woken once the connection takes the run (the room counts messages, so it frees all
/// the run held at once).
#[cfg(all(test, zmtp_loom))]
mod loom_models {
    use loom::future::block_on;
    use loom::thread;

    use super::*;

    #[test]
    fn taking_a_run_wakes_a_waiting_sender() {
        loom::model(|| {
            let (tx, rx) = channel(2);
            rx.set_encode(true);
            tx.try_send(Message::from(&b"a"[..])).expect("room");
            tx.try_send(Message::from(&b"b"[..])).expect("room");
            let sender = thread::spawn(move || match block_on(tx.reserve()) {
                Ok(permit) => {
                    permit.send(Message::from(&b"c"[..]));
                    true
                }
                Err(()) => false,
            });
            let mut got = 0;
            while got < 3 {
                match block_on(rx.recv()) {
                    Some(out) => got += out.into_iter().count(),
                    None => break,
                }
            }
            assert_eq!(got, 3);
            assert!(sender.join().expect("sender"));
        });
    }
}
