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
//! WOKEN, and whoever held the future looks at it after letting go and wakes the task again. The
//! loom models at the end of this file check it (`scripts/loom.sh`); without that last look, a
//! cancelled `recv` leaves the connection asleep with a message in its pipe.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::queue::{same_task, Inbox};
use super::sync::{AtomicU8, Mutex, Ordering};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `BothWaker::state`: set by every wake-up (one that comes while a side polls must not be lost
/// to the other, which found the future busy).
const WOKEN: u8 = 1;
/// `BothWaker::state`: set while a side holds the future. A wake-up then does not wake the task
/// (which would find the future busy: on a multi-threaded runtime, a worker woken for nothing);
/// the holder, letting go, finds WOKEN and wakes it.
const HELD: u8 = 2;
/// `BothWaker::state`: set while an application receive waits on the connection (`Assist`). A
/// wake-up then wakes only the application, which polls the connection itself: on a
/// multi-threaded runtime the task, woken too, would race it for the future from another worker,
/// and the loser's hand-off costs the application a second sleep and wake-up. The receive, when
/// it ends, wakes the task if a wake-up came since the last poll.
const APP: u8 = 4;

/// Wakes both sides.
struct BothWaker {
    /// WOKEN and HELD, in one atomic so that every change is a read-modify-write of one location
    /// (a wake-up and the holder's letting go are ordered, whatever the memory model).
    state: AtomicU8,
    task: Mutex<Option<Waker>>,
    app: Mutex<Option<Waker>>,
}

impl BothWaker {
    fn new() -> Self {
        BothWaker { state: AtomicU8::new(0), task: Mutex::new(None), app: Mutex::new(None) }
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
        let before = self.state.fetch_or(WOKEN, Ordering::SeqCst);
        // The application first: on a current-thread runtime it then polls the connection before
        // the task does, and the task finds nothing left to do.
        if let Some(w) = BothWaker::take(&self.app) {
            w.wake();
        }
        // Held: the holder's letting go comes later in the state's order and finds WOKEN. A
        // waiting receive: woken above, it polls the connection (or, ending, wakes the task).
        if before & (HELD | APP) == 0 {
            if let Some(w) = BothWaker::take(&self.task) {
                w.wake();
            }
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
        self.holding(|| ()).1
    }

    /// Runs `f` and then polls the future, holding it throughout, unless someone else holds it
    /// (then only runs `f`). What `f` wakes the connection for is seen by that poll, so the task
    /// is not woken for it: a message `f` queues goes out from here. Returns `f`'s result and
    /// whether the future has finished (now or before).
    fn holding<R>(&self, f: impl FnOnce() -> R) -> (R, bool) {
        let Ok(mut slot) = self.future.try_lock() else { return (f(), false) };
        self.both.state.fetch_or(HELD, Ordering::SeqCst);
        let r = f();
        let Some(fut) = slot.as_mut() else {
            self.both.state.fetch_and(!(HELD | WOKEN), Ordering::SeqCst);
            drop(slot);
            self.wake_task();
            return (r, true);
        };
        // Wake-ups before this are seen by the poll below; later ones make us wake the task.
        self.both.state.fetch_and(!WOKEN, Ordering::SeqCst);
        let mut cx = Context::from_waker(&self.waker);
        let done = fut.as_mut().poll(&mut cx).is_ready();
        // loom switches threads only at its own operations, and releasing a lock is not one: this
        // load lets the models run the other side and the wakers while the future is still held.
        #[cfg(zmtp_loom)]
        let _ = self.both.state.load(Ordering::SeqCst);
        if done {
            *slot = None;
        }
        // Letting go: HELD and WOKEN cleared at once, before the lock (the next holder sets HELD
        // again only once it has the lock).
        let before = self.both.state.fetch_and(!(HELD | WOKEN), Ordering::SeqCst);
        drop(slot);
        // Finished, or woken while we held the future (the task, if woken, found it busy and gave
        // up; or the wake-up left it asleep, HELD): make sure the task looks again. Even with a
        // receive waiting: woken, it may have found the future busy and gone back to sleep.
        if done || before & WOKEN != 0 {
            self.wake_task();
        }
        (r, done)
    }

    fn wake_task(&self) {
        if let Some(w) = BothWaker::take(&self.both.task) {
            w.wake();
        }
    }

    /// The application's send on a socket whose sends alternate with receives (REQ, REP): runs
    /// `send` (which queues the message if it can, without waiting) and then polls the
    /// connection, holding the connection's future, so that the message goes out from the
    /// application's task without waking the connection's. Also a receive that makes room for a
    /// connection waiting at the receive high-water mark (`Socket::take_inbound`): `send` wakes
    /// it, and the poll does what it was woken for.
    pub(crate) fn send_through<R>(&self, send: impl FnOnce() -> R) -> R {
        self.holding(send).0
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
    /// `waker`, by whatever it now waits for (and instead of the task: APP).
    fn assist(&self, waker: &Waker) {
        BothWaker::set(&self.both.app, waker);
        self.both.state.fetch_or(APP, Ordering::SeqCst);
        self.poll_once();
    }

    /// The application behind `waker` no longer waits (another receiver's registration stays). If
    /// a wake-up came since the future was last polled, the task takes over.
    fn unassist(&self, waker: &Waker) {
        {
            let mut slot = self.both.app.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|w| same_task(w, waker)) {
                *slot = None;
            }
        }
        let before = self.both.state.fetch_and(!APP, Ordering::SeqCst);
        if before & WOKEN != 0 {
            self.wake_task();
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

/// [`crate::Options::recv_spin`]: a receive that would sleep is polled again instead, through
/// tokio's `yield_now` (on a runtime's worker: after the other ready tasks and a non-blocking poll
/// of the I/O driver; outside one, as in `block_on` on a multi-threaded runtime: at once), until
/// the budget, counted from the first time it found nothing, is spent. Real time (`std`), not
/// tokio's clock: a paused test clock does not move while a task keeps the runtime busy, so a
/// budget measured by it would never run out.
pub(crate) struct Spin {
    budget: Duration,
    since: Option<Instant>,
}

impl Spin {
    pub(crate) fn new(budget: Duration) -> Self {
        Spin { budget, since: None }
    }

    /// Passes on a receive's poll; a `Pending` one within the budget leaves `cx` scheduled to be
    /// polled again soon.
    #[inline]
    pub(crate) fn poll<T>(&mut self, polled: Poll<T>, cx: &mut Context<'_>) -> Poll<T> {
        if polled.is_pending() && !self.budget.is_zero() {
            let now = Instant::now();
            let since = *self.since.get_or_insert(now);
            if now.saturating_duration_since(since) < self.budget {
                // The peer (or the worker that reads for us) is often woken on this CPU, and
                // would wait there until the spin ends: let it run first (sched_yield).
                std::thread::yield_now();
                // Its first poll schedules the yield (tokio's `context::defer`) and returns Pending.
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
            }
        }
        polled
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

    /// The connection task on a thread of its own, polled as a runtime would while it is woken.
    fn spawn_task(driven: &Arc<Driven>) -> (thread::JoinHandle<(Task, bool)>, Arc<Flag>) {
        let flag = Arc::new(Flag(Mutex::new(false)));
        let task = {
            let (driven, flag) = (driven.clone(), flag.clone());
            thread::spawn(move || {
                let mut task: Task = Box::pin(driven.run());
                let done = poll_while_woken(&mut task, &flag);
                (task, done)
            })
        };
        (task, flag)
    }

    /// Once every other thread is done: a task left pending must have a wake-up coming (else it
    /// would sleep for good), and polled on that wake-up it ends.
    fn finish_task(task: thread::JoinHandle<(Task, bool)>, flag: &Arc<Flag>) {
        let (mut task, mut done) = task.join().expect("task");
        if !done {
            assert!(flag.take(), "the connection task sleeps with work left: a lost wake-up");
            done = poll_while_woken(&mut task, flag);
        }
        assert!(done, "the connection future finished");
    }

    /// An application receive that drives the connection once and is cancelled: the task still
    /// moves the message. The task's thread stops polling when it is not woken; once every thread
    /// is done, a task left pending must have a wake-up pending (else it would sleep for good).
    #[test]
    fn cancelled_assist_leaves_the_task_awake() {
        loom::model(|| {
            let (pipe_tx, inbound, driven) = setup();
            let (task, flag) = spawn_task(&driven);
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
            finish_task(task, &flag);
            match early {
                Poll::Ready(got) => assert_eq!(got, Some(7)),
                Poll::Pending => assert_eq!(inbound.try_recv(), Some(7)),
            }
            drop(pipe_tx);
        });
    }

    /// A send through the connection (REQ, REP): the application queues the message while it
    /// holds the future and polls it, so the task is not woken for it; the task, polled by its
    /// own thread meanwhile, must still end (no lost wake-up while the future was held).
    #[test]
    fn send_through_leaves_the_task_awake() {
        loom::model(|| {
            let (pipe_tx, inbound, driven) = setup();
            let (task, flag) = spawn_task(&driven);
            let sent = driven.send_through(|| pipe_tx.try_send(7).is_ok());
            assert!(sent);
            finish_task(task, &flag);
            assert_eq!(inbound.try_recv(), Some(7));
            drop(pipe_tx);
        });
    }

    /// A send through the connection that races a wake-up from elsewhere (a second sender):
    /// both messages arrive, whoever holds the future when the wake-up comes.
    #[test]
    fn send_through_and_a_concurrent_wake() {
        loom::model(|| {
            let (pipe_tx, pipe_rx) = queue::channel::<u32>(4);
            let (in_tx, inbound) = queue::channel::<u32>(4);
            let driven = Driven::new(async move {
                for _ in 0..2 {
                    match pipe_rx.recv().await {
                        Some(m) => {
                            let _ = in_tx.try_send(m);
                        }
                        None => return,
                    }
                }
            });
            let task = {
                let driven = driven.clone();
                thread::spawn(move || block_on(driven.run()))
            };
            let other = {
                let pipe_tx = pipe_tx.clone();
                thread::spawn(move || pipe_tx.try_send(8).is_ok())
            };
            assert!(driven.send_through(|| pipe_tx.try_send(7).is_ok()));
            assert!(other.join().expect("other sender"));
            task.join().expect("task");
            let mut got = [inbound.try_recv(), inbound.try_recv()];
            got.sort();
            assert_eq!(got, [Some(7), Some(8)]);
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
