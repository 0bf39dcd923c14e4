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
//! cancelled waiter can never swallow the wake-up another needed.

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

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// Slots promised to [`Permit`]s not yet used.
    reserved: usize,
    senders: usize,
    receiver_alive: bool,
    /// Receiving tasks waiting for a message.
    rx_waiters: Vec<Waker>,
    /// Sending tasks waiting for room.
    tx_waiters: Vec<Waker>,
}

impl<T> State<T> {
    fn has_room(&self) -> bool {
        self.items.len() + self.reserved < self.capacity
    }

    fn take_rx_waiters(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.rx_waiters)
    }

    fn take_tx_waiters(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.tx_waiters)
    }

    /// The next message, and the senders to wake now that there is room.
    fn pop(&mut self) -> Option<(T, Vec<Waker>)> {
        let msg = self.items.pop_front()?;
        Some((msg, self.take_tx_waiters()))
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
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

/// A queue holding at most `capacity` messages (at least one).
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            reserved: 0,
            senders: 1,
            receiver_alive: true,
            rx_waiters: Vec::new(),
            tx_waiters: Vec::new(),
        }),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

/// The sending end; clone it for more senders.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
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
            st.take_rx_waiters()
        };
        wake_all(waiters);
    }
}

impl<T> Sender<T> {
    /// Queues `msg` if there is room.
    pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let waiters = {
            let mut st = self.shared.lock();
            if !st.receiver_alive {
                return Err(TrySendError::Closed(msg));
            }
            if !st.has_room() {
                return Err(TrySendError::Full(msg));
            }
            st.items.push_back(msg);
            if st.rx_waiters.is_empty() {
                return Ok(());
            }
            st.take_rx_waiters()
        };
        wake_all(waiters);
        Ok(())
    }

    /// Waits for room and reserves it. `Err` once the receiver is gone. Cancel safe.
    pub(crate) async fn reserve(&self) -> Result<Permit<'_, T>, ()> {
        poll_fn(|cx| self.poll_reserve(cx)).await?;
        Ok(Permit { sender: self, used: false })
    }

    fn poll_reserve(&self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut st = self.shared.lock();
        if !st.receiver_alive {
            return Poll::Ready(Err(()));
        }
        if st.has_room() {
            st.reserved += 1;
            return Poll::Ready(Ok(()));
        }
        register(&mut st.tx_waiters, cx.waker());
        Poll::Pending
    }

    /// Waits for room and queues `msg`; gives it back if the receiver is gone. Cancel safe (a
    /// cancelled call has not queued the message).
    #[cfg(test)]
    pub(crate) async fn send(&self, msg: T) -> Result<(), T> {
        match self.reserve().await {
            Ok(permit) => {
                permit.send(msg);
                Ok(())
            }
            Err(()) => Err(msg),
        }
    }
}

/// A reserved slot: [`Permit::send`] queues into it without waiting; dropping it unused frees it.
pub(crate) struct Permit<'a, T> {
    sender: &'a Sender<T>,
    used: bool,
}

impl<T> Permit<'_, T> {
    /// Queues `msg` into the reserved slot (dropped if the receiver went away meanwhile).
    pub(crate) fn send(mut self, msg: T) {
        self.used = true;
        let waiters = {
            let mut st = self.sender.shared.lock();
            st.reserved -= 1;
            if !st.receiver_alive {
                return;
            }
            st.items.push_back(msg);
            st.take_rx_waiters()
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
            st.reserved -= 1;
            st.take_tx_waiters()
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
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (items, waiters) = {
            let mut st = self.shared.lock();
            st.receiver_alive = false;
            (std::mem::take(&mut st.items), st.take_tx_waiters())
        };
        // Dropped outside the lock: a message's drop may be arbitrary user code (Bytes owners).
        drop(items);
        wake_all(waiters);
    }
}

impl<T> Receiver<T> {
    /// The next message if one is queued.
    pub(crate) fn try_recv(&self) -> Option<T> {
        let (msg, waiters) = self.shared.lock().pop()?;
        wake_all(waiters);
        Some(msg)
    }

    /// Puts back at the front a message just taken, which could not be sent (its connection had
    /// gone): it keeps its place for the next connection. It may exceed the capacity by one.
    pub(crate) fn put_back(&self, msg: T) {
        self.shared.lock().items.push_front(msg);
    }

    /// Moves up to `max` queued messages to the back of `out` under one lock; returns how many.
    pub(crate) fn try_recv_many(&self, out: &mut VecDeque<T>, max: usize) -> usize {
        let (n, waiters) = {
            let mut st = self.shared.lock();
            let n = st.items.len().min(max);
            if n == 0 {
                return 0;
            }
            if n == st.items.len() && out.is_empty() {
                // All of it: swap buffers rather than move items one by one.
                std::mem::swap(&mut st.items, out);
            } else {
                out.extend(st.items.drain(..n));
            }
            (n, st.take_tx_waiters())
        };
        wake_all(waiters);
        n
    }

    /// Waits for the next message; `None` once every sender is gone and nothing is queued.
    /// Cancel safe.
    pub(crate) async fn recv(&self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes the next message, or registers `cx` to be woken when one comes.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (msg, waiters) = {
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
        Poll::Ready(Some(msg))
    }

    /// Withdraws `waker` from the receivers waiting for a message (it is about to look itself).
    pub(crate) fn forget(&self, waker: &Waker) {
        let mut st = self.shared.lock();
        if !st.rx_waiters.is_empty() {
            st.rx_waiters.retain(|w| !same_task(w, waker));
        }
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.lock().items.is_empty()
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
        assert!(rx.is_empty());
    }

    #[tokio::test]
    async fn reserve_counts_against_capacity() {
        let (tx, rx) = channel(1);
        let permit = tx.reserve().await.expect("room");
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
