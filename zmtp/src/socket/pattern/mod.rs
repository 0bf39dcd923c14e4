//! Routing strategies: what each socket type does with the shared pipes.
//!
//! - [`lb`]: load-balance over ready pipes, blocking at the high-water mark (DEALER, PUSH, REQ, PAIR).
//! - [`fanout`]: PUB and XPUB, filter per subscriber and never block.
//! - [`req`], [`rep`]: the REQ and REP envelope state machines.
//! - [`router`]: route by the first frame, prefix the routing id on receipt.
//! - [`sub`]: local subscriptions, sent to every publisher.
//!
//! Receiving is fair-queued for every type by the one inbound queue the connections feed; the
//! strategies here only filter or rewrite what comes out of it.

pub(crate) mod fanout;
pub(crate) mod lb;
pub(crate) mod rep;
pub(crate) mod req;
pub(crate) mod router;
pub(crate) mod sub;

use super::core::{Inbound, Pipe, PipeId};
use super::Subscriptions;
use crate::proto::SocketType;
use crate::Message;

/// Per-type state kept under the socket lock.
#[derive(Debug)]
pub(crate) enum PatternState {
    /// No state beyond the pipes.
    Stateless,
    /// SUB / XSUB: what we subscribed to.
    Sub(Subscriptions),
    /// XPUB: every peer's subscriptions together, and (XPUB_MANUAL) the pipe that subscribed last.
    XPub {
        /// Union of the pipes' subscriptions, counted per pipe.
        all: Subscriptions,
        /// Where a manual `subscribe` applies.
        last_pipe: Option<PipeId>,
    },
    /// REQ: the pipe a reply is expected from, and the id of the last request (REQ_CORRELATE).
    Req {
        /// Pipe of the outstanding request.
        awaiting: Option<PipeId>,
        /// Last request id sent.
        request_id: u32,
    },
    /// REP: the pipe and envelope of the request being answered.
    Rep(Option<(PipeId, Message)>),
}

impl PatternState {
    pub(crate) fn new(socket_type: SocketType) -> PatternState {
        match socket_type {
            SocketType::Sub | SocketType::XSub => PatternState::Sub(Subscriptions::new()),
            SocketType::Req => PatternState::Req { awaiting: None, request_id: 0 },
            SocketType::XPub => PatternState::XPub { all: Subscriptions::new(), last_pipe: None },
            SocketType::Rep => PatternState::Rep(None),
            _ => PatternState::Stateless,
        }
    }

    /// A pipe became ready: tell the peer what it must know.
    pub(crate) fn on_ready(&self, pipe: &Pipe) {
        if let PatternState::Sub(subs) = self {
            sub::replay(subs, pipe);
        }
    }
}

/// What the socket does with one inbound message.
pub(crate) enum Delivery {
    /// Hand it to the application.
    Deliver(Message),
    /// Drop it silently.
    Drop,
}

/// Whether [`on_inbound`] does anything for this type; the others take messages as they come,
/// without the socket lock.
pub(crate) fn filters_inbound(socket_type: SocketType) -> bool {
    matches!(socket_type, SocketType::Router | SocketType::Sub | SocketType::Req | SocketType::Rep | SocketType::Pub)
}

/// Filters or rewrites an inbound message for the application. Runs under the socket lock.
pub(crate) fn on_inbound(
    socket_type: SocketType,
    options: &crate::Options,
    st: &mut super::core::State,
    inbound: Inbound,
) -> Delivery {
    match (socket_type, &mut st.pattern) {
        (SocketType::Router, _) => router::on_inbound(&st.pipes, inbound),
        (SocketType::Sub, PatternState::Sub(subs)) => sub::on_inbound(subs, options.invert_matching, inbound),
        (SocketType::Req, PatternState::Req { awaiting, request_id }) => {
            req::on_inbound(awaiting, options.req_correlate.then_some(*request_id), inbound)
        }
        (SocketType::Rep, PatternState::Rep(pending)) => rep::on_inbound(pending, inbound),
        (SocketType::Pub, _) => Delivery::Drop,
        _ => Delivery::Deliver(inbound.msg),
    }
}
