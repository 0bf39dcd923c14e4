//! Routing strategies: what each socket type does with the shared pipes, on plain state.
//!
//! Nothing here locks, waits or knows tokio: the core calls these functions under its lock, and
//! the tests below drive them with bare pipes. Each socket type's rules live in one file:
//!
//! - [`lb`]: load-balancing over pipes in turn, blocking at the high-water mark (DEALER, PUSH).
//! - [`pair`]: PAIR, load-balancing to its one peer, refusing a second.
//! - [`req`], [`rep`]: the REQ and REP envelope state machines.
//! - [`router`]: routing ids (assigned, preset, handed over), routing by the first frame, and
//!   PROBE_ROUTER (which DEALER uses too).
//! - [`fanout`]: PUB and XPUB, filtering per subscriber and never blocking; XPUB's bookkeeping
//!   of every peer's subscriptions.
//! - [`sub`]: SUB and XSUB, local subscriptions sent to every publisher.
//!
//! PULL has no rule beyond fair queueing, which every receiving type gets from the core's inbound
//! side (`fair`). The strategies only route what is sent, filter or rewrite what is received,
//! choose a peer's routing id when its handshake ends and say what a detached peer leaves behind.

pub(crate) mod fanout;
pub(crate) mod lb;
pub(crate) mod pair;
pub(crate) mod rep;
pub(crate) mod req;
pub(crate) mod router;
pub(crate) mod sub;

use std::collections::BTreeMap;

use bytes::Bytes;

use super::options::Options;
use super::queue;
use super::wire::{PipeQueue, PipeTx, Staged};
use super::Error;
use super::Subscriptions;
use crate::proto::{PeerInfo, SocketType};
use crate::Message;

/// Identifies a pipe for the life of the socket; increasing, so ordering by id is attach order.
pub(crate) type PipeId = u64;

/// Out-of-band instructions for a connection task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    Subscribe(Bytes),
    Cancel(Bytes),
}

/// A message from a peer, tagged with where it came from.
#[derive(Debug, PartialEq)]
pub(crate) struct Inbound {
    /// Its pipe; [`STALE`] once taken from the lane of a pipe removed from the socket, for a type
    /// that drops such messages ([`Traits::drops_stale`]).
    pub pipe: PipeId,
    /// The message, its peer's routing id in front for a type that prefixes it
    /// ([`Traits::prefixes_routing_id`]). (The id is not carried beside it: a field every type
    /// paid for, cloned, moved and dropped with every message, for ROUTER's sake.)
    pub msg: Message,
}

/// Pipe ids start at 1: this one marks an [`Inbound`] whose pipe had been removed.
pub(crate) const STALE: PipeId = 0;

impl super::fair::Keyed for Inbound {
    fn key(&self) -> u64 {
        self.pipe
    }

    #[inline(always)]
    fn mark_stale(&mut self) {
        self.pipe = STALE;
    }
}

/// A type's rule for inbound messages when it needs none of the socket's state: applied
/// without the socket's lock ([`Strategy::stateless_filter`]); whether the application gets the
/// message. It looks at the message rather than taking it: a message passed in and out of the
/// rule was copied twice more (DEALER→ROUTER 16 B, callgrind: about 40 instructions a message).
pub(crate) type StatelessFilter = fn(&Inbound) -> bool;

/// The socket's end of a pipe.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub tx: PipeTx,
    /// Small messages staged on the socket's side while the connection is busy (PUSH and
    /// DEALER with one pipe: `wire::Staged`).
    pub staged: Staged,
    /// Subscriptions to send (SUB and XSUB only; other types have no control queue).
    pub ctl: Option<queue::Sender<Control>>,
    /// The handshake is done and the connection is up.
    pub ready: bool,
    /// The routing id a ROUTER knows this peer by.
    pub routing_id: Bytes,
    /// What the peer subscribed to (PUB and XPUB).
    pub subscriptions: Subscriptions,
    /// ROUTER: the routing id the application chose for this peer (ZMQ_CONNECT_ROUTING_ID).
    pub preset_routing_id: Option<Bytes>,
}

/// The connection's end of a pipe.
#[derive(Debug)]
pub(crate) struct PipeRx {
    pub data: PipeQueue,
    pub ctl: Option<queue::Receiver<Control>>,
}

impl PipeRx {
    /// The next control instruction; never resolves for a pipe without a control queue, and
    /// `None` once the socket's end is gone.
    pub(crate) async fn next_control(&self) -> Option<Control> {
        match &self.ctl {
            Some(ctl) => ctl.recv().await,
            None => std::future::pending().await,
        }
    }
}

/// Both ends of a new pipe toward one peer: `sndhwm` messages of data and, if `subscribes`, an
/// (unbounded: the application's own subscriptions) control queue.
pub(crate) fn pipe(sndhwm: usize, subscribes: bool) -> (Pipe, PipeRx) {
    let (tx, data) = super::wire::channel(sndhwm);
    let (ctl_tx, ctl) = if subscribes {
        let (tx, rx) = queue::channel(usize::MAX);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let pipe = Pipe {
        tx,
        staged: Staged::new(sndhwm.max(1)),
        ctl: ctl_tx,
        ready: false,
        routing_id: Bytes::new(),
        subscriptions: Subscriptions::new(),
        preset_routing_id: None,
    };
    (pipe, PipeRx { data, ctl })
}

/// The pipes of a socket, by id.
pub(crate) type Pipes = BTreeMap<PipeId, Pipe>;

/// What a socket type is, fixed at creation: read without the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Traits {
    /// It receives messages (PUB and PUSH do not).
    pub receives: bool,
    /// What it receives goes through [`State::on_inbound`] (else it is handed over as it comes).
    pub filters_inbound: bool,
    /// `recv` is valid only in some states ([`State::recv_allowed`]).
    pub checks_recv: bool,
    /// Its pipes have a control queue (subscriptions toward publishers).
    pub subscribes: bool,
    /// A new send first discards what is still queued inbound (REQ: replies to older requests).
    pub drains_on_send: bool,
    /// What a pipe delivered is dropped once the pipe is removed (ROUTER: a reply to it could
    /// go to the peer that took its routing id over). The inbound queue marks such messages
    /// ([`STALE`]) as they are taken, so that the filter needs no lock to tell.
    pub drops_stale: bool,
    /// What it receives starts with its peer's routing id (ROUTER), put there as the
    /// connection hands the message over.
    pub prefixes_routing_id: bool,
}

impl Traits {
    /// A type that takes messages as they come and sends without state.
    pub(crate) const PLAIN: Traits = Traits {
        receives: true,
        filters_inbound: false,
        checks_recv: false,
        subscribes: false,
        drains_on_send: false,
        drops_stale: false,
        prefixes_routing_id: false,
    };
}

/// Why a peer whose handshake succeeded is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// ROUTER: another peer holds its routing id and ROUTER_HANDOVER is off.
    RoutingIdInUse,
    /// PAIR: the socket has a peer already.
    PairHasPeer,
    /// The pipe was removed meanwhile.
    Gone,
}

/// A peer accepted at the end of its handshake.
#[derive(Debug, PartialEq)]
pub(crate) struct Ready {
    /// The routing id the socket knows it by.
    pub routing_id: Bytes,
    /// A message for the peer before any other (PROBE_ROUTER's empty message, XPUB's welcome).
    pub greeting: Option<Message>,
    /// The pipe it took the place of (ROUTER_HANDOVER), removed from the socket while its
    /// connection may still deliver.
    pub replaced: Option<PipeId>,
}

/// What the socket waits for when a message cannot be queued yet.
#[derive(Debug)]
pub(crate) enum Wait {
    /// A peer to come (attach or finish its handshake).
    Peer,
    /// Room in this pipe (or a change of peers, then routing again).
    Room(PipeId),
}

/// Why a message was not queued; the message comes back either way.
#[derive(Debug)]
pub(crate) enum Unsent {
    /// Not now: try again after `Wait`.
    Blocked(Message, Wait),
    /// Not at all.
    Failed(Error, Message),
}

/// What the socket does with one inbound message.
#[derive(Debug, PartialEq)]
pub(crate) enum Delivery {
    /// Hand it to the application.
    Deliver(Message),
    /// Drop it silently.
    Drop,
}

/// One routing strategy. Every method has the behaviour of a type without that rule by default.
trait Strategy {
    /// What the type is (fixed at creation).
    fn traits(&self) -> Traits;

    /// Checks and frames a message the application sends, once per send (REQ's envelope).
    fn begin(&mut self, msg: Message, _o: &Options) -> Result<Message, Unsent> {
        Ok(msg)
    }

    /// Takes off what [`Strategy::begin`] put on a message that is given back unsent.
    fn unframe(&self, msg: Message, _o: &Options) -> Message {
        msg
    }

    /// Queues a message toward one or more pipes.
    fn route(&mut self, pipes: &mut Pipes, msg: Message, o: &Options) -> Result<(), Unsent>;

    /// `msg` goes into pipe `id`, whose room the socket waited for after [`Unsent::Blocked`]:
    /// returns what goes into the pipe.
    fn commit(&mut self, _id: PipeId, msg: Message) -> Message {
        msg
    }

    /// Whether `recv` is valid now.
    fn recv_allowed(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Filters or rewrites an inbound message.
    fn on_inbound(&mut self, _pipes: &Pipes, inbound: Inbound, _o: &Options) -> Delivery {
        Delivery::Deliver(inbound.msg)
    }

    /// [`Strategy::on_inbound`] as a function of the message alone, if the type's rule needs no
    /// state: the socket then applies it without its lock.
    fn stateless_filter(&self) -> Option<StatelessFilter> {
        None
    }

    /// The routing id of pipe `id`, whose handshake just ended, and the pipe it replaces if any
    /// (removed here); or why it is refused.
    fn admit(
        &mut self,
        pipes: &mut Pipes,
        id: PipeId,
        peer: &PeerInfo,
        _o: &Options,
    ) -> Result<(Bytes, Option<PipeId>), Refused> {
        let _ = (pipes, id);
        // A copy: the peer's value points into the connection's first read buffer, which would
        // otherwise stay allocated for the life of the connection.
        Ok((Bytes::copy_from_slice(&peer.routing_id), None))
    }

    /// Pipe `pipe` is ready: what it must be told first.
    fn on_ready(&mut self, _pipe: &Pipe, _o: &Options) -> Option<Message> {
        None
    }

    /// The peer of pipe `id` is gone (its routing id and subscriptions are passed in). Returns what
    /// the application must be told.
    fn on_detach(&mut self, _id: PipeId, _routing_id: &Bytes, _subs: &Subscriptions, _o: &Options) -> Vec<Inbound> {
        Vec::new()
    }

    /// The peer of pipe `id` subscribed or cancelled (we are PUB or XPUB).
    fn on_subscription(
        &mut self,
        _pipes: &mut Pipes,
        _id: PipeId,
        _topic: &[u8],
        _subscribe: bool,
        _o: &Options,
    ) -> Result<Option<Inbound>, SubscriptionLimit> {
        Ok(None)
    }

    /// The application subscribes or unsubscribes.
    fn subscribe(&mut self, _pipes: &mut Pipes, _topic: &[u8], _subscribe: bool, _o: &Options) -> Result<(), ()> {
        Err(())
    }
}

/// A peer reached `max_topics_per_peer` or `max_topic_bytes_per_peer`: its topics and their octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubscriptionLimit {
    pub topics: usize,
    pub bytes: usize,
}

/// PULL: fair-queued receiving is all it does.
#[derive(Debug, Default)]
pub(crate) struct Pull;

impl Strategy for Pull {
    fn traits(&self) -> Traits {
        Traits::PLAIN
    }

    fn route(&mut self, _pipes: &mut Pipes, msg: Message, _o: &Options) -> Result<(), Unsent> {
        Err(Unsent::Failed(Error::NotSupported(SocketType::Pull), msg))
    }
}

/// One socket type's strategy and its state.
#[derive(Debug)]
pub(crate) enum Pattern {
    Pair(pair::Pair),
    Pub(fanout::Fanout),
    Sub(sub::Sub),
    Req(req::Req),
    Rep(rep::Rep),
    Dealer(lb::Lb),
    Router(router::Router),
    Pull(Pull),
    Push(lb::Lb),
    XPub(fanout::Fanout),
    XSub(sub::Sub),
}

/// Calls the same method on whichever strategy `$pattern` holds.
macro_rules! dispatch {
    ($pattern:expr, $s:ident => $call:expr) => {
        match $pattern {
            Pattern::Pair($s) => $call,
            Pattern::Pub($s) | Pattern::XPub($s) => $call,
            Pattern::Sub($s) | Pattern::XSub($s) => $call,
            Pattern::Req($s) => $call,
            Pattern::Rep($s) => $call,
            Pattern::Dealer($s) | Pattern::Push($s) => $call,
            Pattern::Router($s) => $call,
            Pattern::Pull($s) => $call,
        }
    };
}

impl Pattern {
    /// The strategy of `socket_type`.
    pub(crate) fn new(socket_type: SocketType, o: &Options) -> Pattern {
        match socket_type {
            SocketType::Pair => Pattern::Pair(pair::Pair::default()),
            SocketType::Pub => Pattern::Pub(fanout::Fanout::new(false)),
            SocketType::Sub => Pattern::Sub(sub::Sub::new(true)),
            SocketType::Req => Pattern::Req(req::Req::default()),
            SocketType::Rep => Pattern::Rep(rep::Rep::default()),
            SocketType::Dealer => Pattern::Dealer(lb::Lb::new(SocketType::Dealer, router::probes(o))),
            SocketType::Router => Pattern::Router(router::Router::new()),
            SocketType::Pull => Pattern::Pull(Pull),
            SocketType::Push => Pattern::Push(lb::Lb::new(SocketType::Push, false)),
            SocketType::XPub => Pattern::XPub(fanout::Fanout::new(true)),
            SocketType::XSub => Pattern::XSub(sub::Sub::new(false)),
        }
    }

    pub(crate) fn traits(&self) -> Traits {
        dispatch!(self, s => s.traits())
    }

    pub(crate) fn stateless_filter(&self) -> Option<StatelessFilter> {
        dispatch!(self, s => s.stateless_filter())
    }
}

/// Everything behind the socket lock: the pipes and the strategy's state.
#[derive(Debug)]
pub(crate) struct State {
    pub pipes: Pipes,
    pub pattern: Pattern,
}

impl State {
    pub(crate) fn new(socket_type: SocketType, o: &Options) -> State {
        State { pipes: Pipes::new(), pattern: Pattern::new(socket_type, o) }
    }

    /// A message from the application: framed ([`Strategy::begin`]) and routed.
    #[inline]
    pub(crate) fn send(&mut self, msg: Message, o: &Options) -> Result<(), Unsent> {
        let pipes = &mut self.pipes;
        dispatch!(&mut self.pattern, s => {
            let msg = s.begin(msg, o)?;
            s.route(pipes, msg, o)
        })
    }

    /// Frames a message without routing it (see [`State::route`]).
    pub(crate) fn begin(&mut self, msg: Message, o: &Options) -> Result<Message, Unsent> {
        dispatch!(&mut self.pattern, s => s.begin(msg, o))
    }

    /// See [`Strategy::unframe`].
    pub(crate) fn unframe(&self, msg: Message, o: &Options) -> Message {
        dispatch!(&self.pattern, s => s.unframe(msg, o))
    }

    /// Routes a framed message again.
    pub(crate) fn route(&mut self, msg: Message, o: &Options) -> Result<(), Unsent> {
        let pipes = &mut self.pipes;
        dispatch!(&mut self.pattern, s => s.route(pipes, msg, o))
    }

    /// See [`Strategy::commit`].
    pub(crate) fn commit(&mut self, id: PipeId, msg: Message) -> Message {
        dispatch!(&mut self.pattern, s => s.commit(id, msg))
    }

    pub(crate) fn recv_allowed(&self) -> Result<(), Error> {
        dispatch!(&self.pattern, s => s.recv_allowed())
    }

    pub(crate) fn on_inbound(&mut self, inbound: Inbound, o: &Options) -> Delivery {
        let pipes = &self.pipes;
        dispatch!(&mut self.pattern, s => s.on_inbound(pipes, inbound, o))
    }

    /// The handshake on pipe `id` finished: its routing id, and what to send it first.
    pub(crate) fn ready(&mut self, id: PipeId, peer: &PeerInfo, o: &Options) -> Result<Ready, Refused> {
        if !self.pipes.contains_key(&id) {
            return Err(Refused::Gone);
        }
        let pipes = &mut self.pipes;
        dispatch!(&mut self.pattern, s => {
            let (routing_id, replaced) = s.admit(pipes, id, peer, o)?;
            let pipe = pipes.get_mut(&id).ok_or(Refused::Gone)?;
            pipe.ready = true;
            pipe.routing_id = routing_id.clone();
            let greeting = s.on_ready(pipe, o);
            Ok(Ready { routing_id, greeting, replaced })
        })
    }

    /// The connection behind pipe `id` ended. A pipe of a connecting endpoint stays (its queue
    /// survives until the reconnect) unless `remove`; an accepted one is removed. Returns what the
    /// application must be told (XPUB: the subscriptions that no peer holds any more).
    pub(crate) fn detach(&mut self, id: PipeId, remove: bool, o: &Options) -> Vec<Inbound> {
        let (routing_id, subs) = if remove {
            match self.pipes.remove(&id) {
                Some(p) => (p.routing_id, p.subscriptions),
                None => return Vec::new(),
            }
        } else {
            match self.pipes.get_mut(&id) {
                Some(p) => {
                    p.ready = false;
                    (std::mem::take(&mut p.routing_id), std::mem::take(&mut p.subscriptions))
                }
                None => return Vec::new(),
            }
        };
        dispatch!(&mut self.pattern, s => s.on_detach(id, &routing_id, &subs, o))
    }

    pub(crate) fn on_subscription(
        &mut self,
        id: PipeId,
        topic: &[u8],
        subscribe: bool,
        o: &Options,
    ) -> Result<Option<Inbound>, SubscriptionLimit> {
        let pipes = &mut self.pipes;
        dispatch!(&mut self.pattern, s => s.on_subscription(pipes, id, topic, subscribe, o))
    }

    /// The application subscribes or unsubscribes; `Err` if the type does not.
    pub(crate) fn subscribe(&mut self, topic: &[u8], subscribe: bool, o: &Options) -> Result<(), ()> {
        let pipes = &mut self.pipes;
        dispatch!(&mut self.pattern, s => s.subscribe(pipes, topic, subscribe, o))
    }
}

/// Tells every ready pipe's peer (a publisher) about a subscription change.
fn tell_publishers(pipes: &Pipes, topic: &Bytes, subscribe: bool) {
    for pipe in pipes.values().filter(|p| p.ready) {
        if let Some(ctl) = &pipe.ctl {
            let c = if subscribe { Control::Subscribe(topic.clone()) } else { Control::Cancel(topic.clone()) };
            let _ = ctl.try_send(c);
        }
    }
}

/// Helpers for the strategies' tests: pipes and peers without sockets.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A state for `socket_type` with `n` attached pipes (ids 1..=n), not ready.
    pub(crate) fn state(socket_type: SocketType, o: &Options, n: u64) -> (State, Vec<PipeRx>) {
        let mut st = State::new(socket_type, o);
        let mut rxs = Vec::new();
        for id in 1..=n {
            let (pipe, rx) = pipe(crate::socket::options::capacity(o.sndhwm), st.pattern.traits().subscribes);
            st.pipes.insert(id, pipe);
            rxs.push(rx);
        }
        (st, rxs)
    }

    pub(crate) fn peer(socket_type: SocketType, routing_id: &[u8]) -> PeerInfo {
        PeerInfo {
            socket_type,
            routing_id: Bytes::copy_from_slice(routing_id),
            properties: crate::Properties::default(),
            version: (3, 1),
        }
    }

    pub(crate) fn msg(frames: &[&[u8]]) -> Message {
        frames.iter().map(|f| Bytes::copy_from_slice(f)).collect::<Vec<_>>().into()
    }

    pub(crate) fn inbound(pipe: PipeId, frames: &[&[u8]]) -> Inbound {
        Inbound { pipe, msg: msg(frames) }
    }
}
