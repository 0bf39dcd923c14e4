//! [`proxy`] and [`proxy_steerable`]: libzmq's `zmq_proxy` and `zmq_proxy_steerable`.
//!
//! Messages received on the frontend are sent on the backend and the other way round; each one is
//! also sent to the capture socket, if any. A ROUTER frontend with a DEALER backend is the request
//! queue a Salt-style master runs in front of its workers; XSUB/XPUB make a pub-sub forwarder.

use bytes::Bytes;

use crate::socket::Error;
use crate::{Message, Socket, SocketType};

/// Message and byte counts, as `zmq_proxy_steerable`'s STATISTICS reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStatistics {
    /// Messages received on the frontend.
    pub frontend_msgs_in: u64,
    /// Bytes received on the frontend.
    pub frontend_bytes_in: u64,
    /// Messages sent on the frontend.
    pub frontend_msgs_out: u64,
    /// Bytes sent on the frontend.
    pub frontend_bytes_out: u64,
    /// Messages received on the backend.
    pub backend_msgs_in: u64,
    /// Bytes received on the backend.
    pub backend_bytes_in: u64,
    /// Messages sent on the backend.
    pub backend_msgs_out: u64,
    /// Bytes sent on the backend.
    pub backend_bytes_out: u64,
}

impl ProxyStatistics {
    /// The eight counters as libzmq sends them: one 8-octet frame each, in host byte order.
    pub fn to_message(&self) -> Message {
        [
            self.frontend_msgs_in,
            self.frontend_bytes_in,
            self.frontend_msgs_out,
            self.frontend_bytes_out,
            self.backend_msgs_in,
            self.backend_bytes_in,
            self.backend_msgs_out,
            self.backend_bytes_out,
        ]
        .iter()
        .map(|n| Bytes::copy_from_slice(&n.to_ne_bytes()))
        .collect()
    }
}

fn can_recv(t: SocketType) -> bool {
    !matches!(t, SocketType::Pub | SocketType::Push)
}

/// Runs until either socket fails (e.g. is closed); never returns `Ok`.
///
/// # Cancel safety
/// Dropping the future stops the proxy; a message received but not yet forwarded is lost.
pub async fn proxy(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result<(), Error> {
    run(frontend, backend, capture, None).await.map(|_| ())
}

/// Like [`proxy`], steered by commands received on `control` (any socket type that receives;
/// libzmq programs use PAIR or REP): `PAUSE`, `RESUME`, `TERMINATE` (returns the statistics) and
/// `STATISTICS` (replies with [`ProxyStatistics::to_message`]).
pub async fn proxy_steerable(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: &Socket,
) -> Result<ProxyStatistics, Error> {
    run(frontend, backend, capture, Some(control)).await
}

async fn run(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: Option<&Socket>,
) -> Result<ProxyStatistics, Error> {
    let mut stats = ProxyStatistics::default();
    let mut paused = false;
    let front_in = can_recv(frontend.socket_type());
    let back_in = can_recv(backend.socket_type());
    loop {
        tokio::select! {
            m = frontend.recv(), if front_in && !paused => {
                let s = &mut stats;
                let counts = [&mut s.frontend_msgs_in, &mut s.frontend_bytes_in, &mut s.backend_msgs_out, &mut s.backend_bytes_out];
                forward(m?, backend, capture, counts).await?;
            }
            m = backend.recv(), if back_in && !paused => {
                let s = &mut stats;
                let counts = [&mut s.backend_msgs_in, &mut s.backend_bytes_in, &mut s.frontend_msgs_out, &mut s.frontend_bytes_out];
                forward(m?, frontend, capture, counts).await?;
            }
            cmd = recv_control(control) => {
                let cmd = cmd?;
                // libzmq copies control commands to the capture socket too.
                if let Some(c) = capture {
                    c.send(cmd.clone()).await?;
                }
                match cmd.first().map(|f| &f[..]) {
                    Some(b"PAUSE") => paused = true,
                    Some(b"RESUME") => paused = false,
                    Some(b"TERMINATE") => return Ok(stats),
                    Some(b"STATISTICS") => {
                        if let Some(c) = control {
                            c.send(stats.to_message()).await?;
                        }
                    }
                    _ => tracing::warn!(?cmd, "unknown proxy control command"),
                }
                // A REP control socket must answer every command; libzmq answers STATISTICS only.
                if let Some(c) = control.filter(|c| c.socket_type() == SocketType::Rep) {
                    if cmd.first().map(|f| &f[..]) != Some(b"STATISTICS") {
                        c.send(Message::from(Bytes::new())).await?;
                    }
                }
            }
        }
    }
}

/// Counts a message in (messages, bytes), copies it to the capture socket, sends it on `to` and
/// counts it out (messages, bytes).
async fn forward(msg: Message, to: &Socket, capture: Option<&Socket>, counts: [&mut u64; 4]) -> Result<(), Error> {
    let len = msg.total_len() as u64;
    let [msgs_in, bytes_in, msgs_out, bytes_out] = counts;
    *msgs_in += 1;
    *bytes_in += len;
    if let Some(c) = capture {
        c.send(msg.clone()).await?;
    }
    to.send(msg).await?;
    *msgs_out += 1;
    *bytes_out += len;
    Ok(())
}

async fn recv_control(control: Option<&Socket>) -> Result<Message, Error> {
    match control {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}
