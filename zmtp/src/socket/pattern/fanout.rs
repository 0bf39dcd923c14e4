//! PUB / XPUB: every ready pipe whose peer subscribed to a prefix of the first frame gets the
//! message. Bodies are shared, not copied. A pipe at its high-water mark loses the message; the
//! others do not, and the sender never waits.

use crate::socket::core::Core;
use crate::Message;

/// Fans `msg` out to the matching subscribers.
pub(crate) fn send(core: &Core, msg: Message) {
    let st = core.lock();
    let topic = msg.first().map_or(&[][..], |f| &f[..]);
    for pipe in st.pipes.values() {
        if pipe.ready && pipe.subscriptions.matches(topic) {
            // Full or closed: this subscriber misses the message, as with libzmq.
            let _ = pipe.tx.try_send(msg.clone());
        }
    }
}
