//! SUB / XSUB: subscriptions are kept locally (to filter what arrives and to replay them after a
//! reconnect) and sent to every publisher; a topic goes on the wire when first subscribed and is
//! cancelled when its last reference goes.

use bytes::Bytes;

use super::{tell_publishers, Control, Delivery, Inbound, Pipe, Pipes, Strategy, Traits, Unsent};
use crate::proto::SocketType;
use crate::socket::options::Options;
use crate::socket::queue::TrySendError;
use crate::socket::Error;
use crate::socket::Subscriptions;
use crate::Message;

#[derive(Debug)]
pub(crate) struct Sub {
    /// SUB filters what it receives; XSUB hands everything over.
    filters: bool,
    /// What we subscribed to.
    subs: Subscriptions,
}

impl Sub {
    pub(crate) fn new(filters: bool) -> Sub {
        Sub { filters, subs: Subscriptions::new() }
    }
}

impl Strategy for Sub {
    fn traits(&self) -> Traits {
        Traits { filters_inbound: self.filters, subscribes: true, ..Traits::PLAIN }
    }

    /// XSUB: a message starting with `0x01` / `0x00` is a subscription / cancellation and goes to
    /// every publisher (a cancellation only when its last reference goes); anything else is sent
    /// to every publisher as a message. SUB does not send.
    fn route(&mut self, pipes: &mut Pipes, msg: Message, _o: &Options) -> Result<(), Unsent> {
        if self.filters {
            return Err(Unsent::Failed(Error::NotSupported(SocketType::Sub), msg));
        }
        let first = msg.first().cloned().unwrap_or_default();
        match first.first() {
            Some(&flag @ (0 | 1)) if msg.len() == 1 => {
                let topic = first.slice(1..);
                let forward = if flag == 1 {
                    self.subs.add(&topic);
                    true
                } else {
                    self.subs.remove(&topic)
                };
                if forward {
                    tell_publishers(pipes, &topic, flag == 1);
                }
            }
            _ => {
                for pipe in pipes.values().filter(|p| p.ready) {
                    if let Err(TrySendError::Full(_) | TrySendError::Closed(_)) = pipe.tx.try_send(msg.clone()) {}
                }
            }
        }
        Ok(())
    }

    /// SUB drops what it is not subscribed to (a publisher may send more than asked for), or with
    /// INVERT_MATCHING what it is subscribed to.
    fn on_inbound(&mut self, _pipes: &Pipes, inbound: Inbound, o: &Options) -> Delivery {
        let topic = inbound.msg.first().map_or(&[][..], |f| &f[..]);
        if !self.filters || self.subs.matches(topic) != o.invert_matching {
            Delivery::Deliver(inbound.msg)
        } else {
            Delivery::Drop
        }
    }

    /// A publisher just became ready: it is sent every current subscription.
    fn on_ready(&mut self, pipe: &Pipe, _o: &Options) -> Option<Message> {
        if let Some(ctl) = &pipe.ctl {
            for topic in self.subs.topics() {
                let _ = ctl.try_send(Control::Subscribe(topic.clone()));
            }
        }
        None
    }

    /// Adds (or removes) a subscription and tells the ready publishers if the set changed.
    fn subscribe(&mut self, pipes: &mut Pipes, topic: &[u8], subscribe: bool, _o: &Options) -> Result<(), ()> {
        let changed = if subscribe { self.subs.add(topic) } else { self.subs.remove(topic) };
        if changed {
            tell_publishers(pipes, &Bytes::copy_from_slice(topic), subscribe);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inbound, msg, peer, state};
    use super::super::Delivery;
    use super::*;

    #[test]
    fn subscriptions_go_to_ready_publishers_and_are_replayed() {
        let o = Options::default();
        let (mut st, mut rxs) = state(SocketType::Sub, &o, 2);
        st.ready(1, &peer(SocketType::Pub, b""), &o).expect("ready");
        st.subscribe(b"a", true, &o).expect("SUB subscribes");
        st.subscribe(b"a", true, &o).expect("counted, not sent again");
        let ctl = |rx: &mut super::super::PipeRx| {
            std::iter::from_fn(|| rx.ctl.as_ref().and_then(|c| c.try_recv())).collect::<Vec<_>>()
        };
        assert_eq!(ctl(&mut rxs[0]), [Control::Subscribe(Bytes::from_static(b"a"))]);
        assert!(ctl(&mut rxs[1]).is_empty());
        st.ready(2, &peer(SocketType::Pub, b""), &o).expect("ready");
        assert_eq!(ctl(&mut rxs[1]), [Control::Subscribe(Bytes::from_static(b"a"))]);
        st.subscribe(b"a", false, &o).expect("one reference left");
        assert!(ctl(&mut rxs[0]).is_empty());
        st.subscribe(b"a", false, &o).expect("last reference");
        assert_eq!(ctl(&mut rxs[0]), [Control::Cancel(Bytes::from_static(b"a"))]);

        assert_eq!(st.on_inbound(inbound(1, &[b"b"]), &o), Delivery::Drop);
        st.subscribe(b"b", true, &o).expect("SUB subscribes");
        assert_eq!(st.on_inbound(inbound(1, &[b"bee"]), &o), Delivery::Deliver(msg(&[b"bee"])));
        assert!(matches!(st.send(msg(&[b"x"]), &o), Err(Unsent::Failed(Error::NotSupported(_), _))));
    }

    #[test]
    fn xsub_sends_subscriptions_as_messages() {
        let o = Options::default();
        let (mut st, rxs) = state(SocketType::XSub, &o, 1);
        st.ready(1, &peer(SocketType::XPub, b""), &o).expect("ready");
        st.send(msg(&[b"\x01t"]), &o).expect("sent");
        st.send(msg(&[b"data"]), &o).expect("sent");
        assert_eq!(rxs[0].ctl.as_ref().and_then(|c| c.try_recv()), Some(Control::Subscribe(Bytes::from_static(b"t"))));
        assert_eq!(rxs[0].data.try_recv_msg(), Some(msg(&[b"data"])));
    }
}
