//! REQ (RFC 28): strict send/receive alternation. A request goes to one REP or ROUTER, round-robin,
//! behind an empty delimiter frame; only a reply from that same peer, starting with the delimiter,
//! is accepted.

use bytes::Bytes;

use super::{lb::Lb, Delivery, Inbound, PipeId, Pipes, Strategy, Traits, Unsent};
use crate::proto::SocketType;
use crate::socket::options::Options;
use crate::socket::Error;
use crate::Message;

#[derive(Debug)]
pub(crate) struct Req {
    lb: Lb,
    /// The pipe of the outstanding request.
    awaiting: Option<PipeId>,
    /// The last request id sent (REQ_CORRELATE).
    request_id: u32,
}

impl Default for Req {
    fn default() -> Req {
        Req { lb: Lb::new(SocketType::Req, false), awaiting: None, request_id: 0 }
    }
}

impl Strategy for Req {
    fn traits(&self) -> Traits {
        Traits { filters_inbound: true, checks_recv: true, drains_on_send: true, ..Traits::PLAIN }
    }

    /// Starts a request: fails with [`Error::InvalidState`] while a reply is outstanding, unless
    /// REQ_RELAXED (then the old request is forgotten). Puts the envelope on: with REQ_CORRELATE a
    /// request id frame goes before the delimiter.
    fn begin(&mut self, mut msg: Message, o: &Options) -> Result<Message, Unsent> {
        if self.awaiting.is_some() && !o.req_relaxed {
            return Err(Unsent::Failed(Error::InvalidState, msg));
        }
        self.awaiting = None;
        self.request_id = self.request_id.wrapping_add(1);
        msg.push_front(Bytes::new());
        if o.req_correlate {
            msg.push_front(Bytes::copy_from_slice(&self.request_id.to_be_bytes()));
        }
        Ok(msg)
    }

    fn unframe(&self, mut msg: Message, o: &Options) -> Message {
        msg.split_off(if o.req_correlate { 2 } else { 1 })
    }

    fn route(&mut self, pipes: &mut Pipes, msg: Message, _o: &Options) -> Result<(), Unsent> {
        let id = self.lb.route_to(pipes, msg)?;
        self.awaiting = Some(id);
        Ok(())
    }

    fn commit(&mut self, id: PipeId, msg: Message) -> Message {
        self.lb.sent(id);
        self.awaiting = Some(id);
        msg
    }

    /// `recv` is valid while a reply is awaited.
    fn recv_allowed(&self) -> Result<(), Error> {
        match self.awaiting {
            Some(_) => Ok(()),
            None => Err(Error::InvalidState),
        }
    }

    /// Accepts the reply from the peer we asked (with the request id, under REQ_CORRELATE),
    /// stripping its envelope.
    fn on_inbound(&mut self, _pipes: &Pipes, mut inbound: Inbound, o: &Options) -> Delivery {
        if self.awaiting != Some(inbound.pipe) {
            return Delivery::Drop;
        }
        if o.req_correlate {
            match inbound.msg.pop_front() {
                Some(f) if f[..] == self.request_id.to_be_bytes() => {}
                _ => return Delivery::Drop,
            }
        }
        match inbound.msg.first() {
            Some(delimiter) if delimiter.is_empty() => {
                inbound.msg.pop_front();
                self.awaiting = None;
                Delivery::Deliver(inbound.msg)
            }
            _ => Delivery::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inbound, msg, state};
    use super::*;

    #[test]
    fn alternation_and_the_reply_from_the_peer_asked() {
        let o = Options::default();
        let (mut st, rxs) = state(SocketType::Req, &o, 2);
        assert!(matches!(st.recv_allowed(), Err(Error::InvalidState)));
        st.send(msg(&[b"q1"]), &o).expect("sent");
        assert_eq!(rxs[0].data.try_recv_msg(), Some(msg(&[b"", b"q1"])));
        assert!(matches!(st.send(msg(&[b"q2"]), &o), Err(Unsent::Failed(Error::InvalidState, _))));
        // Not from the peer asked, no delimiter: dropped; then the reply.
        assert_eq!(st.on_inbound(inbound(2, &[b"", b"a"]), &o), Delivery::Drop);
        assert_eq!(st.on_inbound(inbound(1, &[b"a"]), &o), Delivery::Drop);
        assert_eq!(st.on_inbound(inbound(1, &[b"", b"a"]), &o), Delivery::Deliver(msg(&[b"a"])));
        // The next request goes to the next peer.
        st.send(msg(&[b"q2"]), &o).expect("sent");
        assert_eq!(rxs[1].data.try_recv_msg(), Some(msg(&[b"", b"q2"])));
    }

    #[test]
    fn correlate_and_relaxed() {
        let o = Options::default().req_correlate(true).req_relaxed(true);
        let (mut st, rxs) = state(SocketType::Req, &o, 1);
        st.send(msg(&[b"q1"]), &o).expect("sent");
        st.send(msg(&[b"q2"]), &o).expect("relaxed: a new request");
        let id = |n: u32| n.to_be_bytes();
        assert_eq!(rxs[0].data.try_recv_msg(), Some(msg(&[&id(1), b"", b"q1"])));
        assert_eq!(rxs[0].data.try_recv_msg(), Some(msg(&[&id(2), b"", b"q2"])));
        assert_eq!(st.on_inbound(inbound(1, &[&id(1), b"", b"old"]), &o), Delivery::Drop);
        assert_eq!(st.on_inbound(inbound(1, &[&id(2), b"", b"new"]), &o), Delivery::Deliver(msg(&[b"new"])));
    }
}
