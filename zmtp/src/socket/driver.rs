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
//! other skips. It is polled with one waker for both (`BothWaker`), which wakes the application
//! (when it waits in `recv`) and the task. The rule that keeps the task from sleeping with work
//! left: a wake-up can come while one side holds the future, after the future looked at what woke
//! it; the task, woken, then finds the future busy and returns. So every wake-up also sets
//! `woken`, and whoever held the future looks at it after letting go and wakes the task again. The
//! loom models at the end of this file check it (`scripts/loom.sh`); without that last look, a
//! cancelled `recv` leaves the connection asleep with a message in its pipe.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::queue::{same_task, Inbox};
use super::sync::{AtomicBool, Mutex, Ordering};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Wakes both sides.
struct BothWaker {
    /// Set by every wake-up: one that comes while a side polls must not be lost to the other,
    /// which found the future busy.
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
    app: Mutex<Option<Waker>>,
}

impl BothWaker {
    fn new() -> Self {
        BothWaker { woken: AtomicBool::new(false), task: Mutex::new(None), app: Mutex::new(None) }
    }

    fn set(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        if !s.as_ref().is_some_and(|w| same_task(w, waker)) {
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
        let both = Arc::new(BothWaker::new());
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
        // loom switches threads only at its own operations, and releasing a lock is not one: this
        // load lets the models run the other side and the wakers while the future is still held.
        #[cfg(zmtp_loom)]
        let _ = self.both.woken.load(Ordering::SeqCst);
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
    fn assist(&self, waker: &Waker) {
        BothWaker::set(&self.both.app, waker);
        self.poll_once();
    }

    /// The application behind `waker` no longer waits (another receiver's registration stays).
    fn unassist(&self, waker: &Waker) {
        let mut slot = self.both.app.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|w| same_task(w, waker)) {
            *slot = None;
        }
    }
}

/// One application receive that drives the connection while it waits for `inbound`.
pub(crate) struct Assist<'a> {
    driven: &'a Driven,
    /// The waker last registered, withdrawn when the receive ends or is cancelled.
    registered: Option<Waker>,
}

impl<'a> Assist<'a> {
    pub(crate) fn new(driven: &'a Driven) -> Self {
        Assist { driven, registered: None }
    }

    /// Takes the next message from `inbound`, driving the connection first. Returns `Pending`
    /// only with `cx` registered both with the queue and with the connection.
    pub(crate) fn poll_recv<T>(&mut self, inbound: &impl Inbox<T>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // Drive the connection before registering with the queue: a message it delivers is then
        // taken below without waking this task (a self-wake costs the runtime an extra turn).
        if let Some(m) = inbound.try_recv() {
            return Poll::Ready(Some(m));
        }
        // Registered by an earlier poll: the connection, driven from here, would wake us.
        inbound.forget(cx.waker());
        if !self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.registered = Some(cx.waker().clone());
        }
        self.driven.assist(cx.waker());
        inbound.poll_recv(cx)
    }
}

impl Drop for Assist<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.registered.take() {
            self.driven.unassist(&w);
        }
    }
}

/// Model checks of the hand-off (`scripts/loom.sh`): the connection's task and an application
/// receive both poll one connection future, which takes a message from its pipe and hands it to
/// the inbound queue, while a third thread sends. loom runs every interleaving; a lost wake-up
/// leaves a side parked for good, which it reports as a deadlock.
#[cfg(all(test, zmtp_loom))]
mod loom_models {
    use super::*;
    use crate::socket::queue;
    use loom::future::block_on;
    use loom::thread;

    /// The connection: one message from the pipe to the inbound queue, then it ends.
    fn connection(pipe: queue::Receiver<u32>, inbound: queue::Sender<u32>) -> impl Future<Output = ()> + Send {
        async move {
            if let Some(m) = pipe.recv().await {
                let _ = inbound.try_send(m);
            }
        }
    }

    fn setup() -> (queue::Sender<u32>, queue::Receiver<u32>, Arc<Driven>) {
        let (pipe_tx, pipe_rx) = queue::channel(4);
        let (in_tx, in_rx) = queue::channel(4);
        (pipe_tx, in_rx, Driven::new(connection(pipe_rx, in_tx)))
    }

    /// An application waiting in an assisted receive gets the message, and the task ends.
    #[test]
    fn task_and_assisted_receive() {
        loom::model(|| {
            let (pipe_tx, inbound, driven) = setup();
            let task = {
                let driven = driven.clone();
                thread::spawn(move || block_on(driven.run()))
            };
            let sender = thread::spawn(move || pipe_tx.try_send(7).is_ok());
            let got = block_on(async {
                let mut assist = Assist::new(&driven);
                std::future::poll_fn(|cx| assist.poll_recv(&inbound, cx)).await
            });
            assert_eq!(got, Some(7));
            assert!(sender.join().expect("sender"));
            task.join().expect("task");
        });
    }

    /// Counts as woken; a stand-in for the runtime's task waker that lets the model ask, at the
    /// end, whether a task left pending had a wake-up coming. A loom lock, so that the task's
    /// thread can be preempted between its poll and its look at the flag, as a real one can.
    struct Flag(Mutex<bool>);

    impl Flag {
        fn take(&self) -> bool {
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
    }

    type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Polls `task` as a runtime would: again while it was woken meanwhile. `true` once done.
    fn poll_while_woken(task: &mut Task, flag: &Arc<Flag>) -> bool {
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            if task.as_mut().poll(&mut cx).is_ready() {
                return true;
            }
            if !flag.take() {
                return false;
            }
        }
    }

    /// An application receive that drives the connection once and is cancelled: the task still
    /// moves the message. The task's thread stops polling when it is not woken; once every thread
    /// is done, a task left pending must have a wake-up pending (else it would sleep for good).
    #[test]
    fn cancelled_assist_leaves_the_task_awake() {
        loom::model(|| {
            let (pipe_tx, inbound, driven) = setup();
            let flag = Arc::new(Flag(Mutex::new(false)));
            let task = {
                let (driven, flag) = (driven.clone(), flag.clone());
                thread::spawn(move || {
                    let mut task: Task = Box::pin(driven.run());
                    let done = poll_while_woken(&mut task, &flag);
                    (task, done)
                })
            };
            // Only the message wakes the connection (the last sender's drop would wake it too).
            let sender = {
                let pipe_tx = pipe_tx.clone();
                thread::spawn(move || pipe_tx.try_send(7).is_ok())
            };
            let early = {
                let waker = std::task::Waker::noop();
                let mut cx = Context::from_waker(waker);
                let mut assist = Assist::new(&driven);
                assist.poll_recv(&inbound, &mut cx)
            };
            assert!(sender.join().expect("sender"));
            let (mut task, mut done) = task.join().expect("task");
            if !done {
                assert!(flag.take(), "the connection task sleeps with work left: a lost wake-up");
                done = poll_while_woken(&mut task, &flag);
            }
            assert!(done, "the connection future finished");
            match early {
                Poll::Ready(got) => assert_eq!(got, Some(7)),
                Poll::Pending => assert_eq!(inbound.try_recv(), Some(7)),
            }
            drop(pipe_tx);
        });
    }

    /// Two application receives (two tasks on one socket) and the connection task: the one that
    /// does not get the message sees the queue end, neither hangs.
    #[test]
    fn two_assisted_receives() {
        loom::model(|| {
            let (pipe_tx, inbound, driven) = setup();
            let inbound = Arc::new(inbound);
            let task = {
                let driven = driven.clone();
                thread::spawn(move || block_on(driven.run()))
            };
            let other = {
                let (driven, inbound) = (driven.clone(), inbound.clone());
                thread::spawn(move || {
                    block_on(async {
                        let mut assist = Assist::new(&driven);
                        std::future::poll_fn(|cx| assist.poll_recv(&*inbound, cx)).await
                    })
                })
            };
            assert!(pipe_tx.try_send(7).is_ok());
            drop(pipe_tx);
            let mine = block_on(async {
                let mut assist = Assist::new(&driven);
                std::future::poll_fn(|cx| assist.poll_recv(&*inbound, cx)).await
            });
            let theirs = other.join().expect("other receiver");
            task.join().expect("task");
            let mut got = [mine, theirs];
            got.sort();
            assert_eq!(got, [None, Some(7)]);
        });
    }
}
