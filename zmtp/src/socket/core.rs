//! The state every socket type shares: its pipes (one per peer, a bounded queue toward the peer's
//! connection task), the inbound queue (a lane per peer, fair-queued: `fair`), and the pattern state.
//!
//! Locking: one `std::sync::Mutex<State>`, never held across an `.await`. Connection tasks take it
//! to attach, mark ready, record subscriptions and detach; socket calls take it to route.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use super::fair;
use super::queue::{self, TrySendError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::Driven;
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
#[derive(Debug, PartialEq)]
pub(crate) struct Inbound {
    pub pipe: PipeId,
    pub routing_id: Bytes,
    pub msg: Message,
}

impl fair::Keyed for Inbound {
    fn key(&self) -> u64 {
        self.pipe
    }
}

/// The socket's end of a pipe.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub tx: queue::Sender<Message>,
    /// Subscriptions to send (SUB and XSUB only; other types have no control queue).
    pub ctl: Option<mpsc::UnboundedSender<Control>>,
    /// The handshake is done and the connection is up.
    pub ready: bool,
    /// The routing id a ROUTER knows this peer by.
    pub routing_id: Bytes,
    /// What the peer subscribed to (PUB and XPUB).
    pub subscriptions: Subscriptions,
    /// ROUTER: the routing id the application chose for this peer (ZMQ_CONNECT_ROUTING_ID).
    pub preset_routing_id: Option<Bytes>,
}

/// The connection task's end of a pipe.
#[derive(Debug)]
pub(crate) struct PipeRx {
    pub data: queue::Receiver<Message>,
    pub ctl: Option<mpsc::UnboundedReceiver<Control>>,
}

/// The next control instruction of a pipe; never resolves for a pipe without a control queue, and
/// `None` once the socket's end is gone.
pub(crate) async fn next_control(ctl: &mut Option<mpsc::UnboundedReceiver<Control>>) -> Option<Control> {
    match ctl {
        Some(ctl) => ctl.recv().await,
        None => std::future::pending().await,
    }
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
    pub inbound_tx: fair::Sender<Inbound>,
    pub closing: CancellationToken,
    pub monitors: Monitors,
    pub tasks: TaskTracker,
    /// The connection tasks' futures (see `driver`); weak, so that a dropped runtime frees them.
    connections: Mutex<Vec<std::sync::Weak<Driven>>>,
    closed_at: std::sync::OnceLock<tokio::time::Instant>,
    /// Accepted connections still in their handshake (`max_pending_handshakes`).
    pub handshakes: std::sync::Arc<super::handshakes::Pending>,
    conflated: Mutex<Option<Inbound>>,
    pub conflated_ready: Notify,
    next_pipe: AtomicU64,
    next_routing_id: AtomicU32,
}

impl Core {
    pub(crate) fn new(socket_type: SocketType, options: Options) -> (Core, fair::Receiver<Inbound>) {
        // RCVHWM per peer, as libzmq counts it.
        let (inbound_tx, inbound_rx) = fair::channel(capacity(options.rcvhwm));
        let handshakes = std::sync::Arc::new(super::handshakes::Pending::new(
            options.max_pending_handshakes,
            options.handshake_timeout,
        ));
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
            connections: Mutex::new(Vec::new()),
            closed_at: std::sync::OnceLock::new(),
            handshakes,
            conflated: Mutex::new(None),
            conflated_ready: Notify::new(),
            next_pipe: AtomicU64::new(1),
            // libzmq starts generated routing ids at a random value; any start works.
            next_routing_id: AtomicU32::new(std::process::id().wrapping_mul(2_654_435_761)),
        };
        (core, inbound_rx)
    }

    /// Spawns a connection's task (one connection, or a connecting endpoint's reconnect loop) so
    /// that the application may drive it too.
    pub(crate) fn spawn_connection(
        self: &std::sync::Arc<Self>,
        future: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let driven = Driven::new(future);
        let weak = std::sync::Arc::downgrade(&driven);
        {
            let mut list = self.connections.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.push(weak.clone());
        }
        let core = std::sync::Arc::downgrade(self);
        self.tasks.spawn(async move {
            driven.run().await;
            if let Some(core) = core.upgrade() {
                core.connections.lock().unwrap_or_else(|e| e.into_inner()).retain(|w| !w.ptr_eq(&weak));
            }
        });
    }

    /// The connection task, if the socket has exactly one.
    pub(crate) fn single_connection(&self) -> Option<std::sync::Arc<Driven>> {
        let list = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        match list.as_slice() {
            [one] => one.upgrade(),
            _ => None,
        }
    }

    /// Starts closing: tasks stop, after sending what is queued for up to the linger time.
    pub(crate) fn close(&self) {
        self.closed_at.get_or_init(tokio::time::Instant::now);
        self.closing.cancel();
        self.tasks.close();
    }

    /// Resolves when a task holding `pending` queued messages must stop: at once after close if
    /// nothing is queued, else when the linger time since the close has passed.
    pub(crate) async fn stopped(&self, pending: bool) {
        self.closing.cancelled().await;
        if pending {
            match (self.options.linger, self.closed_at.get()) {
                (Some(linger), Some(&at)) => tokio::time::sleep_until(at + linger).await,
                (Some(_), None) => {}
                (None, _) => std::future::pending().await,
            }
        }
    }

    /// When a closed socket's tasks give up sending: the close plus the linger time (`None`: the
    /// socket is open, or lingers forever).
    pub(crate) fn linger_deadline(&self) -> Option<tokio::time::Instant> {
        Some(*self.closed_at.get()? + self.options.linger?)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the socket; recover the guard rather than propagate the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates both ends of a new pipe; the socket's end is not attached yet.
    pub(crate) fn new_pipe(&self) -> (PipeId, Pipe, PipeRx) {
        let id = self.next_pipe.fetch_add(1, Ordering::Relaxed);
        let (tx, data) = queue::channel(capacity(self.options.sndhwm));
        let (ctl_tx, ctl) = if matches!(self.socket_type, SocketType::Sub | SocketType::XSub) {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let pipe = Pipe {
            tx,
            ctl: ctl_tx,
            ready: false,
            routing_id: Bytes::new(),
            subscriptions: Subscriptions::new(),
            preset_routing_id: None,
        };
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
            let preset = st.pipes.get(&id).and_then(|p| p.preset_routing_id.clone());
            // A copy: the peer's value points into the connection's first read buffer, which would
            // otherwise stay allocated for the life of the connection.
            let wanted = preset.unwrap_or_else(|| Bytes::copy_from_slice(&peer.routing_id));
            if wanted.is_empty() {
                self.generate_routing_id(&st.routes)
            } else if let Some(&holder) = st.routes.get(&wanted).filter(|&&h| h != id) {
                if !self.options.router_handover {
                    return None;
                }
                // Handover: the old connection is ended, as libzmq does. Dropping its pipe closes
                // the queues its task reads, so the task stops; what it already handed over is
                // filtered out on receipt (its routing id no longer maps to its pipe).
                st.pipes.remove(&holder);
                wanted
            } else {
                wanted
            }
        } else {
            Bytes::copy_from_slice(&peer.routing_id)
        };
        if self.socket_type == SocketType::Pair && st.pipes.iter().any(|(&other, p)| other != id && p.ready) {
            return None;
        }
        let pipe = st.pipes.get_mut(&id)?;
        pipe.ready = true;
        pipe.routing_id = routing_id.clone();
        if self.socket_type == SocketType::Router {
            st.routes.insert(routing_id.clone(), id);
        }
        st.pattern.on_ready(pipe);
        if let Some(welcome) = &self.options.xpub_welcome_msg {
            if self.socket_type == SocketType::XPub {
                let _ = pipe.tx.try_send(Message::from(welcome.clone()));
            }
        }
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
    /// queue survives until the reconnect); an accepted one is removed. Returns what an XPUB must
    /// tell its application (the subscriptions that no peer holds any more).
    pub(crate) fn on_disconnect(&self, id: PipeId, remove: bool) -> Vec<Inbound> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let pipe = if remove { st.pipes.remove(&id) } else { None };
        let (routing_id, subs) = match (pipe, st.pipes.get_mut(&id)) {
            (Some(p), _) => (p.routing_id, p.subscriptions),
            (None, Some(p)) => {
                p.ready = false;
                (std::mem::take(&mut p.routing_id), std::mem::take(&mut p.subscriptions))
            }
            (None, None) => return Vec::new(),
        };
        if st.routes.get(&routing_id) == Some(&id) {
            st.routes.remove(&routing_id);
        }
        let mut out = Vec::new();
        if let PatternState::XPub { all, .. } = &mut st.pattern {
            for topic in subs.topics() {
                if all.remove(topic) && !self.options.xpub_manual {
                    out.push(subscription_message(id, topic, false));
                }
            }
        }
        out
    }

    /// Removes a pipe for good, without telling the application anything.
    pub(crate) fn remove_pipe(&self, id: PipeId) {
        self.on_disconnect(id, true);
        self.inbound_tx.close_lane(id);
    }

    /// The connection behind pipe `id` ended ([`Core::on_disconnect`]): hands an XPUB's application
    /// the subscriptions no peer holds any more, and, if the pipe is removed, lets its inbound lane
    /// go once what it delivered has been received.
    pub(crate) fn detach(&self, id: PipeId, remove: bool) {
        for inbound in self.on_disconnect(id, remove) {
            let _ = self.try_deliver(inbound);
        }
        if remove {
            self.inbound_tx.close_lane(id);
        }
    }

    /// A peer subscribed or cancelled (we are PUB or XPUB). Returns the message an XPUB hands to
    /// its application, if any; `Err` with the peer's topics and their octets if the subscription
    /// was ignored because the peer reached its limit (`max_topics_per_peer`,
    /// `max_topic_bytes_per_peer`).
    pub(crate) fn on_subscription(
        &self,
        id: PipeId,
        topic: &[u8],
        subscribe: bool,
    ) -> Result<Option<Inbound>, (usize, usize)> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let o = &self.options;
        if let PatternState::XPub { last_pipe, .. } = &mut st.pattern {
            if o.xpub_manual {
                *last_pipe = Some(id);
                return Ok(Some(subscription_message(id, topic, subscribe)));
            }
        }
        let Some(pipe) = st.pipes.get_mut(&id) else { return Ok(None) };
        let subs = &pipe.subscriptions;
        if subscribe
            && (subs.len() >= o.max_topics_per_peer || subs.bytes() + topic.len() > o.max_topic_bytes_per_peer)
            && !subs.contains(topic)
        {
            // Bounded memory: a peer cannot make us keep an unlimited number of topics.
            return Err((subs.len(), subs.bytes()));
        }
        let changed = if subscribe { pipe.subscriptions.add(topic) } else { pipe.subscriptions.remove(topic) };
        let PatternState::XPub { all, .. } = &mut st.pattern else { return Ok(None) };
        let unique = match (changed, subscribe) {
            (true, true) => all.add(topic),
            (true, false) => all.remove(topic),
            (false, _) => false,
        };
        let tell = if subscribe { unique || o.xpub_verbose } else { unique || o.xpub_verboser };
        Ok(tell.then(|| subscription_message(id, topic, subscribe)))
    }

    /// What a connection hands over for a message from its peer: `None` if the socket type does
    /// not receive messages (PUB).
    pub(crate) fn inbound(&self, pipe: PipeId, routing_id: &Bytes, msg: Message) -> Option<Inbound> {
        (self.socket_type != SocketType::Pub).then(|| Inbound { pipe, routing_id: routing_id.clone(), msg })
    }

    /// Queues an inbound message without waiting. `Err(Some(i))`: the queue is full, try again
    /// later with `i`; `Err(None)`: the socket is gone.
    pub(crate) fn try_deliver(&self, inbound: Inbound) -> Result<(), Option<Inbound>> {
        if self.options.conflate {
            *self.conflated.lock().unwrap_or_else(|e| e.into_inner()) = Some(inbound);
            self.conflated_ready.notify_one();
            return Ok(());
        }
        match self.inbound_tx.try_send(inbound) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(i)) => Err(Some(i)),
            Err(TrySendError::Closed(_)) => Err(None),
        }
    }

    /// Queues an inbound message, waiting for room. `Err` when the socket is gone.
    pub(crate) async fn deliver(&self, inbound: Inbound) -> Result<(), ()> {
        match self.try_deliver(inbound) {
            Ok(()) => Ok(()),
            Err(None) => Err(()),
            Err(Some(i)) => self.inbound_tx.send(i).await.map_err(|_| ()),
        }
    }

    /// Takes the conflated message, if any.
    pub(crate) fn take_conflated(&self) -> Option<Inbound> {
        self.conflated.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// An XPUB's view of a subscription: one frame, `0x01` or `0x00` then the topic.
fn subscription_message(pipe: PipeId, topic: &[u8], subscribe: bool) -> Inbound {
    let mut frame = Vec::with_capacity(1 + topic.len());
    frame.push(u8::from(subscribe));
    frame.extend_from_slice(topic);
    Inbound { pipe, routing_id: Bytes::new(), msg: Message::from(frame) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_cannot_subscribe_without_bound() {
        let options = Options::default();
        let max = options.max_topics_per_peer;
        assert_eq!(max, 100_000);
        let (core, _inbound) = Core::new(SocketType::Pub, options);
        let (id, pipe, _rx) = core.new_pipe();
        core.attach(id, pipe);
        for i in 0..max {
            assert_eq!(core.on_subscription(id, format!("t{i}").as_bytes(), true), Ok(None));
        }
        let bytes = core.lock().pipes[&id].subscriptions.bytes();
        assert_eq!(core.on_subscription(id, b"one-too-many", true), Err((max, bytes)));
        assert_eq!(core.on_subscription(id, b"t0", true), Ok(None));
        let st = core.lock();
        let subs = &st.pipes[&id].subscriptions;
        assert_eq!(subs.len(), max);
        assert!(!subs.contains(b"one-too-many"));
        assert!(subs.matches(b"t0-still-matches"));
    }

    #[test]
    fn topic_octets_are_bounded_per_peer() {
        let options = Options::default().max_subscriptions_per_peer(1000, 100);
        let (core, _inbound) = Core::new(SocketType::XPub, options);
        let (id, pipe, _rx) = core.new_pipe();
        core.attach(id, pipe);
        assert!(core.on_subscription(id, &[b'a'; 60], true).is_ok());
        assert_eq!(core.on_subscription(id, &[b'b'; 41], true).map(|_| ()), Err((1, 60)));
        assert!(core.on_subscription(id, &[b'b'; 40], true).is_ok());
        // A cancellation makes room again.
        assert!(core.on_subscription(id, &[b'a'; 60], false).is_ok());
        assert!(core.on_subscription(id, &[b'c'; 60], true).is_ok());
        assert_eq!(core.lock().pipes[&id].subscriptions.bytes(), 100);
    }
}
