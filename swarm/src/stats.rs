//! What a swarm process counts, and the JSON status file it writes.
//!
//! One [`Stats`] per process is the [`Observer`] of all its minions. [`Stats::snapshot`] is a
//! JSON object; the launcher sums the snapshots of its processes with [`merge`]. Times are Unix
//! seconds (float); job latencies are measured from the time in the jid (the master's clock,
//! which is this machine's in a benchmark) to the moment a minion received the publish or had
//! its return acknowledged.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use minion::observer::Observer;
use serde_json::{json, Map, Value};

/// How many jobs a process keeps figures for (the most recent).
const JOBS_KEPT: usize = 256;

#[derive(Debug, Default, Clone)]
struct JobStat {
    received: u64,
    returned: u64,
    failed: u64,
    first_received: Option<f64>,
    last_received: Option<f64>,
    first_returned: Option<f64>,
    last_returned: Option<f64>,
}

#[derive(Debug, Default)]
struct Times {
    first_signed_in: Option<f64>,
    last_signed_in: Option<f64>,
    last_started: Option<f64>,
}

/// The counters of one swarm process.
#[derive(Debug, Default)]
pub struct Stats {
    auth_requests: AtomicU64,
    signed_in: AtomicU64,
    started: AtomicU64,
    exited: AtomicU64,
    times: Mutex<Times>,
    jobs: Mutex<(HashMap<String, JobStat>, VecDeque<String>)>,
}

fn min_opt(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn max_opt(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl Stats {
    fn with_job(&self, jid: &str, f: impl FnOnce(&mut JobStat)) {
        let mut guard = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (map, order) = &mut *guard;
        if !map.contains_key(jid) {
            order.push_back(jid.to_string());
            while order.len() > JOBS_KEPT {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        f(map.entry(jid.to_string()).or_default());
    }

    /// A minion task ended (an error: swarm minions run until the process stops).
    pub fn minion_exited(&self) {
        self.exited.fetch_add(1, Ordering::Relaxed);
    }

    /// The status of this process as JSON.
    pub fn snapshot(&self, extra: &[(&str, Value)]) -> Value {
        let t = self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut jobs = Map::new();
        {
            let guard = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (jid, j) in &guard.0 {
                jobs.insert(
                    jid.clone(),
                    json!({
                        "received": j.received, "returned": j.returned, "failed": j.failed,
                        "first_received": j.first_received, "last_received": j.last_received,
                        "first_returned": j.first_returned, "last_returned": j.last_returned,
                    }),
                );
            }
        }
        let mut v = json!({
            "auth_requests": self.auth_requests.load(Ordering::Relaxed),
            "signed_in": self.signed_in.load(Ordering::Relaxed),
            "started": self.started.load(Ordering::Relaxed),
            "exited": self.exited.load(Ordering::Relaxed),
            "first_signed_in": t.first_signed_in,
            "last_signed_in": t.last_signed_in,
            "last_started": t.last_started,
            "jobs": jobs,
        });
        if let Value::Object(m) = &mut v {
            for (k, x) in extra {
                m.insert((*k).to_string(), x.clone());
            }
        }
        v
    }
}

impl Observer for Stats {
    fn auth_request(&self) {
        self.auth_requests.fetch_add(1, Ordering::Relaxed);
    }

    fn signed_in(&self) {
        self.signed_in.fetch_add(1, Ordering::Relaxed);
        let now = crate::now_unix();
        let mut t = self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        t.first_signed_in = min_opt(t.first_signed_in, now);
        t.last_signed_in = max_opt(t.last_signed_in, now);
    }

    fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        let now = crate::now_unix();
        let mut t = self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        t.last_started = max_opt(t.last_started, now);
    }

    fn job_received(&self, jid: &str) {
        let now = crate::now_unix();
        self.with_job(jid, |j| {
            j.received += 1;
            j.first_received = min_opt(j.first_received, now);
            j.last_received = max_opt(j.last_received, now);
        });
    }

    fn job_returned(&self, jid: &str, ok: bool) {
        let now = crate::now_unix();
        self.with_job(jid, |j| {
            if ok {
                j.returned += 1;
                j.first_returned = min_opt(j.first_returned, now);
                j.last_returned = max_opt(j.last_returned, now);
            } else {
                j.failed += 1;
            }
        });
    }
}

/// Sum process snapshots: counters add up, `first_*` take the minimum, `last_*` the maximum,
/// jobs merge by jid the same way; other fields keep the first value seen.
pub fn merge(parts: &[Value]) -> Value {
    fn merge_obj(acc: &mut Map<String, Value>, part: &Map<String, Value>) {
        for (k, v) in part {
            let slot = acc.get_mut(k);
            match (slot, v) {
                (None, v) => {
                    acc.insert(k.clone(), v.clone());
                }
                (Some(Value::Object(a)), Value::Object(b)) => merge_obj(a, b),
                (Some(a), Value::Number(b))
                    if k.starts_with("first_") && a.as_f64().map_or(true, |x| b.as_f64().is_some_and(|y| y < x)) =>
                {
                    *a = Value::Number(b.clone());
                }
                (Some(a), Value::Number(b))
                    if k.starts_with("last_") && a.as_f64().map_or(true, |x| b.as_f64().is_some_and(|y| y > x)) =>
                {
                    *a = Value::Number(b.clone());
                }
                (Some(_), Value::Number(_)) if k.starts_with("first_") || k.starts_with("last_") => {}
                (Some(a @ Value::Null), v) => *a = v.clone(),
                (Some(Value::Number(a)), Value::Number(b)) => {
                    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                        *a = (x + y).into();
                    }
                }
                _ => {}
            }
        }
    }
    let mut acc = Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            merge_obj(&mut acc, m);
        }
    }
    Value::Object(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merge() {
        let a = Stats::default();
        a.auth_request();
        a.auth_request();
        a.signed_in();
        a.started();
        a.job_received("j1");
        a.job_returned("j1", true);
        let b = Stats::default();
        b.auth_request();
        b.signed_in();
        b.job_received("j1");
        b.job_returned("j1", false);
        b.job_received("j2");
        let m = merge(&[a.snapshot(&[("count", json!(1))]), b.snapshot(&[("count", json!(2))])]);
        assert_eq!(m["auth_requests"], json!(3));
        assert_eq!(m["signed_in"], json!(2));
        assert_eq!(m["started"], json!(1));
        assert_eq!(m["count"], json!(3));
        assert_eq!(m["jobs"]["j1"]["received"], json!(2));
        assert_eq!(m["jobs"]["j1"]["returned"], json!(1));
        assert_eq!(m["jobs"]["j1"]["failed"], json!(1));
        assert_eq!(m["jobs"]["j2"]["received"], json!(1));
        let (f, l) = (m["first_signed_in"].as_f64(), m["last_signed_in"].as_f64());
        assert!(f.is_some() && l.is_some() && f <= l);
    }

    #[test]
    fn jobs_are_bounded() {
        let s = Stats::default();
        for i in 0..(JOBS_KEPT + 10) {
            s.job_received(&format!("{i:020}"));
        }
        let v = s.snapshot(&[]);
        assert_eq!(v["jobs"].as_object().map(Map::len), Some(JOBS_KEPT));
        assert!(v["jobs"].get(format!("{:020}", 0)).is_none());
    }
}
