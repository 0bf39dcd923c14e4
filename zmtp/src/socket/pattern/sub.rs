//! SUB / XSUB: subscriptions are kept locally (to filter what arrives and to replay them after a
//! reconnect) and sent to every publisher; a topic goes on the wire when first subscribed and is
//! cancelled when its last reference goes.

use bytes::Bytes;

use super::Delivery;
use crate::socket::core::{Control, Core, Inbound, Pipe};
use crate::socket::Subscriptions;

/// Sends every current subscription to a pipe that just became ready.
pub(crate) fn replay(subs: &Subscriptions, pipe: &Pipe) {
    for topic in subs.topics() {
        let _ = pipe.ctl.send(Control::Subscribe(topic.clone()));
    }
}

/// Adds (or removes) a subscription and tells the ready publishers if the set changed.
pub(crate) fn update(core: &Core, topic: &[u8], subscribe: bool) {
    let mut guard = core.lock();
    let st = &mut *guard;
    let super::PatternState::Sub(subs) = &mut st.pattern else { return };
    let changed = if subscribe { subs.add(topic) } else { subs.remove(topic) };
    if !changed {
        return;
    }
    let topic = Bytes::copy_from_slice(topic);
    for pipe in st.pipes.values().filter(|p| p.ready) {
        let ctl = if subscribe { Control::Subscribe(topic.clone()) } else { Control::Cancel(topic.clone()) };
        let _ = pipe.ctl.send(ctl);
    }
}

/// Drops what we are not subscribed to (a publisher may send more than we asked for).
pub(crate) fn on_inbound(subs: &Subscriptions, inbound: Inbound) -> Delivery {
    let topic = inbound.msg.first().map_or(&[][..], |f| &f[..]);
    if subs.matches(topic) {
        Delivery::Deliver(inbound.msg)
    } else {
        Delivery::Drop
    }
}
