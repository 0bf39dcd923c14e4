//! `inproc://`: sockets of one process joined without the wire codec. Messages move from one
//! socket's pipe to the other's inbound queue as they are, so nothing is encoded or copied.
//!
//! A bound name is kept in a process-wide registry. A connecting socket waits for the name to be
//! bound (connect before bind works, as in libzmq), then creates a pipe on the binder, and two
//! pumps move messages and subscriptions each way until either socket closes. If the binder goes
//! away, the connecter waits for the name to be bound again.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::Notify;

use super::core::{Core, PipeId, PipeRx};
use super::error::DisconnectReason;
use super::monitor::MonitorEvent;
use super::pattern::Control;
use super::session::Session;
use super::Error;
use crate::proto::{ConnectionError, PeerInfo};

static REGISTRY: LazyLock<Mutex<HashMap<String, Weak<Core>>>> = LazyLock::new(Default::default);
static CHANGED: LazyLock<Notify> = LazyLock::new(Notify::new);

fn live(weak: &Weak<Core>) -> Option<Arc<Core>> {
    weak.upgrade().filter(|c| !c.closing.is_cancelled())
}

/// Registers `core` under `name`.
pub(crate) fn bind(core: &Arc<Core>, name: &str) -> Result<(), Error> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|_, w| live(w).is_some());
    if reg.contains_key(name) {
        return Err(Error::Io(std::io::ErrorKind::AddrInUse.into()));
    }
    reg.insert(name.to_owned(), Arc::downgrade(core));
    drop(reg);
    CHANGED.notify_waiters();
    Ok(())
}

/// Whether a live socket is bound at `name` (the ZAP handler's endpoint, say).
pub(crate) fn is_bound(name: &str) -> bool {
    lookup(name).is_some()
}

fn lookup(name: &str) -> Option<Arc<Core>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).get(name).and_then(live)
}

fn peer_info(of: &Core) -> PeerInfo {
    PeerInfo {
        socket_type: of.socket_type,
        routing_id: of.options.routing_id.clone(),
        properties: crate::Properties::default(),
        version: (3, 1),
    }
}

/// A connection to a bound inproc socket, set up and ready: a session on each side.
pub(crate) struct Joined {
    binder: Arc<Core>,
    brx: PipeRx,
    /// Our side.
    ours: Session,
    /// The binder's side.
    theirs: Session,
}

/// Joins `core`'s pipe `id` to the bound socket `binder`: a pipe on the binder, each side's
/// session admitting the other, and what each sends first (PROBE_ROUTER, XPUB's welcome) handed
/// over before anything queued.
fn join(core: &Arc<Core>, binder: Arc<Core>, id: PipeId, endpoint: &str) -> Result<Joined, ()> {
    if !core.socket_type.is_compatible(binder.socket_type) {
        let reason =
            DisconnectReason::Protocol(ConnectionError::incompatible_socket_type(core.socket_type, binder.socket_type));
        core.monitors.emit(MonitorEvent::HandshakeFailed { endpoint: endpoint.to_owned(), reason });
        return Err(());
    }
    let (bid, bpipe, brx) = binder.new_pipe();
    binder.monitors.emit(MonitorEvent::Accepted { endpoint: endpoint.to_owned(), peer: endpoint.to_owned() });
    let mut theirs = Session::new(binder.clone(), bid, Some(bpipe), endpoint, endpoint);
    let mut ours = Session::new(core.clone(), id, None, endpoint, endpoint);
    let (to_us, to_them) = match (theirs.ready(peer_info(core)), ours.ready(peer_info(&binder))) {
        (Ok(to_us), Ok(to_them)) => (to_us, to_them),
        (Err(reason), _) | (_, Err(reason)) => {
            theirs.end(&reason);
            ours.end(&reason);
            return Err(());
        }
    };
    if let Some(inbound) = to_us.and_then(|g| ours.inbound(g)) {
        let _ = core.try_deliver(inbound);
    }
    if let Some(inbound) = to_them.and_then(|g| theirs.inbound(g)) {
        let _ = binder.try_deliver(inbound);
    }
    Ok(Joined { binder, brx, ours, theirs })
}

/// The connecting side. If `name` is bound, the connection is made before this returns (as in
/// libzmq, so that what is sent next is delivered even if the socket is closed at once);
/// otherwise a task waits for the bind. Either way a task then moves messages until a socket
/// closes, and joins again whenever the name is bound anew.
pub(crate) fn connect(core: &Arc<Core>, name: String, id: PipeId, rx: PipeRx) {
    let endpoint = format!("inproc://{name}");
    let first = match lookup(&name) {
        Some(binder) => match join(core, binder, id, &endpoint) {
            Ok(j) => Some(j),
            Err(()) => return,
        },
        None => None,
    };
    let core2 = core.clone();
    core.tasks.spawn(async move { connect_loop(core2, name, endpoint, id, rx, first).await });
}

async fn connect_loop(
    core: Arc<Core>,
    name: String,
    endpoint: String,
    id: PipeId,
    mut rx: PipeRx,
    mut first: Option<Joined>,
) {
    'outer: loop {
        let joined = match first.take() {
            Some(j) => j,
            None => {
                let binder = loop {
                    let changed = CHANGED.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    if let Some(b) = lookup(&name) {
                        break b;
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = core.closing.cancelled() => break 'outer,
                    }
                };
                match join(&core, binder, id, &endpoint) {
                    Ok(j) => j,
                    Err(()) => break,
                }
            }
        };
        let Joined { binder, mut brx, mut ours, mut theirs } = joined;
        // Each pump stops at once when its receiver closes, but a closing sender first hands over
        // what it queued: wait for that one.
        let reason = {
            let to_them = pump(&core, &mut rx, &mut theirs);
            let to_us = pump(&binder, &mut brx, &mut ours);
            tokio::pin!(to_them, to_us);
            tokio::select! {
                r = &mut to_them => if binder.closing.is_cancelled() { to_us.await } else { r },
                r = &mut to_us => if core.closing.is_cancelled() { to_them.await } else { r },
            }
        };
        theirs.end(&reason);
        ours.end(&reason);
        if core.closing.is_cancelled() {
            break;
        }
    }
    core.remove_pipe(id);
    core.monitors.emit(MonitorEvent::Closed { endpoint });
}

/// Moves what `from` sends on one pipe into the other socket's inbound side through its session
/// `to`, until either socket closes. A closing `from` first hands over what it queued, within its
/// linger time.
async fn pump(from: &Core, rx: &mut PipeRx, to: &mut Session) -> DisconnectReason {
    let to_core = to.core().clone();
    loop {
        tokio::select! {
            m = rx.data.recv() => {
                let Some(out) = m else { return DisconnectReason::Closed };
                for msg in out {
                    tokio::select! {
                        r = to.deliver(msg) => if r.is_err() { return DisconnectReason::Eof },
                        _ = to_core.closing.cancelled() => return DisconnectReason::Eof,
                    }
                }
            }
            c = rx.next_control() => {
                let Some(ctl) = c else { return DisconnectReason::Closed };
                let (topic, subscribe) = match ctl {
                    Control::Subscribe(t) => (t, true),
                    Control::Cancel(t) => (t, false),
                };
                // An XPUB's report waits for room as a message does (dropped at a full queue, a
                // verbose XPUB lost reports: zmtp/tests/patterns.rs, a burst over inproc).
                if let Some(inbound) = to.subscription(&topic, subscribe) {
                    tokio::select! {
                        r = to_core.deliver(inbound) => if r.is_err() { return DisconnectReason::Eof },
                        _ = to_core.closing.cancelled() => return DisconnectReason::Eof,
                    }
                }
            }
            _ = from.closing.cancelled() => {
                let drain = async {
                    while let Some(out) = rx.data.try_recv() {
                        for msg in out {
                            if to.deliver(msg).await.is_err() {
                                return;
                            }
                        }
                    }
                };
                match from.options.linger {
                    Some(t) => { let _ = tokio::time::timeout(t, drain).await; }
                    None => drain.await,
                }
                return DisconnectReason::Closed;
            }
            _ = to_core.closing.cancelled() => return DisconnectReason::Eof,
        }
    }
}
