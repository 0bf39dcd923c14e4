//! The socket API on tokio.
//!
//! - [`Socket`]: bind, connect, send, receive; one type for every socket type.
//! - [`Options`]: libzmq's socket options.
//! - [`Monitor`] / [`MonitorEvent`]: what happens to connections.
//! - `core`: the pipes and state all socket types share; `pattern`: each type's routing strategy;
//!   `engine`: the task that drives one connection.
//!
//! Each bound endpoint runs an accept task, each connected endpoint a task that connects and
//! reconnects, and each connection a task of its own. They stop when the socket is closed or
//! dropped, after sending what is queued for up to the linger time.

#[cfg(unix)]
mod bell;
mod core;
mod driver;
mod engine;
mod error;
mod fair;
mod handshakes;
mod inproc;
mod monitor;
mod options;
mod pattern;
mod queue;
mod session;
mod sync;
mod wire;
pub mod zap;

use std::sync::Arc;
use std::time::Duration;

use self::core::{Core, Inbound};
use self::pattern::Unsent;
pub use crate::proto::mechanism::{ZapReply, ZapRequest};
pub use crate::subscriptions::Subscriptions;
pub use error::{DisconnectReason, Error, SendError, TrySendError};
pub use monitor::{Monitor, MonitorEvent};
pub use options::{HeartbeatConfig, Options, TcpKeepalive, MAX_METADATA};
pub use zap::{Authenticator, ZapHandler, ZAP_ENDPOINT};

use crate::proto::SocketType;
use crate::transport::{self, Endpoint, Listener, StreamOptions};
use crate::Message;

/// A ZeroMQ socket.
///
/// All methods take `&self`, so one task may send while another receives (DEALER, ROUTER), and a
/// socket may be shared through an `Arc`. The patterns' rules (REQ's alternation, REP's envelope)
/// apply to the socket as a whole.
///
/// Dropping the socket closes it: its tasks send what is queued for up to the linger time, in the
/// background. [`Socket::close`] does the same and waits for it.
#[derive(Debug)]
pub struct Socket {
    core: Arc<Core>,
    inbound: fair::Receiver<Inbound>,
}

impl Socket {
    /// A socket of type `socket_type` with default options.
    pub fn new(socket_type: SocketType) -> Socket {
        Socket::with_options(socket_type, Options::default())
    }

    /// A socket of type `socket_type` with `options`.
    pub fn with_options(socket_type: SocketType, options: Options) -> Socket {
        let (core, inbound) = Core::new(socket_type, options);
        Socket { core: Arc::new(core), inbound }
    }

    /// This socket's type.
    pub fn socket_type(&self) -> SocketType {
        self.core.socket_type
    }

    /// This socket's options.
    pub fn options(&self) -> &Options {
        &self.core.options
    }

    fn stream_options(&self) -> StreamOptions {
        let o = &self.core.options;
        StreamOptions { tcp_keepalive: o.tcp_keepalive, sndbuf: o.sndbuf, rcvbuf: o.rcvbuf, backlog: o.backlog }
    }

    /// A stream of this socket's connection events, from now on.
    pub fn monitor(&self) -> Monitor {
        self.core.monitors.subscribe()
    }

    /// Binds `endpoint` (`tcp://host:port`, `tcp://*:*`, `ipc:///path`, `inproc://name`) and accepts peers on it in
    /// the background. Returns the endpoint actually bound, with the port resolved (libzmq's
    /// ZMQ_LAST_ENDPOINT).
    pub async fn bind(&self, endpoint: &str) -> Result<String, Error> {
        self.core.options.security().map_err(Error::Security)?;
        let ep = Endpoint::parse(endpoint)?;
        if let Endpoint::Inproc(name) = &ep {
            inproc::bind(&self.core, name)?;
            self.core.monitors.emit(MonitorEvent::Listening { endpoint: ep.to_string() });
            return Ok(ep.to_string());
        }
        let (listener, bound) = Listener::bind(&ep, &self.stream_options()).await?;
        self.core.monitors.emit(MonitorEvent::Listening { endpoint: bound.clone() });
        let core = self.core.clone();
        let opts = self.stream_options();
        let name = bound.clone();
        self.core.tasks.spawn(async move { accept_loop(core, listener, name, opts).await });
        Ok(bound)
    }

    /// Connects to `endpoint` in the background and returns at once. The connection is made, and
    /// remade after it drops, every `reconnect_ivl` (doubling up to `reconnect_ivl_max`). Messages
    /// sent before it is up wait in its queue, up to the high-water mark.
    pub async fn connect(&self, endpoint: &str) -> Result<(), Error> {
        self.connect_pipe(endpoint, None).await.map(|_| ())
    }

    async fn connect_pipe(&self, endpoint: &str, preset: Option<bytes::Bytes>) -> Result<core::PipeId, Error> {
        self.core.options.security().map_err(Error::Security)?;
        let ep = Endpoint::parse(endpoint)?;
        let (id, mut pipe, rx) = self.core.new_pipe();
        pipe.preset_routing_id = preset;
        // With ZMQ_IMMEDIATE a tcp/ipc connection attaches its own pipe once it is up; inproc
        // connections are up as soon as the peer is bound, so they always use this one.
        if !self.core.options.immediate || matches!(ep, Endpoint::Inproc(_)) {
            self.core.attach(id, pipe);
        }
        let core = self.core.clone();
        if let Endpoint::Inproc(name) = ep {
            inproc::connect(&core, name, id, rx);
            return Ok(id);
        }
        let opts = self.stream_options();
        let name = ep.to_string();
        self.core.spawn_connection(async move { connect_loop(core, ep, name, opts, id, rx).await });
        Ok(id)
    }

    /// ROUTER: connects like [`Socket::connect`], and knows the peer by `routing_id` instead of the
    /// id the peer announces (libzmq's ZMQ_CONNECT_ROUTING_ID).
    pub async fn connect_with_routing_id(
        &self,
        endpoint: &str,
        routing_id: impl Into<bytes::Bytes>,
    ) -> Result<(), Error> {
        if self.core.socket_type != SocketType::Router {
            return Err(Error::NotSupported(self.core.socket_type));
        }
        self.connect_pipe(endpoint, Some(routing_id.into())).await.map(|_| ())
    }

    /// Sends a message.
    ///
    /// DEALER, PUSH, REQ and PAIR wait while every peer is at its high-water mark (or while there
    /// is no peer); PUB never waits and drops for subscribers that are full; ROUTER drops what it
    /// cannot route (see [`Options::router_mandatory`]); REP sends the reply to the current request.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before completing, the message was not sent.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), SendError> {
        let msg = match self.start_send_through(msg.into()) {
            Ok(()) => return Ok(()),
            Err(Unsent::Failed(error, message)) => return Err(SendError { error, message }),
            Err(Unsent::Blocked(msg, _)) => msg,
        };
        let mut slot = Some(msg);
        let sent = match self.core.options.send_timeout {
            Some(t) => tokio::time::timeout(t, self.send_waiting(&mut slot)).await.unwrap_or(Err(Error::WouldBlock)),
            None => self.send_waiting(&mut slot).await,
        };
        sent.map_err(|error| SendError { error, message: self.core.unframe(slot.take().unwrap_or_default()) })
    }

    /// REQ and REP with one connection: the message goes out from here, the connection polled in
    /// this task (see `driver`), instead of waking the connection's task for it. Their sends
    /// alternate with receives, so there is no batch to wait for, and the receive that follows
    /// would poll the connection anyway.
    #[inline]
    fn start_send_through(&self, msg: Message) -> Result<(), Unsent> {
        if self.core.sends_through() {
            if let Some(driven) = self.core.single_connection() {
                return driven.send_through(|| self.start_send(msg));
            }
        }
        self.start_send(msg)
    }

    /// Sends without waiting: [`TrySendError::WouldBlock`] where [`Socket::send`] would wait.
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<(), TrySendError> {
        match self.start_send(msg.into()) {
            Ok(()) => Ok(()),
            Err(Unsent::Failed(error, message)) => Err(TrySendError::Failed(SendError { error, message })),
            Err(Unsent::Blocked(message, _)) => Err(TrySendError::WouldBlock(self.core.unframe(message))),
        }
    }

    /// Frames and routes a message if it can be queued now; else gives it back: as passed if it
    /// failed, framed with what to wait for if it is blocked.
    #[inline]
    fn start_send(&self, msg: Message) -> Result<(), Unsent> {
        if !self.core.traits.drains_on_send {
            return self.core.send(msg);
        }
        // REQ: a new request makes whatever is still queued from earlier ones meaningless (libzmq
        // discards it too); once the request is framed, before it can be answered.
        let msg = self.core.begin(msg)?;
        while self.inbound.try_recv().is_some() {}
        self.core.route(msg).map_err(|unsent| match unsent {
            Unsent::Failed(e, m) => Unsent::Failed(e, self.core.unframe(m)),
            blocked => blocked,
        })
    }

    /// Routes the framed message in `slot` until it is queued, waiting for a peer or for room
    /// as the strategy says. The message stays in `slot` while this waits, so a caller that gives
    /// up still has it.
    async fn send_waiting(&self, slot: &mut Option<Message>) -> Result<(), Error> {
        let core = &*self.core;
        loop {
            let changed = core.pipes_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(msg) = slot.take() else { return Ok(()) };
            let wait = match core.route(msg) {
                Ok(()) => return Ok(()),
                Err(Unsent::Failed(e, msg)) => {
                    *slot = Some(msg);
                    return Err(e);
                }
                Err(Unsent::Blocked(msg, wait)) => {
                    *slot = Some(msg);
                    wait
                }
            };
            let room = match wait {
                pattern::Wait::Peer => None,
                pattern::Wait::Room(id) => core.pipe_sender(id).map(|tx| (id, tx)),
            };
            let Some((id, tx)) = room else {
                tokio::select! {
                    _ = changed => continue,
                    _ = core.closing.cancelled() => return Err(Error::Closed),
                }
            };
            let permit = tokio::select! {
                p = tx.reserve() => p,
                _ = changed => continue,
                _ = core.closing.cancelled() => return Err(Error::Closed),
            };
            // A pipe gone meanwhile: route again.
            if let Ok(permit) = permit {
                if let Some(msg) = slot.take() {
                    core.commit(id, msg, permit);
                }
                return Ok(());
            }
        }
    }

    /// Receives the next message, fair-queued across peers.
    ///
    /// ROUTER prefixes the sender's routing id; REP strips the envelope (and `send` restores it);
    /// REQ returns only the reply to its request; SUB only what matches its subscriptions.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped, no message is lost.
    pub async fn recv(&self) -> Result<Message, Error> {
        // A queued message for a type that takes messages as they come (DEALER, PULL, PAIR, XSUB,
        // XPUB), or filters them without a state to check first (ROUTER, SUB): return it without
        // the async layers below (ROUTER: about 40 instructions a message, callgrind). Two
        // branches: one loop for both cost PULL's as many.
        let core = &*self.core;
        if core.traits.receives && !core.options.conflate {
            if !core.traits.filters_inbound {
                if let Some(inbound) = self.take_inbound() {
                    return Ok(inbound.msg);
                }
            } else if !core.traits.checks_recv {
                while let Some(inbound) = self.take_inbound() {
                    if let Some(msg) = core.filter(inbound) {
                        return Ok(msg);
                    }
                }
            }
        }
        match self.core.options.recv_timeout {
            Some(t) => self.recv_timeout(t).await,
            None => self.recv_now().await,
        }
    }

    /// Receives a message if one is queued: [`Error::WouldBlock`] otherwise.
    pub fn try_recv(&self) -> Result<Message, Error> {
        futures_ready(self.recv_now())
    }

    async fn recv_now(&self) -> Result<Message, Error> {
        let core = &*self.core;
        core.recv_allowed()?;
        loop {
            let next = if core.options.conflate {
                let ready = core.conflated_ready.notified();
                match core.take_conflated() {
                    Some(i) => Some(i),
                    None => tokio::select! {
                        _ = ready => continue,
                        _ = core.closing.cancelled() => None,
                    },
                }
            } else {
                // No race with `closing` here: only `close(self)` and the drop cancel it, and
                // neither can run while this borrows the socket. (Registering with the token on
                // every receive that waits, and unlinking again, cost a REQ/REP round trip about
                // 1,500 instructions a side: callgrind, zbench.)
                match self.take_inbound() {
                    Some(m) => Some(m),
                    None => self.recv_assisted().await,
                }
            };
            let Some(next) = next else { return Err(Error::Closed) };
            if let Some(msg) = core.filter(next) {
                return Ok(msg);
            }
        }
    }

    /// The next inbound message if one is queued. A connection that waits for room in its lane
    /// (it stopped reading at the receive high-water mark) is due once the lane is down to the
    /// low-water mark; on a multi-threaded runtime, with one connection, this task then drives
    /// it (see `driver`: it hands over what it holds and reads on) instead of waking its task on
    /// a worker from here. That wake-up, from a thread that is not a worker, went through
    /// tokio's injection queue to a sleeping worker, which woke the other worker too (tokio's
    /// search): of a PULL's futex calls (16 B tcp, 2 workers, perf), 21% were this wake-up and
    /// 14% the second worker's. On a current-thread runtime the task runs on this thread anyway.
    #[inline(always)]
    fn take_inbound(&self) -> Option<Inbound> {
        self.inbound.try_recv_waking(|senders| self.wake_senders(senders))
    }

    #[cold]
    fn wake_senders(&self, senders: Vec<std::task::Waker>) {
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread);
        match multi_threaded.then(|| self.core.single_connection()).flatten() {
            // Woken while this task holds the connection's future, the task is not woken (the
            // poll that follows sees what the wake-up was for).
            Some(driven) => driven.send_through(|| queue::wake_all(senders)),
            None => queue::wake_all(senders),
        }
    }

    /// Waits for the next inbound message. With one connection, polls that connection here too
    /// (see `driver`): a reply is then read and returned without a hop through its task. Spins
    /// first for [`Options::recv_spin`], if set.
    async fn recv_assisted(&self) -> Option<Inbound> {
        let mut spin = driver::Spin::new(self.core.options.recv_spin);
        let Some(driven) = self.core.single_connection() else {
            let mut recv = std::pin::pin!(self.inbound.recv());
            return std::future::poll_fn(|cx| spin.poll(std::future::Future::poll(recv.as_mut(), cx), cx)).await;
        };
        let mut assist = driver::Assist::new(&driven);
        std::future::poll_fn(|cx| spin.poll(assist.poll_recv(&self.inbound, cx), cx)).await
    }

    /// Receives with a deadline (libzmq's ZMQ_RCVTIMEO); `Err(Error::WouldBlock)` on expiry.
    pub async fn recv_timeout(&self, timeout: Duration) -> Result<Message, Error> {
        tokio::time::timeout(timeout, self.recv_now()).await.unwrap_or(Err(Error::WouldBlock))
    }

    /// SUB / XSUB: receive messages whose first frame starts with `topic` (empty: everything).
    /// XPUB with XPUB_MANUAL: apply a subscription to the peer that sent the last one.
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        self.core.subscribe(topic.as_ref(), true)
    }

    /// SUB / XSUB: undo one [`Socket::subscribe`] of `topic`.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        self.core.subscribe(topic.as_ref(), false)
    }

    /// Closes the socket and waits until its connections have sent what was queued (up to the
    /// linger time) and every task has stopped.
    pub async fn close(self) {
        self.core.close();
        self.core.tasks.wait().await;
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.core.close();
    }
}

/// Polls a future that is known to complete without waiting.
fn futures_ready<T, F: std::future::Future<Output = Result<T, Error>>>(f: F) -> Result<T, Error> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(Error::WouldBlock),
    }
}

async fn accept_loop(core: Arc<Core>, listener: Listener, endpoint: String, opts: StreamOptions) {
    loop {
        // At `max_pending_handshakes`, accept only once one finishes or the oldest may be dropped.
        if let handshakes::Admission::WaitUntil(t) = core.handshakes.admission(tokio::time::Instant::now()) {
            core.handshakes.wait(t, &core.closing).await;
            if core.closing.is_cancelled() {
                break;
            }
            continue;
        }
        let accepted = tokio::select! {
            a = listener.accept(&opts) => a,
            _ = core.closing.cancelled() => break,
        };
        match accepted {
            Ok(stream) => {
                core.monitors.emit(MonitorEvent::Accepted { endpoint: endpoint.clone(), peer: stream.peer.clone() });
                let core2 = core.clone();
                let ep = endpoint.clone();
                let (id, pipe, mut rx) = core.new_pipe();
                let ticket = core.handshakes.admit(id);
                // Built here, not in the task, so that the task's future holds it once.
                let mut link = engine::Link::new(&core, stream, id, &endpoint, Some(pipe));
                core.spawn_connection(async move {
                    let ended = tokio::select! {
                        reason = link.run(&mut rx) => Some(reason),
                        _ = ticket.evicted() => None,
                    };
                    match ended {
                        Some(reason) => {
                            link.end(reason);
                        }
                        None => {
                            drop(link);
                            // Still in its handshake: its pipe was never attached, and nothing
                            // was delivered from it (the session ends only with the engine).
                            let reason = DisconnectReason::TooManyHandshakes;
                            core2.monitors.emit(MonitorEvent::HandshakeFailed { endpoint: ep, reason });
                            core2.detach(id, true);
                        }
                    }
                    drop(ticket);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%endpoint, error = %e, "accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = core.closing.cancelled() => break,
                }
            }
        }
    }
    core.monitors.emit(MonitorEvent::Closed { endpoint });
}

fn gives_up(reason: &DisconnectReason) -> bool {
    use crate::proto::ConnectionError;
    matches!(reason, DisconnectReason::Protocol(e) if !matches!(e, ConnectionError::HandshakeTimeout | ConnectionError::HeartbeatTimeout))
}

/// A random extra delay below `base` before a reconnect (as libzmq adds), so that peers that lost
/// their connection at the same moment (their server restarted) do not all come back at once.
fn jitter(base: Duration) -> Duration {
    let mut r = [0u8; 8];
    crate::proto::mechanism::random(&mut r);
    let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(u64::from_le_bytes(r).checked_rem(nanos).unwrap_or(0))
}

async fn connect_loop(
    core: Arc<Core>,
    ep: Endpoint,
    endpoint: String,
    opts: StreamOptions,
    id: core::PipeId,
    mut rx: core::PipeRx,
) {
    let base = core.options.reconnect_ivl;
    let max = core.options.reconnect_ivl_max;
    let mut delay = base;
    loop {
        core.monitors.emit(MonitorEvent::ConnectDelayed { endpoint: endpoint.clone() });
        let attempt = async {
            match core.options.connect_timeout {
                Some(t) => tokio::time::timeout(t, transport::connect(&ep, &opts))
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
                None => transport::connect(&ep, &opts).await,
            }
        };
        // After close, keep trying while messages wait for this peer, up to the linger time.
        let connected = tokio::select! {
            c = attempt => c,
            _ = core.stopped(|| !rx.data.is_empty()) => break,
        };
        match connected {
            Ok(stream) => {
                core.monitors.emit(MonitorEvent::Connected { endpoint: endpoint.clone() });
                let outcome = if core.options.immediate {
                    // ZMQ_IMMEDIATE: a fresh pipe per connection, attached once the handshake is
                    // done, gone (with what it queued) when the connection ends.
                    let (cid, pipe, mut crx) = core.new_pipe();
                    engine::run(&core, stream, cid, &mut crx, &endpoint, Some(pipe)).await
                } else {
                    engine::run(&core, stream, id, &mut rx, &endpoint, None).await
                };
                if outcome.reason == DisconnectReason::Closed {
                    break;
                }
                if gives_up(&outcome.reason) {
                    // As libzmq: a peer that breaks the protocol (or cannot talk to us) is not
                    // retried; timeouts and dropped connections are.
                    tracing::warn!(%endpoint, reason = %outcome.reason, "not reconnecting");
                    break;
                }
                if outcome.handshook {
                    delay = base;
                }
            }
            Err(e) => {
                core.monitors.emit(MonitorEvent::ConnectRetried {
                    endpoint: endpoint.clone(),
                    error: e.to_string(),
                    retry_in: delay,
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay + jitter(base)) => {}
            _ = core.stopped(|| !rx.data.is_empty()) => break,
        }
        if max > base {
            delay = (delay * 2).min(max);
        }
    }
    core.remove_pipe(id);
    core.monitors.emit(MonitorEvent::Closed { endpoint });
}
