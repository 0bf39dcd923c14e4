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
    /// Small messages to a lone pipe are staged on the socket's side while its connection is
    /// busy (`wire::Staged`): PUSH and DEALER. Not REQ (one request at a time, sent from the
    /// application's task: nothing to stage) nor PAIR.
    stages: bool,
}

impl Lb {
    pub(crate) fn new(socket_type: SocketType, probe: bool) -> Lb {
        let stages = matches!(socket_type, SocketType::Push | SocketType::Dealer);
        Lb { socket_type, next: 0, probe, stages }
    }

    /// Tries every pipe once in round-robin order; returns the pipe `msg` went into, or the
    /// message with what to wait for.
    #[inline]
    pub(crate) fn route_to(&mut self, pipes: &mut Pipes, msg: Message) -> Result<PipeId, Unsent> {
        if pipes.len() == 1 {
            // One peer (the usual DEALER, REQ, PUSH): straight to its pipe, without the cursor,
            // the search or the bookkeeping of which pipe came first (about 40 instructions a
            // message: the message moved in and out of the search's `Option` each time).
            if let Some((&id, pipe)) = pipes.iter_mut().next() {
                let sent = if self.stages {
                    match pipe.staged.stage(msg) {
                        Ok(spent) => {
                            drop(spent);
                            self.next = id + 1;
                            return Ok(id);
                        }
                        Err(msg) => pipe.tx.try_send_staging(msg, &mut pipe.staged),
                    }
                } else {
                    pipe.tx.try_send(msg)
                };
                return match sent {
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

    /// What the queue of `rx` holds, as the first octet of each message.
    fn queued(rx: &super::super::PipeRx) -> Vec<u8> {
        std::iter::from_fn(|| rx.data.try_recv()).flatten().map(|m| m.frames()[0][0]).collect()
    }

    /// What the socket staged for pipe 1, taken as its connection takes it.
    fn take_staged(st: &mut super::super::State, wait: bool) -> Option<Vec<u8>> {
        let pipe = st.pipes.get_mut(&1).expect("pipe 1");
        let out = pipe.tx.take_staged(&mut pipe.staged, &mut None, wait)?;
        Some(out.into_iter().map(|m| m.frames()[0][0]).collect())
    }

    /// A PUSH's lone pipe, its connection framing in plaintext: small messages are staged on the
    /// socket's side once a push into the queue has shown the room; what is queued plus what is
    /// staged never exceeds the high-water mark; the connection takes what is staged only once
    /// the queue is empty (order kept); a connection that found nothing and waits gets the next
    /// message in its queue (a push, which wakes it); the close puts what is staged in the queue.
    #[test]
    fn staged_sends_keep_the_order_and_the_high_water_mark() {
        let o = Options::default().sndhwm(10);
        let (mut st, rxs) = state(SocketType::Push, &o, 1);
        rxs[0].data.set_encode(true);
        // The first goes into the queue (nothing known yet), the next nine are staged: the HWM.
        for i in 0..10u8 {
            st.send(msg(&[&[i]]), &o).expect("room");
        }
        assert!(matches!(st.send(msg(&[&[10]]), &o), Err(Unsent::Blocked(_, Wait::Room(1)))));
        // Blocked: what was staged went into the queue first, in order.
        assert_eq!(take_staged(&mut st, false), None);
        assert_eq!(queued(&rxs[0]), (0..10).collect::<Vec<u8>>());
        // Room again: one into the queue (which shows it), the next staged.
        for i in 10..14u8 {
            st.send(msg(&[&[i]]), &o).expect("room");
        }
        // The queue is not empty: the staged ones wait behind it.
        assert_eq!(take_staged(&mut st, true), None);
        assert_eq!(queued(&rxs[0]), [10]);
        assert_eq!(take_staged(&mut st, true), Some(vec![11, 12, 13]));
        // Nothing staged and the connection waits: the next send goes into its queue.
        assert_eq!(take_staged(&mut st, true), None);
        st.send(msg(&[&[14]]), &o).expect("room");
        assert_eq!(queued(&rxs[0]), [14]);
        // Staged again until the close, which queues them; nothing is staged after it.
        for i in 15..18u8 {
            st.send(msg(&[&[i]]), &o).expect("room");
        }
        assert!(rxs[0].data.is_empty());
        for pipe in st.pipes.values_mut() {
            pipe.tx.publish(&mut pipe.staged);
            pipe.staged.close();
        }
        st.send(msg(&[&[18]]), &o).expect("room");
        assert_eq!(take_staged(&mut st, false), None);
        assert_eq!(queued(&rxs[0]), [15, 16, 17, 18]);
        // A large message is never staged: it goes after what is staged.
        let (mut st, rxs) = state(SocketType::Dealer, &o, 1);
        rxs[0].data.set_encode(true);
        st.send(msg(&[&[0]]), &o).expect("room");
        st.send(msg(&[&[1]]), &o).expect("room");
        st.send(msg(&[&[2; 600]]), &o).expect("room");
        assert_eq!(take_staged(&mut st, false), None);
        assert_eq!(queued(&rxs[0]), [0, 1, 2]);
        // Nor for a connection that does not frame in plaintext.
        let (mut st, rxs) = state(SocketType::Push, &o, 1);
        st.send(msg(&[&[0]]), &o).expect("room");
        st.send(msg(&[&[1]]), &o).expect("room");
        assert_eq!(take_staged(&mut st, false), None);
        assert_eq!(queued(&rxs[0]), [0, 1]);
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
