//! One connection's session (libzmq's `session_base`): the glue between what a connection reports
//! and the socket's pipes, written once for every transport — tcp and ipc (`engine`, which drives a
//! `proto::Connection`) and inproc (`inproc`, which moves messages between two sockets).
//!
//! A session attaches its pipe when the peer is ready (an accepted connection's own pipe; a
//! connecting endpoint's pipe is attached already and outlives the connection), asks the routing
//! strategy to admit the peer (its routing id, or a refusal) and returns what to send the peer
//! first; then it hands over the peer's messages and subscriptions under the peer's routing id
//! (reporting a peer's subscription limit once), and at the end tells the monitors which peer
//! left and why, and detaches the pipe. The transports only move bytes or messages.

use std::sync::Arc;

use bytes::Bytes;

use super::core::{Core, Inbound, Pipe, PipeId};
use super::error::DisconnectReason;
use super::monitor::MonitorEvent;
use super::pattern::{Refused, SubscriptionLimit};
use crate::proto::{ConnectionError, Incompatibility, PeerInfo};
use crate::Message;

/// The socket's side of one connection.
#[derive(Debug)]
pub(crate) struct Session {
    core: Arc<Core>,
    pipe: PipeId,
    /// An accepted connection's pipe, attached when the peer is ready and removed at the end.
    own: Option<Pipe>,
    /// The pipe goes with the connection (else it is a connecting endpoint's, which stays).
    removes: bool,
    endpoint: String,
    /// The peer's address (the endpoint itself for a connecting endpoint and inproc).
    peer: String,
    /// How the socket knows the peer, once ready.
    routing_id: Bytes,
    handshook: bool,
    /// The peer reached its subscription limit (reported once).
    capped: bool,
}

impl Session {
    /// A session on pipe `pipe` of `core`: `own` is an accepted connection's pipe (attached when
    /// the peer is ready, removed at the end); `None` for a connecting endpoint's, attached
    /// already.
    pub(crate) fn new(core: Arc<Core>, pipe: PipeId, own: Option<Pipe>, endpoint: &str, peer: &str) -> Session {
        Session {
            core,
            pipe,
            removes: own.is_some(),
            own,
            endpoint: endpoint.to_owned(),
            peer: peer.to_owned(),
            routing_id: Bytes::new(),
            handshook: false,
            capped: false,
        }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    pub(crate) fn pipe(&self) -> PipeId {
        self.pipe
    }

    /// The endpoint bound or connected.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the peer was admitted.
    pub(crate) fn handshook(&self) -> bool {
        self.handshook
    }

    /// The peer's handshake is done: attaches the pipe and admits the peer (or refuses it: the
    /// connection must end with the reason). Returns what to send the peer before anything else.
    pub(crate) fn ready(&mut self, peer: PeerInfo) -> Result<Option<Message>, DisconnectReason> {
        if let Some(pipe) = self.own.take() {
            self.core.handshakes.done(self.pipe);
            self.core.attach(self.pipe, pipe);
        }
        let ready = self.core.ready(self.pipe, &peer).map_err(|refused| match refused {
            Refused::RoutingIdInUse => {
                DisconnectReason::Protocol(ConnectionError::PeerIncompatible(Incompatibility::RoutingIdInUse))
            }
            Refused::PairHasPeer => {
                DisconnectReason::Protocol(ConnectionError::PeerIncompatible(Incompatibility::PairHasPeer))
            }
            // Taken away meanwhile (a ROUTER handover, the socket closing).
            Refused::Gone => DisconnectReason::Closed,
        })?;
        self.routing_id = ready.routing_id;
        self.handshook = true;
        self.core.monitors.emit(MonitorEvent::HandshakeSucceeded { endpoint: self.endpoint.clone(), peer });
        Ok(ready.greeting)
    }

    /// A message from the peer, tagged for the inbound side; `None` if the socket type does not
    /// receive.
    #[inline]
    pub(crate) fn inbound(&self, msg: Message) -> Option<Inbound> {
        self.core.inbound(self.pipe, &self.routing_id, msg)
    }

    /// Hands a message from the peer over, waiting for room in its lane; `Err` once the socket
    /// is gone.
    pub(crate) async fn deliver(&self, msg: Message) -> Result<(), ()> {
        match self.inbound(msg) {
            Some(inbound) => self.core.deliver(inbound).await,
            None => Ok(()),
        }
    }

    /// The peer subscribed or cancelled (we are PUB or XPUB): what to hand the application, if
    /// anything. The first one refused for the peer's limit is logged and reported to monitors.
    pub(crate) fn subscription(&mut self, topic: &[u8], subscribe: bool) -> Option<Inbound> {
        match self.core.on_subscription(self.pipe, topic, subscribe) {
            Ok(inbound) => inbound,
            Err(SubscriptionLimit { topics, bytes }) => {
                if !self.capped {
                    self.capped = true;
                    tracing::warn!(
                        endpoint = %self.endpoint, topics, bytes,
                        "peer reached its subscription limit; ignoring its new topics"
                    );
                    self.core.monitors.emit(MonitorEvent::SubscriptionLimit {
                        endpoint: self.endpoint.clone(),
                        topics,
                        bytes,
                    });
                }
                None
            }
        }
    }

    /// The connection ended: tells the monitors (a failed handshake, or which peer left) and
    /// detaches the pipe.
    pub(crate) fn end(self, reason: &DisconnectReason) {
        let endpoint = self.endpoint;
        let reason = reason.clone();
        if self.handshook {
            self.core.monitors.emit(MonitorEvent::Disconnected {
                endpoint,
                peer: self.peer,
                routing_id: self.routing_id,
                reason,
            });
        } else {
            self.core.monitors.emit(MonitorEvent::HandshakeFailed { endpoint, reason });
        }
        self.core.detach(self.pipe, self.removes);
    }
}
