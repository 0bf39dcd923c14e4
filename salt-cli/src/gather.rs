//! The book-keeping of `get_iter_returns`: which minions are expected, which have returned, and
//! until when each one that has not is waited for — kept incrementally, so a job to N minions
//! costs O(log N) per return instead of a pass over every minion per event.
//!
//! Salt's loop re-derives the not-yet-returned set and the per-minion timeouts from the whole
//! list on every event (O(N) each, O(N²) per job: 11–13 s of a `test.ping` to 9,000 minions went
//! there). Here the minions that have not returned sit in an ordered set by deadline, so "all
//! returned", "the next deadline" and "has every one timed out" are its ends.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

/// Expected minions, returns, and the deadline of each minion still awaited.
#[derive(Debug, Default)]
pub struct Gather {
    /// Every minion the job is known to target (`minions` in Salt's loop).
    expected: HashSet<String>,
    /// Every minion that returned (`found`), expected or not.
    found: HashSet<String>,
    /// A minion's deadline, set when it is first awaited (Salt's `minion_timeouts`), moved on
    /// when `saltutil.find_job` says it still runs the job.
    deadline: HashMap<String, Instant>,
    /// `expected - found`, ordered by deadline.
    awaited: BTreeSet<(Instant, String)>,
}

impl Gather {
    /// The book of a job published to `minions`, each waited for until `deadline`.
    pub fn new(minions: impl IntoIterator<Item = String>, deadline: Instant) -> Self {
        let mut g = Gather::default();
        for id in minions {
            g.expect(id, deadline);
        }
        g
    }

    /// One more targeted minion (from the job's `new` event): awaited until `deadline` unless it
    /// returned already or has a deadline of its own.
    pub fn expect(&mut self, id: String, deadline: Instant) {
        if self.found.contains(&id) || !self.expected.insert(id.clone()) {
            return;
        }
        let d = *self.deadline.entry(id.clone()).or_insert(deadline);
        self.awaited.insert((d, id));
    }

    /// A return from `id`: `false` when it had returned already (a duplicate to ignore).
    pub fn returned(&mut self, id: &str) -> bool {
        if !self.found.insert(id.to_owned()) {
            return false;
        }
        if self.expected.contains(id) {
            if let Some(d) = self.deadline.get(id) {
                self.awaited.remove(&(*d, id.to_owned()));
            }
        }
        true
    }

    /// `id` still runs the job (a `saltutil.find_job` answer): expected, awaited until `deadline`.
    pub fn still_running(&mut self, id: String, deadline: Instant) {
        if let Some(old) = self.deadline.insert(id.clone(), deadline) {
            self.awaited.remove(&(old, id.clone()));
        }
        self.expected.insert(id.clone());
        if !self.found.contains(&id) {
            self.awaited.insert((deadline, id));
        }
    }

    /// `id` answered `saltutil.find_job` with an error: no longer expected.
    pub fn forget(&mut self, id: &str) {
        if self.expected.remove(id) {
            if let Some(d) = self.deadline.get(id) {
                self.awaited.remove(&(*d, id.to_owned()));
            }
        }
    }

    /// Every expected minion returned.
    pub fn all_returned(&self) -> bool {
        self.awaited.is_empty()
    }

    /// Every minion still awaited is past its deadline at `now`.
    pub fn all_timed_out(&self, now: Instant) -> bool {
        self.awaited.last().map_or(true, |(d, _)| now >= *d)
    }

    /// The earliest deadline after `now` of a minion still awaited.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let after = now + Duration::from_nanos(1);
        self.awaited.range((after, String::new())..).next().map(|(d, _)| *d)
    }

    /// The minions still awaited, sorted by id.
    pub fn awaited(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.awaited.iter().map(|(_, id)| id.clone()).collect();
        ids.sort_unstable();
        ids
    }

    /// `id` returned.
    pub fn has_returned(&self, id: &str) -> bool {
        self.found.contains(id)
    }

    /// How many minions are still awaited.
    pub fn awaited_len(&self) -> usize {
        self.awaited.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:05}")).collect()
    }

    #[test]
    fn all_returned_once_each_expected_minion_did() {
        let t0 = Instant::now();
        let mut g = Gather::new(ids(1000), t0 + Duration::from_secs(5));
        for (i, id) in ids(1000).iter().enumerate().rev() {
            assert!(!g.all_returned());
            assert_eq!(g.awaited_len(), i + 1);
            assert!(g.returned(id));
            assert!(!g.returned(id), "a duplicate return is reported as such");
        }
        assert!(g.all_returned());
        assert!(g.all_timed_out(t0));
        assert_eq!(g.next_deadline(t0), None);
    }

    #[test]
    fn unexpected_returns_do_not_count_and_later_expectation_is_already_met() {
        let t0 = Instant::now();
        let mut g = Gather::new(ids(2), t0 + Duration::from_secs(5));
        assert!(g.returned("stranger"));
        assert_eq!(g.awaited(), ids(2));
        g.expect("stranger".into(), t0 + Duration::from_secs(5));
        assert_eq!(g.awaited(), ids(2), "a minion that returned before it was announced is not awaited");
        g.expect("m00000".into(), t0 + Duration::from_secs(9));
        assert_eq!(g.next_deadline(t0), Some(t0 + Duration::from_secs(5)), "re-announcing keeps the deadline");
        g.returned("m00000");
        g.returned("m00001");
        assert!(g.all_returned());
    }

    #[test]
    fn deadlines_order_the_wake_ups_and_the_give_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut g = Gather::new(ids(3), t0 + s(5));
        g.expect("late".into(), t0 + s(8));
        assert_eq!(g.next_deadline(t0), Some(t0 + s(5)));
        assert_eq!(g.next_deadline(t0 + s(5)), Some(t0 + s(8)), "a deadline reached is not waited for again");
        assert_eq!(g.next_deadline(t0 + s(8)), None);
        assert!(!g.all_timed_out(t0 + s(6)), "late is still within its time");
        assert!(g.all_timed_out(t0 + s(8)));
        // find_job: m00001 still runs it; it gets until 20 s.
        g.still_running("m00001".into(), t0 + s(20));
        assert!(!g.all_timed_out(t0 + s(10)));
        assert_eq!(g.next_deadline(t0 + s(9)), Some(t0 + s(20)));
        g.returned("m00001");
        assert!(g.all_timed_out(t0 + s(10)), "its return removes its extended deadline");
        // A minion whose find_job failed is no longer awaited.
        g.forget("late");
        assert_eq!(g.awaited(), vec!["m00000".to_string(), "m00002".to_string()]);
        g.returned("m00000");
        g.returned("m00002");
        assert!(g.all_returned());
    }

    #[test]
    fn still_running_for_a_minion_not_yet_expected_adds_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut g = Gather::new(Vec::new(), t0 + s(5));
        assert!(g.all_returned());
        g.still_running("x".into(), t0 + s(3));
        assert_eq!(g.awaited(), vec!["x".to_string()]);
        g.still_running("x".into(), t0 + s(4));
        assert_eq!(g.awaited_len(), 1, "moving a deadline leaves one entry");
        assert_eq!(g.next_deadline(t0), Some(t0 + s(4)));
        // Already returned: still_running keeps it out of the awaited set.
        g.returned("x");
        g.still_running("x".into(), t0 + s(9));
        assert!(g.all_returned());
    }

    /// Against a direct model of Salt's loop (sets recomputed from scratch) on a pseudo-random
    /// sequence of operations.
    #[test]
    fn matches_the_recomputed_sets() {
        let t0 = Instant::now();
        let mut g = Gather::new(ids(50), t0 + Duration::from_secs(5));
        let mut expected: HashSet<String> = ids(50).into_iter().collect();
        let mut found: HashSet<String> = HashSet::new();
        let mut deadline: HashMap<String, Instant> =
            ids(50).into_iter().map(|i| (i, t0 + Duration::from_secs(5))).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = format!("m{:05}", x % 80);
            let d = t0 + Duration::from_millis(x % 20_000);
            match (x >> 32) % 4 {
                0 => {
                    g.expect(id.clone(), d);
                    if !found.contains(&id) && expected.insert(id.clone()) {
                        deadline.entry(id).or_insert(d);
                    }
                }
                1 => {
                    assert_eq!(g.returned(&id), found.insert(id.clone()));
                }
                2 => {
                    g.still_running(id.clone(), d);
                    expected.insert(id.clone());
                    deadline.insert(id, d);
                }
                _ => {
                    g.forget(&id);
                    expected.remove(&id);
                }
            }
            let mut model: Vec<String> = expected.difference(&found).cloned().collect();
            model.sort();
            assert_eq!(g.awaited(), model, "step {step}");
            let now = t0 + Duration::from_millis(step * 4);
            let model_next = model.iter().map(|i| deadline[i]).filter(|t| *t > now).min();
            assert_eq!(g.next_deadline(now), model_next, "step {step}");
            assert_eq!(g.all_timed_out(now), model.iter().all(|i| now >= deadline[i]), "step {step}");
        }
    }
}
