//! Monitor events: a typed stream of what happens to a socket's connections.

use tokio::sync::mpsc;

use super::error::DisconnectReason;
use crate::proto::PeerInfo;

/// Events kept for a monitor that is not read; later ones are dropped.
const MONITOR_CAPACITY: usize = 1024;

/// Something that happened to one of the socket's endpoints or connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A bind succeeded on this endpoint.
    Listening {
        /// The bound endpoint.
        endpoint: String,
    },
    /// A connection was accepted on a bound endpoint.
    Accepted {
        /// The bound endpoint.
        endpoint: String,
        /// The peer's address.
        peer: String,
    },
    /// A connect attempt started and has not completed yet.
    ConnectDelayed {
        /// The endpoint.
        endpoint: String,
    },
    /// An outgoing connection was established (handshake not yet done).
    Connected {
        /// The endpoint connected to.
        endpoint: String,
    },
    /// A connect attempt failed; another follows after `retry_in`.
    ConnectRetried {
        /// The endpoint.
        endpoint: String,
        /// Why it failed.
        error: String,
        /// Delay before the next attempt.
        retry_in: std::time::Duration,
    },
    /// The ZMTP handshake finished.
    HandshakeSucceeded {
        /// The endpoint (bound or connected).
        endpoint: String,
        /// What the peer told us.
        peer: PeerInfo,
    },
    /// The ZMTP handshake failed.
    HandshakeFailed {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: DisconnectReason,
    },
    /// An established connection ended.
    Disconnected {
        /// The endpoint (bound or connected).
        endpoint: String,
        /// The peer's address (for a connecting endpoint and inproc, the endpoint itself).
        peer: String,
        /// The routing id the socket knew the peer by (what a ROUTER prefixes its messages
        /// with; for other types the id the peer announced, often empty).
        routing_id: bytes::Bytes,
        /// Why.
        reason: DisconnectReason,
    },
    /// A peer (of a PUB or XPUB) reached its subscription limit
    /// ([`crate::Options::max_topics_per_peer`], [`crate::Options::max_topic_bytes_per_peer`]):
    /// this and later new topics from it are ignored. Reported once per connection.
    SubscriptionLimit {
        /// The endpoint.
        endpoint: String,
        /// The peer's distinct topics when the limit was hit.
        topics: usize,
        /// Their octets.
        bytes: usize,
    },
    /// A listener or connecter for this endpoint stopped.
    Closed {
        /// The endpoint.
        endpoint: String,
    },
}

/// The receiving end of [`crate::Socket::monitor`].
#[derive(Debug)]
pub struct Monitor {
    pub(crate) rx: mpsc::Receiver<MonitorEvent>,
}

impl Monitor {
    /// The next event; `None` once the socket is gone.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is either returned or stays queued.
    pub async fn recv(&mut self) -> Option<MonitorEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<MonitorEvent> {
        self.rx.try_recv().ok()
    }
}

/// The sending side, held by the socket core.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    txs: std::sync::Mutex<Vec<mpsc::Sender<MonitorEvent>>>,
}

impl Monitors {
    pub(crate) fn subscribe(&self) -> Monitor {
        let (tx, rx) = mpsc::channel(MONITOR_CAPACITY);
        if let Ok(mut txs) = self.txs.lock() {
            txs.push(tx);
        }
        Monitor { rx }
    }

    pub(crate) fn emit(&self, ev: MonitorEvent) {
        tracing::debug!(event = ?ev, "socket event");
        if let Ok(mut txs) = self.txs.lock() {
            txs.retain(|tx| !matches!(tx.try_send(ev.clone()), Err(mpsc::error::TrySendError::Closed(_))));
        }
    }
}
