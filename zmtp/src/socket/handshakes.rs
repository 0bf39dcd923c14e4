//! The cap on accepted connections whose handshake has not finished
//! ([`crate::Options::max_pending_handshakes`]).
//!
//! Every accepted connection is admitted here until its handshake succeeds (or it ends). A peer
//! that connects and never speaks holds a file descriptor and a task until the handshake timeout
//! (30 s by default); many of them would starve the process of descriptors and keep honest peers
//! out. While the socket has `cap` handshakes pending, its listeners stop accepting (the kernel's
//! backlog holds newcomers) until one finishes, or until the oldest has been pending for
//! [`EVICT_AFTER`]: that one is then dropped to make room. An honest handshake takes a round trip,
//! so in a burst of honest peers (a restart storm) nothing is dropped; peers that stall are
//! dropped oldest first as soon as someone else is waiting, instead of holding the door for the
//! whole handshake timeout. A dropped handshake keeps its place until its task has let go of the
//! descriptor, so the cap bounds descriptors, not only admissions, however late that task runs.
//! libzmq has no such cap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::core::PipeId;

/// A pending handshake may be dropped for a newcomer once it is this old (or older than the
/// handshake timeout, if that is shorter).
pub(crate) const EVICT_AFTER: Duration = Duration::from_secs(1);

/// The socket's pending handshakes, by admission order.
#[derive(Debug)]
pub(crate) struct Pending {
    cap: Option<usize>,
    evict_after: Duration,
    slots: Mutex<BTreeMap<u64, Slot>>,
    next: std::sync::atomic::AtomicU64,
    /// Signalled when a slot is freed.
    freed: Notify,
}

#[derive(Debug)]
struct Slot {
    pipe: PipeId,
    since: Instant,
    evict: CancellationToken,
    /// Told to go; still counted until its [`Ticket`] is dropped (its descriptor closed).
    evicting: bool,
}

/// Whether a listener may accept now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// There is room (possibly made by dropping the oldest pending handshake).
    Room,
    /// Full: wait for a slot to be freed, or until this instant (when the oldest may be dropped).
    WaitUntil(Instant),
}

/// An admitted connection's place; frees it when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    pending: Arc<Pending>,
    seq: u64,
    evict: CancellationToken,
}

impl Ticket {
    /// Resolves if this connection is dropped to make room for a newcomer.
    pub(crate) async fn evicted(&self) {
        self.evict.cancelled().await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pending.remove(self.seq);
    }
}

impl Pending {
    pub(crate) fn new(cap: Option<usize>, handshake_timeout: Option<Duration>) -> Pending {
        let evict_after = handshake_timeout.map_or(EVICT_AFTER, |t| t.min(EVICT_AFTER));
        Pending {
            cap,
            evict_after,
            slots: Mutex::new(BTreeMap::new()),
            next: std::sync::atomic::AtomicU64::new(0),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, seq: u64) {
        if self.lock().remove(&seq).is_some() {
            self.freed.notify_waiters();
        }
    }

    /// How many handshakes are pending.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether a listener may accept now: below the cap, or at it once the oldest pending
    /// handshake has waited long enough to be dropped for the next peer accepted.
    pub(crate) fn admission(&self, now: Instant) -> Admission {
        let Some(cap) = self.cap else { return Admission::Room };
        let slots = self.lock();
        if slots.len() < cap.max(1) {
            return Admission::Room;
        }
        // One already told to go frees its slot when its task ends: wait for that rather than
        // drop another.
        if slots.values().any(|s| s.evicting) {
            return Admission::WaitUntil(now + self.evict_after);
        }
        match slots.first_key_value() {
            Some((_, oldest)) if now < oldest.since + self.evict_after => {
                Admission::WaitUntil(oldest.since + self.evict_after)
            }
            _ => Admission::Room,
        }
    }

    /// Waits until a slot is freed, `until`, or `stop`, whichever comes first.
    pub(crate) async fn wait(&self, until: Instant, stop: &CancellationToken) {
        let freed = self.freed.notified();
        tokio::pin!(freed);
        // Registered before looking again, so that a slot freed in between is not missed.
        freed.as_mut().enable();
        match self.cap {
            Some(cap) if self.lock().len() >= cap.max(1) => {}
            _ => return,
        }
        tokio::select! {
            _ = freed => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = stop.cancelled() => {}
        }
    }

    /// Admits the accepted connection on `pipe`. At the cap, the oldest pending handshake is
    /// dropped for it if it has waited long enough (else the cap is exceeded by this one, which
    /// happens only when another listener of the socket admitted a peer meanwhile).
    pub(crate) fn admit(self: &Arc<Self>, pipe: PipeId) -> Ticket {
        let seq = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evict = CancellationToken::new();
        if let Some(cap) = self.cap {
            let now = Instant::now();
            let mut slots = self.lock();
            if slots.len() >= cap.max(1) {
                if let Some(oldest) = slots.values_mut().find(|s| !s.evicting) {
                    if now >= oldest.since + self.evict_after {
                        // It stays counted until its task has closed the descriptor.
                        oldest.evicting = true;
                        tracing::warn!(pipe = oldest.pipe, cap, "too many handshakes pending; dropping the oldest");
                        oldest.evict.cancel();
                    }
                }
            }
            slots.insert(seq, Slot { pipe, since: now, evict: evict.clone(), evicting: false });
        }
        Ticket { pending: self.clone(), seq, evict }
    }

    /// The handshake on `pipe` succeeded: it no longer counts.
    pub(crate) fn done(&self, pipe: PipeId) {
        if self.cap.is_none() {
            return;
        }
        let mut slots = self.lock();
        let Some(seq) = slots.iter().find_map(|(seq, s)| (s.pipe == pipe).then_some(*seq)) else { return };
        slots.remove(&seq);
        drop(slots);
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_is_dropped_for_a_newcomer_once_it_is_old_enough() {
        let p = Arc::new(Pending::new(Some(2), Some(Duration::from_secs(30))));
        let a = p.admit(1);
        let b = p.admit(2);
        let now = Instant::now();
        assert!(matches!(p.admission(now), Admission::WaitUntil(t) if t > now));
        // The first succeeds: room again, nobody dropped.
        p.done(1);
        assert_eq!(p.admission(now), Admission::Room);
        let c = p.admit(3);
        assert_eq!(p.len(), 2);
        // Once the oldest (b) is old enough, the listener may accept, and the newcomer replaces
        // it; c is kept. Nothing is dropped before a newcomer is admitted.
        assert_eq!(p.admission(now + EVICT_AFTER + Duration::from_millis(1)), Admission::Room);
        assert!(!b.evict.is_cancelled());
        std::thread::sleep(EVICT_AFTER);
        let d = p.admit(4);
        assert!(b.evict.is_cancelled() && !c.evict.is_cancelled() && !a.evict.is_cancelled());
        // b is still counted until its task lets go: no room, and nobody else is dropped.
        assert_eq!(p.len(), 3);
        let later = Instant::now() + EVICT_AFTER * 2;
        assert!(matches!(p.admission(later), Admission::WaitUntil(_)));
        drop(b);
        assert_eq!(p.len(), 2);
        assert_eq!(p.admission(later), Admission::Room);
        drop((a, c, d));
        assert_eq!(p.len(), 0);
    }

    #[tokio::test]
    async fn a_freed_slot_wakes_the_waiting_listener() {
        let p = Arc::new(Pending::new(Some(1), None));
        let stop = CancellationToken::new();
        let t = p.admit(1);
        let far = Instant::now() + Duration::from_secs(3600);
        let waiter = {
            let p = p.clone();
            let stop = stop.clone();
            tokio::spawn(async move { p.wait(far, &stop).await })
        };
        tokio::task::yield_now().await;
        drop(t);
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("woken").expect("join");
        assert!(Instant::now() < far);
    }

    #[test]
    fn without_a_cap_nothing_is_tracked() {
        let p = Arc::new(Pending::new(None, None));
        let _t = p.admit(1);
        assert_eq!(p.len(), 0);
        assert_eq!(p.admission(Instant::now()), Admission::Room);
    }
}
