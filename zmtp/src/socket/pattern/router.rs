//! ROUTER (RFC 28): every message received is prefixed with the routing id of its peer; every
//! message sent starts with the routing id of the peer to send it to. Unroutable messages are
//! dropped, or refused with ZMQ_ROUTER_MANDATORY.

use std::collections::HashMap;

use bytes::Bytes;

use super::Delivery;
use crate::socket::core::{Core, Inbound, PipeId};
use crate::socket::Error;
use crate::Message;

/// Prefixes the peer's routing id; drops what a peer sent before another took its id over
/// (ROUTER_HANDOVER), so that replies cannot go to the wrong peer.
pub(crate) fn on_inbound(routes: &HashMap<Bytes, PipeId>, mut inbound: Inbound) -> Delivery {
    if routes.get(&inbound.routing_id) != Some(&inbound.pipe) {
        return Delivery::Drop;
    }
    inbound.msg.push_front(inbound.routing_id);
    Delivery::Deliver(inbound.msg)
}

/// Routes by the first frame.
pub(crate) fn send(core: &Core, mut msg: Message) -> Result<(), Error> {
    let mandatory = core.options.router_mandatory;
    let Some(routing_id) = msg.pop_front() else {
        return if mandatory { Err(Error::HostUnreachable) } else { Ok(()) };
    };
    let st = core.lock();
    let pipe = st.routes.get(&routing_id).and_then(|id| st.pipes.get(id));
    match pipe.map(|p| p.tx.try_send(msg)) {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) | None if mandatory => Err(Error::HostUnreachable),
        _ => Ok(()),
    }
}
