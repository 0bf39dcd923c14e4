//! PUB / XPUB: every ready pipe whose peer subscribed to a prefix of the first frame gets the
//! message (with INVERT_MATCHING: every pipe whose peer did not). Bodies are shared, not copied. A pipe at its high-water mark loses the message; the
//! others do not, and the sender never waits.

use crate::socket::core::Core;
use crate::Message;

/// Fans `msg` out to the matching subscribers.
pub(crate) fn send(core: &Core, msg: Message) {
    let invert = core.options.invert_matching;
    let st = core.lock();
    let topic = msg.first().map_or(&[][..], |f| &f[..]);
    // Full or closed: that subscriber misses the message, as with libzmq. The last subscriber gets
    // the message itself, the others a clone sharing its frames.
    let mut previous = None;
    for pipe in st.pipes.values() {
        if pipe.ready && pipe.subscriptions.matches(topic) != invert {
            if let Some(p) = previous.replace(pipe) {
                let _ = p.tx.try_send(msg.clone());
            }
        }
    }
    if let Some(p) = previous {
        let _ = p.tx.try_send(msg);
    }
}

/// XPUB_MANUAL: the application applies a subscription to the pipe that sent the last one.
pub(crate) fn manual_subscription(core: &Core, topic: &[u8], subscribe: bool) {
    let mut guard = core.lock();
    let st = &mut *guard;
    let super::PatternState::XPub { last_pipe: Some(id), .. } = st.pattern else { return };
    if let Some(pipe) = st.pipes.get_mut(&id) {
        if subscribe {
            pipe.subscriptions.add(topic);
        } else {
            pipe.subscriptions.remove(topic);
        }
    }
}
