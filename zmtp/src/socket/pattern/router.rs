//! ROUTER (RFC 28): every message received is prefixed with the routing id of its peer; every
//! message sent starts with the routing id of the peer to send it to. Unroutable messages are
//! dropped, or refused with ZMQ_ROUTER_MANDATORY.

use std::collections::BTreeMap;

use crate::socket::queue::TrySendError;

use super::Delivery;
use crate::socket::core::{Core, Inbound, Pipe, PipeId};
use crate::socket::Error;
use crate::Message;

/// Prefixes the peer's routing id; drops what a connection sent before another took its id over
/// (ROUTER_HANDOVER removes the old pipe), so that replies cannot go to the wrong peer.
pub(crate) fn on_inbound(pipes: &BTreeMap<PipeId, Pipe>, mut inbound: Inbound) -> Delivery {
    if !pipes.contains_key(&inbound.pipe) {
        return Delivery::Drop;
    }
    inbound.msg.push_front(inbound.routing_id);
    Delivery::Deliver(inbound.msg)
}

/// Routes by the first frame. A message that is only a routing id is dropped, as libzmq does.
/// Without ROUTER_MANDATORY, what cannot be routed (unknown peer, full queue) is dropped. With it,
/// an unknown or gone peer is [`Error::HostUnreachable`], and a full queue makes `send` wait for
/// room (`try_send`: [`Error::WouldBlock`]), as in libzmq.
pub(crate) async fn send(core: &Core, mut msg: Message, wait: bool) -> Result<(), Error> {
    let mandatory = core.options.router_mandatory;
    let Some(routing_id) = msg.pop_front() else {
        return if mandatory { Err(Error::HostUnreachable) } else { Ok(()) };
    };
    if msg.is_empty() {
        return Ok(());
    }
    let tx = {
        let st = core.lock();
        let pipe = st.routes.get(&routing_id).and_then(|id| st.pipes.get(id));
        match pipe.map(|p| p.tx.try_send(msg)) {
            Some(Ok(())) => return Ok(()),
            Some(Err(TrySendError::Full(m))) if mandatory => {
                msg = m;
                pipe.map(|p| p.tx.clone())
            }
            Some(Err(_)) | None if mandatory => return Err(Error::HostUnreachable),
            Some(Err(TrySendError::Full(_))) => {
                tracing::debug!("ROUTER: peer's queue is at its high-water mark, message dropped");
                return Ok(());
            }
            _ => return Ok(()),
        }
    };
    let Some(tx) = tx else { return Err(Error::HostUnreachable) };
    if !wait {
        return Err(Error::WouldBlock);
    }
    tokio::select! {
        r = tx.send(msg) => r.map_err(|_| Error::HostUnreachable),
        _ = core.closing.cancelled() => Err(Error::Closed),
    }
}
