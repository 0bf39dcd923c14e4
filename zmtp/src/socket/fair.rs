//! The inbound side of a socket: one lane per peer, served in turn.
//!
//! RFC 28 and 30 make REP, ROUTER, DEALER and PULL (and libzmq every type that receives) take
//! messages from their peers by fair queueing: one message from each peer that has one, in turn,
//! so that a peer pipelining a thousand requests does not make the others wait behind all of them.
//! Each peer's connection task pushes into its own lane, bounded by RCVHWM as libzmq counts it
//! (per pipe); a full lane stops that peer only (its task stops reading it), and the receivers take
//! from the lanes that hold messages, round-robin.
//!
//! One lock, as in `queue` (the pipes' queue, whose semantics this follows). Lanes live in slots; a
//! push finds its lane's slot from its key (a peer's pipe id) — the last push's slot when the key is
//! the same, else through an index — and pushes to a `VecDeque`; a receive takes the front of the
//! ring of slots that hold messages and moves that slot to the back. A lane stays while its pipe is
//! attached, so a peer exchanging one message at a time allocates nothing; it goes once its pipe is
//! removed and its messages are taken ([`Sender::close_lane`]), and its slot and buffer are reused.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::queue::{register, same_task, wake_all, Inbox, TrySendError};
use super::sync::{Mutex, MutexGuard};

/// What a lane is chosen by.
pub(crate) trait Keyed {
    fn key(&self) -> u64;
}

/// Pipe ids are small sequential integers: one multiplication spreads them over the table.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Index = HashMap<u64, usize, BuildHasherDefault<IdHasher>>;

/// No lane: the cache of the last lane pushed to is empty.
const NO_KEY: u64 = u64::MAX;

struct Lane<T> {
    key: u64,
    /// In use (else a free slot whose buffer waits for the next lane).
    live: bool,
    items: VecDeque<T>,
    /// Slots promised to [`Permit`]s not yet used.
    reserved: usize,
    /// This peer's task, waiting for room in its lane.
    tx_waiters: Vec<Waker>,
    /// The pipe is gone: remove the lane once it is empty.
    closed: bool,
}

impl<T> Lane<T> {
    fn idle(&self) -> bool {
        self.items.is_empty() && self.reserved == 0 && self.tx_waiters.is_empty()
    }
}

struct State<T> {
    /// Lanes by slot; a removed lane's slot (and its buffer) is reused by the next one.
    slots: Vec<Lane<T>>,
    free: Vec<usize>,
    /// Key → slot. Pushes look here only when the key differs from the last push's.
    index: Index,
    /// The last push's key and slot (most pushes in a row come from one peer).
    last: (u64, usize),
    /// Slots of the lanes that hold messages, in the order they are served.
    ring: VecDeque<usize>,
    /// Per lane.
    capacity: usize,
    senders: usize,
    receiver_alive: bool,
    rx_waiters: Vec<Waker>,
    /// Buffers of lanes that emptied, taken by the next lanes that receive: an idle peer's lane
    /// holds no buffer (with thousands of peers, their buffers were most of an idle
    /// connection's inbound cost), while a busy peer's lane swaps the same buffer in and out
    /// without allocating. At most [`SPARES`], each of at most [`SPARE_ITEMS`] items.
    spares: Vec<VecDeque<T>>,
}

/// Empty lane buffers kept for reuse.
const SPARES: usize = 8;
/// Larger buffers (a lane that filled up to a large HWM) are freed once empty, not kept.
const SPARE_ITEMS: usize = 64;

impl<T> State<T> {
    /// The slot of lane `key`, made if there is none.
    #[inline(always)]
    fn slot(&mut self, key: u64) -> usize {
        if self.last.0 == key {
            return self.last.1;
        }
        let slot = match self.index.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        self.slots.push(Lane {
                            key,
                            live: false,
                            items: VecDeque::new(),
                            reserved: 0,
                            tx_waiters: Vec::new(),
                            closed: false,
                        });
                        self.slots.len() - 1
                    }
                };
                let lane = &mut self.slots[slot];
                lane.key = key;
                lane.live = true;
                lane.closed = false;
                self.index.insert(key, slot);
                slot
            }
        };
        self.last = (key, slot);
        slot
    }

    /// Queues `item` in the lane at `slot`; returns the receivers to wake.
    #[inline(always)]
    fn push(&mut self, slot: usize, item: T) -> Vec<Waker> {
        let lane = &mut self.slots[slot];
        let was_empty = lane.items.is_empty();
        if lane.items.capacity() == 0 {
            if let Some(buffer) = self.spares.pop() {
                lane.items = buffer;
            }
        }
        lane.items.push_back(item);
        if was_empty {
            self.ring.push_back(slot);
        }
        std::mem::take(&mut self.rx_waiters)
    }

    /// The next message in turn, and the sender to wake now that its lane has room.
    #[inline(always)]
    fn pop(&mut self) -> Option<(T, Vec<Waker>)> {
        let &slot = self.ring.front()?;
        let lane = &mut self.slots[slot];
        let item = lane.items.pop_front()?;
        let waiters = if lane.tx_waiters.is_empty() { Vec::new() } else { std::mem::take(&mut lane.tx_waiters) };
        if lane.items.is_empty() {
            self.ring.pop_front();
            let buffer = std::mem::take(&mut lane.items);
            if self.spares.len() < SPARES && buffer.capacity() <= SPARE_ITEMS {
                self.spares.push(buffer);
            }
            if lane.closed && lane.idle() {
                self.remove(slot);
            }
        } else if self.ring.len() > 1 {
            self.ring.pop_front();
            self.ring.push_back(slot);
        }
        Some((item, waiters))
    }

    fn remove(&mut self, slot: usize) {
        let lane = &mut self.slots[slot];
        if !lane.live {
            return;
        }
        lane.live = false;
        lane.items.clear();
        if lane.items.capacity() > 64 {
            lane.items = VecDeque::new();
        }
        let key = lane.key;
        self.index.remove(&key);
        self.free.push(slot);
        if self.last.0 == key {
            self.last = (NO_KEY, 0);
        }
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fair queue whose lanes hold at most `capacity` messages each (at least one).
pub(crate) fn channel<T: Keyed>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            slots: Vec::new(),
            free: Vec::new(),
            index: Index::default(),
            last: (NO_KEY, 0),
            ring: VecDeque::new(),
            capacity: capacity.max(1),
            senders: 1,
            receiver_alive: true,
            spares: Vec::new(),
            rx_waiters: Vec::new(),
        }),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

/// The sending end, shared by every peer's task (each pushes into the lane of its item's key).
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("fair::Sender").finish_non_exhaustive()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
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

impl<T: Keyed> Sender<T> {
    /// Queues `item` in its lane if the lane has room.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let key = item.key();
        let waiters = {
            let mut st = self.shared.lock();
            if !st.receiver_alive {
                return Err(TrySendError::Closed(item));
            }
            let slot = st.slot(key);
            let lane = &st.slots[slot];
            if lane.items.len() + lane.reserved >= st.capacity {
                return Err(TrySendError::Full(item));
            }
            st.push(slot, item)
        };
        wake_all(waiters);
        Ok(())
    }

    /// Waits for room in lane `key` and reserves it. `Err` once the receiver is gone. Cancel safe.
    pub(crate) async fn reserve(&self, key: u64) -> Result<Permit<'_, T>, ()> {
        poll_fn(|cx| self.poll_reserve(key, cx)).await?;
        Ok(Permit { sender: self, key, used: false })
    }

    fn poll_reserve(&self, key: u64, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut st = self.shared.lock();
        if !st.receiver_alive {
            return Poll::Ready(Err(()));
        }
        let slot = st.slot(key);
        let capacity = st.capacity;
        let lane = &mut st.slots[slot];
        if lane.items.len() + lane.reserved < capacity {
            lane.reserved += 1;
            return Poll::Ready(Ok(()));
        }
        register(&mut lane.tx_waiters, cx.waker());
        Poll::Pending
    }

    /// Waits for room in the item's lane and queues it; gives it back if the receiver is gone.
    /// Cancel safe (a cancelled call has not queued the item).
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        match self.reserve(item.key()).await {
            Ok(permit) => {
                permit.send(item);
                Ok(())
            }
            Err(()) => Err(item),
        }
    }

    /// The pipe behind lane `key` is gone: the lane goes once its messages are taken.
    pub(crate) fn close_lane(&self, key: u64) {
        let mut st = self.shared.lock();
        let Some(&slot) = st.index.get(&key) else { return };
        let lane = &mut st.slots[slot];
        lane.closed = true;
        if lane.idle() {
            st.remove(slot);
        }
    }
}

/// A reserved slot in one lane: [`Permit::send`] queues into it without waiting; dropping it
/// unused frees it.
pub(crate) struct Permit<'a, T> {
    sender: &'a Sender<T>,
    key: u64,
    used: bool,
}

impl<T> Permit<'_, T> {
    /// Queues `item` into the reserved slot (dropped if the receiver went away meanwhile).
    pub(crate) fn send(mut self, item: T) {
        self.used = true;
        let waiters = {
            let mut st = self.sender.shared.lock();
            let slot = st.slot(self.key);
            st.slots[slot].reserved -= 1;
            if !st.receiver_alive {
                return;
            }
            st.push(slot, item)
        };
        wake_all(waiters);
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let waiters = {
            let mut st = self.sender.shared.lock();
            let slot = st.slot(self.key);
            let lane = &mut st.slots[slot];
            lane.reserved -= 1;
            let waiters = std::mem::take(&mut lane.tx_waiters);
            if lane.closed && lane.idle() {
                st.remove(slot);
            }
            waiters
        };
        wake_all(waiters);
    }
}

/// The receiving end. Its methods take `&self`; several tasks may receive, each message going to
/// one of them.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("fair::Receiver").finish_non_exhaustive()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (items, waiters) = {
            let mut st = self.shared.lock();
            st.receiver_alive = false;
            st.ring.clear();
            // The lanes stay (senders, permits and `close_lane` still find their slots); only what
            // they hold goes.
            let mut items = Vec::new();
            let mut waiters = Vec::new();
            for lane in &mut st.slots {
                items.push(std::mem::take(&mut lane.items));
                waiters.append(&mut lane.tx_waiters);
            }
            (items, waiters)
        };
        // Dropped outside the lock: a message's drop may be arbitrary user code (Bytes owners).
        drop(items);
        wake_all(waiters);
    }
}

impl<T> Receiver<T> {
    /// The next message in turn, if any is queued.
    pub(crate) fn try_recv(&self) -> Option<T> {
        let (item, waiters) = self.shared.lock().pop()?;
        wake_all(waiters);
        Some(item)
    }

    /// Waits for the next message; `None` once every sender is gone and nothing is queued.
    /// Cancel safe.
    pub(crate) async fn recv(&self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes the next message in turn, or registers `cx` to be woken when one comes.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (item, waiters) = {
            let mut st = self.shared.lock();
            match st.pop() {
                Some(popped) => popped,
                None if st.senders == 0 => return Poll::Ready(None),
                None => {
                    register(&mut st.rx_waiters, cx.waker());
                    return Poll::Pending;
                }
            }
        };
        wake_all(waiters);
        Poll::Ready(Some(item))
    }

    /// Withdraws `waker` from the receivers waiting for a message (it is about to look itself).
    pub(crate) fn forget(&self, waker: &Waker) {
        let mut st = self.shared.lock();
        if !st.rx_waiters.is_empty() {
            st.rx_waiters.retain(|w| !same_task(w, waker));
        }
    }

    /// How many lanes exist (attached peers with a lane, and removed ones still holding messages).
    #[cfg(test)]
    pub(crate) fn lanes(&self) -> usize {
        self.shared.lock().index.len()
    }
}

impl<T> Inbox<T> for Receiver<T> {
    fn try_recv(&self) -> Option<T> {
        Receiver::try_recv(self)
    }

    fn forget(&self, waker: &Waker) {
        Receiver::forget(self, waker)
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Receiver::poll_recv(self, cx)
    }
}

#[cfg(all(test, not(zmtp_loom)))]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct M(u64, u32);

    impl Keyed for M {
        fn key(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn lanes_are_served_in_turn() {
        let (tx, rx) = channel(100);
        // Peer 1 pipelines ten messages, then peers 2 and 3 send one each.
        for i in 0..10 {
            tx.try_send(M(1, i)).expect("room");
        }
        tx.try_send(M(2, 0)).expect("room");
        tx.try_send(M(3, 0)).expect("room");
        let order: Vec<_> = std::iter::from_fn(|| rx.try_recv()).take(5).collect();
        assert_eq!(order, [M(1, 0), M(2, 0), M(3, 0), M(1, 1), M(1, 2)]);
    }

    #[test]
    fn each_lane_has_its_own_high_water_mark() {
        let (tx, rx) = channel(2);
        tx.try_send(M(1, 0)).expect("room");
        tx.try_send(M(1, 1)).expect("room");
        assert_eq!(tx.try_send(M(1, 2)), Err(TrySendError::Full(M(1, 2))));
        // Another peer is not held back by the first one's full lane.
        tx.try_send(M(2, 0)).expect("room in another lane");
        assert_eq!(rx.try_recv(), Some(M(1, 0)));
        tx.try_send(M(1, 2)).expect("room again");
    }

    #[test]
    fn closed_lanes_go_once_drained_and_buffers_are_reused() {
        let (tx, rx) = channel(8);
        for peer in 0..1000 {
            tx.try_send(M(peer, 0)).expect("room");
            tx.close_lane(peer);
            assert_eq!(rx.try_recv(), Some(M(peer, 0)));
        }
        assert_eq!(rx.lanes(), 0);
        // An attached peer's lane stays (no allocation per message).
        tx.try_send(M(7, 0)).expect("room");
        assert_eq!(rx.try_recv(), Some(M(7, 0)));
        assert_eq!(rx.lanes(), 1);
        tx.close_lane(7);
        assert_eq!(rx.lanes(), 0);
    }

    #[tokio::test]
    async fn senders_outlive_the_receiver() {
        let (tx, rx) = channel(2);
        tx.try_send(M(1, 0)).expect("room");
        let permit = tx.reserve(1).await.expect("room");
        let unused = tx.reserve(2).await.expect("room");
        drop(rx);
        // Each of these once indexed a lane the receiver's drop had taken away.
        permit.send(M(1, 1));
        drop(unused);
        tx.close_lane(1);
        tx.close_lane(2);
        assert_eq!(tx.try_send(M(3, 0)), Err(TrySendError::Closed(M(3, 0))));
        assert!(tx.reserve(3).await.is_err());
    }

    #[tokio::test]
    async fn a_blocked_peer_is_woken_when_its_lane_drains() {
        let (tx, rx) = channel(1);
        tx.try_send(M(1, 0)).expect("room");
        let tx2 = tx.clone();
        let blocked = tokio::spawn(async move { tx2.send(M(1, 1)).await });
        tokio::task::yield_now().await;
        // Another lane filling and draining does not wake peer 1.
        tx.try_send(M(2, 0)).expect("room");
        assert_eq!(rx.recv().await, Some(M(1, 0)));
        assert_eq!(blocked.await.expect("task"), Ok(()));
        assert_eq!(rx.recv().await, Some(M(2, 0)));
        assert_eq!(rx.recv().await, Some(M(1, 1)));
    }
}

/// Model checks of the wake-ups (`scripts/loom.sh`), as for `queue`.
#[cfg(all(test, zmtp_loom))]
mod loom_models {
    use super::*;
    use loom::future::block_on;
    use loom::thread;

    #[derive(Debug, PartialEq, Eq)]
    struct M(u64, u32);

    impl Keyed for M {
        fn key(&self) -> u64 {
            self.0
        }
    }

    /// Two peers push while a receiver waits: it gets both, each wake-up reaching it.
    #[test]
    fn pushes_from_two_lanes_wake_the_receiver() {
        loom::model(|| {
            let (tx, rx) = channel::<M>(4);
            let tx2 = tx.clone();
            let a = thread::spawn(move || tx.try_send(M(1, 0)).is_ok());
            let b = thread::spawn(move || tx2.try_send(M(2, 0)).is_ok());
            let mut got = [block_on(rx.recv()), block_on(rx.recv())];
            got.sort_by_key(|m| m.as_ref().map(|m| m.0));
            assert_eq!(got, [Some(M(1, 0)), Some(M(2, 0))]);
            assert!(a.join().expect("a") && b.join().expect("b"));
        });
    }

    /// A peer waiting for room in its full lane is woken when the receiver takes from it.
    #[test]
    fn receive_wakes_the_blocked_peer() {
        loom::model(|| {
            let (tx, rx) = channel::<M>(1);
            tx.try_send(M(1, 0)).expect("room");
            let blocked = thread::spawn(move || block_on(tx.send(M(1, 1))).is_ok());
            assert_eq!(block_on(rx.recv()), Some(M(1, 0)));
            assert_eq!(block_on(rx.recv()), Some(M(1, 1)));
            assert!(blocked.join().expect("blocked peer"));
        });
    }
}
