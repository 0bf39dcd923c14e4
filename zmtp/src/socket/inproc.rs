//! `inproc://`: sockets of one process joined without the wire codec. Messages move from one
//! socket's pipe to the other's inbound queue as they are, so nothing is encoded or copied.
//!
//! A bound name is kept in a process-wide registry. A connecting socket waits for the name to be
//! bound (connect before bind works, as in libzmq), then creates a pipe on the binder, and two
//! pumps move messages and subscriptions each way until either socket closes. If the binder goes
//! away, the connecter waits for the name to be bound again.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::Notify;

use super::core::{Core, PipeId, PipeRx};
use super::error::DisconnectReason;
use super::monitor::MonitorEvent;
use super::pattern::Control;
use super::Error;
use crate::codec::Metadata;
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
        metadata: Metadata::new(),
        version: (3, 1),
    }
}

/// A connection to a bound inproc socket, set up and ready.
pub(crate) struct Joined {
    binder: Arc<Core>,
    bid: PipeId,
    brx: PipeRx,
    /// How the binder knows us.
    our_rid: Bytes,
    /// How we know the binder.
    their_rid: Bytes,
}

/// Joins `core`'s pipe `id` to the bound socket `binder`: a pipe on the binder, both sides ready.
fn join(core: &Core, binder: Arc<Core>, id: PipeId, endpoint: &str) -> Result<Joined, ()> {
    let fail = |why: String| {
        let reason = DisconnectReason::Protocol(ConnectionError::PeerIncompatible(why));
        core.monitors.emit(MonitorEvent::HandshakeFailed { endpoint: endpoint.to_owned(), reason });
    };
    if !core.socket_type.is_compatible(binder.socket_type) {
        fail(format!("{} cannot talk to a {} peer", core.socket_type, binder.socket_type));
        return Err(());
    }
    let (bid, bpipe, brx) = binder.new_pipe();
    binder.attach(bid, bpipe);
    binder.monitors.emit(MonitorEvent::Accepted { endpoint: endpoint.to_owned(), peer: endpoint.to_owned() });
    let (Ok(ours), Ok(theirs)) = (binder.ready(bid, &peer_info(core)), core.ready(id, &peer_info(&binder))) else {
        binder.remove_pipe(bid);
        core.detach(id, false);
        fail("peer refused the connection".into());
        return Err(());
    };
    let (our_rid, their_rid) = (ours.routing_id, theirs.routing_id);
    // What each side sends first (PROBE_ROUTER, XPUB's welcome) goes before anything queued.
    if let Some(inbound) = ours.greeting.and_then(|g| core.inbound(id, &their_rid, g)) {
        let _ = core.try_deliver(inbound);
    }
    if let Some(inbound) = theirs.greeting.and_then(|g| binder.inbound(bid, &our_rid, g)) {
        let _ = binder.try_deliver(inbound);
    }
    core.monitors.emit(MonitorEvent::HandshakeSucceeded { endpoint: endpoint.to_owned(), peer: peer_info(&binder) });
    binder.monitors.emit(MonitorEvent::HandshakeSucceeded { endpoint: endpoint.to_owned(), peer: peer_info(core) });
    Ok(Joined { binder, bid, brx, our_rid, their_rid })
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
        let Joined { binder, bid, mut brx, our_rid, their_rid } = joined;
        // Each pump stops at once when its receiver closes, but a closing sender first hands over
        // what it queued: wait for that one.
        let reason = {
            let ours = pump(&core, &mut rx, &binder, bid, &our_rid);
            let theirs = pump(&binder, &mut brx, &core, id, &their_rid);
            tokio::pin!(ours, theirs);
            tokio::select! {
                r = &mut ours => if binder.closing.is_cancelled() { theirs.await } else { r },
                r = &mut theirs => if core.closing.is_cancelled() { ours.await } else { r },
            }
        };
        binder.detach(bid, true);
        core.detach(id, false);
        core.monitors.emit(MonitorEvent::Disconnected { endpoint: endpoint.clone(), reason: reason.clone() });
        binder.monitors.emit(MonitorEvent::Disconnected { endpoint: endpoint.clone(), reason });
        if core.closing.is_cancelled() {
            break;
        }
    }
    core.remove_pipe(id);
    core.monitors.emit(MonitorEvent::Closed { endpoint });
}

/// Moves what `from` sends on one pipe into `to`'s inbound queue, as pipe `to_pipe` with routing
/// id `rid`, until either socket closes. A closing `from` first hands over what it queued, within
/// its linger time.
async fn pump(from: &Core, rx: &mut PipeRx, to: &Core, to_pipe: PipeId, rid: &Bytes) -> DisconnectReason {
    loop {
        tokio::select! {
            m = rx.data.recv() => {
                let Some(msg) = m else { return DisconnectReason::Closed };
                if let Some(inbound) = to.inbound(to_pipe, rid, msg) {
                    tokio::select! {
                        r = to.deliver(inbound) => if r.is_err() { return DisconnectReason::Eof },
                        _ = to.closing.cancelled() => return DisconnectReason::Eof,
                    }
                }
            }
            c = rx.next_control() => {
                let Some(ctl) = c else { return DisconnectReason::Closed };
                let (topic, subscribe) = match ctl {
                    Control::Subscribe(t) => (t, true),
                    Control::Cancel(t) => (t, false),
                };
                if let Ok(Some(inbound)) = to.on_subscription(to_pipe, &topic, subscribe) {
                    let _ = to.try_deliver(inbound);
                }
            }
            _ = from.closing.cancelled() => {
                let drain = async {
                    while let Some(msg) = rx.data.try_recv() {
                        if let Some(inbound) = to.inbound(to_pipe, rid, msg) {
                            if to.deliver(inbound).await.is_err() {
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
            _ = to.closing.cancelled() => return DisconnectReason::Eof,
        }
    }
}
