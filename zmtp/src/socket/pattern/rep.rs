//! REP (RFC 28): receives one request at a time, keeps its envelope (every frame up to and
//! including the empty delimiter) and puts it back in front of the reply, which goes to the pipe
//! the request came from.

use super::{Delivery, Inbound, PipeId, Pipes, Strategy, Traits, Unsent};
use crate::socket::options::Options;
use crate::socket::Error;
use crate::Message;

/// The pipe and envelope of the request being answered.
#[derive(Debug, Default)]
pub(crate) struct Rep {
    pending: Option<(PipeId, Message)>,
}

impl Strategy for Rep {
    fn traits(&self) -> Traits {
        Traits { filters_inbound: true, checks_recv: true, ..Traits::PLAIN }
    }

    /// Sends the reply to the current request. If its peer is gone or full, the reply is
    /// dropped, as libzmq does.
    fn route(&mut self, pipes: &mut Pipes, msg: Message, _o: &Options) -> Result<(), Unsent> {
        let Some((pipe, mut envelope)) = self.pending.take() else {
            return Err(Unsent::Failed(Error::InvalidState, msg));
        };
        envelope.extend(msg);
        if let Some(p) = pipes.get(&pipe) {
            let _ = p.tx.try_send(envelope);
        }
        Ok(())
    }

    /// `recv` is not valid while a request is being answered.
    fn recv_allowed(&self) -> Result<(), Error> {
        match self.pending {
            Some(_) => Err(Error::InvalidState),
            None => Ok(()),
        }
    }

    /// Splits off the envelope; a request without a delimiter is malformed and dropped.
    fn on_inbound(&mut self, _pipes: &Pipes, mut inbound: Inbound, _o: &Options) -> Delivery {
        let Some(delimiter) = inbound.msg.iter().position(|f| f.is_empty()) else {
            return Delivery::Drop;
        };
        let body = inbound.msg.split_off(delimiter + 1);
        self.pending = Some((inbound.pipe, inbound.msg));
        Delivery::Deliver(body)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inbound, msg, state};
    use super::*;
    use crate::proto::SocketType;

    #[test]
    fn the_reply_goes_back_with_the_envelope() {
        let o = Options::default();
        let (mut st, rxs) = state(SocketType::Rep, &o, 2);
        assert!(st.recv_allowed().is_ok());
        assert!(matches!(st.send(msg(&[b"early"]), &o), Err(Unsent::Failed(Error::InvalidState, _))));
        assert_eq!(st.on_inbound(inbound(2, &[b"no delimiter"]), &o), Delivery::Drop);
        let d = st.on_inbound(inbound(2, &[b"hop", b"", b"question"]), &o);
        assert_eq!(d, Delivery::Deliver(msg(&[b"question"])));
        assert!(matches!(st.recv_allowed(), Err(Error::InvalidState)));
        st.send(msg(&[b"answer"]), &o).expect("sent");
        assert_eq!(rxs[1].data.try_recv_msg(), Some(msg(&[b"hop", b"", b"answer"])));
        assert!(rxs[0].data.try_recv_msg().is_none());
        assert!(st.recv_allowed().is_ok());
    }
}
