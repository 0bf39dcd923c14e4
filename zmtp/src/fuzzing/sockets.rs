//! The socket layer under the fuzzer: a real [`Socket`] of a chosen type, bound on `ipc://`, with a
//! raw peer on a Unix stream; the input scripts both the peer's bytes and the application's calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{Reader, SOCKET_TYPES};
use crate::{Message, Options, Socket, SocketType};

/// Panics anywhere in the process (the socket's tasks included: tokio catches those, so they would
/// not reach the fuzzer otherwise), counted by a hook installed once.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// `max_msg_size` by the index the input uses (`byte % 4`).
const LIMITS: [Option<u64>; 4] = [Some(64), Some(1024), Some(65536), None];
/// SNDHWM / RCVHWM by the index the input uses.
const HWMS: [usize; 4] = [1, 4, 16, 1000];

/// A fresh `ipc://` path per input.
fn endpoint() -> (String, std::path::PathBuf) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "zmtp-fuzz-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    (format!("ipc://{}", path.display()), path)
}

/// A real socket driven by a raw peer and application calls. Input:
///
/// ```text
/// type    = OCTET                  ; SOCKET_TYPES[x % 11]
/// conf    = OCTET                  ; bits 0-1 max_msg_size LIMITS, 2-3 HWMS, 4 heartbeats (20 ms,
///                                  ; timeout 40 ms), 5 conflate, 6 router_mandatory, 7 req_relaxed+correlate
/// ops     = *(op args)             ; at most 256; op % 9:
///   0 len *OCTET                   ; the peer writes len raw octets
///   1 type                         ; the peer writes a NULL greeting and a READY as SOCKET_TYPES[type % 11]
///   2 flags len *OCTET             ; the peer writes one frame (flags & 0x05: MORE, COMMAND)
///   3 count *(len *OCTET)          ; the application try_sends count % 4 frames (a ROUTER's first names a peer)
///   4                              ; the application try_recvs
///   5 sub len *OCTET               ; the application subscribes (sub odd) or unsubscribes a topic
///   6 ms                           ; time passes: ms % 16 milliseconds (0: the tasks run once)
///   7                              ; the peer shuts its write side
///   8                              ; the peer reads what it was sent
/// ```
///
/// Checked: nothing panics (in any task), nothing received exceeds `max_msg_size`, nothing hangs:
/// every input finishes, the socket closed, within 5 s.
pub fn sockets(data: &[u8]) {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let (ep, path) = endpoint();
    let finished = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), run(data, &ep, &path)).await });
    drop(rt);
    let _ = std::fs::remove_file(&path);
    assert!(finished.is_ok(), "the socket script did not finish within 5 s");
    assert_eq!(PANICS.load(Ordering::SeqCst), before, "a task panicked");
}

async fn run(data: &[u8], ep: &str, path: &std::path::Path) {
    let mut r = Reader::new(data);
    let kind = SOCKET_TYPES[usize::from(r.u8() % 11)];
    let conf = r.u8();
    let limit = LIMITS[usize::from(conf & 3)];
    let hwm = HWMS[usize::from((conf >> 2) & 3)];
    let mut options = Options::default()
        .linger(Some(Duration::ZERO))
        .max_msg_size(limit)
        .sndhwm(hwm)
        .rcvhwm(hwm)
        .handshake_timeout(Some(Duration::from_millis(200)))
        .max_pending_handshakes(Some(4));
    if conf & 0x10 != 0 {
        options = options.heartbeat(Duration::from_millis(20), None, Some(Duration::from_millis(40)));
    }
    options.conflate = conf & 0x20 != 0 && matches!(kind, SocketType::Pull | SocketType::Sub | SocketType::Dealer);
    options.router_mandatory = conf & 0x40 != 0;
    options.req_relaxed = conf & 0x80 != 0;
    options.req_correlate = conf & 0x80 != 0;
    let socket = Socket::with_options(kind, options);
    if let Err(e) = socket.bind(ep).await {
        panic!("bind {ep}: {e}");
    }
    let mut peer = match tokio::net::UnixStream::connect(path).await {
        Ok(s) => Some(s),
        Err(e) => panic!("connect {}: {e}", path.display()),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut ops = 0;
    while !r.is_empty() && ops < 256 {
        ops += 1;
        match r.u8() % 9 {
            0 => {
                let n = usize::from(r.u8());
                write(&mut peer, r.bytes(n)).await;
            }
            1 => {
                let t = SOCKET_TYPES[usize::from(r.u8() % 11)];
                let mut out = bytes::BytesMut::new();
                crate::codec::Greeting::new(crate::codec::MechanismName::NULL, false).encode(&mut out);
                out.extend_from_slice(&ready(t));
                write(&mut peer, &out).await;
            }
            2 => {
                let flags = r.u8() & 0x05;
                let n = usize::from(r.u8());
                let mut f = vec![flags, u8::try_from(n).unwrap_or(u8::MAX)];
                f.extend_from_slice(r.bytes(n));
                write(&mut peer, &f).await;
            }
            3 => {
                let count = usize::from(r.u8() % 4);
                let frames: Vec<bytes::Bytes> = (0..count)
                    .map(|_| {
                        let n = usize::from(r.u8());
                        bytes::Bytes::copy_from_slice(r.bytes(n))
                    })
                    .collect();
                let _ = socket.try_send(frames.into_iter().collect::<Message>());
            }
            4 => {
                if let Ok(m) = socket.try_recv() {
                    check_size(&m, limit);
                }
            }
            5 => {
                let subscribe = r.bool();
                let n = usize::from(r.u8());
                let topic = r.bytes(n);
                let _ = if subscribe { socket.subscribe(topic) } else { socket.unsubscribe(topic) };
            }
            6 => {
                let ms = u64::from(r.u8() % 16);
                if ms == 0 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            }
            7 => {
                if let Some(p) = peer.as_mut() {
                    let _ = p.shutdown().await;
                }
            }
            _ => drain(&mut peer, &mut buf).await,
        }
    }
    // Let the socket take in the rest, then take what it delivered.
    for _ in 0..4 {
        tokio::task::yield_now().await;
        drain(&mut peer, &mut buf).await;
    }
    while let Ok(m) = socket.try_recv() {
        check_size(&m, limit);
    }
    drop(peer);
    socket.close().await;
}

fn check_size(m: &Message, limit: Option<u64>) {
    let Some(limit) = limit else { return };
    let size: usize = m.iter().map(|f| f.len()).sum();
    // A ROUTER adds the routing id frame (at most 255 octets); the rest came from the peer.
    assert!(size as u64 <= limit + 256, "a {size}-octet message passed a {limit}-octet limit");
}

/// A READY command frame announcing `t`.
fn ready(t: SocketType) -> Vec<u8> {
    let name = t.as_str().as_bytes();
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&u32::try_from(name.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(name);
    let mut f = vec![0x04, u8::try_from(body.len()).unwrap_or(u8::MAX)];
    f.extend_from_slice(&body);
    f
}

/// The peer writes (a write the socket does not take within 50 ms, or that fails, drops the
/// peer: the socket may have closed it or stopped reading).
async fn write(peer: &mut Option<tokio::net::UnixStream>, bytes: &[u8]) {
    let Some(p) = peer.as_mut() else { return };
    match tokio::time::timeout(Duration::from_millis(50), p.write_all(bytes)).await {
        Ok(Ok(())) => tokio::task::yield_now().await,
        _ => *peer = None,
    }
}

/// The peer reads what is there, without waiting.
async fn drain(peer: &mut Option<tokio::net::UnixStream>, buf: &mut [u8]) {
    let Some(p) = peer.as_mut() else { return };
    loop {
        match p.try_read(buf) {
            Ok(0) => {
                *peer = None;
                return;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                *peer = None;
                return;
            }
        }
    }
}
