//! ROUTER (RFC 28): every message received is prefixed with the routing id of its peer; every
//! message sent starts with the routing id of the peer to send it to. Unroutable messages are
//! dropped, or refused with ZMQ_ROUTER_MANDATORY.
//!
//! Routing ids: the one the peer announces, else the one the application preset for a connecting
//! endpoint (ZMQ_CONNECT_ROUTING_ID), else one generated here (five octets, a zero then a counter,
//! as libzmq). A peer announcing an id another peer holds is refused, or with ROUTER_HANDOVER
//! takes it over (the old connection ends). PROBE_ROUTER (ROUTER and DEALER) sends each new peer
//! an empty message first.

use std::collections::HashMap;

use bytes::Bytes;

use super::{Delivery, Inbound, Pipe, PipeId, Pipes, Refused, StatelessFilter, Strategy, Traits, Unsent, Wait, STALE};
use crate::proto::PeerInfo;
use crate::socket::options::Options;
use crate::socket::queue::TrySendError;
use crate::socket::Error;
use crate::Message;

/// Whether a ROUTER or DEALER with these options probes its new peers.
pub(crate) fn probes(o: &Options) -> bool {
    o.probe_router
}

/// PROBE_ROUTER's message: one empty frame.
pub(crate) fn probe() -> Message {
    Message::from(Bytes::new())
}

#[derive(Debug)]
pub(crate) struct Router {
    /// Routing id → pipe.
    routes: HashMap<Bytes, PipeId>,
    /// The next generated routing id.
    next_id: u32,
}

impl Router {
    pub(crate) fn new() -> Router {
        // libzmq starts generated routing ids at a random value; any start works.
        Router { routes: HashMap::new(), next_id: std::process::id().wrapping_mul(2_654_435_761) }
    }

    fn generate_routing_id(&mut self) -> Bytes {
        loop {
            let n = self.next_id;
            self.next_id = n.wrapping_add(1);
            let mut id = vec![0u8; 5];
            id[1..].copy_from_slice(&n.to_be_bytes());
            let id = Bytes::from(id);
            if !self.routes.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Strategy for Router {
    fn traits(&self) -> Traits {
        Traits { filters_inbound: true, drops_stale: true, prefixes_routing_id: true, ..Traits::PLAIN }
    }

    /// Routes by the first frame. A message that is only a routing id is dropped, as libzmq does.
    /// Without ROUTER_MANDATORY, what cannot be routed (unknown peer, full queue) is dropped. With
    /// it, an unknown or gone peer is [`Error::HostUnreachable`], and a full queue makes `send`
    /// wait for room (`try_send`: [`Error::WouldBlock`]), as in libzmq.
    fn route(&mut self, pipes: &mut Pipes, mut msg: Message, o: &Options) -> Result<(), Unsent> {
        let mandatory = o.router_mandatory;
        let Some(routing_id) = msg.pop_front() else {
            return if mandatory { Err(Unsent::Failed(Error::HostUnreachable, msg)) } else { Ok(()) };
        };
        if msg.is_empty() {
            return Ok(());
        }
        let route = self.routes.get(&routing_id).and_then(|&id| Some((id, pipes.get(&id)?)));
        let Some((id, pipe)) = route else {
            msg.push_front(routing_id);
            return if mandatory { Err(Unsent::Failed(Error::HostUnreachable, msg)) } else { Ok(()) };
        };
        match pipe.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(mut m)) if mandatory => {
                m.push_front(routing_id);
                Err(Unsent::Blocked(m, Wait::Room(id)))
            }
            Err(TrySendError::Closed(mut m)) if mandatory => {
                m.push_front(routing_id);
                Err(Unsent::Failed(Error::HostUnreachable, m))
            }
            Err(TrySendError::Full(_)) => {
                tracing::debug!("ROUTER: peer's queue is at its high-water mark, message dropped");
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// The routing id stays behind: the pipe is the route.
    fn commit(&mut self, _id: PipeId, mut msg: Message) -> Message {
        msg.pop_front();
        msg
    }

    fn on_inbound(&mut self, _pipes: &Pipes, inbound: Inbound, _o: &Options) -> Delivery {
        if keeps(&inbound) {
            Delivery::Deliver(inbound.msg)
        } else {
            Delivery::Drop
        }
    }

    fn stateless_filter(&self) -> Option<StatelessFilter> {
        Some(keeps)
    }

    fn admit(
        &mut self,
        pipes: &mut Pipes,
        id: PipeId,
        peer: &PeerInfo,
        o: &Options,
    ) -> Result<(Bytes, Option<PipeId>), Refused> {
        let preset = pipes.get(&id).and_then(|p| p.preset_routing_id.clone());
        // A copy: the peer's value points into the connection's first read buffer.
        let wanted = preset.unwrap_or_else(|| Bytes::copy_from_slice(&peer.routing_id));
        let mut replaced = None;
        let routing_id = if wanted.is_empty() {
            self.generate_routing_id()
        } else if let Some(&holder) = self.routes.get(&wanted).filter(|&&h| h != id) {
            if !o.router_handover {
                return Err(Refused::RoutingIdInUse);
            }
            // Handover: the old connection is ended, as libzmq does. Dropping its pipe closes the
            // queues its task reads, so the task stops; what it handed over, or still does, is
            // stale (the socket has its lane marked: `replaced`) and dropped on receipt.
            pipes.remove(&holder);
            replaced = Some(holder);
            wanted
        } else {
            wanted
        };
        self.routes.insert(routing_id.clone(), id);
        Ok((routing_id, replaced))
    }

    fn on_ready(&mut self, _pipe: &Pipe, o: &Options) -> Option<Message> {
        probes(o).then(probe)
    }

    fn on_detach(
        &mut self,
        id: PipeId,
        routing_id: &Bytes,
        _subs: &crate::socket::Subscriptions,
        _o: &Options,
    ) -> Vec<Inbound> {
        if self.routes.get(routing_id) == Some(&id) {
            self.routes.remove(routing_id);
        }
        Vec::new()
    }
}

/// ROUTER's rule for what it receives (its peer's routing id is in front already:
/// `prefixes_routing_id`): what a pipe removed from the socket had delivered ([`STALE`]: its
/// peer went, or another took its routing id over) is dropped, so that a reply cannot go to the
/// wrong peer.
fn keeps(inbound: &Inbound) -> bool {
    inbound.pipe != STALE
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inbound, msg, peer, state};
    use super::super::Ready;
    use super::*;
    use crate::proto::SocketType;

    #[test]
    fn routing_ids_announced_preset_generated_and_handed_over() {
        let o = Options::default();
        let (mut st, rxs) = state(SocketType::Router, &o, 4);
        st.pipes.get_mut(&2).expect("pipe").preset_routing_id = Some(Bytes::from_static(b"preset"));
        let ready = |st: &mut super::super::State, id| st.ready(id, &peer(SocketType::Dealer, b"alice"), &o);
        assert_eq!(
            ready(&mut st, 1),
            Ok(Ready { routing_id: Bytes::from_static(b"alice"), greeting: None, replaced: None })
        );
        assert_eq!(ready(&mut st, 2).map(|r| r.routing_id), Ok(Bytes::from_static(b"preset")));
        assert_eq!(ready(&mut st, 3), Err(Refused::RoutingIdInUse));
        let generated = st.ready(4, &peer(SocketType::Dealer, b""), &o).expect("ready").routing_id;
        assert_eq!((generated.len(), generated[0]), (5, 0));

        st.send(msg(&[b"alice", b"hi"]), &o).expect("routed");
        st.send(msg(&[b"preset", b"hi"]), &o).expect("routed");
        st.send(msg(&[b"nobody", b"lost"]), &o).expect("dropped");
        assert_eq!(rxs[0].data.try_recv_msg(), Some(msg(&[b"hi"])));
        assert_eq!(rxs[1].data.try_recv_msg(), Some(msg(&[b"hi"])));
        assert_eq!(st.on_inbound(inbound(1, &[b"alice", b"x"]), &o), Delivery::Deliver(msg(&[b"alice", b"x"])));

        // Handover: pipe 3 takes "alice"; pipe 1 is gone (the socket marks what it delivered
        // stale), and a stale message is dropped.
        let o = Options::default().router_handover(true);
        assert_eq!(st.ready(3, &peer(SocketType::Dealer, b"alice"), &o).map(|r| r.replaced), Ok(Some(1)));
        assert!(!st.pipes.contains_key(&1));
        assert_eq!(st.on_inbound(inbound(STALE, &[b"alice", b"x"]), &o), Delivery::Drop);
        assert_eq!(st.pattern.stateless_filter().map(|keeps| keeps(&inbound(STALE, &[b"alice", b"x"]))), Some(false));
        st.send(msg(&[b"alice", b"to 3"]), &o).expect("routed");
        assert_eq!(rxs[2].data.try_recv_msg(), Some(msg(&[b"to 3"])));
        // Its detach does not take the new holder's route.
        st.detach(1, true, &o);
        st.send(msg(&[b"alice", b"still 3"]), &o).expect("routed");
        assert_eq!(rxs[2].data.try_recv_msg(), Some(msg(&[b"still 3"])));
    }

    #[test]
    fn mandatory_gives_the_message_back() {
        let o = Options::default().router_mandatory(true).sndhwm(1).probe_router(true);
        let (mut st, _rxs) = state(SocketType::Router, &o, 1);
        let r = st.ready(1, &peer(SocketType::Dealer, b"bob"), &o).expect("ready");
        assert_eq!(r.greeting, Some(probe()));
        match st.send(msg(&[b"carol", b"x"]), &o) {
            Err(Unsent::Failed(Error::HostUnreachable, m)) => assert_eq!(m, msg(&[b"carol", b"x"])),
            other => panic!("{other:?}"),
        }
        st.send(msg(&[b"bob", b"1"]), &o).expect("room");
        match st.send(msg(&[b"bob", b"2"]), &o) {
            Err(Unsent::Blocked(m, Wait::Room(1))) => assert_eq!(st.commit(1, m), msg(&[b"2"])),
            other => panic!("{other:?}"),
        }
    }
}
