//! The connection driver: runs one [`Connection`] over one stream, between the pipe's queues and
//! the socket's inbound queue.
//!
//! One task per connection. Each turn of its loop polls, in a fixed order, the close, the write,
//! the message waiting for room in the inbound queue, the timer, the read, the pipe and the
//! subscriptions, and handles the first that is ready (`Turn`); so a peer that does not read
//! never stops us from reading, and a full inbound queue stops reading (back-pressure to the
//! peer) without stopping writes or heartbeats.
//! Outgoing messages are batched: while the socket has a backlog, many messages go out in one
//! vectored write; when idle, a message goes out at once.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::core::{Core, Inbound, Pipe, PipeId, PipeRx};
use super::error::DisconnectReason;
use super::pattern::Control;
use super::session::Session;
use super::wire::Out;
use crate::proto::{Config, Connection, ConnectionError, Event, Incompatibility};
use crate::transport::Stream;

/// Reads start this large; an idle connection keeps no more than this.
const MIN_READ: usize = 1024;
/// Reads grow up to this while they come back full (bulk transfers), and shrink back when they
/// come back small.
const MAX_READ: usize = 256 * 1024;
/// Stop taking messages from the pipe while this much is waiting to be written.
const WRITE_BACKLOG: usize = 256 * 1024;
/// Yield to the other tasks after reading this much in one go, so that the application consumes
/// (and frees) what was received before more is read into fresh buffers.
const YIELD_AFTER: usize = MAX_READ;
/// Read buffers kept as spares while reads are large ([`ReadBuffer`]): enough to cover what a
/// multi-threaded application holds while it catches up (a lane of 1,000 4 KiB messages is 16
/// reads of 256 KiB), so that the buffers are reused, not freed and allocated again (glibc gave
/// freed ones back to the kernel, and each read then faulted its pages in anew).
const READ_SPARES: usize = 16;
/// The spares are let go once no read came for about this long.
const READ_IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);
/// A sender waiting for room in the pipe is woken once bodies of more than [`EARLY_WAKE_BODY`]
/// octets, this many octets of them, were written by reference since it was last woken, not only
/// at the pipe's low-water mark. Such bodies are allocations of their own (a queue of them is
/// beyond `message`'s chunks), and woken only at the low-water mark (500 of 1,000 messages, 32
/// MiB of 64 KiB bodies) the sender found them all freed: glibc gave the heap's top back to the
/// kernel and the next bodies faulted their pages in again. Woken every 1 MiB, it refills the
/// queue in the room just freed (PUSH→PULL 64 KiB ipc, sender page faults in the window:
/// current-thread 0.47–1.01 → 0.08–0.15 a message, multi-threaded 0.49–0.54 → 0.07–0.37).
/// 1 MiB is also what a connection hands back (`wire::GIVE_BACK_OCTETS`): on the multi-threaded
/// runtime the woken sender frees those bodies on its own thread.
const EARLY_WAKE: usize = 1 << 20;
/// Bodies counted for [`EARLY_WAKE`]: larger than this. Smaller ones come from `message`'s chunks
/// (8 MiB a thread hold 1,000 of 8 KiB), and waking the sender every 1 MiB of them only made
/// it sleep and wake more often.
const EARLY_WAKE_BODY: usize = 8 * 1024;

/// Messages taken from the pipe, or handed to the application's queue, per lock while batching.
const BATCH: usize = 64;
/// Slices per vectored write.
const MAX_IOV: usize = 256;
/// Stop taking the connection's output while this many chunks wait to be written. Bulk
/// traffic needs at most two per frame (a header and a body by reference, bodies from
/// ZERO_COPY_TCP up), so WRITE_BACKLOG is reached first; this bounds what tiny chunks (a PONG each
/// turn toward a peer that does not read) can make the queue hold.
const MAX_CHUNKS: usize = 1024;

/// How a connection ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Whether the handshake had finished.
    pub handshook: bool,
    /// Why it ended.
    pub reason: DisconnectReason,
}

/// Bodies written by reference from this size on. Measured with zbench at 4 KiB: over tcp, 2 KiB
/// gave 15–30% more than 8 KiB (one copy less); over ipc it gave 10–20% less (the unix socket
/// copies each iovec separately), so ipc keeps 8 KiB.
const ZERO_COPY_TCP: usize = 2 * 1024;

fn config(core: &Core, accepted: bool, stream: &Stream) -> Result<Config, ConnectionError> {
    let o = &core.options;
    let peer = stream.peer.as_str();
    let mut c = Config::new(core.socket_type);
    c.routing_id = o.routing_id.clone();
    c.properties = o.app_metadata().clone();
    c.peer_address = Bytes::copy_from_slice(stream.peer_address.as_bytes());
    c.as_server = accepted;
    // bind and connect refuse incomplete options, so this fails only if they changed since.
    c.security = o
        .security()
        .map_err(|e| ConnectionError::PeerIncompatible(Incompatibility::OurSecurityOptions(e.to_string())))?;
    c.zap = super::zap::settings(o, &c.security, peer)?;
    let tcp = peer.starts_with("tcp://");
    c.max_msg_size = o.max_msg_size;
    c.heartbeat = o.heartbeat;
    c.handshake_timeout = o.handshake_timeout;
    if tcp {
        c.zero_copy_threshold = ZERO_COPY_TCP;
    }
    Ok(c)
}

/// The pending writes: chunks from the connection, written with vectored IO.
#[derive(Default)]
struct WriteQueue {
    /// Each marked if it is a message's body, written by reference (`poll_transmit_marked`).
    chunks: VecDeque<(Bytes, bool)>,
    /// Message bodies done with (written, or copied into the output), to hand back to the
    /// application to free (`wire::PipeQueue::give_back`).
    written: Vec<Bytes>,
    /// Whether bodies are handed back: on a multi-threaded runtime only (on a current-thread
    /// one the application runs on this thread: nothing to gain, about 250 instructions per
    /// 4 KiB message over tcp to pay, callgrind).
    hand_back: bool,
    len: usize,
    /// Octets of large bodies written by reference since the pipe's waiting senders were last
    /// woken ([`EARLY_WAKE`]).
    bodies_written: usize,
}

impl WriteQueue {
    /// Whether the queue takes more: below WRITE_BACKLOG octets and MAX_CHUNKS chunks. While it
    /// does not, what the connection owes the peer waits there (bounded: messages are taken only
    /// below the backlog, and a PONG owed is one at most).
    fn has_room(&self) -> bool {
        self.len < WRITE_BACKLOG && self.chunks.len() < MAX_CHUNKS
    }

    /// Takes what the connection has to send.
    fn fill(&mut self, conn: &mut Connection) {
        while let Some(c) = conn.poll_transmit_marked() {
            self.len += c.0.len();
            self.chunks.push_back(c);
        }
    }

    /// Frees the queue's room if it is empty (after the handshake: an idle connection keeps
    /// none).
    fn shed(&mut self) {
        if self.chunks.is_empty() {
            self.chunks = VecDeque::new();
        }
        if self.written.is_empty() {
            self.written = Vec::new();
        }
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some((front, _)) = self.chunks.front_mut() else { return };
            if n >= front.len() {
                n -= front.len();
                if let Some((chunk, true)) = self.chunks.pop_front() {
                    if chunk.len() > EARLY_WAKE_BODY {
                        self.bodies_written += chunk.len();
                    }
                    if self.hand_back {
                        self.written.push(chunk);
                    }
                }
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

/// A connection about to run: its stream, its session and its protocol state, built before
/// its task's future so that the future holds each of them once.
///
/// Memory: the connection task's future is what an idle connection costs the most (it is
/// allocated whole for every connection). A value passed by value into an `async fn` is stored
/// twice there (the argument, and the local it is moved to), and again in each layer it goes
/// down; so the layers take references to this, and the `Connection` (with its `Config`) is
/// boxed.
pub(crate) struct Link {
    session: Session,
    conn: Result<Box<Connection>, ConnectionError>,
    stream: Stream,
}

impl Link {
    /// `accepted` carries the socket's end of the pipe for an accepted connection, attached once
    /// the handshake succeeds; a connecting endpoint's pipe is attached already.
    pub(crate) fn new(
        core: &Arc<Core>,
        stream: Stream,
        pipe_id: PipeId,
        endpoint: &str,
        accepted: Option<Pipe>,
    ) -> Link {
        let as_server = accepted.is_some();
        let session = Session::new(core.clone(), pipe_id, accepted, endpoint, &stream.peer);
        let conn = config(core, as_server, &stream).map(|c| Box::new(Connection::new(c, Instant::now().into_std())));
        Link { session, conn, stream }
    }

    /// Runs the connection until it ends; then [`Link::end`].
    pub(crate) async fn run(&mut self, rx: &mut PipeRx) -> DisconnectReason {
        match &mut self.conn {
            Ok(conn) => drive(&mut self.session, conn, &mut self.stream, rx).await,
            Err(e) => DisconnectReason::Protocol(e.clone()),
        }
    }

    /// Ends the session (monitor event, pipe detached).
    pub(crate) fn end(self, reason: DisconnectReason) -> Outcome {
        let handshook = self.session.handshook();
        tracing::debug!(endpoint = %self.session.endpoint(), %reason, "connection ended");
        self.session.end(&reason);
        Outcome { handshook, reason }
    }
}

/// Runs a connection until it ends, then ends its session (monitor event, pipe detached).
pub(crate) async fn run(
    core: &Arc<Core>,
    stream: Stream,
    pipe_id: PipeId,
    rx: &mut PipeRx,
    endpoint: &str,
    accepted: Option<Pipe>,
) -> Outcome {
    let mut link = Link::new(core, stream, pipe_id, endpoint, accepted);
    let reason = link.run(rx).await;
    link.end(reason)
}

/// The connection's loop: what the peer sends goes to the session, what the pipe holds to the
/// peer, until either ends.
async fn drive(session: &mut Session, conn: &mut Connection, stream: &mut Stream, rx: &mut PipeRx) -> DisconnectReason {
    let Stream { read: reader, write: writer, .. } = stream;
    let core = &session.core().clone();
    let pipe_id = session.pipe();
    let mut rbuf = ReadBuffer::default();
    let mut read_size = MIN_READ;
    let mut read_since_yield = 0usize;
    // The sender was woken early (`EARLY_WAKE`) on a current-thread runtime: yield to it.
    let mut yield_for_sender = false;
    let mut wq = WriteQueue {
        hand_back: tokio::runtime::Handle::current().runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread,
        ..WriteQueue::default()
    };
    let mut batch = VecDeque::new();
    // The pipe's doorbell, once the application asked for one (`bell`; multi-threaded runtime).
    #[cfg(unix)]
    let mut bell: Option<super::bell::Bell> = None;
    let mut bell_asked = false;
    // Whether this connection has decided about a bell (one try: made, or not for this socket).
    let mut bell_decided = false;
    // A run's buffer, written, to give back to the pipe with the next take (`wire`).
    let mut spare = None;
    // The socket stages messages for this pipe on its side (`wire::Staged`; seen under the
    // pipe's lock, and never unset): look there too once the queue is empty.
    let mut staging = false;
    let mut pending: Option<Inbound> = None;
    // A protocol error ends the connection once what was decoded before it has been handed over
    // and what we queued for the peer (an ERROR command) has been flushed.
    let mut fatal: Option<DisconnectReason> = None;
    // Long-lived futures, so that the loop does not register a timer and a waiter on every turn.
    let closing = core.closing.cancelled();
    tokio::pin!(closing);
    // The waker `closing` was last polled with (it keeps it).
    let mut closing_waker: Option<Waker> = None;
    let mut closed = false;
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;

    let reason = 'run: loop {
        // Hand over what the peer said, until the inbound queue is full; decoding goes on where a
        // read left off while the connection paused it (MAX_QUEUED_EVENTS).
        loop {
            while pending.is_none() {
                let ev = match conn.poll_event() {
                    None => break,
                    Some(Event::Message(msg)) if conn.queued_events() > 0 => {
                        // Messages in a row go to the application's queue in one batch (one
                        // lock); the first other event ends it and is handled below, after them.
                        // (A lone message, a request or a reply, takes the path below: no batch
                        // to set up on the round trip.)
                        let Some(first) = session.inbound(msg) else { continue };
                        let mut first = Some(first);
                        let mut other = None;
                        let next = || {
                            first.take().or_else(|| match conn.poll_event()? {
                                Event::Message(m) => session.inbound(m),
                                ev => {
                                    other = Some(ev);
                                    None
                                }
                            })
                        };
                        match core.try_deliver_batch(pipe_id, BATCH, next) {
                            Ok(()) => {}
                            Err(Some(i)) => {
                                pending = Some(i);
                                break;
                            }
                            Err(None) => break 'run DisconnectReason::Closed,
                        }
                        match other {
                            Some(ev) => ev,
                            None => continue,
                        }
                    }
                    Some(ev) => ev,
                };
                let inbound = match ev {
                    Event::Ready(info) => {
                        match session.ready(info) {
                            Ok(Some(greeting)) => {
                                conn.send_message(&greeting);
                            }
                            Ok(None) => {}
                            Err(reason) => break 'run reason,
                        }
                        // From now on the application may frame small messages for us (`wire`).
                        rx.data.set_encode(conn.frames_in_plaintext());
                        // What the handshake grew and an idle connection does not need.
                        conn.shed_handshake_room();
                        wq.shed();
                        rbuf.release();
                        None
                    }
                    Event::Message(msg) => session.inbound(msg),
                    Event::Subscribe(topic) => session.subscription(&topic, true),
                    Event::Cancel(topic) => session.subscription(&topic, false),
                    Event::Authenticate(request) => {
                        // The handshake waits for the verdict; input read meanwhile stays buffered.
                        let reply = super::zap::authenticate(core, &request).await;
                        let now = Instant::now().into_std();
                        let result =
                            conn.handle_zap_reply(reply, now).and_then(|()| conn.handle_input(&mut rbuf.buf, now));
                        if let Err(e) = result {
                            fatal = Some(DisconnectReason::Protocol(e));
                        }
                        None
                    }
                };
                if let Some(inbound) = inbound {
                    match core.try_deliver(inbound) {
                        Ok(()) => {}
                        Err(Some(i)) => pending = Some(i),
                        Err(None) => break 'run DisconnectReason::Closed,
                    }
                }
            }
            if pending.is_some() || !conn.input_paused() {
                break;
            }
            if let Err(e) = conn.handle_input(&mut rbuf.buf, Instant::now().into_std()) {
                fatal = Some(DisconnectReason::Protocol(e));
            }
        }
        if read_since_yield >= YIELD_AFTER || yield_for_sender {
            read_since_yield = 0;
            yield_for_sender = false;
            tokio::task::yield_now().await;
        }
        if wq.has_room() {
            wq.fill(conn);
        }
        if pending.is_none() {
            if let Some(reason) = fatal.take() {
                // Boxed, as `linger` below: rare ends, kept out of the task's future.
                Box::pin(flush_best_effort(writer, &mut wq, conn)).await;
                break reason;
            }
        }
        if closed && (session.handshook() || rx.data.is_empty()) {
            // Closed: send what is queued for this peer, up to the linger time. Closed before the
            // handshake finished, the loop goes on while messages wait for this peer, until the
            // handshake (then this) or the linger time (the timer below).
            if session.handshook() {
                Box::pin(linger(core, writer, &mut wq, conn, rx)).await;
            }
            break DisconnectReason::Closed;
        }
        if wq.len == 0 {
            // Nothing to write: an output buffer grown for a large message is freed if it stays
            // unused for a while (its deadline is one of `poll_timeout`'s, armed below). Not
            // asked whether the pipe is empty too (a lock every turn): output taken before the
            // deadline starts the wait over.
            conn.output_drained(|| Instant::now().into_std());
        }
        let deadline = match (conn.poll_timeout().map(Instant::from_std), closed.then(|| core.linger_deadline())) {
            (a, Some(Some(b))) => Some(a.map_or(b, |a| a.min(b))),
            (a, _) => a,
        };
        let deadline = match (deadline, rbuf.check_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if deadline != armed {
            if let Some(d) = deadline {
                timer.as_mut().reset(d);
            }
            armed = deadline;
        }
        let take_messages = conn.is_ready() && wq.len < WRITE_BACKLOG;
        let can_read = pending.is_none() && fatal.is_none();
        let missing = conn.missing(rbuf.buf.len());
        let subscribes = conn.is_ready();

        // One turn: the first of these that is ready, in this order (none rebuilt per turn, no
        // random order as `select!` has). The close first (one atomic load). The write side
        // next, so that what was queued goes out before more is read or taken. A peer that has
        // gone (EOF, reset) is noticed before messages are taken from the pipe: written into the
        // dead connection they would be lost, while left in the pipe they go to the next one (a
        // connecting endpoint's pipe outlives its connections). Found with 1,000 peers whose
        // server was killed: about 10% of what they sent next was lost, as their tasks ran only
        // after the new messages were queued and took them before reading the EOF. A read costs
        // no syscall unless the socket is readable.
        let turn = std::future::poll_fn(|cx| {
            if !closed {
                if core.close_started() {
                    return Poll::Ready(Turn::Closing);
                }
                // The token's future is polled only to register (once per waker: a connection
                // is polled with one waker, `driver::BothWaker`); the close is seen above.
                if !closing_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    if closing.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Turn::Closing);
                    }
                    closing_waker = Some(cx.waker().clone());
                }
            }
            if wq.len > 0 {
                if let Poll::Ready(res) = poll_write_some(writer, &wq, cx) {
                    return Poll::Ready(Turn::Written(res));
                }
            }
            if pending.is_some() {
                if let Poll::Ready(res) = core.inbound_tx.poll_send(&mut pending, cx) {
                    return Poll::Ready(Turn::Delivered(res));
                }
            }
            if armed.is_some() && fatal.is_none() && timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Turn::Timer);
            }
            if can_read {
                if let Poll::Ready(res) = poll_read_some(reader, &mut rbuf, read_size, missing, cx) {
                    return Poll::Ready(Turn::Read(res));
                }
            }
            // Before the pipe, so that a ring and the message it rang for are seen in one turn.
            #[cfg(unix)]
            if let Some(bell) = &bell {
                bell.poll_drain(cx);
            }
            if take_messages {
                let (polled, staged) = rx.data.poll_recv_staging(cx);
                if let Poll::Ready(out) = polled {
                    return Poll::Ready(Turn::Message(out));
                }
                // The socket may hold messages for us on its side (`wire::Staged`): taken now,
                // or, with none, we wait and the next send wakes us.
                staging |= staged;
                if staging {
                    if let Some(out) = core.take_staged(pipe_id, &mut spare, true) {
                        return Poll::Ready(Turn::Message(Some(out)));
                    }
                }
            }
            if subscribes {
                if let Some(ctl) = &rx.ctl {
                    if let Poll::Ready(ctl) = ctl.poll_recv(cx) {
                        return Poll::Ready(Turn::Control(ctl));
                    }
                }
            }
            Poll::Pending
        })
        .await;

        match turn {
            Turn::Closing => closed = true,
            Turn::Written(Ok(n)) => {
                wq.advance(n);
                // The bodies done with go back to the application's thread to be freed.
                rx.data.give_back(&mut wq.written);
                if wq.bodies_written >= EARLY_WAKE {
                    wq.bodies_written = 0;
                    // On a current-thread runtime the woken sender runs only once this task
                    // yields: without it, while the peer read as fast as we wrote, this task took
                    // the whole queue before the sender could refill it.
                    yield_for_sender |= rx.data.wake_senders() && !wq.hand_back;
                }
            }
            Turn::Written(Err(e)) => break DisconnectReason::Io(e.to_string()),
            Turn::Delivered(Ok(())) => {}
            Turn::Delivered(Err(())) => break DisconnectReason::Closed,
            Turn::Timer => {
                armed = None;
                let now = Instant::now();
                if closed && core.linger_deadline().is_some_and(|d| now >= d) {
                    break DisconnectReason::Closed;
                }
                rbuf.on_timer(now);
                if let Err(e) = conn.handle_timeout(now.into_std()) {
                    fatal = Some(DisconnectReason::Protocol(e));
                }
            }
            Turn::Read(res) => {
                let mut read =
                    Reading { rbuf: &mut rbuf, read_size: &mut read_size, since_yield: &mut read_since_yield };
                if let Err(reason) = read.done(res, conn, &mut fatal) {
                    break reason;
                }
            }
            Turn::Message(None) => break DisconnectReason::Closed,
            Turn::Message(Some(out)) => {
                // The same look as in the turn, for a message that came after it: the peer may
                // have gone meanwhile (its EOF and the message woke this task together).
                if can_read {
                    if let Some(res) = read_now(reader, &mut rbuf, read_size, missing).await {
                        let mut read =
                            Reading { rbuf: &mut rbuf, read_size: &mut read_size, since_yield: &mut read_since_yield };
                        if let Err(reason) = read.done(res, conn, &mut fatal) {
                            rx.data.put_back(out);
                            break reason;
                        }
                    }
                }
                out.send(conn, &mut spare, wq.hand_back.then_some(&mut wq.written));
                // Batch what else is queued, up to the backlog limit, taking a few at a time.
                while conn.pending_transmit() + wq.len < WRITE_BACKLOG {
                    // Not what the socket staged meanwhile (`wire::Staged`): taken here too, a few
                    // messages at a time, each under the socket's lock, the application's sends
                    // and this loop took turns at that lock (PUSH 16 B over tcp, 2 workers: up to
                    // 0.07 futex calls a message). The next turn takes it, once per write.
                    if rx.data.try_recv_many(&mut batch, BATCH, &mut spare, &mut bell_asked) == 0 {
                        break;
                    }
                    for out in batch.drain(..) {
                        out.send(conn, &mut spare, wq.hand_back.then_some(&mut wq.written));
                    }
                }
                #[cfg(unix)]
                if bell_asked && !bell_decided && wq.hand_back {
                    // Asked for by an application outside the runtime's tasks: it rings this from
                    // now on instead of waking us through tokio's injection queue (`bell`). Only
                    // for a socket's one connection: two descriptors and a registration (about
                    // 0.4 KiB) per connection would be too much for a ROUTER's thousands. Not
                    // for REQ and REP either: their application polls the connection itself after
                    // each send, so a ring would only wake the task for nothing.
                    bell_decided = true;
                    if !core.sends_through() && core.single_connection().is_some() {
                        match super::bell::Bell::new() {
                            Ok((b, ring)) => {
                                rx.data.set_bell(Some(ring));
                                bell = Some(b);
                            }
                            Err(e) => tracing::debug!(error = %e, "no doorbell: woken through the waker"),
                        }
                    }
                }
            }
            Turn::Control(Some(Control::Subscribe(t))) => {
                conn.send_subscription(&t, true);
            }
            Turn::Control(Some(Control::Cancel(t))) => {
                conn.send_subscription(&t, false);
            }
            Turn::Control(None) => break DisconnectReason::Closed,
        }
    };
    // The pipe may outlive this connection (a connecting endpoint's): the next one says again.
    // What was handed back for the application to free and not taken yet is freed here.
    drop(rx.data.end());
    let _ = writer.shutdown().await;
    reason
}

/// What one turn of the connection's loop found ready (the first, in `drive`'s order).
enum Turn {
    /// The socket is closing.
    Closing,
    /// A vectored write ended.
    Written(std::io::Result<usize>),
    /// The message waiting for room in the inbound queue went in (`Err`: the socket is gone).
    Delivered(Result<(), ()>),
    /// The timer (handshake, heartbeat, output buffer, linger) expired.
    Timer,
    /// A read ended: octets read and the room there was.
    Read(std::io::Result<(usize, usize)>),
    /// What the pipe held next, a message or a run (`None`: the socket's end is gone).
    Message(Option<Out>),
    /// A subscription from the socket (`None`: the socket's end is gone).
    Control(Option<Control>),
}

/// The read buffer. Received frames are slices of it (no copy), so a full buffer cannot be reused
/// until the application has dropped them; instead of allocating a fresh buffer for every read of a
/// bulk transfer (with glibc, a heap grown and trimmed per read, every page faulted in anew), the
/// buffers before are kept as spares (up to [`READ_SPARES`]) and taken back once their frames are
/// gone.
#[derive(Default)]
struct ReadBuffer {
    buf: BytesMut,
    /// The buffers before this one, oldest first, emptied, kept while reads are large.
    spares: VecDeque<BytesMut>,
    /// While there are spares: when to look whether a read came meanwhile (if none did, they
    /// are let go).
    check_at: Option<Instant>,
    /// A read came since the last look.
    read_since: bool,
    /// Freed ([`ReadBuffer::release`]): the next read goes to the stack first.
    released: bool,
}

impl ReadBuffer {
    /// Frees the buffer if nothing is buffered in it (after the handshake: an idle connection
    /// keeps no read buffer, [`poll_read_some`]).
    fn release(&mut self) {
        if self.buf.is_empty() {
            *self = ReadBuffer { released: true, ..ReadBuffer::default() };
        }
    }

    /// Makes room after what is buffered: at least a quarter of `read_size`, and what the frame
    /// being received still needs (`missing`), in steps of at most 1 MiB or what is buffered
    /// already: a large frame grows the buffer geometrically (linear copying overall), and never
    /// beyond twice what the peer has sent plus 1 MiB.
    fn make_room(&mut self, read_size: usize, missing: usize) {
        let missing = missing.min((1 << 20).max(self.buf.len()));
        let room = (read_size / 4).max(missing);
        if self.buf.capacity() - self.buf.len() >= room || self.buf.try_reclaim(room) {
            return;
        }
        // The spare, if its frames are gone and it holds what is buffered plus the room; else a
        // new buffer with room for a whole read.
        let need = self.buf.len() + room;
        let mut next = BytesMut::new();
        // The newest first: the one most recently written is likeliest still in the caches (on a
        // current-thread runtime the application frees each read before the next, and the same
        // two buffers take turns, as with one spare).
        if let Some(i) = self.spares.iter_mut().rposition(|spare| spare.try_reclaim(need)) {
            if let Some(spare) = self.spares.remove(i) {
                next = spare;
            }
        }
        if next.capacity() < need {
            next = BytesMut::with_capacity(self.buf.len() + read_size.max(missing));
        }
        // The start of a frame not complete yet moves over.
        next.extend_from_slice(&self.buf);
        let mut old = std::mem::replace(&mut self.buf, next);
        old.clear();
        if read_size > MIN_READ {
            if self.spares.len() == READ_SPARES {
                self.spares.pop_front();
            }
            self.spares.push_back(old);
            if self.check_at.is_none() {
                self.check_at = Some(Instant::now() + READ_IDLE_RELEASE);
            }
        }
    }

    /// Lets the spares go (reads became small, or none came for a while).
    fn drop_spares(&mut self) {
        self.spares = VecDeque::new();
        self.check_at = None;
    }

    /// The timer fired: at `check_at`, lets the spares go if no read came since the last look
    /// (the peer stopped streaming: the spares would otherwise stay with an idle connection),
    /// else looks again later. A buffer is a spare only after it was in use, so the spares never
    /// hold more than the reads in flight did at their peak; this bounds for how long.
    fn on_timer(&mut self, now: Instant) {
        if self.check_at.is_some_and(|at| now >= at) {
            if self.read_since {
                self.read_since = false;
                self.check_at = Some(now + READ_IDLE_RELEASE);
            } else {
                self.drop_spares();
            }
        }
    }
}

/// The read side's sizing, updated after each read.
struct Reading<'a> {
    rbuf: &'a mut ReadBuffer,
    read_size: &'a mut usize,
    since_yield: &'a mut usize,
}

impl Reading<'_> {
    /// Takes a read's result: the octets go to the connection (a protocol error becomes `fatal`,
    /// ending the connection once what came before it is handed over); EOF or an I/O error ends
    /// the connection now.
    fn done(
        &mut self,
        res: std::io::Result<(usize, usize)>,
        conn: &mut Connection,
        fatal: &mut Option<DisconnectReason>,
    ) -> Result<(), DisconnectReason> {
        let (n, room) = match res {
            Ok((0, _)) => return Err(DisconnectReason::Eof),
            Ok(r) => r,
            Err(e) => return Err(DisconnectReason::Io(e.to_string())),
        };
        *self.since_yield += n;
        self.rbuf.read_since = true;
        if n == room {
            *self.read_size = (*self.read_size * 2).min(MAX_READ);
        } else if n < *self.read_size / 8 {
            *self.read_size = (*self.read_size / 2).max(MIN_READ);
            if *self.read_size == MIN_READ {
                self.rbuf.drop_spares();
            }
        }
        if let Err(e) = conn.handle_input(&mut self.rbuf.buf, Instant::now().into_std()) {
            *fatal = Some(DisconnectReason::Protocol(e));
        }
        Ok(())
    }
}

/// Reads now if the stream has something (data, EOF, an error): polls a read once; `None` if it
/// would wait. Costs no syscall unless the stream is readable.
async fn read_now(
    reader: &mut crate::transport::ReadHalf,
    rbuf: &mut ReadBuffer,
    read_size: usize,
    missing: usize,
) -> Option<std::io::Result<(usize, usize)>> {
    std::future::poll_fn(|cx| match poll_read_some(reader, rbuf, read_size, missing, cx) {
        Poll::Ready(res) => Poll::Ready(Some(res)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Reads into `rbuf` with room for at least a quarter of `read_size`; gives the octets read and
/// the room there was, so the caller can tell a full read.
///
/// A connection without a read buffer (freed after the handshake, so that an idle connection
/// holds none) reads into the stack first: the buffer is allocated only once octets come, and
/// they are copied into it (at most [`MIN_READ`], once).
fn poll_read_some(
    reader: &mut crate::transport::ReadHalf,
    rbuf: &mut ReadBuffer,
    read_size: usize,
    missing: usize,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<(usize, usize)>> {
    if rbuf.released {
        let mut stack = [0u8; MIN_READ];
        let mut first = tokio::io::ReadBuf::new(&mut stack);
        std::task::ready!(Pin::new(&mut **reader).poll_read(cx, &mut first))?;
        let n = first.filled().len();
        if n > 0 {
            rbuf.released = false;
            rbuf.make_room(read_size, missing);
            rbuf.buf.extend_from_slice(first.filled());
        }
        return Poll::Ready(Ok((n, MIN_READ)));
    }
    rbuf.make_room(read_size, missing);
    let room = rbuf.buf.capacity() - rbuf.buf.len();
    let n = std::task::ready!(tokio_util::io::poll_read_buf(Pin::new(&mut **reader), cx, &mut rbuf.buf))?;
    Poll::Ready(Ok((n, room)))
}

/// Writes what the queue holds, with one vectored write. The slices are gathered at each poll.
fn poll_write_some(
    writer: &mut crate::transport::WriteHalf,
    wq: &WriteQueue,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    // Most writes have a few chunks (one batch buffer, maybe large bodies): keep those on the
    // stack.
    let slices: smallvec::SmallVec<[IoSlice<'_>; 8]> =
        wq.chunks.iter().take(MAX_IOV).map(|(c, _)| IoSlice::new(c)).collect();
    match std::task::ready!(Pin::new(&mut **writer).poll_write_vectored(cx, &slices)) {
        Ok(0) => Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
        other => Poll::Ready(other),
    }
}

/// [`poll_write_some`] as a future, holding only its two references (the rare ends' loops).
fn write_some<'a>(
    writer: &'a mut crate::transport::WriteHalf,
    wq: &'a WriteQueue,
) -> impl std::future::Future<Output = std::io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| poll_write_some(writer, wq, cx))
}

/// Sends what is queued (an ERROR command, say) before closing, without waiting long.
async fn flush_best_effort(writer: &mut crate::transport::WriteHalf, wq: &mut WriteQueue, conn: &mut Connection) {
    wq.fill(conn);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), async {
        while wq.len > 0 {
            match write_some(writer, wq).await {
                Ok(n) => {
                    wq.advance(n);
                    wq.written.clear();
                }
                Err(_) => return,
            }
        }
    })
    .await;
}

/// The socket was closed: send what is queued for this peer, up to the linger time from the close.
async fn linger(
    core: &Core,
    writer: &mut crate::transport::WriteHalf,
    wq: &mut WriteQueue,
    conn: &mut Connection,
    rx: &mut PipeRx,
) {
    let work = async {
        loop {
            while let Some(out) = rx.data.try_recv() {
                out.send(conn, &mut None, None);
                if conn.pending_transmit() + wq.len >= WRITE_BACKLOG {
                    break;
                }
            }
            wq.fill(conn);
            if wq.len == 0 {
                return;
            }
            match write_some(writer, wq).await {
                Ok(n) => {
                    wq.advance(n);
                    wq.written.clear();
                }
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = core.stopped(|| true) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffer_takes_its_spare_back_once_the_frames_are_dropped() {
        let mut rb = ReadBuffer::default();
        rb.make_room(MAX_READ, 0);
        let first = rb.buf.as_ptr();
        // A read fills the buffer; the decoder slices off all but the start of a frame.
        rb.buf.extend_from_slice(&vec![1u8; rb.buf.capacity()]);
        let n = rb.buf.len();
        let frames = rb.buf.split_to(n - 10).freeze();
        // No room: the next read goes to a new buffer, with the partial frame moved over.
        rb.make_room(MAX_READ, 0);
        assert_ne!(rb.buf.as_ptr(), first);
        assert_eq!(&rb.buf[..], &[1u8; 10]);
        let room = rb.buf.capacity() - rb.buf.len();
        rb.buf.extend_from_slice(&vec![2u8; room]);
        let n = rb.buf.len();
        let more = rb.buf.split_to(n - 3).freeze();
        // The first buffer's frames are gone: it is reused instead of a fresh allocation.
        drop(frames);
        rb.make_room(MAX_READ, 0);
        assert_eq!(rb.buf.as_ptr(), first);
        assert_eq!(&rb.buf[..], &[2u8; 3]);
        drop(more);
    }

    /// Fills `rb`'s buffer and slices all of it off as frames (kept by the caller).
    fn fill(rb: &mut ReadBuffer) -> Bytes {
        let room = rb.buf.capacity() - rb.buf.len();
        rb.buf.extend_from_slice(&vec![3u8; room]);
        let n = rb.buf.len();
        rb.buf.split_to(n).freeze()
    }

    #[test]
    fn read_buffers_in_flight_are_kept_and_one_freed_is_taken_back() {
        let mut rb = ReadBuffer::default();
        rb.make_room(MAX_READ, 0);
        // (The default buffer, which holds no allocation, went to the spares.)
        rb.spares.clear();
        // Four reads whose frames the application still holds: four buffers.
        let mut held = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..4 {
            addrs.push(rb.buf.as_ptr());
            held.push(fill(&mut rb));
            rb.make_room(MAX_READ, 0);
        }
        assert!(!addrs.contains(&rb.buf.as_ptr()));
        assert_eq!(rb.spares.len(), 4);
        // The application drops the second read's frames first: that buffer is taken back,
        // though others are still held.
        drop(held.remove(1));
        let _fifth = fill(&mut rb);
        rb.make_room(MAX_READ, 0);
        assert_eq!(rb.buf.as_ptr(), addrs[1]);
        // Never more than READ_SPARES are kept, however many reads are in flight.
        for _ in 0..2 * READ_SPARES {
            held.push(fill(&mut rb));
            rb.make_room(MAX_READ, 0);
        }
        assert_eq!(rb.spares.len(), READ_SPARES);
    }

    #[test]
    fn the_spares_are_let_go_once_reads_stop() {
        let mut rb = ReadBuffer::default();
        rb.make_room(MAX_READ, 0);
        drop(fill(&mut rb));
        rb.make_room(MAX_READ, 0);
        assert!(!rb.spares.is_empty());
        let n = rb.spares.len();
        let at = rb.check_at.expect("a look is due while there are spares");
        // A read came meanwhile: kept, looked at again later.
        rb.read_since = true;
        rb.on_timer(at);
        assert_eq!(rb.spares.len(), n);
        let again = rb.check_at.expect("looked at again");
        assert!(again > at);
        // Too early: nothing happens.
        rb.on_timer(at);
        assert_eq!(rb.spares.len(), n);
        // No read since: let go, and no more looks.
        rb.on_timer(again);
        assert!(rb.spares.is_empty());
        assert!(rb.check_at.is_none());
    }

    #[test]
    fn a_large_announced_frame_grows_the_buffer_with_what_arrives() {
        let mut rb = ReadBuffer::default();
        rb.make_room(MIN_READ, 0);
        rb.buf.extend_from_slice(&[0u8; 100]);
        // The peer announced 1 GiB and sent 100 octets of it: room for 1 MiB more, not 1 GiB.
        rb.make_room(MIN_READ, 1 << 30);
        assert!(rb.buf.capacity() <= 100 + (1 << 20) + MIN_READ, "{}", rb.buf.capacity());
        // With 8 MiB received, the next step may double it.
        rb.buf.resize(8 << 20, 0);
        rb.make_room(MIN_READ, 1 << 30);
        let cap = rb.buf.capacity();
        assert!((16 << 20..=(16 << 20) + MIN_READ).contains(&cap), "{cap}");
    }
}
