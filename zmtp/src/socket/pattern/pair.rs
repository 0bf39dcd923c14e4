//! PAIR (RFC 31): exactly one peer. Messages load-balance over the one pipe (a connecting
//! endpoint's pipe queues before the connection is up); a second peer whose handshake ends while
//! another is ready is refused.

use bytes::Bytes;

use super::{lb::Lb, Pipe, PipeId, Pipes, Refused, Strategy, Traits, Unsent};
use crate::proto::{PeerInfo, SocketType};
use crate::socket::options::Options;
use crate::Message;

#[derive(Debug)]
pub(crate) struct Pair {
    lb: Lb,
}

impl Default for Pair {
    fn default() -> Pair {
        Pair { lb: Lb::new(SocketType::Pair, false) }
    }
}

impl Strategy for Pair {
    fn traits(&self) -> Traits {
        Traits::PLAIN
    }

    #[inline]
    fn route(&mut self, pipes: &mut Pipes, msg: Message, o: &Options) -> Result<(), Unsent> {
        self.lb.route(pipes, msg, o)
    }

    fn commit(&mut self, id: PipeId, msg: Message) -> Message {
        self.lb.commit(id, msg)
    }

    fn admit(
        &mut self,
        pipes: &mut Pipes,
        id: PipeId,
        peer: &PeerInfo,
        _o: &Options,
    ) -> Result<(Bytes, Option<PipeId>), Refused> {
        if pipes.iter().any(|(&other, p)| other != id && p.ready) {
            return Err(Refused::PairHasPeer);
        }
        Ok((Bytes::copy_from_slice(&peer.routing_id), None))
    }

    fn on_ready(&mut self, _pipe: &Pipe, _o: &Options) -> Option<Message> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{peer, state};
    use super::*;

    #[test]
    fn a_second_peer_is_refused_while_the_first_is_ready() {
        let o = Options::default();
        let (mut st, _rxs) = state(SocketType::Pair, &o, 2);
        assert!(st.ready(1, &peer(SocketType::Pair, b""), &o).is_ok());
        assert_eq!(st.ready(2, &peer(SocketType::Pair, b""), &o), Err(Refused::PairHasPeer));
        // Once the first is gone, the next one is taken.
        st.detach(1, true, &o);
        assert!(st.ready(2, &peer(SocketType::Pair, b""), &o).is_ok());
    }
}
