//! The state every socket type shares: its pipes (one per peer, a bounded queue toward the peer's
//! connection task), the inbound queue (fair-queued from all peers), and the pattern state.
//!
//! Locking: one `std::sync::Mutex<State>`, never held across an `.await`. Connection tasks take it
//! to attach, mark ready, record subscriptions and detach; socket calls take it to route.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::monitor::Monitors;
use super::options::{capacity, Options};
use super::pattern::PatternState;
use super::Subscriptions;
use crate::proto::{PeerInfo, SocketType};
use crate::Message;

/// Identifies a pipe for the life of the socket; increasing, so ordering by id is attach order.
pub(crate) type PipeId = u64;

/// Out-of-band instructions for a connection task.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    Subscribe(Bytes),
    Cancel(Bytes),
}

/// A message from a peer, tagged with where it came from.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub pipe: PipeId,
    pub routing_id: Bytes,
    pub msg: Message,
}

/// The socket's end of a pipe.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub tx: mpsc::Sender<Message>,
    pub ctl: mpsc::UnboundedSender<Control>,
    /// The handshake is done and the connection is up.
    pub ready: bool,
    /// The routing id a ROUTER knows this peer by.
    pub routing_id: Bytes,
    /// What the peer subscribed to (PUB and XPUB).
    pub subscriptions: Subscriptions,
}

/// The connection task's end of a pipe.
#[derive(Debug)]
pub(crate) struct PipeRx {
    pub data: mpsc::Receiver<Message>,
    pub ctl: mpsc::UnboundedReceiver<Control>,
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub pipes: BTreeMap<PipeId, Pipe>,
    /// ROUTER: routing id → pipe.
    pub routes: HashMap<Bytes, PipeId>,
    /// Round-robin cursor: the next pipe tried is the first with an id ≥ this.
    pub next_rr: PipeId,
    pub pattern: PatternState,
}

/// The shared core of one socket.
#[derive(Debug)]
pub(crate) struct Core {
    pub socket_type: SocketType,
    pub options: Options,
    state: Mutex<State>,
    /// Signalled when pipes are attached or become ready (senders waiting for a peer).
    pub pipes_changed: Notify,
    pub inbound_tx: mpsc::Sender<Inbound>,
    pub closing: CancellationToken,
    pub monitors: Monitors,
    pub tasks: TaskTracker,
    next_pipe: AtomicU64,
    next_routing_id: AtomicU32,
}

impl Core {
    pub(crate) fn new(socket_type: SocketType, options: Options) -> (Core, mpsc::Receiver<Inbound>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(capacity(options.rcvhwm));
        let core = Core {
            socket_type,
            state: Mutex::new(State {
                pipes: BTreeMap::new(),
                routes: HashMap::new(),
                next_rr: 0,
                pattern: PatternState::new(socket_type),
            }),
            options,
            pipes_changed: Notify::new(),
            inbound_tx,
            closing: CancellationToken::new(),
            monitors: Monitors::default(),
            tasks: TaskTracker::new(),
            next_pipe: AtomicU64::new(1),
            // libzmq starts generated routing ids at a random value; any start works.
            next_routing_id: AtomicU32::new(std::process::id().wrapping_mul(2_654_435_761)),
        };
        (core, inbound_rx)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the socket; recover the guard rather than propagate the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates both ends of a new pipe; the socket's end is not attached yet.
    pub(crate) fn new_pipe(&self) -> (PipeId, Pipe, PipeRx) {
        let id = self.next_pipe.fetch_add(1, Ordering::Relaxed);
        let (tx, data) = mpsc::channel(capacity(self.options.sndhwm));
        let (ctl_tx, ctl) = mpsc::unbounded_channel();
        let pipe =
            Pipe { tx, ctl: ctl_tx, ready: false, routing_id: Bytes::new(), subscriptions: Subscriptions::new() };
        (id, pipe, PipeRx { data, ctl })
    }

    /// Attaches the socket's end of a pipe, so that patterns may route to it.
    pub(crate) fn attach(&self, id: PipeId, pipe: Pipe) {
        self.lock().pipes.insert(id, pipe);
        self.pipes_changed.notify_waiters();
    }

    /// The handshake on pipe `id` finished. Assigns its routing id and replays what the peer must
    /// know (SUB subscriptions). Returns the routing id, or `None` if the peer must be refused
    /// (ROUTER: its routing id is taken and handover is off).
    pub(crate) fn on_ready(&self, id: PipeId, peer: &PeerInfo) -> Option<Bytes> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let routing_id = if self.socket_type == SocketType::Router {
            let wanted = peer.routing_id.clone();
            if wanted.is_empty() {
                self.generate_routing_id(&st.routes)
            } else if let Some(&holder) = st.routes.get(&wanted).filter(|&&h| h != id) {
                if !self.options.router_handover {
                    return None;
                }
                // Handover: the old pipe loses the id and no longer receives what is sent to it.
                if let Some(old) = st.pipes.get_mut(&holder) {
                    old.routing_id = Bytes::new();
                }
                wanted
            } else {
                wanted
            }
        } else {
            peer.routing_id.clone()
        };
        let pipe = st.pipes.get_mut(&id)?;
        pipe.ready = true;
        pipe.routing_id = routing_id.clone();
        if self.socket_type == SocketType::Router {
            st.routes.insert(routing_id.clone(), id);
        }
        st.pattern.on_ready(pipe);
        drop(guard);
        self.pipes_changed.notify_waiters();
        Some(routing_id)
    }

    fn generate_routing_id(&self, routes: &HashMap<Bytes, PipeId>) -> Bytes {
        loop {
            let n = self.next_routing_id.fetch_add(1, Ordering::Relaxed);
            let mut id = vec![0u8; 5];
            id[1..].copy_from_slice(&n.to_be_bytes());
            let id = Bytes::from(id);
            if !routes.contains_key(&id) {
                return id;
            }
        }
    }

    /// The connection behind pipe `id` ended. A pipe of a connecting endpoint stays attached (its
    /// queue survives until the reconnect); an accepted one is removed.
    pub(crate) fn on_disconnect(&self, id: PipeId, remove: bool) {
        let mut st = self.lock();
        let pipe = if remove { st.pipes.remove(&id) } else { None };
        let routing_id = match (pipe, st.pipes.get_mut(&id)) {
            (Some(p), _) => Some(p.routing_id),
            (None, Some(p)) => {
                p.ready = false;
                p.subscriptions.clear();
                Some(std::mem::take(&mut p.routing_id))
            }
            (None, None) => None,
        };
        if let Some(rid) = routing_id {
            if st.routes.get(&rid) == Some(&id) {
                st.routes.remove(&rid);
            }
        }
    }

    /// Removes a pipe for good.
    pub(crate) fn remove_pipe(&self, id: PipeId) {
        self.on_disconnect(id, true);
    }

    pub(crate) fn on_subscription(&self, id: PipeId, topic: &[u8], subscribe: bool) {
        let mut st = self.lock();
        if let Some(pipe) = st.pipes.get_mut(&id) {
            if subscribe {
                pipe.subscriptions.add(topic);
            } else {
                pipe.subscriptions.remove(topic);
            }
        }
    }
}
