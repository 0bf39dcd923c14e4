//! Giving the heap freed after a burst back to the system.
//!
//! A sign-in storm or a re-authentication storm (every minion after a `.dfn` rotation) has
//! thousands of requests queued at once, each holding its connection's read buffer, while
//! connections come and go (a minion whose `_auth` timed out re-creates its socket). When the
//! burst is over those are freed, but between the long-lived allocations made meanwhile (new
//! connections, session keys): glibc keeps the freed memory in its arenas, and the process's
//! resident size stays at the burst's high-water mark. Measured (5,000 swarm minions, 1024-bit
//! keys, `.dfn` re-auth storm): the request server's process grew from 62 to 84 MiB over the
//! re-auth storm with 35 MiB free inside its arenas (`malloc_info`, 10,825 free chunks, most of
//! them in the arena of the thread that runs the connections); `malloc_trim(0)` called then
//! (gdb) brought it back to 68 MiB. The Publisher process did not grow.
//!
//! [`Trimmer`] calls `malloc_trim(0)` (which returns whole free pages of every arena with
//! `madvise`) at most once per [`PERIOD`], and only once [`AFTER_REQUESTS`] requests were
//! received since the last time: during a storm every few seconds, once more just after it,
//! never while the master is idle.
//!
//! The Publisher process trims too ([`Trimmer::after_quiet`]): a publish makes every subscriber's
//! connection allocate an output buffer for it, which zmtp frees once the connection has been idle
//! for `zmtp::proto::OUT_IDLE_RELEASE`, scattered between the connections' long-lived state; a
//! trim a little after the last publish gives those pages back.
//!
//! `malloc_trim` is glibc's (the C library every Rust program on a `gnu` target already links,
//! not an added one); elsewhere [`trim`] does nothing.

use std::time::{Duration, Instant};

/// Least time between two trims.
pub const PERIOD: Duration = Duration::from_secs(5);

/// Requests received since the last trim before another is worth it.
pub const AFTER_REQUESTS: u64 = 1_000;

/// Return the free pages of every heap arena to the system; whether any was.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() -> bool {
    extern "C" {
        /// glibc's `int malloc_trim(size_t pad)`.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer, only a padding size, and is thread safe (it takes
    // each arena's lock); it changes no allocation a Rust owner holds.
    unsafe { malloc_trim(0) != 0 }
}

/// Return the free pages of every heap arena to the system (nothing to do without glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

/// When to trim: counts events (requests received, messages published), says when a trim is due.
#[derive(Debug)]
pub struct Trimmer {
    since: u64,
    last: Instant,
    after: u64,
    quiet: Duration,
    last_event: Instant,
}

impl Trimmer {
    /// The request server's: due every [`PERIOD`] while [`AFTER_REQUESTS`] requests came in
    /// since the last trim, storm or not.
    pub fn new(now: Instant) -> Self {
        Trimmer::after_quiet(now, AFTER_REQUESTS, Duration::ZERO)
    }

    /// Due once `after` events came since the last trim, the last of them at least `quiet` ago,
    /// and at most every [`PERIOD`].
    pub fn after_quiet(now: Instant, after: u64, quiet: Duration) -> Self {
        Trimmer { since: 0, last: now, after, quiet, last_event: now }
    }

    /// One request received.
    pub fn received(&mut self) {
        self.since = self.since.saturating_add(1);
    }

    /// One event (a message published) at `now`.
    pub fn event_at(&mut self, now: Instant) {
        self.received();
        self.last_event = now;
    }

    /// Whether a trim is due at `now` (then counted as done).
    pub fn due(&mut self, now: Instant) -> bool {
        if self.since < self.after
            || now.saturating_duration_since(self.last) < PERIOD
            || now.saturating_duration_since(self.last_event) < self.quiet
        {
            return false;
        }
        self.since = 0;
        self.last = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_after_enough_requests_and_not_more_often_than_the_period() {
        let t0 = Instant::now();
        let mut t = Trimmer::new(t0);
        for _ in 0..AFTER_REQUESTS - 1 {
            t.received();
        }
        assert!(!t.due(t0 + PERIOD * 10), "idle: too few requests");
        t.received();
        assert!(!t.due(t0 + PERIOD / 2), "too soon");
        assert!(t.due(t0 + PERIOD));
        assert!(!t.due(t0 + PERIOD * 3), "counted from zero again");
        for _ in 0..AFTER_REQUESTS {
            t.received();
        }
        assert!(!t.due(t0 + PERIOD + PERIOD / 2), "the period runs from the last trim");
        assert!(t.due(t0 + PERIOD * 2));
    }

    #[test]
    fn after_quiet_waits_for_the_events_to_stop() {
        let t0 = Instant::now();
        let quiet = Duration::from_secs(3);
        let mut t = Trimmer::after_quiet(t0, 1, quiet);
        assert!(!t.due(t0 + PERIOD * 10), "nothing happened");
        t.event_at(t0 + PERIOD * 10);
        assert!(!t.due(t0 + PERIOD * 10 + quiet / 2), "not quiet yet");
        assert!(t.due(t0 + PERIOD * 10 + quiet));
        assert!(!t.due(t0 + PERIOD * 20), "once per burst");
    }
}
