//! REP (RFC 28): receives one request at a time, keeps its envelope (every frame up to and
//! including the empty delimiter) and puts it back in front of the reply, which goes to the pipe
//! the request came from.

use super::{Delivery, PatternState};
use crate::socket::core::{Core, Inbound, PipeId};
use crate::socket::Error;
use crate::Message;

/// Whether a request is being answered (`send` is valid, `recv` is not).
pub(crate) fn answering(core: &Core) -> bool {
    matches!(core.lock().pattern, PatternState::Rep(Some(_)))
}

/// Splits off the envelope; a request without a delimiter is malformed and dropped.
pub(crate) fn on_inbound(pending: &mut Option<(PipeId, Message)>, mut inbound: Inbound) -> Delivery {
    let Some(delimiter) = inbound.msg.iter().position(|f| f.is_empty()) else {
        return Delivery::Drop;
    };
    let body = inbound.msg.split_off(delimiter + 1);
    *pending = Some((inbound.pipe, inbound.msg));
    Delivery::Deliver(body)
}

/// Sends the reply to the current request. If its peer is gone or full, the reply is dropped, as
/// libzmq does.
pub(crate) fn send(core: &Core, msg: Message) -> Result<(), Error> {
    let mut st = core.lock();
    let PatternState::Rep(pending) = &mut st.pattern else { return Err(Error::InvalidState) };
    let Some((pipe, mut envelope)) = pending.take() else { return Err(Error::InvalidState) };
    envelope.extend(msg);
    if let Some(p) = st.pipes.get(&pipe) {
        let _ = p.tx.try_send(envelope);
    }
    Ok(())
}
