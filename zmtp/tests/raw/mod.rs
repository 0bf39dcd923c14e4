//! A raw ZMTP peer written against the spec (RFC 23/37), byte by byte, for tests that need a peer
//! that misbehaves; and measurements of this process's memory. Shared by `bad_input.rs` and
//! `bounded.rs` (and included by the interop tier's `bounded.rs`, to run the same hostile peers
//! against libzmq).

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for anything that should happen promptly.
pub const T: Duration = Duration::from_secs(5);

/// A ZMTP 3.1 greeting for `mechanism`, as client.
pub fn greeting(mechanism: &[u8]) -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 0x03, 0x01];
    let mut mech = [0u8; 20];
    mech[..mechanism.len()].copy_from_slice(mechanism);
    g.extend_from_slice(&mech);
    g.push(0); // as-server
    g.extend_from_slice(&[0u8; 31]);
    assert_eq!(g.len(), 64);
    g
}

/// A command frame with a raw body (name-size, name, data).
pub fn command_frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + body.len());
    if body.len() > 255 {
        f.push(0x06);
        f.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        f.push(0x04);
        f.push(body.len() as u8);
    }
    f.extend_from_slice(body);
    f
}

/// The body of a READY command with these properties.
pub fn ready_body(props: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = b"\x05READY".to_vec();
    for (name, value) in props {
        b.push(name.len() as u8);
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&(value.len() as u32).to_be_bytes());
        b.extend_from_slice(value);
    }
    b
}

pub fn ready(socket_type: &str) -> Vec<u8> {
    command_frame(&ready_body(&[("Socket-Type", socket_type.as_bytes())]))
}

/// The frames after the 64-octet greeting in `bytes` (flags, body); a trailing partial frame is
/// ignored.
pub fn frames_after_greeting(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert!(bytes.len() >= 64, "expected our greeting, got {} octets", bytes.len());
    assert_eq!(bytes[0], 0xFF, "greeting signature");
    assert_eq!(bytes[9], 0x7F, "greeting signature");
    let mut rest = &bytes[64..];
    let mut out = Vec::new();
    while let Some(&flags) = rest.first() {
        let (size, header) = if flags & 0x02 != 0 {
            if rest.len() < 9 {
                break;
            }
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&rest[1..9]);
            (u64::from_be_bytes(raw) as usize, 9)
        } else {
            if rest.len() < 2 {
                break;
            }
            (usize::from(rest[1]), 2)
        };
        if rest.len() < header + size {
            break;
        }
        out.push((flags, rest[header..header + size].to_vec()));
        rest = &rest[header + size..];
    }
    out
}

/// The name of a command body.
pub fn command_name(body: &[u8]) -> &[u8] {
    let n = body.first().map_or(0, |&n| usize::from(n));
    body.get(1..1 + n).unwrap_or(&[])
}

/// Writes what a misbehaving peer sends. The peer may already be gone (we may close as soon as
/// we see the first bad octet), so a failed write is not an error here.
pub async fn send_raw(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

/// Reads until we close the connection (EOF or reset) and returns what we sent. Panics if the
/// connection is still open after `within`.
pub async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let res = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(res.is_ok(), "our socket did not close the raw connection within {within:?}");
    got
}

/// This process's resident set in KiB, where /proc is available.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This process's peak resident set (VmHWM) in KiB.
fn hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Measures how far this process's resident set rises above where it stood at [`Growth::start`]:
/// resets the kernel's peak (`/proc/self/clear_refs`, "5") and reads it back at the end. `None`
/// where /proc does not allow it (then tests print that nothing was measured).
pub struct Growth {
    start: Option<u64>,
}

impl Growth {
    /// Starts measuring from the current resident set.
    pub fn start() -> Growth {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Growth { start: if reset { rss_kib() } else { None } }
    }

    /// The peak resident set since the start, minus the resident set at the start, in KiB.
    pub fn kib(&self) -> Option<u64> {
        Some(hwm_kib()?.saturating_sub(self.start?))
    }
}

/// One test measuring memory at a time in this process: the resident set is the process's.
pub static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A frame: flags (0x01 MORE, 0x04 COMMAND; LONG is set from the size) and body.
pub fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + body.len());
    if body.len() > 255 {
        f.push(flags | 0x02);
        f.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        f.push(flags);
        f.push(body.len() as u8);
    }
    f.extend_from_slice(body);
    f
}

/// A PING command with a TTL of zero and `context`.
pub fn ping(context: &[u8]) -> Vec<u8> {
    let mut body = b"\x04PING\x00\x00".to_vec();
    body.extend_from_slice(context);
    command_frame(&body)
}

/// A SUBSCRIBE command (ZMTP 3.1) for `topic`.
pub fn subscribe(topic: &[u8]) -> Vec<u8> {
    let mut body = b"\x09SUBSCRIBE".to_vec();
    body.extend_from_slice(topic);
    command_frame(&body)
}

/// Connects to `addr`, sends our greeting and a READY as `socket_type`, and returns the stream
/// without reading anything (a hostile peer need not read).
pub async fn connect_as(addr: std::net::SocketAddr, socket_type: &str) -> TcpStream {
    let mut s = tokio::time::timeout(T, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let mut hello = greeting(b"NULL");
    hello.extend_from_slice(&ready(socket_type));
    s.write_all(&hello).await.expect("greeting and READY");
    s
}

/// Writes `batch` over and over until `total` octets are written, never reading. Stops early if
/// one write makes no progress for `stall` (the other side stopped reading: back-pressure) or the
/// connection is closed. Returns the octets written.
pub async fn flood(stream: &mut TcpStream, batch: &[u8], total: usize, stall: Duration) -> usize {
    let mut sent = 0;
    while sent < total {
        match tokio::time::timeout(stall, stream.write_all(batch)).await {
            Ok(Ok(())) => sent += batch.len(),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

/// Reads what is waiting, until nothing comes for `idle` or the connection ends: the octets read,
/// and whether it ended.
pub async fn drain(stream: &mut TcpStream, idle: Duration) -> (usize, bool) {
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    loop {
        match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got += n,
            Err(_) => return (got, false),
        }
    }
}

/// `n` copies of `unit`, back to back.
pub fn repeat(unit: &[u8], n: usize) -> Vec<u8> {
    unit.iter().copied().cycle().take(unit.len() * n).collect()
}

/// Reads the other side's greeting and its first command (READY, with NULL): the handshake is
/// done once this returns, as far as the other side is concerned.
pub async fn read_handshake(stream: &mut TcpStream) {
    let mut greeting = [0u8; 64];
    tokio::time::timeout(T, stream.read_exact(&mut greeting)).await.expect("greeting in time").expect("greeting");
    let mut header = [0u8; 2];
    tokio::time::timeout(T, stream.read_exact(&mut header)).await.expect("READY in time").expect("READY");
    assert_eq!(header[0], 0x04, "a short command frame");
    let mut body = vec![0u8; usize::from(header[1])];
    stream.read_exact(&mut body).await.expect("READY body");
    assert_eq!(command_name(&body), b"READY");
}
