//! The request channel to the master's ret port: one REQ socket, one request at a time.
//!
//! Mirrors `transport/zeromq.py` `RequestClient` of Salt 3008.5:
//!
//! - a REQ socket connected to `tcp://master:master_port` with `LINGER 0`,
//!   `RECONNECT_IVL_MAX 5000` ms and the minion's TCP keepalive settings
//!   (`crate::sockopts::req_options`);
//! - requests are queued and sent by one task (`_send_recv`), since a REQ socket allows one
//!   outstanding request;
//! - a request that gets no reply within its timeout fails with [`ReqError::Timeout`] and the
//!   socket is thrown away and re-created for the next request — a REQ socket that lost its
//!   reply is stuck in "awaiting reply" forever.
//!
//! Frames are opaque here: callers pass msgpack bytes and get the reply frame back.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use zmtp::{Options, Socket, SocketType};

/// Requests waiting for the sender task.
const QUEUE: usize = 256;

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReqError {
    /// No reply within the timeout (Salt's `SaltReqTimeoutError`).
    #[error("Message timed out")]
    Timeout,
    /// The socket could not be set up, or failed.
    #[error("request socket error: {0}")]
    Socket(String),
    /// The reply was an empty message.
    #[error("empty reply")]
    Empty,
    /// The client has been shut down.
    #[error("request client closed")]
    Closed,
}

struct Request {
    frame: Bytes,
    timeout: Duration,
    reply: oneshot::Sender<Result<Bytes, ReqError>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("len", &self.frame.len()).field("timeout", &self.timeout).finish()
    }
}

/// A handle to the request task; cheap to clone. The task and its socket go away when the last
/// handle is dropped.
#[derive(Debug, Clone)]
pub struct RequestClient {
    tx: mpsc::Sender<Request>,
    uri: std::sync::Arc<str>,
}

impl RequestClient {
    /// Start a client for `uri` (`tcp://host:port`) with socket `options`. Needs a tokio runtime.
    pub fn new(uri: &str, options: Options) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(uri.to_owned(), options, rx));
        RequestClient { tx, uri: uri.into() }
    }

    /// The master URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Send one request frame and wait for its reply frame. `timeout` counts from the moment the
    /// request is put on the wire (requests ahead of it in the queue do not eat into it).
    pub async fn send(&self, frame: impl Into<Bytes>, timeout: Duration) -> Result<Bytes, ReqError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { frame: frame.into(), timeout, reply }).await.map_err(|_| ReqError::Closed)?;
        rx.await.unwrap_or(Err(ReqError::Closed))
    }

    /// [`RequestClient::send`], tried up to `tries` times on timeouts (`_send_with_retry`).
    pub async fn send_with_retry(
        &self,
        frame: impl Into<Bytes>,
        timeout: Duration,
        tries: u32,
    ) -> Result<Bytes, ReqError> {
        self.send_with_retry_counted(frame, timeout, tries, || {}).await
    }

    /// [`RequestClient::send_with_retry`], calling `on_try` before each try.
    pub async fn send_with_retry_counted(
        &self,
        frame: impl Into<Bytes>,
        timeout: Duration,
        tries: u32,
        on_try: impl Fn(),
    ) -> Result<Bytes, ReqError> {
        let frame = frame.into();
        let mut attempt = 1;
        loop {
            on_try();
            match self.send(frame.clone(), timeout).await {
                Err(ReqError::Timeout | ReqError::Socket(_)) if attempt < tries.max(1) => {
                    tracing::debug!("request to {} timed out (try {attempt}/{tries}); retrying", self.uri);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

async fn connect(uri: &str, options: &Options) -> Result<Socket, ReqError> {
    let socket = Socket::with_options(SocketType::Req, options.clone());
    socket.connect(uri).await.map_err(|e| ReqError::Socket(format!("cannot connect to {uri}: {e}")))?;
    Ok(socket)
}

/// The `_send_recv` loop.
async fn run(uri: String, options: Options, mut rx: mpsc::Receiver<Request>) {
    let mut socket: Option<Socket> = None;
    while let Some(req) = rx.recv().await {
        if req.reply.is_closed() {
            continue;
        }
        let sock = match socket.take() {
            Some(s) => s,
            None => match connect(&uri, &options).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = req.reply.send(Err(e));
                    continue;
                }
            },
        };
        let deadline = Instant::now() + req.timeout;
        let exchange = async {
            sock.send(req.frame).await.map_err(|e| ReqError::Socket(e.to_string()))?;
            let msg = sock.recv().await.map_err(|e| ReqError::Socket(e.to_string()))?;
            msg.into_frames().into_iter().next().ok_or(ReqError::Empty)
        };
        let mut reply = req.reply;
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, exchange) => r.unwrap_or(Err(ReqError::Timeout)),
            // The caller gave up: the socket still waits for a reply it will never read.
            _ = reply.closed() => Err(ReqError::Timeout),
        };
        match &outcome {
            Ok(_) | Err(ReqError::Empty) => socket = Some(sock),
            Err(e) => {
                // A REQ socket without its reply is stuck: start over with a fresh one, as Salt
                // does ("Request timed out while waiting for a response. reconnecting.").
                tracing::warn!("Request to {uri} failed ({e}); reconnecting");
                drop(sock);
            }
        }
        let _ = reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_serialised() {
        let rep = Socket::new(SocketType::Rep);
        let Ok(ep) = rep.bind("tcp://127.0.0.1:*").await else { return };
        let client = RequestClient::new(&ep, Options::default().linger(Some(Duration::ZERO)));
        let echo = tokio::spawn(async move {
            for _ in 0..20 {
                let Ok(m) = rep.recv().await else { return };
                let _ = rep.send(m).await;
            }
        });
        // Concurrent callers on one REQ socket: each gets its own reply.
        let mut calls = Vec::new();
        for i in 0..20 {
            let c = client.clone();
            calls.push(tokio::spawn(
                async move { (i, c.send(format!("m{i}").into_bytes(), Duration::from_secs(5)).await) },
            ));
        }
        for call in calls {
            let Ok((i, r)) = call.await else { panic!("join") };
            assert_eq!(r.ok().as_deref(), Some(format!("m{i}").as_bytes()));
        }
        let _ = echo.await;
    }

    #[tokio::test]
    async fn stuck_socket_is_replaced() {
        // One REP that ignores the first request and answers later ones: only a new REQ socket
        // (a new connection) gets its requests through, since the old one waits forever.
        let rep = Socket::new(SocketType::Router);
        let Ok(ep) = rep.bind("tcp://127.0.0.1:*").await else { return };
        let client = RequestClient::new(&ep, Options::default().linger(Some(Duration::ZERO)));
        let server = tokio::spawn(async move {
            let _ignored = rep.recv().await;
            let Ok(mut m) = rep.recv().await else { return };
            // [id, "", body] -> [id, "", body]
            let body = m.pop_back().unwrap_or_default();
            m.push_back(body);
            let _ = rep.send(m).await;
        });
        assert_eq!(client.send(&b"lost"[..], Duration::from_millis(300)).await, Err(ReqError::Timeout));
        let r = client.send(&b"again"[..], Duration::from_secs(5)).await;
        assert_eq!(r.ok().as_deref(), Some(&b"again"[..]));
        let _ = server.await;
    }
}
