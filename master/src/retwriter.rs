//! Minion returns written to the job cache off the workers' path.
//!
//! Salt's MWorker stores a `_return` (`prep_jid` with the passed jid, then
//! the returner) before it answers the minion. With `local_cache` that is a
//! directory and a file per return, plus the job's `jid` file rewritten
//! each time; measured on the master during `test.ping` to 1,000 swarm
//! minions, those file-system calls were about 60% of the master's CPU, and
//! the workers blocked each other on the job directory's lock.
//!
//! Here a worker fires the return's event (what `salt` waits for), hands the
//! load to [`ReturnWriter`] and answers the minion; one thread writes the
//! queued returns in batches, preparing each job directory once per batch.
//! The queue is bounded (count and estimated bytes): a worker that finds
//! it full stores the return itself, so memory stays bounded and a slow
//! disk slows the workers down as before. Dropping the writer (or
//! [`ReturnWriter::flush`]) writes everything queued.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use salt_proto::value::{as_str, get};
use salt_proto::Value;

use crate::funcs::is_jid;
use crate::jobcache::{JobStore, StoreOutcome};

/// Returns that may wait for the writer at once.
pub const QUEUE_LIMIT: usize = 50_000;
/// Their estimated size at most.
pub const QUEUE_BYTES_LIMIT: usize = 64 << 20;

#[derive(Default)]
struct Queue {
    items: Vec<(Value, usize)>,
    bytes: usize,
    /// Taken by the writer and not yet written.
    writing: usize,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when returns are queued or the writer is closed.
    work: Condvar,
    /// Signalled when the writer finished a batch.
    done: Condvar,
}

/// The job cache's return writer thread.
pub struct ReturnWriter {
    store: Arc<dyn JobStore>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ReturnWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReturnWriter").finish_non_exhaustive()
    }
}

impl ReturnWriter {
    /// Start the writer thread for `store`. If the thread cannot be
    /// started, every return is stored by the caller.
    pub fn new(store: Arc<dyn JobStore>) -> ReturnWriter {
        let shared =
            Arc::new(Shared { queue: Mutex::new(Queue::default()), work: Condvar::new(), done: Condvar::new() });
        let (s, st) = (shared.clone(), store.clone());
        let thread = std::thread::Builder::new()
            .name("job-cache-writer".into())
            .spawn(move || write_loop(&s, st.as_ref()))
            .map_err(|e| tracing::warn!("cannot start the job cache writer thread: {e}; workers store returns"))
            .ok();
        if thread.is_none() {
            if let Ok(mut q) = shared.queue.lock() {
                q.closed = true;
            }
        }
        ReturnWriter { store, shared, thread }
    }

    /// Store the `_return` load `load` (`prep_jid` with its jid, then
    /// `store_return`): queued for the writer, or stored now if the
    /// queue is full or closed.
    pub fn store(&self, load: Value) {
        let size = estimate(&load);
        let load = match self.shared.queue.lock() {
            Ok(mut q) if !q.closed && q.items.len() < QUEUE_LIMIT && q.bytes + size <= QUEUE_BYTES_LIMIT => {
                q.items.push((load, size));
                q.bytes += size;
                self.shared.work.notify_one();
                return;
            }
            _ => load,
        };
        store_one(self.store.as_ref(), &load, true);
    }

    /// Wait until every return queued so far is written.
    pub fn flush(&self) {
        let Ok(mut q) = self.shared.queue.lock() else { return };
        while (!q.items.is_empty() && !q.closed) || q.writing > 0 {
            q = match self.shared.done.wait(q) {
                Ok(q) => q,
                Err(_) => return,
            };
        }
    }
}

impl Drop for ReturnWriter {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.closed = true;
        }
        self.shared.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(shared: &Shared, store: &dyn JobStore) {
    loop {
        let batch = {
            let Ok(mut q) = shared.queue.lock() else { return };
            while q.items.is_empty() && !q.closed {
                q = match shared.work.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
            if q.items.is_empty() {
                return; // closed and drained
            }
            q.bytes = 0;
            let batch = std::mem::take(&mut q.items);
            q.writing = batch.len();
            batch
        };
        // `prep_jid` once per job and batch: it creates the job directory
        // if it is missing and rewrites its `jid` file.
        let mut prepared: HashSet<String> = HashSet::new();
        for (load, _) in &batch {
            let fresh = get(load, "jid").and_then(as_str).is_some_and(|j| !prepared.contains(j));
            if fresh {
                if let Some(j) = get(load, "jid").and_then(as_str) {
                    prepared.insert(j.to_owned());
                }
            }
            store_one(store, load, fresh);
        }
        if let Ok(mut q) = shared.queue.lock() {
            q.writing = 0;
        }
        shared.done.notify_all();
    }
}

/// `store_job`'s writing part for one return.
fn store_one(store: &dyn JobStore, load: &Value, prep: bool) {
    let id = get(load, "id").and_then(as_str).unwrap_or_default();
    let jid = get(load, "jid").and_then(as_str).unwrap_or_default();
    if prep && is_jid(jid) {
        if let Err(e) = store.prep_jid(false, Some(jid)) {
            tracing::error!("cannot prepare jid {jid}: {e}");
        }
    }
    match store.store_return(load) {
        Ok(StoreOutcome::Stored(_) | StoreOutcome::NoCache) => {}
        Ok(StoreOutcome::Duplicate) => tracing::debug!("Duplicate return from {id} for jid {jid}; ignored"),
        Ok(StoreOutcome::UnknownJid) => tracing::warn!("return from {id} for unknown jid {jid}; not stored"),
        Err(e) => tracing::error!("cannot store the return of {id} for {jid}: {e}"),
    }
}

/// About how many bytes `v` holds (its msgpack size, roughly).
fn estimate(v: &Value) -> usize {
    let mut total = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(16);
        match v {
            Value::String(s) => total = total.saturating_add(s.as_bytes().len()),
            Value::Binary(b) => total = total.saturating_add(b.len()),
            Value::Ext(_, b) => total = total.saturating_add(b.len()),
            Value::Array(a) => stack.extend(a.iter()),
            Value::Map(m) => stack.extend(m.iter().flat_map(|(k, v)| [k, v])),
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobcache::LocalCache;
    use salt_proto::value::{map, string};

    fn ret(jid: &str, id: &str) -> Value {
        map([
            ("id", string(id)),
            ("jid", string(jid)),
            ("return", Value::Boolean(true)),
            ("retcode", Value::from(0)),
            ("success", Value::Boolean(true)),
        ])
    }

    #[test]
    fn queued_returns_are_all_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store: Arc<dyn JobStore> = Arc::new(LocalCache::new(dir.path()));
        let jid = store.prep_jid(false, None).unwrap_or_else(|e| panic!("{e}"));
        let writer = ReturnWriter::new(store.clone());
        let ids: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
        std::thread::scope(|s| {
            for chunk in ids.chunks(100) {
                let w = &writer;
                let jid = jid.as_str();
                s.spawn(move || chunk.iter().for_each(|id| w.store(ret(jid, id))));
            }
        });
        writer.flush();
        let got = store.get_jid(&jid).unwrap_or_else(|e| panic!("{e}"));
        let Value::Map(m) = got else { panic!("{got:?}") };
        assert_eq!(m.len(), 300);
        // A duplicate is ignored; a return for a job whose directory is
        // gone is stored after prep_jid made it again, as Salt's store_job does.
        writer.store(ret(&jid, "m0"));
        let other = "20261205105959123456";
        writer.store(ret(other, "m1"));
        drop(writer);
        let Value::Map(m) = store.get_jid(other).unwrap_or_else(|e| panic!("{e}")) else { panic!() };
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_full_queue_is_stored_by_the_caller() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store: Arc<dyn JobStore> = Arc::new(LocalCache::new(dir.path()));
        let jid = store.prep_jid(false, None).unwrap_or_else(|e| panic!("{e}"));
        let writer = ReturnWriter::new(store.clone());
        // Hold the queue's lock in this thread's stead: mark it closed, as
        // when the thread could not start; store() then writes at once.
        if let Ok(mut q) = writer.shared.queue.lock() {
            q.closed = true;
        }
        writer.store(ret(&jid, "now"));
        let Value::Map(m) = store.get_jid(&jid).unwrap_or_else(|e| panic!("{e}")) else { panic!() };
        assert_eq!(m.len(), 1, "written before store() returned");
        let big = map([("id", string("big")), ("jid", string(&jid)), ("return", Value::Binary(vec![0; 1000]))]);
        assert!(estimate(&big) >= 1000);
    }
}
