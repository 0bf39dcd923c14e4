//! Load-balancing (DEALER, PUSH; REQ and PAIR build on it): each message goes to the next pipe in
//! round-robin order that has room below its high-water mark; when none has, the sender waits for
//! room on the next one (libzmq's `lb_t`). Pipes of connecting endpoints are used before their
//! connection is up, so messages queue for them as in libzmq (ZMQ_IMMEDIATE off).

use super::{router, Pipe, PipeId, Pipes, Strategy, Traits, Unsent, Wait};
use crate::proto::SocketType;
use crate::socket::options::Options;
use crate::socket::queue::TrySendError;
use crate::socket::Error;
use crate::Message;

/// The round-robin cursor, and for DEALER whether it probes (PROBE_ROUTER).
#[derive(Debug)]
pub(crate) struct Lb {
    socket_type: SocketType,
    /// The next pipe tried is the first with an id ≥ this.
    next: PipeId,
    probe: bool,
}

impl Lb {
    pub(crate) fn new(socket_type: SocketType, probe: bool) -> Lb {
        Lb { socket_type, next: 0, probe }
    }

    /// Tries every pipe once in round-robin order; returns the pipe `msg` went into, or the
    /// message with what to wait for.
    #[inline]
    pub(crate) fn route_to(&mut self, pipes: &Pipes, msg: Message) -> Result<PipeId, Unsent> {
        if pipes.len() == 1 {
            // One peer (the usual DEALER, REQ, PUSH): straight to its pipe, without the cursor,
            // the search or the bookkeeping of which pipe came first (about 40 instructions a
            // message: the message moved in and out of the search's `Option` each time).
            if let Some((&id, pipe)) = pipes.iter().next() {
                return match pipe.tx.try_send(msg) {
                    Ok(()) => {
                        self.next = id + 1;
                        Ok(id)
                    }
                    Err(TrySendError::Full(m) | TrySendError::Closed(m)) => Err(Unsent::Blocked(m, Wait::Room(id))),
                };
            }
        }
        let mut msg = Some(msg);
        let mut chosen = None;
        let mut first = None;
        let mut offer = |id: PipeId, pipe: &Pipe| {
            first.get_or_insert(id);
            let Some(m) = msg.take() else { return true };
            match pipe.tx.try_send(m) {
                Ok(()) => {
                    chosen = Some(id);
                    true
                }
                Err(TrySendError::Full(m) | TrySendError::Closed(m)) => {
                    msg = Some(m);
                    false
                }
            }
        };
        let start = self.next;
        let _ = pipes.range(start..).chain(pipes.range(..start)).any(|(&id, pipe)| offer(id, pipe));
        match (chosen, msg) {
            (Some(id), _) => {
                self.next = id + 1;
                Ok(id)
            }
            (None, Some(m)) => Err(Unsent::Blocked(m, first.map_or(Wait::Peer, Wait::Room))),
            // Unreachable: a message is either queued (chosen) or still held.
            (None, None) => Err(Unsent::Failed(Error::InvalidState, Message::new())),
        }
    }

    /// The message went into pipe `id` after a wait: the cursor moves past it.
    pub(crate) fn sent(&mut self, id: PipeId) {
        self.next = id + 1;
    }
}

impl Strategy for Lb {
    fn traits(&self) -> Traits {
        Traits { receives: self.socket_type != SocketType::Push, ..Traits::PLAIN }
    }

    #[inline]
    fn route(&mut self, pipes: &mut Pipes, msg: Message, _o: &Options) -> Result<(), Unsent> {
        self.route_to(pipes, msg).map(|_| ())
    }

    fn commit(&mut self, id: PipeId, msg: Message) -> Message {
        self.sent(id);
        msg
    }

    fn on_ready(&mut self, _pipe: &Pipe, _o: &Options) -> Option<Message> {
        self.probe.then(router::probe)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{msg, state};
    use super::super::Unsent;
    use super::*;

    #[test]
    fn round_robin_over_pipes_with_room_then_wait_on_the_next() {
        let o = Options::default().sndhwm(2);
        let (mut st, rxs) = state(SocketType::Push, &o, 3);
        for i in 0..6u8 {
            st.send(msg(&[&[i]]), &o).expect("room");
        }
        let got: Vec<Vec<Vec<u8>>> = rxs
            .iter()
            .map(|rx| std::iter::from_fn(|| rx.data.try_recv_msg()).map(|m| m.frames()[0].to_vec()).collect())
            .collect();
        // Drained: fill all three again, then the seventh blocks on the pipe after the last used.
        assert_eq!(got, [vec![vec![0], vec![3]], vec![vec![1], vec![4]], vec![vec![2], vec![5]]]);
        for i in 0..6u8 {
            st.send(msg(&[&[i]]), &o).expect("room");
        }
        match st.send(msg(&[b"x"]), &o) {
            Err(Unsent::Blocked(m, Wait::Room(1))) => assert_eq!(m, msg(&[b"x"])),
            other => panic!("{other:?}"),
        }
        // A pipe with room is used, whichever it is.
        rxs[1].data.try_recv_msg().expect("queued");
        st.send(msg(&[b"y"]), &o).expect("room in pipe 2");
        assert_eq!(rxs[1].data.try_recv_msg().map(|m| m.frames().len()), Some(1));
    }

    #[test]
    fn no_pipe_waits_for_a_peer() {
        let o = Options::default();
        let (mut st, _rxs) = state(SocketType::Dealer, &o, 0);
        assert!(matches!(st.send(msg(&[b"x"]), &o), Err(Unsent::Blocked(_, Wait::Peer))));
        let (mut st, _rxs) = state(SocketType::Pull, &o, 1);
        assert!(matches!(st.send(msg(&[b"x"]), &o), Err(Unsent::Failed(Error::NotSupported(_), _))));
    }
}
