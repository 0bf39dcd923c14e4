//! SUB / XSUB: subscriptions are kept locally (to filter what arrives and to replay them after a
//! reconnect) and sent to every publisher; a topic goes on the wire when first subscribed and is
//! cancelled when its last reference goes.

use crate::socket::queue::TrySendError;
use bytes::Bytes;

use super::Delivery;
use crate::socket::core::{Control, Core, Inbound, Pipe};
use crate::socket::Subscriptions;

/// Sends every current subscription to a pipe that just became ready.
pub(crate) fn replay(subs: &Subscriptions, pipe: &Pipe) {
    for topic in subs.topics() {
        if let Some(ctl) = &pipe.ctl {
            let _ = ctl.send(Control::Subscribe(topic.clone()));
        }
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
        if let Some(tx) = &pipe.ctl {
            let _ = tx.send(ctl);
        }
    }
}

/// SUB drops what it is not subscribed to (a publisher may send more than asked for), or with
/// INVERT_MATCHING what it is subscribed to. XSUB does not filter.
pub(crate) fn on_inbound(subs: &Subscriptions, invert: bool, inbound: Inbound) -> Delivery {
    let topic = inbound.msg.first().map_or(&[][..], |f| &f[..]);
    if subs.matches(topic) != invert {
        Delivery::Deliver(inbound.msg)
    } else {
        Delivery::Drop
    }
}

/// XSUB send: a message starting with `0x01` / `0x00` is a subscription / cancellation and goes to
/// every publisher (a cancellation only when its last reference goes); anything else is sent to
/// every publisher as a message.
pub(crate) fn xsub_send(core: &Core, msg: crate::Message) {
    let first = msg.first().cloned().unwrap_or_default();
    match first.first() {
        Some(&flag @ (0 | 1)) if msg.len() == 1 => {
            let topic = first.slice(1..);
            let mut guard = core.lock();
            let st = &mut *guard;
            let super::PatternState::Sub(subs) = &mut st.pattern else { return };
            let forward = if flag == 1 {
                subs.add(&topic);
                true
            } else {
                subs.remove(&topic)
            };
            if forward {
                for pipe in st.pipes.values().filter(|p| p.ready) {
                    let ctl =
                        if flag == 1 { Control::Subscribe(topic.clone()) } else { Control::Cancel(topic.clone()) };
                    if let Some(tx) = &pipe.ctl {
                        let _ = tx.send(ctl);
                    }
                }
            }
        }
        _ => {
            let st = core.lock();
            for pipe in st.pipes.values().filter(|p| p.ready) {
                if let Err(TrySendError::Full(_) | TrySendError::Closed(_)) = pipe.tx.try_send(msg.clone()) {}
            }
        }
    }
}
