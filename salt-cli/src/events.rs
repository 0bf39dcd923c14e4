//! The master event bus as a client sees it (`salt/utils/event.py` `MasterEvent`, §2.1 of
//! `salt-master.md`): subscribe on `master_event_pub.ipc`, fire on `master_event_pull.ipc`
//! (Unix stream sockets, or `127.0.0.1:tcp_master_pub_port` / `tcp_master_pull_port` with
//! `ipc_mode: tcp`).
//!
//! The subscriber reads in a task of its own from the moment it connects, so events that arrive
//! before the caller knows which jid to look for (the master fires `salt/job/<jid>/new` before it
//! answers the publish) are kept, bounded by [`QUEUE`].
//!
//! A connect returns once the kernel has queued the connection, before the master has accepted
//! it and added it to its subscribers: returns fired in that window never reach this subscriber
//! (the soak saw whole jobs reported "No return received" while the job cache held every
//! return, with minions answering in milliseconds). So [`Subscriber::connect`] fires a probe
//! event of its own (`salt/cli/subscribed/<pid>-<micros>`) and waits until it comes back: from
//! then on every event the master fires reaches us.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use salt_proto::event;

use crate::opts::MasterOpts;
use crate::py::Value;

/// Events held for the reader; beyond this the subscriber waits (the master drops a subscriber
/// that does not keep up, as it does for Salt's own CLI).
const QUEUE: usize = 4096;

/// The largest single event accepted from the bus.
pub const MAX_EVENT: usize = 64 * 1024 * 1024;

/// One event: its tag and data.
#[derive(Debug, Clone)]
pub struct Event {
    pub tag: String,
    pub data: Value,
}

/// A subscription to the master event bus.
#[derive(Debug)]
pub struct Subscriber {
    rx: mpsc::Receiver<Event>,
    /// Events that came while waiting for the probe, handed out first.
    early: std::collections::VecDeque<Event>,
}

async fn connect_stream(opts: &MasterOpts, pull: bool) -> io::Result<Box<dyn Stream>> {
    if opts.ipc_mode == "tcp" {
        let port = if pull { opts.tcp_master_pull_port } else { opts.tcp_master_pub_port };
        let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        Ok(Box::new(s))
    } else {
        let name = if pull { "master_event_pull.ipc" } else { "master_event_pub.ipc" };
        let s = tokio::net::UnixStream::connect(opts.sock_dir.join(name)).await?;
        Ok(Box::new(s))
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Subscriber {
    /// Connect to the publishing side of the bus (`connect_pub`), waiting at most `timeout`, and
    /// make sure the master counts us among its subscribers (the probe, see the module docs). A
    /// probe that does not come back within `timeout` (a bus that does not echo) is not an error.
    pub async fn connect(opts: &MasterOpts, timeout: Duration) -> io::Result<Self> {
        let stream = tokio::time::timeout(timeout, connect_stream(opts, false))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "event bus connect timed out"))??;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(read_events(stream, tx));
        let mut sub = Subscriber { rx, early: std::collections::VecDeque::new() };
        let probe = format!("salt/cli/subscribed/{}-{}", std::process::id(), salt_proto::util::unix_micros());
        if let Err(e) = fire(opts, &probe, Value::Map(Vec::new())).await {
            tracing::debug!("event bus probe not fired: {e}");
            return Ok(sub);
        }
        let seen = tokio::time::timeout(timeout, async {
            while let Some(ev) = sub.rx.recv().await {
                if ev.tag == probe {
                    return true;
                }
                if sub.early.len() < QUEUE {
                    sub.early.push_back(ev);
                }
            }
            false
        })
        .await;
        if seen != Ok(true) {
            tracing::debug!("event bus probe {probe} not seen back");
        }
        Ok(sub)
    }

    /// The next event, or `None` when the bus closed.
    pub async fn next(&mut self) -> Option<Event> {
        match self.early.pop_front() {
            Some(ev) => Some(ev),
            None => self.rx.recv().await,
        }
    }
}

async fn read_events(mut stream: Box<dyn Stream>, tx: mpsc::Sender<Event>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // An event still incomplete is parsed again from its start after each read: read in
        // chunks as large as what is buffered (up to 8 MiB) so a large return costs a few
        // passes, not one per 64 KiB.
        let want = buf.len().clamp(64 * 1024, 8 * 1024 * 1024);
        if chunk.len() < want {
            chunk.resize(want, 0);
        }
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        loop {
            match event::decode_pub(&buf[used..], MAX_EVENT) {
                Ok(Some((raw, consumed))) => {
                    used += consumed;
                    match event::unpack(&raw) {
                        Ok((tag, data)) => {
                            if tx.send(Event { tag, data }).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!("event bus: undecodable event skipped: {e}"),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("event bus: {e}; closing the subscription");
                    return;
                }
            }
        }
        buf.drain(..used);
    }
}

/// Fire one event on the master bus (`MasterEvent.fire_event`): best effort, as Salt's CLI tools
/// do when the master is not running.
pub async fn fire(opts: &MasterOpts, tag: &str, data: Value) -> io::Result<()> {
    let raw = event::pack_stamped(tag, data, salt_proto::util::unix_micros());
    let frame =
        event::frame_pull(&raw).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "event too large"))?;
    let mut stream = tokio::time::timeout(Duration::from_secs(5), connect_stream(opts, true))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "event bus connect timed out"))??;
    stream.write_all(&frame).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}
