//! A pipe's doorbell: how an application that is not a runtime task wakes the connection that
//! waits for its messages, on tokio's multi-threaded runtime, through the I/O driver.
//!
//! The usual wake-up (the connection task's `Waker`) from a thread that is not one of the
//! runtime's workers (`#[tokio::main]`'s `block_on`, a plain thread) goes through tokio's
//! injection queue: a sleeping worker is unparked as a *searching* worker, and a searching worker
//! that finds a task wakes another worker to search in its place (tokio's
//! `transition_worker_from_searching`). With 2 workers, each wake-up of a streaming PUSH's
//! connection woke both, and the second went back to sleep with nothing to do (tokio's search:
//! 12% of the sender's futex calls, perf, session 8). A worker woken by the I/O driver is not
//! searching (tokio's `transition_from_parked`), and the task it was woken for goes to its own
//! queue without waking anyone else.
//!
//! So such an application rings this bell instead: one octet written to a unix socket pair whose
//! other end the connection task polls, under tokio's reactor, on every turn where it also waits
//! for the pipe. The bell exists only where it is used: the application asks for it (the pipe's
//! [`Want`]) the first time it wakes the connection from outside a task; the connection, on the
//! multi-threaded runtime, makes it on its next take and puts the ringing end in the pipe; it
//! takes it out again before it stops polling it (its end, or its linger), so that the next
//! wake-up goes to its waker again. Made only for a socket's one connection (a PUSH's, a
//! DEALER's): two file descriptors and a reactor registration (about 0.4 KiB) per connection
//! would cost a ROUTER with thousands of peers too much; none for the pipes of a daemon whose
//! sends run in tasks (the master's).

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::Interest;

/// Where a pipe's bell stands (under the pipe's lock).
#[derive(Debug, Default)]
pub(crate) enum Want {
    /// Nobody asked for it.
    #[default]
    No,
    /// The application woke the connection from outside a task: the connection makes one at its
    /// next take.
    Asked,
    /// The connection polls this bell's other end.
    Ready(Arc<Ring>),
}

impl Want {
    /// After a send found the connection waiting: the bell to ring instead of waking it, if the
    /// sender is not a runtime task and the connection polls one; else `None` (asking for one
    /// the first time, from outside a task).
    #[inline]
    pub(crate) fn ring_for_sender(&mut self) -> Option<Arc<Ring>> {
        if tokio::task::try_id().is_some() {
            // A task on a worker: its wake-up goes to that worker's own queue.
            return None;
        }
        match self {
            Want::Ready(ring) => Some(ring.clone()),
            Want::No => {
                *self = Want::Asked;
                None
            }
            Want::Asked => None,
        }
    }
}

/// The application's end: rings.
#[derive(Debug)]
pub(crate) struct Ring(UnixStream);

impl Ring {
    /// One octet. A full socket (`WouldBlock`) has been rung already; a gone reader (the
    /// connection ended after this was taken from the pipe) needs nothing: it never gives
    /// SIGPIPE (`MSG_NOSIGNAL`, or `SO_NOSIGPIPE` where that does not exist).
    pub(crate) fn ring(&self) {
        let _ = socket2::SockRef::from(&self.0).send_with_flags(&[1], crate::transport::NOSIGNAL);
    }
}

/// The connection's end: polled on every turn.
#[derive(Debug)]
pub(crate) struct Bell(tokio::net::UnixStream);

impl Bell {
    /// A new bell and its ringing end; needs a runtime (its end is registered with the reactor).
    pub(crate) fn new() -> io::Result<(Bell, Arc<Ring>)> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "tvos", target_os = "watchos"))]
        socket2::SockRef::from(&write).set_nosigpipe(true)?;
        Ok((Bell(tokio::net::UnixStream::from_std(read)?), Arc::new(Ring(write))))
    }

    /// Takes what was rung and leaves `cx` registered for the next ring. Whoever polls this
    /// looks at the pipe after it in the same turn: a ring carries no message of its own.
    pub(crate) fn poll_drain(&self, cx: &mut Context<'_>) {
        let mut buf = [0u8; 64];
        loop {
            let Poll::Ready(Ok(())) = self.0.poll_read_ready(cx) else { return };
            // A read that took less than it could took everything rung so far: tokio's readiness
            // is cleared then as after a `WouldBlock` (a ring that came after the readiness seen
            // here stays), without a second read to see one.
            let read = self.0.try_io(Interest::READABLE, || {
                let n = io::Read::read(&mut &*socket2::SockRef::from(&self.0), &mut buf)?;
                if n > 0 && n < buf.len() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match read {
                // Polled again: registers `cx`.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(n) if n > 0 => continue,
                // The ringing end is gone (or broken): nothing more will ring.
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};
    use std::time::Duration;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits (bounded) until `count` passes `n`: the reactor runs while this sleeps.
    async fn woken_past(count: &Count, n: usize) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while count.0.load(Ordering::SeqCst) <= n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("a ring wakes the poller");
    }

    /// A ring wakes whoever polled the bell; a poll takes every ring so far (the socket is empty
    /// after it) and registers again, so the next ring wakes again; a bell whose ringing end is
    /// gone is polled without looping.
    #[tokio::test]
    async fn rings_wake_the_poller_and_a_poll_takes_them_all() {
        let (bell, ring) = Bell::new().expect("socket pair");
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        bell.poll_drain(&mut cx);
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "nothing rung");
        for round in 0..3 {
            let before = count.0.load(Ordering::SeqCst);
            for _ in 0..=round * 40 {
                ring.ring();
            }
            woken_past(&count, before).await;
            bell.poll_drain(&mut cx);
            let mut buf = [0u8; 8];
            let left = bell.0.try_read(&mut buf);
            assert!(
                matches!(&left, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "round {round}: every ring taken, got {left:?}"
            );
        }
        drop(ring);
        bell.poll_drain(&mut cx);
    }
}
