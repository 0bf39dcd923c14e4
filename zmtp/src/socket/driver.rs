//! Connection tasks that the application's own task may drive.
//!
//! Each connection runs as a task, so that it reads, writes and answers heartbeats whatever the
//! application does. But a task hop costs latency: a reply read by the connection task reaches a
//! waiting `recv` only after a wake-up and another turn of the scheduler (on a current-thread
//! runtime, an extra `epoll_wait`). So a socket with one connection lets `recv` poll that
//! connection's future itself when nothing is queued: the reply is read, decoded and returned in
//! the application's task, and what `send` queued just before goes out in the same turn.
//!
//! The future sits behind a mutex that both sides only ever `try_lock`: whoever holds it polls, the
//! other skips. It is polled with one waker for both, which wakes the application (when it waits
//! in `recv`) and the task, so an event is never left to a side that does not look.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Wakes both sides.
#[derive(Default)]
struct BothWaker {
    /// Set by every wake-up: one that comes while a side polls must not be lost to the other,
    /// which found the future busy.
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
    app: Mutex<Option<Waker>>,
}

impl BothWaker {
    fn set(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        if !s.as_ref().is_some_and(|w| super::queue::same_task(w, waker)) {
            *s = Some(waker.clone());
        }
    }

    fn take(slot: &Mutex<Option<Waker>>) -> Option<Waker> {
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Wake for BothWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        // The application first: on a current-thread runtime it then polls the connection before
        // the task does, and the task finds nothing left to do.
        if let Some(w) = BothWaker::take(&self.app) {
            w.wake();
        }
        if let Some(w) = BothWaker::take(&self.task) {
            w.wake();
        }
    }
}

/// A connection's future, shared by its task and the application.
pub(crate) struct Driven {
    future: Mutex<Option<BoxFuture>>,
    both: Arc<BothWaker>,
    waker: Waker,
}

impl std::fmt::Debug for Driven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driven").finish_non_exhaustive()
    }
}

impl Driven {
    pub(crate) fn new(future: impl Future<Output = ()> + Send + 'static) -> Arc<Driven> {
        let both = Arc::new(BothWaker::default());
        let waker = Waker::from(both.clone());
        Arc::new(Driven { future: Mutex::new(Some(Box::pin(future))), both, waker })
    }

    /// Polls the future unless someone else is polling it (that one leaves our shared waker
    /// registered). Returns whether the future has finished (now or before).
    fn poll_once(&self) -> bool {
        let Ok(mut slot) = self.future.try_lock() else { return false };
        let Some(fut) = slot.as_mut() else { return true };
        self.both.woken.store(false, Ordering::SeqCst);
        let mut cx = Context::from_waker(&self.waker);
        let done = fut.as_mut().poll(&mut cx).is_ready();
        if done {
            *slot = None;
        }
        drop(slot);
        // Finished, or woken while we held the future (a side that found it busy then gave up):
        // make sure the task looks again.
        if done || self.both.woken.swap(false, Ordering::SeqCst) {
            if let Some(w) = BothWaker::take(&self.both.task) {
                w.wake();
            }
        }
        done
    }

    /// The task's side: resolves when the future has finished, whoever polled it last.
    pub(crate) async fn run(self: Arc<Self>) {
        std::future::poll_fn(|cx| {
            // Registered before polling, so that a wake-up during or after the poll reaches us.
            BothWaker::set(&self.both.task, cx.waker());
            if self.poll_once() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// The application's side: polls the future once (unless busy) and asks to be woken, through
    /// `waker`, by whatever it now waits for.
    pub(crate) fn assist(&self, waker: &Waker) {
        BothWaker::set(&self.both.app, waker);
        self.poll_once();
    }

    /// The application no longer waits.
    pub(crate) fn unassist(&self) {
        BothWaker::take(&self.both.app);
    }
}
