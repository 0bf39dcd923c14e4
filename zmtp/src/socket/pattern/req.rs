//! REQ (RFC 28): strict send/receive alternation. A request goes to one REP or ROUTER, round-robin,
//! behind an empty delimiter frame; only a reply from that same peer, starting with the delimiter,
//! is accepted.

use bytes::Bytes;

use super::{lb, Delivery, PatternState};
use crate::socket::core::{Core, Inbound, PipeId, State};
use crate::socket::Error;
use crate::Message;

/// Starts a request: fails with [`Error::InvalidState`] while a reply is outstanding, unless
/// REQ_RELAXED (then the old request is forgotten). Returns the message with its envelope: with
/// REQ_CORRELATE a request id frame goes before the delimiter.
fn begin(core: &Core, mut msg: Message) -> Result<Message, Error> {
    let request_id = {
        let mut st = core.lock();
        let PatternState::Req { awaiting, request_id } = &mut st.pattern else { return Err(Error::InvalidState) };
        if awaiting.is_some() && !core.options.req_relaxed {
            return Err(Error::InvalidState);
        }
        *awaiting = None;
        *request_id = request_id.wrapping_add(1);
        *request_id
    };
    msg.push_front(Bytes::new());
    if core.options.req_correlate {
        msg.push_front(Bytes::copy_from_slice(&request_id.to_be_bytes()));
    }
    Ok(msg)
}

fn commit(st: &mut State, id: PipeId) {
    if let PatternState::Req { awaiting, .. } = &mut st.pattern {
        *awaiting = Some(id);
    }
}

/// Sends a request, waiting for room (see [`begin`]).
pub(crate) async fn send(core: &Core, msg: Message) -> Result<(), Error> {
    let msg = begin(core, msg)?;
    lb::send(core, msg, commit).await
}

/// Sends a request without waiting: [`Error::WouldBlock`] when no peer has room.
pub(crate) fn try_send(core: &Core, msg: Message) -> Result<(), Error> {
    let msg = begin(core, msg)?;
    lb::try_send(core, msg, commit)
}

/// Whether a reply is awaited (`recv` is valid).
pub(crate) fn awaiting(core: &Core) -> bool {
    matches!(core.lock().pattern, PatternState::Req { awaiting: Some(_), .. })
}

/// Accepts the reply from the peer we asked (with the request id, under REQ_CORRELATE), stripping
/// its envelope.
pub(crate) fn on_inbound(awaiting: &mut Option<PipeId>, correlate: Option<u32>, mut inbound: Inbound) -> Delivery {
    if *awaiting != Some(inbound.pipe) {
        return Delivery::Drop;
    }
    if let Some(id) = correlate {
        match inbound.msg.pop_front() {
            Some(f) if f[..] == id.to_be_bytes() => {}
            _ => return Delivery::Drop,
        }
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
