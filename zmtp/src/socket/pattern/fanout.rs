//! PUB / XPUB: every ready pipe whose peer subscribed to a prefix of the first frame gets the
//! message (with INVERT_MATCHING: every pipe whose peer did not). Bodies are shared, not copied. A
//! pipe at its high-water mark loses the message; the others do not, and the sender never waits.
//!
//! Each pipe keeps its peer's subscriptions, bounded per peer (`max_topics_per_peer`,
//! `max_topic_bytes_per_peer`). XPUB also counts every peer's subscriptions together, to hand its
//! application each topic's first subscription and last cancellation (all of them with
//! XPUB_VERBOSE / XPUB_VERBOSER); with XPUB_MANUAL the application applies them itself, to the pipe
//! that sent the last one.

use bytes::Bytes;

use super::{Inbound, Pipe, PipeId, Pipes, Strategy, SubscriptionLimit, Traits, Unsent};
use crate::socket::options::Options;
use crate::socket::wire::Framed;
use crate::socket::Subscriptions;
use crate::Message;

#[derive(Debug)]
pub(crate) struct Fanout {
    /// XPUB (else PUB).
    xpub: bool,
    /// XPUB: the union of the pipes' subscriptions, counted per pipe.
    all: Subscriptions,
    /// XPUB_MANUAL: where the application's `subscribe` applies.
    last_pipe: Option<PipeId>,
    /// A small message fanned out, framed once for every subscriber (its buffer kept).
    framed: Framed,
}

impl Fanout {
    pub(crate) fn new(xpub: bool) -> Fanout {
        Fanout { xpub, all: Subscriptions::new(), last_pipe: None, framed: Framed::default() }
    }
}

/// An XPUB's view of a subscription: one frame, `0x01` or `0x00` then the topic.
fn subscription_message(pipe: PipeId, topic: &[u8], subscribe: bool) -> Inbound {
    let mut frame = Vec::with_capacity(1 + topic.len());
    frame.push(u8::from(subscribe));
    frame.extend_from_slice(topic);
    Inbound { pipe, msg: Message::from(frame) }
}

impl Strategy for Fanout {
    fn traits(&self) -> Traits {
        Traits { receives: self.xpub, ..Traits::PLAIN }
    }

    /// Fans `msg` out to the matching subscribers.
    #[inline]
    fn route(&mut self, pipes: &mut Pipes, msg: Message, o: &Options) -> Result<(), Unsent> {
        let invert = o.invert_matching;
        let topic = msg.first_body().unwrap_or_default();
        // Full or closed: that subscriber misses the message, as with libzmq. A lone subscriber
        // gets the message itself. Several: a small message is framed once here and its octets
        // copied into each subscriber's queue (`Framed`); a larger one goes to the last
        // subscriber itself and to the others as clones sharing its frames, each encoded by its
        // connection (`Out::Shared`).
        let mut previous = None;
        let mut framed = None;
        for pipe in pipes.values() {
            if pipe.ready && pipe.subscriptions.matches(topic) != invert {
                if let Some(p) = previous.replace(pipe) {
                    let small = *framed.get_or_insert_with(|| self.framed.set(&msg));
                    if small {
                        let _ = p.tx.try_send_framed(&self.framed, &msg);
                    } else {
                        let _ = p.tx.try_send_shared(msg.clone());
                    }
                }
            }
        }
        if let Some(p) = previous {
            match framed {
                None => {
                    let _ = p.tx.try_send(msg);
                }
                Some(true) => {
                    let _ = p.tx.try_send_framed(&self.framed, &msg);
                }
                Some(false) => {
                    let _ = p.tx.try_send_shared(msg);
                }
            }
        }
        Ok(())
    }

    fn on_ready(&mut self, _pipe: &Pipe, o: &Options) -> Option<Message> {
        if self.xpub {
            o.xpub_welcome_msg.clone().map(Message::from)
        } else {
            None
        }
    }

    /// XPUB: the topics that no peer holds any more.
    fn on_detach(&mut self, id: PipeId, _routing_id: &Bytes, subs: &Subscriptions, o: &Options) -> Vec<Inbound> {
        if !self.xpub {
            return Vec::new();
        }
        let mut out = Vec::new();
        for topic in subs.topics() {
            if self.all.remove(topic) && !o.xpub_manual {
                out.push(subscription_message(id, topic, false));
            }
        }
        out
    }

    /// Records a peer's subscription; returns what an XPUB hands its application, if anything.
    fn on_subscription(
        &mut self,
        pipes: &mut Pipes,
        id: PipeId,
        topic: &[u8],
        subscribe: bool,
        o: &Options,
    ) -> Result<Option<Inbound>, SubscriptionLimit> {
        if self.xpub && o.xpub_manual {
            self.last_pipe = Some(id);
            return Ok(Some(subscription_message(id, topic, subscribe)));
        }
        let Some(pipe) = pipes.get_mut(&id) else { return Ok(None) };
        let subs = &pipe.subscriptions;
        if subscribe
            && (subs.len() >= o.max_topics_per_peer || subs.bytes() + topic.len() > o.max_topic_bytes_per_peer)
            && !subs.contains(topic)
        {
            // Bounded memory: a peer cannot make us keep an unlimited number of topics.
            return Err(SubscriptionLimit { topics: subs.len(), bytes: subs.bytes() });
        }
        let changed = if subscribe { pipe.subscriptions.add(topic) } else { pipe.subscriptions.remove(topic) };
        if !self.xpub {
            return Ok(None);
        }
        let unique = match (changed, subscribe) {
            (true, true) => self.all.add(topic),
            (true, false) => self.all.remove(topic),
            (false, _) => false,
        };
        let tell = if subscribe { unique || o.xpub_verbose } else { unique || o.xpub_verboser };
        Ok(tell.then(|| subscription_message(id, topic, subscribe)))
    }

    /// XPUB_MANUAL: the application applies a subscription to the pipe that sent the last one.
    fn subscribe(&mut self, pipes: &mut Pipes, topic: &[u8], subscribe: bool, o: &Options) -> Result<(), ()> {
        if !(self.xpub && o.xpub_manual) {
            return Err(());
        }
        if let Some(pipe) = self.last_pipe.and_then(|id| pipes.get_mut(&id)) {
            if subscribe {
                pipe.subscriptions.add(topic);
            } else {
                pipe.subscriptions.remove(topic);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{msg, peer, state};
    use super::super::State;
    use super::*;
    use crate::proto::SocketType;

    fn ready_all(st: &mut State, o: &Options) {
        let ids: Vec<_> = st.pipes.keys().copied().collect();
        for id in ids {
            st.ready(id, &peer(SocketType::Sub, b""), o).expect("ready");
        }
    }

    #[test]
    fn fan_out_to_matching_subscribers_only() {
        let o = Options::default();
        let (mut st, rxs) = state(SocketType::Pub, &o, 3);
        ready_all(&mut st, &o);
        assert_eq!(st.on_subscription(1, b"a", true, &o), Ok(None));
        assert_eq!(st.on_subscription(2, b"", true, &o), Ok(None));
        st.send(msg(&[b"apple"]), &o).expect("never blocks");
        st.send(msg(&[b"banana"]), &o).expect("never blocks");
        let count = |i: usize| std::iter::from_fn(|| rxs[i].data.try_recv_msg()).count();
        assert_eq!([count(0), count(1), count(2)], [1, 2, 0]);
    }

    #[test]
    fn xpub_tells_first_subscriptions_and_last_cancellations() {
        let o = Options::default();
        let (mut st, _rxs) = state(SocketType::XPub, &o, 2);
        ready_all(&mut st, &o);
        let first = |r: Result<Option<Inbound>, SubscriptionLimit>| r.expect("in bounds").map(|i| i.msg);
        assert_eq!(first(st.on_subscription(1, b"t", true, &o)), Some(msg(&[b"\x01t"])));
        assert_eq!(first(st.on_subscription(2, b"t", true, &o)), None);
        assert_eq!(first(st.on_subscription(1, b"t", false, &o)), None);
        // The last holder leaves: its cancellation is handed over.
        let left: Vec<_> = st.detach(2, true, &o).into_iter().map(|i| i.msg).collect();
        assert_eq!(left, [msg(&[b"\x00t"])]);
        let o = o.xpub_verbose(true);
        assert_eq!(first(st.on_subscription(1, b"u", true, &o)), Some(msg(&[b"\x01u"])));
        assert_eq!(first(st.on_subscription(1, b"u", true, &o)), Some(msg(&[b"\x01u"])));
    }

    #[test]
    fn a_peer_cannot_subscribe_without_bound() {
        let o = Options::default();
        let max = o.max_topics_per_peer;
        assert_eq!(max, 100_000);
        let (mut st, _rxs) = state(SocketType::Pub, &o, 1);
        for i in 0..max {
            assert_eq!(st.on_subscription(1, format!("t{i}").as_bytes(), true, &o), Ok(None));
        }
        let bytes = st.pipes[&1].subscriptions.bytes();
        assert_eq!(st.on_subscription(1, b"one-too-many", true, &o), Err(SubscriptionLimit { topics: max, bytes }));
        assert_eq!(st.on_subscription(1, b"t0", true, &o), Ok(None));
        let subs = &st.pipes[&1].subscriptions;
        assert_eq!(subs.len(), max);
        assert!(!subs.contains(b"one-too-many"));
        assert!(subs.matches(b"t0-still-matches"));
    }

    #[test]
    fn topic_octets_are_bounded_per_peer() {
        let o = Options::default().max_subscriptions_per_peer(1000, 100);
        let (mut st, _rxs) = state(SocketType::XPub, &o, 1);
        assert!(st.on_subscription(1, &[b'a'; 60], true, &o).is_ok());
        assert_eq!(
            st.on_subscription(1, &[b'b'; 41], true, &o).map(|_| ()),
            Err(SubscriptionLimit { topics: 1, bytes: 60 })
        );
        assert!(st.on_subscription(1, &[b'b'; 40], true, &o).is_ok());
        // A cancellation makes room again.
        assert!(st.on_subscription(1, &[b'a'; 60], false, &o).is_ok());
        assert!(st.on_subscription(1, &[b'c'; 60], true, &o).is_ok());
        assert_eq!(st.pipes[&1].subscriptions.bytes(), 100);
    }
}
