//! REQ (RFC 28): strict send/receive alternation. A request goes to one REP or ROUTER, round-robin,
//! behind an empty delimiter frame; only a reply from that same peer, starting with the delimiter,
//! is accepted.

use super::{lb, Delivery, PatternState};
use crate::socket::core::{Core, Inbound, PipeId};
use crate::socket::Error;
use crate::Message;

/// Sends a request; fails with [`Error::InvalidState`] while a reply is outstanding.
pub(crate) async fn send(core: &Core, mut msg: Message) -> Result<(), Error> {
    if matches!(core.lock().pattern, PatternState::Req(Some(_))) {
        return Err(Error::InvalidState);
    }
    msg.push_front(bytes::Bytes::new());
    lb::send(core, msg, |st, id| st.pattern = PatternState::Req(Some(id))).await
}

/// Whether a reply is awaited (`recv` is valid).
pub(crate) fn awaiting(core: &Core) -> bool {
    matches!(core.lock().pattern, PatternState::Req(Some(_)))
}

/// Accepts the reply from the peer we asked, stripping its delimiter.
pub(crate) fn on_inbound(awaiting: &mut Option<PipeId>, mut inbound: Inbound) -> Delivery {
    if *awaiting != Some(inbound.pipe) {
        return Delivery::Drop;
    }
    match inbound.msg.first() {
        Some(delimiter) if delimiter.is_empty() => {
            inbound.msg.pop_front();
            *awaiting = None;
            Delivery::Deliver(inbound.msg)
        }
        _ => Delivery::Drop,
    }
}
