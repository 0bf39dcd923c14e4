//! The bounded queue behind every pipe and every socket's inbound side.
//!
//! A `VecDeque` under one `std::sync::Mutex`, with the wakers of whoever waits beside it. It
//! replaces tokio's bounded `mpsc` on the message path: that one takes a semaphore permit per
//! message and hands it back with a second lock on receive (about 350 instructions per message
//! between the two ends, measured with callgrind); this one costs one uncontended lock per send
//! and one per receive.
//!
//! Semantics follow `tokio::sync::mpsc` where the socket layer relies on them:
//! - the capacity (a high-water mark) counts queued messages plus reserved slots;
//! - the receiver sees `None` once every sender is gone and the queue is empty;
//! - senders see `Closed` once the receiver is gone (its queued messages are dropped then);
//! - every waiting future is cancel safe: nothing is taken or reserved until it returns `Ready`.
//!
//! Waiters are woken all at once (there are few: one receiving task, a few blocked senders), so a
//! cancelled waiter can never swallow the wake-up another needed. Senders waiting for room are
//! woken once the receiver has taken the queue down to its low-water mark ([`low_water_mark`]),
//! not at every message it takes, as libzmq's pipes do: a full queue is then refilled in batches.
//! On a multi-threaded runtime, where the receiver and the sender run on different threads, a
//! wake-up per message taken made them take turns one message at a time, each turn a cross-thread
//! wake-up (PULL receiving 16 B messages over tcp, zbench: 0.013–0.015 futex calls and 0.020–0.023
//! context switches per message before, 0.003–0.007 and 0.003–0.004 with the low-water mark).
//!
//! The life cycle (senders, receiver, permits, wake-ups, closing) is written once, generic over a
//! [`Store`]: this module's [`Deque`] (one queue), and `fair`'s lanes (one queue per peer, served
//! in turn).

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::sync::{Mutex, MutexGuard};

/// Why [`Sender::try_send`] gave the message back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    /// The queue is at its capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// How [`Tx::try_send_batch`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Batch<T> {
    /// Nothing more to queue, or the most it may queue at once were queued.
    Done,
    /// This one found no room (those before it were queued).
    Full(T),
    /// The receiver is gone (nothing was taken from `next`).
    Closed,
}

/// Messages bounded by a capacity, with the slots promised to [`Permit`]s and the senders waiting
/// for room: one per queue here, one per peer in `fair`.
pub(crate) struct Slot<T> {
    pub(crate) items: VecDeque<T>,
    /// Messages beyond one per item: an item may hold several (a run of encoded messages in a
    /// pipe, `wire`), and the capacity counts messages. 0 for the other stores.
    pub(crate) packed: usize,
    /// Slots promised to [`Permit`]s not yet used.
    pub(crate) reserved: usize,
    /// Sending tasks waiting for room.
    pub(crate) tx_waiters: Vec<Waker>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Slot<T> {
        Slot { items: VecDeque::new(), packed: 0, reserved: 0, tx_waiters: Vec::new() }
    }

    /// Whether it is empty and nobody holds or waits for room in it.
    pub(crate) fn idle(&self) -> bool {
        self.items.is_empty() && self.reserved == 0 && self.tx_waiters.is_empty()
    }

    /// Messages queued.
    #[inline(always)]
    pub(crate) fn queued(&self) -> usize {
        self.items.len() + self.packed
    }

    /// After messages were taken: the senders to wake, if the slot is down to the low-water mark
    /// of `capacity` (else none; they are woken by a later receive, which must come: the slot
    /// still holds messages).
    #[inline(always)]
    pub(crate) fn waiters_after_take(&mut self, capacity: usize) -> Vec<Waker> {
        if self.tx_waiters.is_empty() || self.queued() + self.reserved > low_water_mark(capacity) {
            return Vec::new();
        }
        std::mem::take(&mut self.tx_waiters)
    }
}

/// Where a slot of `capacity` must drain to before the senders waiting for room are woken:
/// libzmq's rule (`pipe.cpp`, `compute_lwm`), half the capacity, or 1024 below it for large ones.
/// Always below the capacity, so a waiting sender finds room when woken.
#[inline(always)]
pub(crate) fn low_water_mark(capacity: usize) -> usize {
    const MAX_DELTA: usize = 1024;
    if capacity > 2 * MAX_DELTA {
        capacity - MAX_DELTA
    } else {
        capacity / 2
    }
}

/// How a channel stores its messages: the part that differs between this module's single queue
/// ([`Deque`]) and `fair`'s lanes. The life cycle around it (senders, receiver, permits, wake-ups,
/// closing) is written once, below, for both.
pub(crate) trait Store {
    /// What is queued.
    type Item;
    /// What chooses an item's [`Slot`]: `()` here, the peer's pipe id in `fair`.
    type Key: Copy;
    /// Where a key's slot is, found once per call.
    type Place: Copy;
    /// What the receiver's drop takes away, dropped outside the lock.
    type Drained;
    /// What [`Store::push`] leaves to drop outside the lock (`wire`: a message it encoded).
    type Spent;
    /// The key of `item`.
    fn key(item: &Self::Item) -> Self::Key;
    /// Finds (or makes) the slot of `key`.
    fn place(&mut self, key: Self::Key) -> Self::Place;
    /// The slot at `place`.
    fn slot(&mut self, place: Self::Place) -> &mut Slot<Self::Item>;
    /// Queues `item` in the slot at `place`.
    fn push(&mut self, place: Self::Place, item: Self::Item) -> Self::Spent;
    /// The next message; the senders to wake now that there is room into `woken`
    /// ([`Slot::waiters_after_take`] with `capacity`).
    ///
    /// The wakers go into `woken` (empty when called) rather than into a returned tuple: the
    /// message then comes back in the `Option` the caller returns as it is, not unpacked from a
    /// tuple and wrapped again (each a copy of the whole message: about 30 instructions a
    /// receive for an inbound message of 120 octets, callgrind).
    fn pop(&mut self, capacity: usize, woken: &mut Vec<Waker>) -> Option<Self::Item>;
    /// A reservation at `place` was given back unused (`fair` drops a closed, idle lane here).
    fn released(&mut self, place: Self::Place);
    /// The receiver is gone: every queued message, and every waiting sender's waker.
    fn drain(&mut self, waiters: &mut Vec<Waker>) -> Self::Drained;
    /// After an application's send found the receiver waiting, under the lock: a bell to ring
    /// instead of waking it (`wire`: a pipe's doorbell, see `bell`), or `None` to wake it.
    #[inline(always)]
    fn bell(&mut self) -> Option<Arc<Ring>> {
        None
    }
}

#[cfg(unix)]
pub(crate) use super::bell::Ring;

/// No doorbells where there are no unix sockets.
#[cfg(not(unix))]
pub(crate) enum Ring {}

#[cfg(not(unix))]
impl Ring {
    fn ring(&self) {
        match *self {}
    }
}

/// After an application's send, holding the lock `st`: wakes the receivers it found waiting,
/// after the lock, or rings the bell that stands in for them (their wakers then only dropped:
/// the one receiver that rings it looks at the queue when it polls the bell). Out of line: kept
/// in, it made the send's fast path larger (current-thread PUSH→PULL 16 B: +28 instructions a
/// message, callgrind, from inlining that changed).
#[cold]
#[inline(never)]
fn wake_receivers<S: Store>(mut st: MutexGuard<'_, State<S>>) {
    let waiters = st.take_rx_waiters();
    let bell = st.store.bell();
    drop(st);
    match bell {
        Some(bell) => {
            drop(waiters);
            bell.ring();
        }
        None => wake_all(waiters),
    }
}

/// This module's store: one queue.
pub(crate) struct Deque<T>(Slot<T>);

impl<T> Store for Deque<T> {
    type Item = T;
    type Key = ();
    type Place = ();
    type Drained = VecDeque<T>;
    type Spent = ();

    #[inline(always)]
    fn key(_: &T) {}

    #[inline(always)]
    fn place(&mut self, (): ()) {}

    #[inline(always)]
    fn slot(&mut self, (): ()) -> &mut Slot<T> {
        &mut self.0
    }

    #[inline(always)]
    fn push(&mut self, (): (), item: T) {
        self.0.items.push_back(item);
    }

    #[inline(always)]
    fn pop(&mut self, capacity: usize, woken: &mut Vec<Waker>) -> Option<T> {
        let msg = self.0.items.pop_front()?;
        *woken = self.0.waiters_after_take(capacity);
        Some(msg)
    }

    fn released(&mut self, (): ()) {}

    fn drain(&mut self, waiters: &mut Vec<Waker>) -> VecDeque<T> {
        waiters.append(&mut self.0.tx_waiters);
        std::mem::take(&mut self.0.items)
    }
}

struct State<S> {
    store: S,
    /// Per slot.
    capacity: usize,
    senders: usize,
    receiver_alive: bool,
    /// Receiving tasks waiting for a message.
    rx_waiters: Vec<Waker>,
}

impl<S: Store> State<S> {
    /// Whether the slot at `place` takes one more message.
    #[inline(always)]
    fn has_room(&mut self, place: S::Place) -> bool {
        let capacity = self.capacity;
        let slot = self.store.slot(place);
        slot.queued() + slot.reserved < capacity
    }

    fn take_rx_waiters(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.rx_waiters)
    }
}

struct Shared<S> {
    state: Mutex<State<S>>,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // Nothing here panics while holding the lock; recover rather than propagate a poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether two wakers wake the same task. `will_wake` alone misses a clone of a borrowed waker
/// (tokio's `block_on` waker: same data, another vtable), so the data pointer counts too.
pub(crate) fn same_task(a: &Waker, b: &Waker) -> bool {
    a.will_wake(b) || (!a.data().is_null() && std::ptr::eq(a.data(), b.data()))
}

pub(crate) fn register(waiters: &mut Vec<Waker>, waker: &Waker) {
    if !waiters.iter().any(|w| same_task(w, waker)) {
        waiters.push(waker.clone());
    }
}

#[inline]
pub(crate) fn wake_all(waiters: Vec<Waker>) {
    if waiters.is_empty() {
        return;
    }
    for w in waiters {
        w.wake();
    }
}

/// What an assisted receive takes messages from (this queue, or the fair one of `fair`).
pub(crate) trait Inbox<T> {
    /// The next message if one is queued.
    fn try_recv(&self) -> Option<T>;
    /// Withdraws `waker` from the receivers waiting for a message.
    fn forget(&self, waker: &Waker);
    /// Takes the next message, or registers `cx` to be woken when one comes.
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>>;
}

impl<S: Store> Inbox<S::Item> for Chan<S> {
    fn try_recv(&self) -> Option<S::Item> {
        Chan::try_recv(self)
    }

    fn forget(&self, waker: &Waker) {
        Chan::forget(self, waker)
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Chan::poll_recv(self, cx)
    }
}

/// A channel over `store`, each slot holding at most `capacity` messages (at least one).
pub(crate) fn channel_of<S: Store>(store: S, capacity: usize) -> (Tx<S>, Chan<S>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            store,
            capacity: capacity.max(1),
            senders: 1,
            receiver_alive: true,
            rx_waiters: Vec::new(),
        }),
    });
    (Tx { shared: shared.clone() }, Chan { shared })
}

/// A queue holding at most `capacity` messages (at least one).
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel_of(Deque(Slot::new()), capacity)
}

/// This queue's sending end; clone it for more senders.
pub(crate) type Sender<T> = Tx<Deque<T>>;
/// This queue's receiving end.
pub(crate) type Receiver<T> = Chan<Deque<T>>;

/// The sending end of a channel over any [`Store`]; clone it for more senders.
pub(crate) struct Tx<S> {
    shared: Arc<Shared<S>>,
}

impl<S> fmt::Debug for Tx<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<S> Clone for Tx<S> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Tx { shared: self.shared.clone() }
    }
}

impl<S> Drop for Tx<S> {
    fn drop(&mut self) {
        let waiters = {
            let mut st = self.shared.lock();
            st.senders -= 1;
            if st.senders > 0 {
                return;
            }
            std::mem::take(&mut st.rx_waiters)
        };
        wake_all(waiters);
    }
}

impl<S: Store> Tx<S> {
    /// Queues `msg` in its slot if there is room.
    #[inline]
    pub(crate) fn try_send(&self, msg: S::Item) -> Result<(), TrySendError<S::Item>> {
        self.try_send_as(S::key(&msg), msg, |m| m)
    }

    /// Queues `into(msg)` in the slot of `key` if there is room; else gives `msg` back as it was.
    #[inline(always)]
    pub(crate) fn try_send_as<M>(
        &self,
        key: S::Key,
        msg: M,
        into: impl FnOnce(M) -> S::Item,
    ) -> Result<(), TrySendError<M>> {
        self.try_send_with(key, msg, |store, place, msg| store.push(place, into(msg)))
    }

    /// Lets `push` queue `msg` (its own way, under the lock) in the slot of `key` if there is
    /// room; else gives `msg` back as it was. What `push` returns is dropped after the lock.
    #[inline(always)]
    pub(crate) fn try_send_with<M>(
        &self,
        key: S::Key,
        msg: M,
        push: impl FnOnce(&mut S, S::Place, M) -> S::Spent,
    ) -> Result<(), TrySendError<M>> {
        // Dropped after the lock (declared before the guard).
        let _spent;
        let mut st = self.shared.lock();
        if !st.receiver_alive {
            return Err(TrySendError::Closed(msg));
        }
        let place = st.store.place(key);
        if !st.has_room(place) {
            return Err(TrySendError::Full(msg));
        }
        _spent = push(&mut st.store, place, msg);
        if !st.rx_waiters.is_empty() {
            wake_receivers(st);
        }
        Ok(())
    }

    /// Runs `push` on the store under the lock whatever the room (the caller keeps within the
    /// capacity its own way: `wire::Staged`), and wakes the receivers as a send does (or rings
    /// their bell). `None` (nothing run) once the receiver is gone.
    #[inline]
    pub(crate) fn push_waking<R>(&self, push: impl FnOnce(&mut S) -> R) -> Option<R> {
        let mut st = self.shared.lock();
        if !st.receiver_alive {
            return None;
        }
        let r = push(&mut st.store);
        if !st.rx_waiters.is_empty() {
            wake_receivers(st);
        }
        Some(r)
    }

    /// Queues what `next` gives, all for the slot of `key`, under one lock: until `next` gives
    /// `None`, `max` are queued, or one finds no room (given back: [`Batch::Full`]). A connection
    /// hands over what it decoded from one read this way; `next` runs under the lock, so it must
    /// be cheap and must not touch this queue. The receiver is woken once, at the end.
    pub(crate) fn try_send_batch(
        &self,
        key: S::Key,
        max: usize,
        mut next: impl FnMut() -> Option<S::Item>,
    ) -> Batch<S::Item>
    where
        S: Store<Spent = ()>,
    {
        let (stop, waiters) = {
            let mut st = self.shared.lock();
            if !st.receiver_alive {
                return Batch::Closed;
            }
            let place = st.store.place(key);
            let mut stop = Batch::Done;
            for _ in 0..max {
                let Some(item) = next() else { break };
                if !st.has_room(place) {
                    stop = Batch::Full(item);
                    break;
                }
                st.store.push(place, item);
            }
            // Taken only if someone waits: the empty list keeps its buffer for the next waiter.
            if st.rx_waiters.is_empty() {
                return stop;
            }
            (stop, st.take_rx_waiters())
        };
        wake_all(waiters);
        stop
    }

    /// Queues the message `item` holds into its slot if there is room (taking it out of `item`),
    /// or registers `cx` to be woken when there may be. `Err` once the receiver is gone (`item`
    /// keeps the message). What a reservation and its use do, under one lock.
    pub(crate) fn poll_send(&self, item: &mut Option<S::Item>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let Some(key) = item.as_ref().map(S::key) else { return Poll::Ready(Ok(())) };
        let waiters = {
            let mut st = self.shared.lock();
            if !st.receiver_alive {
                return Poll::Ready(Err(()));
            }
            let place = st.store.place(key);
            if !st.has_room(place) {
                register(&mut st.store.slot(place).tx_waiters, cx.waker());
                return Poll::Pending;
            }
            if let Some(msg) = item.take() {
                st.store.push(place, msg);
            }
            if st.rx_waiters.is_empty() {
                return Poll::Ready(Ok(()));
            }
            st.take_rx_waiters()
        };
        wake_all(waiters);
        Poll::Ready(Ok(()))
    }

    /// Waits for room in the slot of `key` and reserves it. `Err` once the receiver is gone.
    /// Cancel safe.
    pub(crate) async fn reserve_for(&self, key: S::Key) -> Result<Reserved<'_, S>, ()> {
        poll_fn(|cx| self.poll_reserve(key, cx)).await?;
        Ok(Reserved { sender: self, key, used: false })
    }

    pub(crate) fn poll_reserve(&self, key: S::Key, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut st = self.shared.lock();
        if !st.receiver_alive {
            return Poll::Ready(Err(()));
        }
        let place = st.store.place(key);
        if st.has_room(place) {
            st.store.slot(place).reserved += 1;
            return Poll::Ready(Ok(()));
        }
        register(&mut st.store.slot(place).tx_waiters, cx.waker());
        Poll::Pending
    }

    /// Waits for room and queues `msg`; gives it back if the receiver is gone. Cancel safe (a
    /// cancelled call has not queued the message).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn send(&self, msg: S::Item) -> Result<(), S::Item> {
        match self.reserve_for(S::key(&msg)).await {
            Ok(permit) => {
                permit.send(msg);
                Ok(())
            }
            Err(()) => Err(msg),
        }
    }
}

/// A reserved slot: [`Reserved::send`] queues into it without waiting; dropping it unused frees
/// it.
pub(crate) struct Reserved<'a, S: Store> {
    sender: &'a Tx<S>,
    key: S::Key,
    used: bool,
}

impl<S: Store> Reserved<'_, S> {
    /// Queues `msg` into the reserved slot (dropped if the receiver went away meanwhile).
    pub(crate) fn send(mut self, msg: S::Item) {
        self.used = true;
        // Dropped after the lock (declared before the guard).
        let _spent;
        let mut st = self.sender.shared.lock();
        let place = st.store.place(self.key);
        st.store.slot(place).reserved -= 1;
        if !st.receiver_alive {
            return;
        }
        _spent = st.store.push(place, msg);
        if !st.rx_waiters.is_empty() {
            wake_receivers(st);
        }
    }
}

impl<S: Store> Drop for Reserved<'_, S> {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let waiters = {
            let mut st = self.sender.shared.lock();
            let place = st.store.place(self.key);
            let slot = st.store.slot(place);
            slot.reserved -= 1;
            let waiters = std::mem::take(&mut slot.tx_waiters);
            st.store.released(place);
            waiters
        };
        wake_all(waiters);
    }
}

/// The receiving end of a channel over any [`Store`]. Its methods take `&self`; several tasks may
/// receive, each message going to one of them.
pub(crate) struct Chan<S: Store> {
    shared: Arc<Shared<S>>,
}

impl<S: Store> fmt::Debug for Chan<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<S: Store> Drop for Chan<S> {
    fn drop(&mut self) {
        let mut waiters = Vec::new();
        let items = {
            let mut st = self.shared.lock();
            st.receiver_alive = false;
            st.store.drain(&mut waiters)
        };
        // Dropped outside the lock: a message's drop may be arbitrary user code (Bytes owners).
        drop(items);
        wake_all(waiters);
    }
}

impl<S: Store> Chan<S> {
    /// The next message if one is queued.
    pub(crate) fn try_recv(&self) -> Option<S::Item> {
        self.try_recv_waking(wake_all)
    }

    /// As [`Chan::try_recv`], but the senders due (their slot is down to the low-water mark) go
    /// to `wake`, for a caller that wakes them its own way.
    #[inline(always)]
    pub(crate) fn try_recv_waking(&self, wake: impl FnOnce(Vec<Waker>)) -> Option<S::Item> {
        let mut waiters = Vec::new();
        let msg = {
            let mut st = self.shared.lock();
            let capacity = st.capacity;
            st.store.pop(capacity, &mut waiters)
        };
        if !waiters.is_empty() {
            wake(waiters);
        }
        msg
    }

    /// Waits for the next message; `None` once every sender is gone and nothing is queued.
    /// Cancel safe.
    pub(crate) async fn recv(&self) -> Option<S::Item> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes the next message, or registers `cx` to be woken when one comes.
    #[inline]
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.poll_recv_noting(cx, |_| ()).0
    }

    /// [`Chan::poll_recv`], with what `note` reads of the store under the same lock when nothing
    /// is queued (`None` when something was taken or every sender is gone).
    #[inline]
    pub(crate) fn poll_recv_noting<N>(
        &self,
        cx: &mut Context<'_>,
        note: impl FnOnce(&S) -> N,
    ) -> (Poll<Option<S::Item>>, Option<N>) {
        let mut waiters = Vec::new();
        let msg = {
            let mut st = self.shared.lock();
            let capacity = st.capacity;
            match st.store.pop(capacity, &mut waiters) {
                Some(msg) => msg,
                None if st.senders == 0 => return (Poll::Ready(None), None),
                None => {
                    register(&mut st.rx_waiters, cx.waker());
                    return (Poll::Pending, Some(note(&st.store)));
                }
            }
        };
        wake_all(waiters);
        (Poll::Ready(Some(msg)), None)
    }

    /// Withdraws `waker` from the receivers waiting for a message (it is about to look itself).
    pub(crate) fn forget(&self, waker: &Waker) {
        let mut st = self.shared.lock();
        if !st.rx_waiters.is_empty() {
            st.rx_waiters.retain(|w| !same_task(w, waker));
        }
    }

    /// Runs `f` on the store under the lock (for what only one store does).
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shared.lock().store)
    }

    /// Runs `f`, which takes messages, on the store and its capacity under the lock; wakes the
    /// senders it returns after the lock (for a store's own ways of taking).
    pub(crate) fn take_with<R>(&self, f: impl FnOnce(&mut S, usize) -> (R, Vec<Waker>)) -> R {
        let (r, waiters) = {
            let mut st = self.shared.lock();
            let capacity = st.capacity;
            f(&mut st.store, capacity)
        };
        wake_all(waiters);
        r
    }
}

impl<S: Store> Tx<S> {
    /// Runs `f` on the store under the lock (for what only one store does).
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shared.lock().store)
    }
}

#[cfg(all(test, not(zmtp_loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capacity_and_order() {
        let (tx, rx) = channel(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(tx.try_send(3), Ok(()));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn reserve_counts_against_capacity() {
        let (tx, rx) = channel(1);
        let permit = tx.reserve_for(()).await.expect("room");
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        drop(permit);
        assert_eq!(tx.try_send(1), Ok(()));
        // A blocked sender gets in once the receiver takes a message.
        let tx2 = tx.clone();
        let blocked = tokio::spawn(async move { tx2.send(2).await });
        tokio::task::yield_now().await;
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(blocked.await.expect("task"), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
    }

    /// Counts its wake-ups.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn woken(count: &Arc<Count>) -> usize {
        count.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `try_recv_waking` hands the sender due at the low-water mark to its caller instead of
    /// waking it (`Socket::take_inbound` wakes it through the connection it drives).
    #[test]
    fn try_recv_waking_hands_over_the_sender_to_wake() {
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, rx) = crate::socket::fair::channel::<Keyed>(4);
        for i in 0..4 {
            tx.try_send(Keyed(1, i)).expect("room");
        }
        assert!(tx.poll_reserve(1, &mut cx).is_pending());
        let mut senders = Vec::new();
        assert_eq!(rx.try_recv_waking(|w| senders = w), Some(Keyed(1, 0)));
        assert!(senders.is_empty(), "above the mark");
        assert_eq!(rx.try_recv_waking(|w| senders = w), Some(Keyed(1, 1)));
        assert_eq!(senders.len(), 1, "at the mark");
        assert_eq!(woken(&count), 0, "handed over, not woken");
        wake_all(senders);
        assert_eq!(woken(&count), 1);
        assert!(tx.poll_reserve(1, &mut cx).is_ready());
    }

    /// A sender waiting for room in a full queue is woken once the receiver has taken it down to
    /// the low-water mark (half of 10), not at the first message taken; what it waits for is
    /// there when it looks. Both ways of taking (one, many) and both stores follow the rule.
    #[test]
    fn waiting_senders_are_woken_at_the_low_water_mark() {
        assert_eq!(low_water_mark(10), 5);
        assert_eq!(low_water_mark(1), 0);
        assert_eq!(low_water_mark(1000), 500);
        assert_eq!(low_water_mark(100_000), 100_000 - 1024);
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, rx) = channel::<u32>(10);
        for i in 0..10 {
            tx.try_send(i).expect("room");
        }
        assert!(tx.poll_reserve((), &mut cx).is_pending());
        for i in 0..4 {
            assert_eq!(rx.try_recv(), Some(i));
            assert_eq!(woken(&count), 0, "woken with {} queued", 9 - i);
        }
        assert_eq!(rx.try_recv(), Some(4));
        assert_eq!(woken(&count), 1);
        assert!(tx.poll_reserve((), &mut cx).is_ready());

        // Many at once (a pipe's queue): woken when the take crosses the mark.
        let (tx, rx) = crate::socket::wire::channel(10);
        for i in 0..10u8 {
            tx.try_send(crate::Message::from(vec![i])).expect("room");
        }
        assert!(tx.poll_reserve(&mut cx).is_pending());
        let mut out = VecDeque::new();
        assert_eq!(rx.try_recv_many(&mut out, 3, &mut None, &mut false), 3);
        assert_eq!(woken(&count), 1);
        assert_eq!(rx.try_recv_many(&mut out, 3, &mut None, &mut false), 3);
        assert_eq!(woken(&count), 2);

        // The fair queue's lanes: each lane by its own count.
        let (tx, rx) = crate::socket::fair::channel::<Keyed>(4);
        for i in 0..4 {
            tx.try_send(Keyed(1, i)).expect("room");
        }
        tx.try_send(Keyed(2, 0)).expect("another lane");
        assert!(tx.poll_reserve(1, &mut cx).is_pending());
        let mut taken = Vec::new();
        while woken(&count) == 2 {
            taken.push(rx.try_recv().expect("queued"));
        }
        // Lane 1 down to 2 of 4 (lane 2's message taken in turn on the way).
        assert_eq!(taken, [Keyed(1, 0), Keyed(2, 0), Keyed(1, 1)]);
    }

    /// `poll_send` (a connection's message that waited for room): queued at once with room,
    /// waiting in its own lane (woken at the low-water mark) without, a waiting receiver woken
    /// once it is in, and given back once the receiver is gone.
    #[test]
    fn poll_send_waits_in_its_lane_and_gives_the_message_back_when_closed() {
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, rx) = crate::socket::fair::channel::<Keyed>(2);
        assert!(rx.poll_recv(&mut cx).is_pending());
        let mut item = Some(Keyed(1, 0));
        assert_eq!(tx.poll_send(&mut item, &mut cx), Poll::Ready(Ok(())));
        assert_eq!(item, None);
        assert_eq!(woken(&count), 1, "the waiting receiver");
        // Nothing to send: nothing happens.
        assert_eq!(tx.poll_send(&mut item, &mut cx), Poll::Ready(Ok(())));
        tx.try_send(Keyed(1, 1)).expect("room");
        let mut item = Some(Keyed(1, 2));
        assert!(tx.poll_send(&mut item, &mut cx).is_pending());
        assert_eq!(item, Some(Keyed(1, 2)), "kept while it waits");
        // Another lane has room of its own.
        let mut other = Some(Keyed(2, 0));
        assert_eq!(tx.poll_send(&mut other, &mut cx), Poll::Ready(Ok(())));
        assert_eq!(woken(&count), 1);
        // Lane 1 taken down to its low-water mark (1 of 2): the waiting sender is woken.
        let mut taken = Vec::new();
        while woken(&count) == 1 {
            taken.push(rx.try_recv().expect("queued"));
        }
        assert_eq!(taken, [Keyed(1, 0)]);
        assert_eq!(tx.poll_send(&mut item, &mut cx), Poll::Ready(Ok(())));
        assert_eq!(item, None);
        let mut rest = Vec::new();
        while let Some(m) = rx.try_recv() {
            rest.push(m);
        }
        assert_eq!(rest, [Keyed(2, 0), Keyed(1, 1), Keyed(1, 2)]);
        drop(rx);
        let mut item = Some(Keyed(1, 3));
        assert_eq!(tx.poll_send(&mut item, &mut cx), Poll::Ready(Err(())));
        assert_eq!(item, Some(Keyed(1, 3)), "given back");
    }

    /// A batch goes in under one lock up to `max` or the first item without room (given back,
    /// the rest left with `next`), wakes a waiting receiver once, and takes nothing once the
    /// receiver is gone.
    #[test]
    fn batches_stop_at_max_and_at_the_first_item_without_room() {
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, rx) = channel::<u32>(5);
        assert!(rx.poll_recv(&mut cx).is_pending());
        let mut source = 0..;
        assert_eq!(tx.try_send_batch((), 3, || source.next()), Batch::Done);
        assert_eq!(woken(&count), 1);
        assert_eq!(tx.try_send_batch((), 10, || source.next()), Batch::Full(5));
        assert_eq!(source.next(), Some(6), "nothing taken after the item without room");
        let mut got = Vec::new();
        while let Some(m) = rx.try_recv() {
            got.push(m);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
        let mut empty = std::iter::empty::<u32>();
        assert_eq!(tx.try_send_batch((), 10, || empty.next()), Batch::Done);
        assert!(rx.try_recv().is_none());
        drop(rx);
        assert_eq!(tx.try_send_batch((), 10, || panic!("taken after the receiver went")), Batch::Closed);
    }

    #[derive(Debug, PartialEq)]
    struct Keyed(u64, u32);

    impl crate::socket::fair::Keyed for Keyed {
        fn key(&self) -> u64 {
            self.0
        }

        fn mark_stale(&mut self) {}
    }

    #[tokio::test]
    async fn close_from_either_end() {
        let (tx, rx) = channel::<u32>(4);
        let tx2 = tx.clone();
        tx.try_send(7).expect("room");
        drop(tx);
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        drop(tx2);
        assert_eq!(waiting.await.expect("task"), (Some(7), None));

        let (tx, rx) = channel::<u32>(1);
        tx.try_send(1).expect("room");
        let blocked = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(2).await })
        };
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(blocked.await.expect("task"), Err(2));
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test]
    async fn cancelled_receiver_does_not_lose_wakeups() {
        let (tx, rx) = channel::<u32>(4);
        let rx = Arc::new(rx);
        // A receive that is polled once and dropped leaves a stale waker; the real one still wakes.
        let stale = tokio::time::timeout(std::time::Duration::from_millis(5), rx.recv()).await;
        assert!(stale.is_err());
        let rx2 = rx.clone();
        let waiting = tokio::spawn(async move { rx2.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(5).expect("room");
        assert_eq!(waiting.await.expect("task"), Some(5));
    }
}

/// Model checks of the wake-ups (`scripts/loom.sh`): loom runs each through every interleaving of
/// its threads; a lost wake-up leaves a thread parked for good, which loom reports as a deadlock.
#[cfg(all(test, zmtp_loom))]
mod loom_models {
    use super::*;
    use loom::future::block_on;
    use loom::thread;

    /// A receiver that waits is woken by a send from another thread.
    #[test]
    fn send_wakes_a_waiting_receiver() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(4);
            let sender = thread::spawn(move || tx.try_send(1).is_ok());
            assert_eq!(block_on(rx.recv()), Some(1));
            assert!(sender.join().expect("sender"));
        });
    }

    /// Two receivers wait on one queue; two sends serve both (each wake-up reaches a waiter).
    #[test]
    fn two_receivers_two_messages() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(4);
            let rx = Arc::new(rx);
            let other = {
                let rx = rx.clone();
                thread::spawn(move || block_on(rx.recv()))
            };
            let sender = thread::spawn(move || tx.try_send(1).is_ok() && tx.try_send(2).is_ok());
            let mine = block_on(rx.recv());
            let theirs = other.join().expect("receiver");
            assert!(sender.join().expect("sender"));
            let mut got = [mine, theirs];
            got.sort();
            assert_eq!(got, [Some(1), Some(2)]);
        });
    }

    /// A sender waiting for room is woken when the receiver takes a message.
    #[test]
    fn receive_wakes_a_waiting_sender() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(1);
            tx.try_send(1).expect("room");
            let sender = thread::spawn(move || block_on(tx.send(2)).is_ok());
            assert_eq!(block_on(rx.recv()), Some(1));
            assert_eq!(block_on(rx.recv()), Some(2));
            assert!(sender.join().expect("sender"));
        });
    }

    /// A batch from another thread wakes a waiting receiver, which gets all of it in order.
    #[test]
    fn batch_wakes_a_waiting_receiver() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(4);
            let sender = thread::spawn(move || {
                let mut source = 1..3;
                tx.try_send_batch((), 4, || source.next()) == Batch::Done
            });
            assert_eq!(block_on(rx.recv()), Some(1));
            assert_eq!(block_on(rx.recv()), Some(2));
            assert!(sender.join().expect("sender"));
        });
    }

    /// A sender waiting for room in a full queue of 4 while the receiver takes everything: woken
    /// at the low-water mark (2 left), never left asleep with room.
    #[test]
    fn low_water_mark_wakes_a_waiting_sender() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(4);
            for i in 0..4 {
                tx.try_send(i).expect("room");
            }
            let sender = thread::spawn(move || block_on(tx.send(4)).is_ok());
            for i in 0..5 {
                assert_eq!(block_on(rx.recv()), Some(i));
            }
            assert!(sender.join().expect("sender"));
        });
    }

    /// A receive that registered and was then cancelled (its waker withdrawn, as `Assist` does)
    /// does not swallow the wake-up another receiver waits for.
    #[test]
    fn cancelled_receive_keeps_the_others_wakeup() {
        loom::model(|| {
            let (tx, rx) = channel::<u32>(4);
            let rx = Arc::new(rx);
            let cancelled = {
                let rx = rx.clone();
                thread::spawn(move || {
                    let waker = std::task::Waker::noop();
                    let mut cx = Context::from_waker(waker);
                    let first = rx.poll_recv(&mut cx);
                    rx.forget(waker);
                    first
                })
            };
            let sender = thread::spawn(move || tx.try_send(1).is_ok());
            let taken_by_cancelled = matches!(cancelled.join().expect("cancelled"), Poll::Ready(Some(1)));
            if !taken_by_cancelled {
                assert_eq!(block_on(rx.recv()), Some(1));
            }
            assert!(sender.join().expect("sender"));
        });
    }
}
