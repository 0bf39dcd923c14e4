//! The core of one socket: the lock around its pipes and routing strategy (`pattern::State`), the
//! inbound side (a lane per peer, fair-queued: `fair`), and its tasks, monitors and close.
//!
//! The core knows no socket type: every rule of a type is in its strategy, which the core calls
//! under its lock. Locking: one `std::sync::Mutex<State>`, never held across an `.await`.
//! Connection tasks take it to attach, mark ready, record subscriptions and detach; socket calls
//! take it to route.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use super::fair;
use super::queue::{self, TrySendError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::Driven;
use super::monitor::Monitors;
use super::options::{capacity, Options};
use super::pattern::{self, Delivery, Ready, Refused, State, StatelessFilter, SubscriptionLimit, Traits, Unsent};
pub(crate) use super::pattern::{Inbound, Pipe, PipeId, PipeRx};
use super::Error;
use crate::proto::{PeerInfo, SocketType};
use crate::Message;

/// How many times a connection tries the socket's lock, spinning, before it yields its CPU to
/// the send holding it, and how many times it yields before it sleeps on the lock
/// ([`Core::lock_yielding`]).
const TAKE_SPINS: usize = 256;
const TAKE_YIELDS: usize = 2;

/// The shared core of one socket.
#[derive(Debug)]
pub(crate) struct Core {
    pub socket_type: SocketType,
    pub options: Options,
    /// What the socket type is (read without the lock).
    pub traits: Traits,
    /// The type's rule for inbound messages if it needs no state (ROUTER's), applied without
    /// the lock.
    stateless_filter: Option<StatelessFilter>,
    state: Mutex<State>,
    /// Signalled when pipes are attached or become ready (senders waiting for a peer).
    pub pipes_changed: Notify,
    pub inbound_tx: fair::Sender<Inbound>,
    pub closing: CancellationToken,
    pub monitors: Monitors,
    pub tasks: TaskTracker,
    /// The connection tasks' futures (see `driver`); weak, so that a dropped runtime frees them.
    connections: Mutex<Vec<std::sync::Weak<Driven>>>,
    closed_at: std::sync::OnceLock<tokio::time::Instant>,
    /// Accepted connections still in their handshake (`max_pending_handshakes`).
    pub handshakes: std::sync::Arc<super::handshakes::Pending>,
    conflated: Mutex<Option<Inbound>>,
    pub conflated_ready: Notify,
    next_pipe: AtomicU64,
}

impl Core {
    pub(crate) fn new(socket_type: SocketType, options: Options) -> (Core, fair::Receiver<Inbound>) {
        // RCVHWM per peer, as libzmq counts it.
        let (inbound_tx, inbound_rx) = fair::channel(capacity(options.rcvhwm));
        let state = State::new(socket_type, &options);
        let handshakes = std::sync::Arc::new(super::handshakes::Pending::new(
            options.max_pending_handshakes,
            options.handshake_timeout,
        ));
        let core = Core {
            socket_type,
            traits: state.pattern.traits(),
            stateless_filter: state.pattern.stateless_filter(),
            state: Mutex::new(state),
            options,
            pipes_changed: Notify::new(),
            inbound_tx,
            closing: CancellationToken::new(),
            monitors: Monitors::default(),
            tasks: TaskTracker::new(),
            connections: Mutex::new(Vec::new()),
            closed_at: std::sync::OnceLock::new(),
            handshakes,
            conflated: Mutex::new(None),
            conflated_ready: Notify::new(),
            next_pipe: AtomicU64::new(1),
        };
        (core, inbound_rx)
    }

    /// Spawns a connection's task (one connection, or a connecting endpoint's reconnect loop) so
    /// that the application may drive it too.
    pub(crate) fn spawn_connection(
        self: &std::sync::Arc<Self>,
        future: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let driven = Driven::new(future);
        let weak = std::sync::Arc::downgrade(&driven);
        {
            let mut list = self.connections.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.push(weak.clone());
        }
        let core = std::sync::Arc::downgrade(self);
        self.tasks.spawn(async move {
            driven.run().await;
            if let Some(core) = core.upgrade() {
                core.connections.lock().unwrap_or_else(|e| e.into_inner()).retain(|w| !w.ptr_eq(&weak));
            }
        });
    }

    /// REQ and REP: their sends alternate with receives, and with one connection go out from the
    /// application's task, which polls the connection itself (`Socket::start_send_through`).
    #[inline]
    pub(crate) fn sends_through(&self) -> bool {
        matches!(self.socket_type, SocketType::Req | SocketType::Rep)
    }

    /// The connection task, if the socket has exactly one.
    pub(crate) fn single_connection(&self) -> Option<std::sync::Arc<Driven>> {
        let list = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        match list.as_slice() {
            [one] => one.upgrade(),
            _ => None,
        }
    }

    /// Starts closing: tasks stop, after sending what is queued for up to the linger time.
    pub(crate) fn close(&self) {
        // What is staged goes into the queues, where the connections' linger finds it; nothing
        // is staged after this.
        for pipe in self.lock().pipes.values_mut() {
            pipe.tx.publish(&mut pipe.staged);
            pipe.staged.close();
        }
        self.closed_at.get_or_init(tokio::time::Instant::now);
        self.closing.cancel();
        self.tasks.close();
    }

    /// Whether [`Core::close`] has begun: one atomic load (the token's own check takes a lock).
    /// Set before the token is cancelled, so a task woken by the token sees it.
    #[inline]
    pub(crate) fn close_started(&self) -> bool {
        self.closed_at.get().is_some()
    }

    /// Resolves when a task whose messages are still queued (`pending`, asked once the socket is
    /// closed, not before: the application may queue more while the task waits) must stop: at
    /// once after close if nothing is queued, else when the linger time since the close has
    /// passed.
    pub(crate) async fn stopped(&self, pending: impl FnOnce() -> bool) {
        self.closing.cancelled().await;
        if pending() {
            match (self.options.linger, self.closed_at.get()) {
                (Some(linger), Some(&at)) => tokio::time::sleep_until(at + linger).await,
                (Some(_), None) => {}
                (None, _) => std::future::pending().await,
            }
        }
    }

    /// When a closed socket's tasks give up sending: the close plus the linger time (`None`: the
    /// socket is open, or lingers forever).
    pub(crate) fn linger_deadline(&self) -> Option<tokio::time::Instant> {
        Some(*self.closed_at.get()? + self.options.linger?)
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the socket; recover the guard rather than propagate the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock, for a connection taking what a send staged ([`Core::take_staged`]): found held,
    /// the connection tries again, spinning, up to [`TAKE_SPINS`] times (a send running on the
    /// other CPU lets go within that), then yields its CPU (`sched_yield`) up to [`TAKE_YIELDS`]
    /// times, before it sleeps on the lock.
    ///
    /// Why: with both ends of a stream on a 2-core machine, the application that stages is often
    /// preempted in the middle of a send, holding this lock, by the very worker that then wants
    /// it (both runnable on one CPU). Sleeping on std's `Mutex` (a short spin, then `futex`)
    /// cost three `futex` calls per take (the wait, the sender's wake as it lets go, and the
    /// worker's own wake as it lets go of a lock taken contended) and two context switches, and
    /// the worker, woken, took a short run, wrote it, found nothing more and waited to be rung:
    /// one ring and one small write per cycle. Yielding lets the preempted send finish on that
    /// CPU instead, and the worker then takes a long run. Yielding at once, without the spin,
    /// gave the CPU away also when the holder was running elsewhere, and the pipeline stalled
    /// (both processes together used 0.74–1.12 cores instead of 1.17–1.71). PUSH→PULL and
    /// DEALER→ROUTER 16 B tcp, 2 workers, `block_on` sender (zbench pairs, 3 rounds, load 3–5,
    /// lock as before → this): sender `futex` calls 0.011–0.024 → 0.002 a message, `sendmsg`
    /// 0.004–0.009 → 0.0003–0.0009; PUSH→PULL 2.2–3.3 → 4.3–6.5 M msg/s, sender 227–250 →
    /// 112–116 ns a message; DEALER→ROUTER 2.9–3.1 → 4.1–4.9 M, sender 154–215 → 93–122 ns.
    fn lock_yielding(&self) -> MutexGuard<'_, State> {
        for attempt in 0..TAKE_SPINS + TAKE_YIELDS {
            match self.state.try_lock() {
                Ok(state) => return state,
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if attempt < TAKE_SPINS => std::hint::spin_loop(),
                Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
        self.lock()
    }

    /// Creates both ends of a new pipe; the socket's end is not attached yet.
    pub(crate) fn new_pipe(&self) -> (PipeId, Pipe, PipeRx) {
        let id = self.next_pipe.fetch_add(1, Ordering::Relaxed);
        let (pipe, rx) = pattern::pipe(capacity(self.options.sndhwm), self.traits.subscribes);
        (id, pipe, rx)
    }

    /// Attaches the socket's end of a pipe, so that the strategy may route to it.
    pub(crate) fn attach(&self, id: PipeId, pipe: Pipe) {
        let mut state = self.lock();
        // Staging is for a lone pipe: what it staged goes into its queue first, so that it comes
        // before what is routed to it from now on. With more pipes nothing is staged (not a walk
        // over a ROUTER's thousands of pipes per attach).
        if state.pipes.len() == 1 {
            for other in state.pipes.values_mut() {
                other.tx.publish(&mut other.staged);
            }
        }
        state.pipes.insert(id, pipe);
        drop(state);
        self.pipes_changed.notify_waiters();
    }

    /// Sends a message from the application if it can be queued now (one lock).
    #[inline]
    pub(crate) fn send(&self, msg: Message) -> Result<(), Unsent> {
        self.lock().send(msg, &self.options)
    }

    /// Frames a message for sending without routing it ([`Core::route`] does).
    pub(crate) fn begin(&self, msg: Message) -> Result<Message, Unsent> {
        self.lock().begin(msg, &self.options)
    }

    /// Routes a framed message.
    pub(crate) fn route(&self, msg: Message) -> Result<(), Unsent> {
        self.lock().route(msg, &self.options)
    }

    /// A framed message the strategy gave back, as the application passed it (REQ's envelope
    /// off).
    pub(crate) fn unframe(&self, msg: Message) -> Message {
        if !self.traits.drains_on_send {
            return msg;
        }
        self.lock().unframe(msg, &self.options)
    }

    /// The connection of pipe `id`, having found its queue empty: takes what the socket staged
    /// for it (`wire::Staged`), or, with nothing staged and `wait` set, marks it waiting, so
    /// that the next send wakes it. `spare`: a written run's buffer, for the next staged run.
    pub(crate) fn take_staged(
        &self,
        id: PipeId,
        spare: &mut Option<bytes::BytesMut>,
        wait: bool,
    ) -> Option<super::wire::Out> {
        let mut state = self.lock_yielding();
        let pipe = state.pipes.get_mut(&id)?;
        pipe.tx.take_staged(&mut pipe.staged, spare, wait)
    }

    /// The queue toward pipe `id`'s peer, to wait for room in.
    pub(crate) fn pipe_sender(&self, id: PipeId) -> Option<super::wire::PipeTx> {
        self.lock().pipes.get(&id).map(|p| p.tx.clone())
    }

    /// Queues `msg` into the slot reserved in pipe `id` (after [`pattern::Wait::Room`]).
    pub(crate) fn commit(&self, id: PipeId, msg: Message, permit: super::wire::Permit<'_>) {
        let msg = self.lock().commit(id, msg);
        permit.send(msg);
    }

    /// Whether `recv` is valid now.
    pub(crate) fn recv_allowed(&self) -> Result<(), Error> {
        if !self.traits.receives {
            return Err(Error::NotSupported(self.socket_type));
        }
        if self.traits.checks_recv {
            return self.lock().recv_allowed();
        }
        Ok(())
    }

    /// What the application gets of an inbound message, if anything.
    #[inline]
    pub(crate) fn filter(&self, inbound: Inbound) -> Option<Message> {
        if !self.traits.filters_inbound {
            return Some(inbound.msg);
        }
        // ROUTER's needs no lock: a second lock per message received, and the pipe's lookup,
        // cost DEALER→ROUTER 16 B about 100 instructions a message (callgrind).
        if let Some(keeps) = self.stateless_filter {
            return if keeps(&inbound) { Some(inbound.msg) } else { None };
        }
        match self.lock().on_inbound(inbound, &self.options) {
            Delivery::Deliver(msg) => Some(msg),
            Delivery::Drop => None,
        }
    }

    /// The application subscribes or unsubscribes.
    pub(crate) fn subscribe(&self, topic: &[u8], subscribe: bool) -> Result<(), Error> {
        self.lock().subscribe(topic, subscribe, &self.options).map_err(|()| Error::NotSupported(self.socket_type))
    }

    /// The handshake on pipe `id` finished: the strategy admits the peer (its routing id, and
    /// what to send it first) or refuses it.
    pub(crate) fn ready(&self, id: PipeId, peer: &PeerInfo) -> Result<Ready, Refused> {
        let mut state = self.lock();
        let ready = state.ready(id, peer, &self.options)?;
        if let Some(old) = ready.replaced {
            // Under the lock: the old connection's detach, which closes its lane, comes after.
            if self.traits.drops_stale {
                self.inbound_tx.disown_lane(old);
            }
        }
        drop(state);
        self.pipes_changed.notify_waiters();
        Ok(ready)
    }

    /// Removes a pipe for good, without telling the application anything.
    pub(crate) fn remove_pipe(&self, id: PipeId) {
        self.lock().detach(id, true, &self.options);
        self.inbound_tx.close_lane(id, self.traits.drops_stale);
    }

    /// The connection behind pipe `id` ended: a connecting endpoint's pipe stays (its queue
    /// survives until the reconnect) unless `remove`. Hands an XPUB's application the
    /// subscriptions no peer holds any more, and, if the pipe is removed, lets its inbound lane go
    /// once what it delivered has been received.
    pub(crate) fn detach(&self, id: PipeId, remove: bool) {
        let told = self.lock().detach(id, remove, &self.options);
        for inbound in told {
            let _ = self.try_deliver(inbound);
        }
        if remove {
            self.inbound_tx.close_lane(id, self.traits.drops_stale);
        }
    }

    /// A peer subscribed or cancelled (we are PUB or XPUB). Returns the message an XPUB hands to
    /// its application, if any; `Err` if the subscription was ignored because the peer reached
    /// its limit (`max_topics_per_peer`, `max_topic_bytes_per_peer`).
    pub(crate) fn on_subscription(
        &self,
        id: PipeId,
        topic: &[u8],
        subscribe: bool,
    ) -> Result<Option<Inbound>, SubscriptionLimit> {
        self.lock().on_subscription(id, topic, subscribe, &self.options)
    }

    /// What a connection hands over for a message from its peer: `None` if the socket type does
    /// not receive messages (PUB, PUSH).
    #[inline(always)]
    pub(crate) fn inbound(&self, pipe: PipeId, routing_id: &Bytes, mut msg: Message) -> Option<Inbound> {
        if !self.traits.receives {
            return None;
        }
        if self.traits.prefixes_routing_id {
            msg.push_front(routing_id.clone());
        }
        Some(Inbound { pipe, msg })
    }

    /// Queues an inbound message without waiting. `Err(Some(i))`: the queue is full, try again
    /// later with `i`; `Err(None)`: the socket is gone.
    pub(crate) fn try_deliver(&self, inbound: Inbound) -> Result<(), Option<Inbound>> {
        if self.options.conflate {
            *self.conflated.lock().unwrap_or_else(|e| e.into_inner()) = Some(inbound);
            self.conflated_ready.notify_one();
            return Ok(());
        }
        match self.inbound_tx.try_send(inbound) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(i)) => Err(Some(i)),
            Err(TrySendError::Closed(_)) => Err(None),
        }
    }

    /// Queues the inbound messages `next` gives (from pipe `pipe`'s connection) without waiting,
    /// up to `max`, under one lock of its lane (`queue::Tx::try_send_batch`): a connection task
    /// hands over what it decoded in batches, so that a receiving application on another thread
    /// takes the lock in turns with it once per batch, not once per message. `Err(Some(i))`: the
    /// lane is full, try again later with `i`; `Err(None)`: the socket is gone.
    pub(crate) fn try_deliver_batch(
        &self,
        pipe: PipeId,
        max: usize,
        mut next: impl FnMut() -> Option<Inbound>,
    ) -> Result<(), Option<Inbound>> {
        if self.options.conflate {
            for _ in 0..max {
                let Some(inbound) = next() else { break };
                self.try_deliver(inbound)?;
            }
            return Ok(());
        }
        match self.inbound_tx.try_send_batch(pipe, max, next) {
            queue::Batch::Done => Ok(()),
            queue::Batch::Full(i) => Err(Some(i)),
            queue::Batch::Closed => Err(None),
        }
    }

    /// Queues an inbound message, waiting for room. `Err` when the socket is gone.
    pub(crate) async fn deliver(&self, inbound: Inbound) -> Result<(), ()> {
        match self.try_deliver(inbound) {
            Ok(()) => Ok(()),
            Err(None) => Err(()),
            Err(Some(i)) => self.inbound_tx.send(i).await.map_err(|_| ()),
        }
    }

    /// Takes the conflated message, if any.
    pub(crate) fn take_conflated(&self) -> Option<Inbound> {
        self.conflated.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
