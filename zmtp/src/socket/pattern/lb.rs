//! Load-balancing: each message goes to the next pipe in round-robin order that has room below its
//! high-water mark; when none has, the sender waits for room on the next one (libzmq's `lb_t`).
//! Pipes of connecting endpoints are used before their connection is up, so messages queue for
//! them as in libzmq (ZMQ_IMMEDIATE off).

use crate::socket::queue::TrySendError;

use crate::socket::core::{Core, Pipe, PipeId, State};
use crate::socket::Error;
use crate::Message;

/// Tries every pipe once in round-robin order. On success the message is queued, the cursor moved
/// and `commit` run, all under the caller's lock. On failure the message comes back, with the pipe
/// to wait on, if any.
fn try_route(
    st: &mut State,
    msg: Message,
    commit: &mut impl FnMut(&mut State, PipeId),
) -> Result<(), (Message, Option<PipeId>)> {
    let start = st.next_rr;
    let mut msg = Some(msg);
    let mut chosen = None;
    let mut first = None;
    let mut offer = |id: PipeId, pipe: &Pipe| {
        first.get_or_insert(id);
        let Some(m) = msg.take() else { return true };
        match pipe.tx.try_send(m) {
            Ok(()) => {
                chosen = Some(id);
                true
            }
            Err(TrySendError::Full(m) | TrySendError::Closed(m)) => {
                msg = Some(m);
                false
            }
        }
    };
    if st.pipes.len() == 1 {
        // One peer (the usual DEALER, REQ, PUSH): no search for the cursor.
        if let Some((&id, pipe)) = st.pipes.iter().next() {
            offer(id, pipe);
        }
    } else {
        let _ = st.pipes.range(start..).chain(st.pipes.range(..start)).any(|(&id, pipe)| offer(id, pipe));
    }
    match (chosen, msg) {
        (Some(id), _) => {
            st.next_rr = id + 1;
            commit(st, id);
            Ok(())
        }
        (None, Some(m)) => Err((m, first)),
        // Unreachable: a message is either queued (chosen) or still held.
        (None, None) => Ok(()),
    }
}

/// Sends `msg` to one pipe, waiting for room or for a first peer. `commit` runs under the socket
/// lock as the message enters the chosen pipe, so that patterns can record where it went without a
/// race with the reply.
///
/// Cancel safe in the sense of tokio's `Sender::send`: if cancelled, the message was not sent.
pub(crate) async fn send(
    core: &Core,
    mut msg: Message,
    mut commit: impl FnMut(&mut State, PipeId),
) -> Result<(), Error> {
    // Fast path: a pipe has room.
    match try_route(&mut core.lock(), msg, &mut commit) {
        Ok(()) => return Ok(()),
        Err((m, _)) => msg = m,
    }
    loop {
        let changed = core.pipes_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let target = {
            let mut st = core.lock();
            match try_route(&mut st, msg, &mut commit) {
                Ok(()) => return Ok(()),
                Err((m, first)) => {
                    msg = m;
                    first.and_then(|id| st.pipes.get(&id).map(|p| (id, p.tx.clone())))
                }
            }
        };
        match target {
            Some((id, tx)) => {
                let permit = tokio::select! {
                    p = tx.reserve() => p,
                    _ = changed => continue,
                    _ = core.closing.cancelled() => return Err(Error::Closed),
                };
                if let Ok(permit) = permit {
                    let mut st = core.lock();
                    st.next_rr = id + 1;
                    commit(&mut st, id);
                    permit.send(msg);
                    return Ok(());
                }
            }
            None => {
                tokio::select! {
                    _ = changed => {}
                    _ = core.closing.cancelled() => return Err(Error::Closed),
                }
            }
        }
    }
}

/// Queues `msg` if a pipe has room now; gives it back otherwise (no pattern bookkeeping: DEALER,
/// PUSH, PAIR).
pub(crate) fn try_send_back(core: &Core, msg: Message) -> Result<(), Message> {
    try_route(&mut core.lock(), msg, &mut |_, _| {}).map_err(|(m, _)| m)
}

/// Non-blocking variant: fails with [`Error::WouldBlock`] when no pipe has room.
pub(crate) fn try_send(core: &Core, msg: Message, mut commit: impl FnMut(&mut State, PipeId)) -> Result<(), Error> {
    try_route(&mut core.lock(), msg, &mut commit).map_err(|_| Error::WouldBlock)
}
