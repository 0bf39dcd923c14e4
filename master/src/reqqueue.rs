//! The request queue between the MWorkerQueue (the ROUTER on `ret_port`)
//! and the MWorkers: which request a free worker takes next.
//!
//! Salt's `zmq_device` hands requests to the workers first come, first
//! served, and a worker signs every `_auth` it gets. In a sign-in storm
//! (more `_auth` per second than the master can sign) that collapses: the
//! queue grows past the minions' `auth_timeout` (5 s), every minion gives
//! up on its request and sends another, and the master spends its time
//! signing replies nobody waits for. This queue keeps the useful work:
//!
//! * requests from signed-in minions (returns, `_pillar`, events) are
//!   served first, in order;
//! * `_auth` requests are served in order while the oldest has waited less
//!   than half of `auth_backoff_after`, and **newest first** once it has
//!   (the master is behind; an abandoned request is always the oldest, and
//!   the newest is the one whose minion still waits longest);
//! * an `_auth` that waited `auth_backoff_after` (2 s) is answered
//!   `"bad load"` at once, unsigned: its minion is still waiting (before
//!   its 5 s `auth_timeout`), takes the failed sign-in and waits
//!   `acceptance_wait_time` (10 s by default, growing to
//!   `acceptance_wait_time_max`) before it signs in again — the back-off a
//!   real salt-minion honours (`crypt.py` `handle_signin_response` →
//!   `SaltClientError` → `acceptance_wait_time`), instead of timing out,
//!   re-creating its socket and re-sending up to `auth_tries` times;
//! * with `auth_backoff_after: 0`, an `_auth` that waited `auth_stale_after`
//!   is dropped the same way (its minion has gone);
//! * at most [`QUEUE_LIMIT`] requests wait; beyond that the oldest `_auth`
//!   is answered `"bad load"` (or, with none queued, the newcomer).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zmtp::Message;

/// Requests that may wait for a worker at once (an `_auth` is about 1 KiB).
pub const QUEUE_LIMIT: usize = 50_000;

/// One request as the ROUTER delivered it (routing envelope + body), with
/// its arrival time and whether it is a clear `_auth`.
#[derive(Debug)]
pub struct Queued {
    /// The ROUTER's message: the routing frames, then the body.
    pub msg: Message,
    /// When the queue received it.
    pub arrived: Instant,
    /// A clear `_auth` request.
    pub auth: bool,
}

/// Why a request is answered without being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Told to back off: it waited `auth_backoff_after`.
    Backoff,
    /// It waited `auth_stale_after`: its minion has given up on it.
    Stale,
    /// The queue was full.
    Full,
}

/// The scheduling rule (no I/O, no clock of its own).
#[derive(Debug)]
pub struct Schedule {
    other: VecDeque<Queued>,
    auth: VecDeque<Queued>,
    backoff_after: Duration,
    stale_after: Duration,
    limit: usize,
}

impl Schedule {
    /// A queue with `auth_backoff_after` and `auth_stale_after` (zero: off).
    pub fn new(backoff_after: Duration, stale_after: Duration, limit: usize) -> Self {
        Schedule { other: VecDeque::new(), auth: VecDeque::new(), backoff_after, stale_after, limit: limit.max(1) }
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.other.len() + self.auth.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue `q`; what must be answered unprocessed to make room goes to `shed`.
    pub fn push(&mut self, q: Queued, shed: &mut Vec<(Queued, Shed)>) {
        if self.len() >= self.limit {
            match self.auth.pop_front() {
                Some(old) => shed.push((old, Shed::Full)),
                None => {
                    shed.push((q, Shed::Full));
                    return;
                }
            }
        }
        if q.auth {
            self.auth.push_back(q);
        } else {
            self.other.push_back(q);
        }
    }

    /// The age past which an `_auth` is answered unprocessed, and why.
    fn cut(&self) -> Option<(Duration, Shed)> {
        if !self.backoff_after.is_zero() {
            Some((self.backoff_after, Shed::Backoff))
        } else if !self.stale_after.is_zero() {
            Some((self.stale_after, Shed::Stale))
        } else {
            None
        }
    }

    /// The request a free worker takes at `now`; the `_auth` requests too
    /// old to be worth signing go to `shed`.
    pub fn pop(&mut self, now: Instant, shed: &mut Vec<(Queued, Shed)>) -> Option<Queued> {
        if let Some((cut, why)) = self.cut() {
            while self.auth.front().is_some_and(|q| now.saturating_duration_since(q.arrived) >= cut) {
                if let Some(q) = self.auth.pop_front() {
                    shed.push((q, why));
                }
            }
        }
        if let Some(q) = self.other.pop_front() {
            return Some(q);
        }
        let behind = !self.backoff_after.is_zero()
            && self.auth.front().is_some_and(|q| now.saturating_duration_since(q.arrived) >= self.backoff_after / 2);
        if behind {
            self.auth.pop_back()
        } else {
            self.auth.pop_front()
        }
    }
}

/// The shared queue: the MWorkerQueue pushes, MWorker threads pop.
#[derive(Debug)]
pub struct RequestQueue {
    schedule: Mutex<Schedule>,
    notify: tokio::sync::Notify,
}

impl RequestQueue {
    /// A queue with this rule.
    pub fn new(schedule: Schedule) -> Self {
        RequestQueue { schedule: Mutex::new(schedule), notify: tokio::sync::Notify::new() }
    }

    /// Queue a request; returns what must be answered unprocessed.
    pub fn push(&self, q: Queued) -> Vec<(Queued, Shed)> {
        let mut shed = Vec::new();
        match self.schedule.lock() {
            Ok(mut s) => s.push(q, &mut shed),
            Err(poisoned) => poisoned.into_inner().push(q, &mut shed),
        }
        self.notify.notify_one();
        shed
    }

    /// What a free worker does next, waiting until there is something: a
    /// request to serve, and/or requests to answer unprocessed.
    ///
    /// # Cancel safety
    /// Cancel safe: requests are only taken when this returns.
    pub async fn next(&self) -> (Option<Queued>, Vec<(Queued, Shed)>) {
        loop {
            let notified = self.notify.notified();
            let mut shed = Vec::new();
            let next = match self.schedule.lock() {
                Ok(mut s) => s.pop(Instant::now(), &mut shed),
                Err(poisoned) => poisoned.into_inner().pop(Instant::now(), &mut shed),
            };
            if next.is_some() {
                // More may wait: let another idle worker look.
                self.notify.notify_one();
            }
            if next.is_some() || !shed.is_empty() {
                return (next, shed);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn q(n: u8, auth: bool, arrived: Instant) -> Queued {
        Queued { msg: Message::from(vec![Bytes::from(vec![n])]), arrived, auth }
    }

    fn id(q: &Queued) -> u8 {
        q.msg.first().map_or(0, |f| f[0])
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn in_order_while_keeping_up_returns_before_auth() {
        let t0 = Instant::now();
        let mut s = Schedule::new(2 * S, 5 * S, 100);
        let mut shed = Vec::new();
        s.push(q(1, true, t0), &mut shed);
        s.push(q(2, true, t0), &mut shed);
        s.push(q(3, false, t0), &mut shed);
        let order: Vec<u8> = std::iter::from_fn(|| s.pop(t0 + S / 4, &mut shed)).map(|x| id(&x)).collect();
        assert_eq!(order, [3, 1, 2]);
        assert!(shed.is_empty());
    }

    #[test]
    fn newest_first_once_behind_and_the_oldest_told_to_back_off() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(2 * S, 5 * S, 100);
        let mut shed = Vec::new();
        for i in 0..25u8 {
            s.push(q(i, true, t0 + ms(100) * u32::from(i)), &mut shed);
        }
        // At 2.5 s: #0-#5 (arrived 0-0.5 s) waited 2 s or more; #6 waited 1.9 s (> 1 s):
        // behind, so the newest (#24, arrived 2.4 s) is served.
        let now = t0 + ms(2500);
        let Some(next) = s.pop(now, &mut shed) else { panic!("empty") };
        assert_eq!(id(&next), 24);
        let shed_ids: Vec<u8> = shed.iter().map(|(x, _)| id(x)).collect();
        assert_eq!(shed_ids, [0, 1, 2, 3, 4, 5]);
        assert!(shed.iter().all(|(_, why)| *why == Shed::Backoff));
        // A return from a signed-in minion still goes first.
        s.push(q(99, false, now), &mut shed);
        assert_eq!(s.pop(now, &mut shed).map(|x| id(&x)), Some(99));
        assert_eq!(s.pop(now, &mut shed).map(|x| id(&x)), Some(23));
        // Caught up: the oldest waited under 1 s again, so in order.
        let mut s2 = Schedule::new(2 * S, 5 * S, 100);
        s2.push(q(7, true, now), &mut shed);
        s2.push(q(8, true, now), &mut shed);
        assert_eq!(s2.pop(now + ms(900), &mut shed).map(|x| id(&x)), Some(7));
    }

    #[test]
    fn without_backoff_only_stale_requests_are_dropped() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::ZERO, 5 * S, 100);
        let mut shed = Vec::new();
        s.push(q(1, true, t0), &mut shed);
        s.push(q(2, true, t0 + 3 * S), &mut shed);
        s.push(q(3, false, t0), &mut shed);
        // At 6 s #1 is stale; #3 (not an _auth) is never dropped; #2 waited 3 s: served, in order.
        let now = t0 + 6 * S;
        assert_eq!(s.pop(now, &mut shed).map(|x| id(&x)), Some(3));
        assert_eq!(shed.len(), 1);
        assert_eq!((id(&shed[0].0), shed[0].1), (1, Shed::Stale));
        assert_eq!(s.pop(now, &mut shed).map(|x| id(&x)), Some(2));
        assert!(s.is_empty());
        // Both off: nothing is ever dropped.
        let mut s = Schedule::new(Duration::ZERO, Duration::ZERO, 100);
        s.push(q(4, true, t0), &mut shed);
        assert_eq!(s.pop(t0 + 1000 * S, &mut shed).map(|x| id(&x)), Some(4));
    }

    #[test]
    fn a_full_queue_drops_the_oldest_auth_then_newcomers() {
        let t0 = Instant::now();
        let mut s = Schedule::new(2 * S, 5 * S, 3);
        let mut shed = Vec::new();
        s.push(q(1, true, t0), &mut shed);
        s.push(q(2, false, t0), &mut shed);
        s.push(q(3, false, t0), &mut shed);
        s.push(q(4, false, t0), &mut shed);
        assert_eq!(shed.iter().map(|(x, w)| (id(x), *w)).collect::<Vec<_>>(), [(1, Shed::Full)]);
        s.push(q(5, false, t0), &mut shed);
        assert_eq!(shed.iter().map(|(x, _)| id(x)).collect::<Vec<_>>(), [1, 5], "no _auth left to drop");
        assert_eq!(s.len(), 3);
    }
}
