//! The inbound side of a socket: one lane per peer, served in turn.
//!
//! RFC 28 and 30 make REP, ROUTER, DEALER and PULL (and libzmq every type that receives) take
//! messages from their peers by fair queueing: one message from each peer that has one, in turn,
//! so that a peer pipelining a thousand requests does not make the others wait behind all of them.
//! Each peer's connection task pushes into its own lane, bounded by RCVHWM as libzmq counts it
//! (per pipe); a full lane stops that peer only (its task stops reading it), and the receivers take
//! from the lanes that hold messages, round-robin.
//!
//! The channel is `queue`'s (one lock; senders, receiver, permits and wake-ups written there once);
//! this file is its [`Store`] of lanes, [`Lanes`]. Lanes live in slots; a
//! push finds its lane's slot from its key (a peer's pipe id) — the last push's slot when the key is
//! the same, else through an index — and pushes to a `VecDeque`; a receive takes the front of the
//! ring of slots that hold messages and moves that slot to the back. A lane stays while its pipe is
//! attached, so a peer exchanging one message at a time allocates nothing; it goes once its pipe is
//! removed and its messages are taken ([`Sender::close_lane`]), and its slot and buffer are reused.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::task::Waker;

use super::queue::{self, Slot, Store};

/// What a lane is chosen by.
pub(crate) trait Keyed {
    fn key(&self) -> u64;
    /// Taken from a lane marked stale ([`Sender::close_lane`], [`Sender::disown_lane`]).
    fn mark_stale(&mut self);
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
    /// Its messages, reservations and blocked peer task.
    slot: Slot<T>,
    /// The pipe is gone: remove the lane once it is empty.
    closed: bool,
    /// What is taken from it is marked stale (its pipe was removed from a socket that drops what
    /// such a pipe delivered: ROUTER).
    stale: bool,
}

/// The lanes: `queue`'s [`Store`] for fair queueing.
pub(crate) struct Lanes<T> {
    /// Lanes by slot; a removed lane's slot (and its buffer) is reused by the next one.
    slots: Vec<Lane<T>>,
    free: Vec<usize>,
    /// Key → slot. Pushes look here only when the key differs from the last push's.
    index: Index,
    /// The last push's key and slot (most pushes in a row come from one peer).
    last: (u64, usize),
    /// Slots of the lanes that hold messages, in the order they are served.
    ring: VecDeque<usize>,
    /// Buffers of lanes that emptied, taken by the next lanes that receive: an idle peer's lane
    /// holds no buffer (with thousands of idle peers, theirs were 0.45 KiB of each idle
    /// connection's cost), while a busy peer's lane swaps the same buffer in and out without
    /// allocating. At most [`SPARES`], each of at most [`SPARE_ITEMS`] items.
    spares: Vec<VecDeque<T>>,
    /// One larger buffer (a lane that filled past [`SPARE_ITEMS`], up to the HWM), taken first:
    /// a peer streaming faster than the application reads fills its lane in bursts, and freeing
    /// that buffer each time its lane empties made it grow again from nothing, about one `realloc`
    /// per hundred 16 B messages (callgrind: 60 instructions a message, and glibc's consolidation
    /// of its free lists on top). One per socket, so its memory is bounded by the HWM.
    big: Option<VecDeque<T>>,
}

/// Empty lane buffers kept for reuse.
const SPARES: usize = 8;
/// Larger buffers (a lane that filled up to a large HWM) go to [`Lanes::big`] once empty, or are
/// freed if it holds one already.
const SPARE_ITEMS: usize = 64;

impl<T> Lanes<T> {
    /// Keeps the empty buffer of a lane for the next lane that receives, if there is room.
    fn recycle(&mut self, buffer: VecDeque<T>) {
        if buffer.capacity() <= SPARE_ITEMS {
            if self.spares.len() < SPARES {
                self.spares.push(buffer);
            }
        } else if !matches!(&self.big, Some(b) if b.capacity() >= buffer.capacity()) {
            self.big = Some(buffer);
        }
    }

    fn remove(&mut self, slot: usize) {
        let lane = &mut self.slots[slot];
        if !lane.live {
            return;
        }
        lane.live = false;
        lane.slot.items.clear();
        if lane.slot.items.capacity() > 64 {
            lane.slot.items = VecDeque::new();
        }
        let key = lane.key;
        self.index.remove(&key);
        self.free.push(slot);
        if self.last.0 == key {
            self.last = (NO_KEY, 0);
        }
    }

    /// Removes the lane at `slot` if its pipe is gone and nothing is left in it.
    fn remove_if_done(&mut self, slot: usize) {
        let lane = &self.slots[slot];
        if lane.closed && lane.slot.idle() {
            self.remove(slot);
        }
    }
}

impl<T: Keyed> Store for Lanes<T> {
    type Item = T;
    type Key = u64;
    type Place = usize;
    type Drained = Vec<VecDeque<T>>;
    type Spent = ();

    #[inline(always)]
    fn key(item: &T) -> u64 {
        item.key()
    }

    /// The slot of lane `key`, made if there is none.
    #[inline(always)]
    fn place(&mut self, key: u64) -> usize {
        if self.last.0 == key {
            return self.last.1;
        }
        let slot = match self.index.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        self.slots.push(Lane { key, live: false, slot: Slot::new(), closed: false, stale: false });
                        self.slots.len() - 1
                    }
                };
                let lane = &mut self.slots[slot];
                lane.key = key;
                lane.live = true;
                lane.closed = false;
                lane.stale = false;
                self.index.insert(key, slot);
                slot
            }
        };
        self.last = (key, slot);
        slot
    }

    #[inline(always)]
    fn slot(&mut self, place: usize) -> &mut Slot<T> {
        &mut self.slots[place].slot
    }

    #[inline(always)]
    fn push(&mut self, place: usize, item: T) {
        let lane = &mut self.slots[place].slot;
        let was_empty = lane.items.is_empty();
        if lane.items.capacity() == 0 {
            if let Some(buffer) = self.big.take().or_else(|| self.spares.pop()) {
                lane.items = buffer;
            }
        }
        lane.items.push_back(item);
        if was_empty {
            self.ring.push_back(place);
        }
    }

    /// The next message in turn, and the peer to wake if its lane is down to the low-water mark.
    #[inline(always)]
    fn pop(&mut self, capacity: usize, woken: &mut Vec<Waker>) -> Option<T> {
        let &slot = self.ring.front()?;
        let Lane { slot: lane, stale, .. } = &mut self.slots[slot];
        let mut item = lane.items.pop_front()?;
        if *stale {
            item.mark_stale();
        }
        *woken = lane.waiters_after_take(capacity);
        if lane.items.is_empty() {
            self.ring.pop_front();
            // With one lane (a single peer) there is no other lane to lend the buffer to, and a
            // lane emptying on each message (request-reply) would swap it out and in each time.
            if self.index.len() > 1 {
                let buffer = std::mem::take(&mut lane.items);
                self.recycle(buffer);
            }
            self.remove_if_done(slot);
        } else if self.ring.len() > 1 {
            self.ring.pop_front();
            self.ring.push_back(slot);
        }
        Some(item)
    }

    fn released(&mut self, place: usize) {
        self.remove_if_done(place);
    }

    fn drain(&mut self, waiters: &mut Vec<Waker>) -> Vec<VecDeque<T>> {
        self.ring.clear();
        // The lanes stay (senders, permits and `close_lane` still find their slots); only what
        // they hold goes.
        let mut items = Vec::new();
        for lane in &mut self.slots {
            items.push(std::mem::take(&mut lane.slot.items));
            waiters.append(&mut lane.slot.tx_waiters);
        }
        items
    }
}

/// A fair queue whose lanes hold at most `capacity` messages each (at least one).
pub(crate) fn channel<T: Keyed>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let lanes = Lanes {
        slots: Vec::new(),
        free: Vec::new(),
        index: Index::default(),
        last: (NO_KEY, 0),
        ring: VecDeque::new(),
        spares: Vec::new(),
        big: None,
    };
    queue::channel_of(lanes, capacity)
}

/// The sending end, shared by every peer's task (each pushes into the lane of its item's key).
pub(crate) type Sender<T> = queue::Tx<Lanes<T>>;
/// The receiving end.
pub(crate) type Receiver<T> = queue::Chan<Lanes<T>>;

impl<T: Keyed> Sender<T> {
    /// Waits for room in lane `key` and reserves it. `Err` once the receiver is gone. Cancel safe.
    /// (Tests: the connections wait with `poll_send`.)
    #[cfg(all(test, not(zmtp_loom)))]
    pub(crate) async fn reserve(&self, key: u64) -> Result<queue::Reserved<'_, Lanes<T>>, ()> {
        self.reserve_for(key).await
    }

    /// The pipe behind lane `key` is gone: the lane goes once its messages are taken. If
    /// `stale`, they are marked stale as they are taken ([`Keyed::mark_stale`]).
    pub(crate) fn close_lane(&self, key: u64, stale: bool) {
        self.with_store(|lanes| {
            let Some(&slot) = lanes.index.get(&key) else { return };
            let lane = &mut lanes.slots[slot];
            lane.closed = true;
            lane.stale |= stale;
            lanes.remove_if_done(slot);
        });
    }

    /// The pipe behind lane `key` was removed while its connection may still deliver (ROUTER
    /// handover): what is taken from the lane from now on is marked stale. The lane is made if
    /// there is none, so that it holds the mark for what comes later; it goes with the
    /// connection's [`Sender::close_lane`], which must come after this.
    pub(crate) fn disown_lane(&self, key: u64) {
        self.with_store(|lanes| {
            let slot = lanes.place(key);
            lanes.slots[slot].stale = true;
        });
    }
}

impl<T: Keyed> Receiver<T> {
    /// How many lanes exist (attached peers with a lane, and removed ones still holding messages).
    #[cfg(all(test, not(zmtp_loom)))]
    pub(crate) fn lanes(&self) -> usize {
        self.with_store(|lanes| lanes.index.len())
    }

    /// The capacity of lane `key`'s buffer (0: it holds none), and of the kept larger buffer.
    #[cfg(all(test, not(zmtp_loom)))]
    pub(crate) fn buffers(&self, key: u64) -> (usize, Option<usize>) {
        self.with_store(|lanes| {
            let lane = lanes.index.get(&key).map_or(0, |&slot| lanes.slots[slot].slot.items.capacity());
            (lane, lanes.big.as_ref().map(VecDeque::capacity))
        })
    }
}

/// The item of the tests and models: a peer's key and a sequence number.
#[cfg(test)]
mod test_item {
    #[derive(Debug, PartialEq, Eq)]
    pub(super) struct M(pub u64, pub u32);

    /// A stale one's sequence number.
    pub(super) const STALE: u32 = u32::MAX;

    impl super::Keyed for M {
        fn key(&self) -> u64 {
            self.0
        }

        fn mark_stale(&mut self) {
            self.1 = STALE;
        }
    }
}

#[cfg(all(test, not(zmtp_loom)))]
mod tests {
    use super::*;
    use crate::socket::queue::TrySendError;

    use super::test_item::M;

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
            tx.close_lane(peer, false);
            assert_eq!(rx.try_recv(), Some(M(peer, 0)));
        }
        assert_eq!(rx.lanes(), 0);
        // An attached peer's lane stays (no allocation per message).
        tx.try_send(M(7, 0)).expect("room");
        assert_eq!(rx.try_recv(), Some(M(7, 0)));
        assert_eq!(rx.lanes(), 1);
        tx.close_lane(7, false);
        assert_eq!(rx.lanes(), 0);
    }

    /// What is taken from a lane closed or disowned as stale is marked, including what its peer
    /// pushes after a disown; a lane made again for the same key later is not.
    #[test]
    fn stale_lanes_mark_what_is_taken() {
        use super::test_item::STALE;
        let (tx, rx) = channel(8);
        tx.try_send(M(1, 0)).expect("room");
        tx.try_send(M(2, 0)).expect("room");
        tx.close_lane(1, true);
        tx.close_lane(2, false);
        assert_eq!(rx.try_recv(), Some(M(1, STALE)));
        assert_eq!(rx.try_recv(), Some(M(2, 0)));
        assert_eq!(rx.lanes(), 0);
        // Disowned before it ever pushed: its lane is made, and holds the mark.
        tx.disown_lane(3);
        tx.try_send(M(3, 0)).expect("room");
        tx.try_send(M(4, 0)).expect("room");
        assert_eq!(rx.try_recv(), Some(M(3, STALE)));
        assert_eq!(rx.try_recv(), Some(M(4, 0)));
        tx.close_lane(3, false);
        assert_eq!(rx.lanes(), 1);
        tx.try_send(M(3, 1)).expect("room");
        assert_eq!(rx.try_recv(), Some(M(3, 1)), "a new lane for the key");
    }

    #[test]
    fn a_buffer_grown_by_a_burst_is_kept_for_the_next() {
        let (tx, rx) = channel(1000);
        let burst = |tx: &Sender<M>, key| {
            for i in 0..300 {
                tx.try_send(M(key, i)).expect("room");
            }
        };
        // One lane: it keeps its buffer when it empties.
        burst(&tx, 1);
        while rx.try_recv().is_some() {}
        let (lane, big) = rx.buffers(1);
        assert!(lane >= 300 && big.is_none(), "single lane kept {lane}, big {big:?}");
        // Two lanes: an emptied lane lends its buffer out; the large one is kept, not freed, and
        // the next lane that receives takes it.
        tx.try_send(M(2, 0)).expect("room");
        burst(&tx, 1);
        while rx.try_recv().is_some() {}
        assert!(rx.buffers(1).1.is_some_and(|c| c >= 300), "the grown buffer was freed");
        tx.try_send(M(3, 0)).expect("room");
        assert!(rx.buffers(3).0 >= 300, "the next lane did not take the kept buffer");
        assert_eq!(rx.buffers(3).1, None);
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
        tx.close_lane(1, false);
        tx.close_lane(2, false);
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

    use super::test_item::M;

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
