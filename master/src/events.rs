//! The master event bus: the EventPublisher unit and the in-process
//! [`EventBus`] every unit fires events on.
//!
//! Salt 3008.5 runs the bus over two Unix stream sockets in `sock_dir`
//! (salt-master.md §2.1), not ZeroMQ:
//!
//! * `master_event_pull.ipc` (mode `0600`): pushers (`salt-key`,
//!   `salt-run`, the CLI, our units when outside this process) write
//!   `u32 BE length + msgpack({"head":{}, "body":<bin ev>})` frames,
//!   `ev = tag + "\n\n" + msgpack(data, use_bin_type=True)`.
//! * `master_event_pub.ipc` (mode `0660`): every subscriber gets every
//!   event as the bare `msgpack({"head","body"})` bytes, concatenated.
//!
//! Our own units do not go through the pull socket: they call
//! [`EventBus::fire`], which encodes the event once and hands the same
//! bytes to every subscriber's queue. Each subscriber has a bounded queue
//! ([`SUBSCRIBER_QUEUE`] events, Salt's `pub_server_write_queue_size`); a
//! subscriber that falls that far behind is dropped, as Salt drops it, so
//! one slow reader never holds the others back or grows memory.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use salt_proto::{event, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::state::Master;
use crate::supervisor::{Shutdown, UnitError};

/// Events queued per subscriber before it is dropped.
pub const SUBSCRIBER_QUEUE: usize = 10_000;
/// Largest event frame accepted from a pusher.
pub const MAX_EVENT_FRAME: usize = 64 << 20;
/// Most subscribers and pushers connected at once (each costs a task and
/// a queue).
pub const MAX_CONNECTIONS: usize = 4096;

/// The pub socket's file name.
pub const PUB_SOCK: &str = "master_event_pub.ipc";
/// The pull socket's file name.
pub const PULL_SOCK: &str = "master_event_pull.ipc";

// --- the bus --------------------------------------------------------------

#[derive(Debug)]
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Bytes>,
}

/// The in-process fan-out of events to the subscribers of
/// `master_event_pub.ipc`.
#[derive(Debug)]
pub struct EventBus {
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
    queue: usize,
}

impl EventBus {
    /// A bus whose subscribers may lag `queue` events behind.
    pub fn new(queue: usize) -> Self {
        EventBus { subscribers: Mutex::new(Vec::new()), next_id: AtomicU64::new(1), queue }
    }

    /// Add a subscriber; `None` when [`MAX_CONNECTIONS`] are subscribed.
    pub fn subscribe(&self) -> Option<(u64, mpsc::Receiver<Bytes>)> {
        let mut subs = self.subscribers.lock().ok()?;
        if subs.len() >= MAX_CONNECTIONS {
            return None;
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        subs.push(Subscriber { id, tx });
        Some((id, rx))
    }

    /// Remove a subscriber.
    pub fn unsubscribe(&self, id: u64) {
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.retain(|s| s.id != id);
        }
    }

    /// How many subscribers are connected.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Hand one encoded frame to every subscriber; a subscriber whose queue
    /// is full (or gone) is dropped.
    pub fn publish_frame(&self, frame: &Bytes) {
        let Ok(mut subs) = self.subscribers.lock() else { return };
        subs.retain(|s| match s.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("event subscriber {} is {} events behind; dropping it", s.id, self.queue);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// `SaltEvent.fire_event`: add `_stamp` to `data` (a map) and publish
    /// it under `tag`.
    pub fn fire(&self, tag: &str, data: Value) {
        tracing::debug!("Sending event: tag = {tag}");
        let ev = event::pack_stamped(tag, data, salt_proto::util::unix_micros());
        self.publish_frame(&Bytes::from(event::frame_pub(&ev)));
    }
}

// --- the EventPublisher unit ----------------------------------------------

fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, UnitError> {
    // A socket file left by an earlier run would make bind fail.
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| UnitError::io("bind", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| UnitError::io("chmod", path, e))?;
    Ok(l)
}

/// Run the EventPublisher: accept subscribers on `master_event_pub.ipc` and
/// pushers on `master_event_pull.ipc` until shutdown.
pub async fn run_event_publisher(master: Arc<Master>, mut shutdown: Shutdown) -> Result<(), UnitError> {
    let sock_dir = &master.config.sock_dir;
    let pub_l = bind_unix(&sock_dir.join(PUB_SOCK), 0o660)?;
    let pull_l = bind_unix(&sock_dir.join(PULL_SOCK), 0o600)?;
    tracing::info!("EventPublisher listening on {}", sock_dir.display());
    let pushers = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = pub_l.accept() => match r {
                Ok((stream, _)) => match master.events.subscribe() {
                    Some((id, rx)) => {
                        tokio::spawn(serve_subscriber(master.clone(), id, rx, stream));
                    }
                    None => tracing::warn!("too many event subscribers; refusing one"),
                },
                Err(e) => tracing::warn!("event pub accept: {e}"),
            },
            r = pull_l.accept() => match r {
                Ok((stream, _)) => match pushers.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let m = master.clone();
                        tokio::spawn(async move {
                            serve_pusher(m, stream).await;
                            drop(permit);
                        });
                    }
                    Err(_) => tracing::warn!("too many event pushers; refusing one"),
                },
                Err(e) => tracing::warn!("event pull accept: {e}"),
            },
        }
    }
    let _ = std::fs::remove_file(sock_dir.join(PUB_SOCK));
    let _ = std::fs::remove_file(sock_dir.join(PULL_SOCK));
    Ok(())
}

async fn serve_subscriber(master: Arc<Master>, id: u64, mut rx: mpsc::Receiver<Bytes>, stream: UnixStream) {
    let (mut rd, mut wr) = stream.into_split();
    let mut scratch = [0u8; 64];
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(f) => {
                    if wr.write_all(&f).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            // Subscribers send nothing; a read of 0 (or an error) is the
            // peer going away.
            r = rd.read(&mut scratch) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    master.events.unsubscribe(id);
}

async fn serve_pusher(master: Arc<Master>, mut stream: UnixStream) {
    let mut buf = bytes::BytesMut::with_capacity(8192);
    loop {
        match event::decode_pull(&buf, MAX_EVENT_FRAME) {
            Ok(Some((ev, used))) => {
                let _ = buf.split_to(used);
                master.events.publish_frame(&Bytes::from(event::frame_pub(&ev)));
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("bad event frame from a pusher ({e}); closing it");
                return;
            }
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_subscriber_is_dropped() {
        let bus = EventBus::new(2);
        let Some((_, mut fast)) = bus.subscribe() else { return };
        let Some((_, _slow)) = bus.subscribe() else { return };
        for i in 0..2 {
            bus.fire("t", Value::Map(vec![(Value::from("i"), Value::from(i))]));
            assert!(fast.try_recv().is_ok());
        }
        assert_eq!(bus.subscriber_count(), 2);
        bus.fire("t", Value::Map(vec![]));
        assert_eq!(bus.subscriber_count(), 1, "the subscriber that read nothing is gone");
        assert!(fast.try_recv().is_ok());
    }
}
