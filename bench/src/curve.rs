//! CURVE for the benchmark's sockets (`--curve` on a role): every implementation that has it
//! (ours, libzmq through libsodium, OMQ.rs) runs the same case with the same fixed key pairs; the
//! binding end is the CURVE server, the connecting end the client.
//!
//! The keys are fixed (derived from constant secrets) so that every role process of a run agrees
//! on them without passing secrets around; they protect nothing but benchmark traffic.

use std::sync::atomic::{AtomicU8, Ordering};

/// Which end of the CURVE handshake this role process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// 0: NULL, 1: server, 2: client. Read when a socket is opened.
static SIDE: AtomicU8 = AtomicU8::new(0);

/// Set by `main` from `--curve` and `--bind`; `pair` (both ends in one process) sets it again
/// before opening each end.
pub fn set(side: Option<Side>) {
    let v = match side {
        None => 0,
        Some(Side::Server) => 1,
        Some(Side::Client) => 2,
    };
    SIDE.store(v, Ordering::Relaxed);
}

/// `None`: NULL mechanism (the default).
pub fn side() -> Option<Side> {
    match SIDE.load(Ordering::Relaxed) {
        1 => Some(Side::Server),
        2 => Some(Side::Client),
        _ => None,
    }
}

pub const SERVER_SECRET: [u8; 32] = [0x5e; 32];
pub const CLIENT_SECRET: [u8; 32] = [0xc1; 32];

#[cfg(feature = "zmtp-curve")]
fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    match zmtp::CurveSecretKey::from_slice(secret) {
        Ok(s) => zmtp::curve_public(&s).0,
        Err(_) => unreachable!("32 octets"),
    }
}

/// Built against a zmtp without CURVE (`zmtp@REV`), `main` refuses `--curve` before any key is
/// asked for.
#[cfg(not(feature = "zmtp-curve"))]
fn public_of(_secret: &[u8; 32]) -> [u8; 32] {
    unreachable!("--curve is refused without the zmtp-curve feature")
}

pub fn server_public() -> [u8; 32] {
    public_of(&SERVER_SECRET)
}

pub fn client_public() -> [u8; 32] {
    public_of(&CLIENT_SECRET)
}

/// Which implementations the CURVE rows run: zmq.rs has no CURVE, and an older zmtp
/// (`zmtp@REV`) only if its build says so (`zbench-zmtp-REV caps`).
pub fn supported(imp: crate::impls::Impl) -> bool {
    match imp {
        crate::impls::Impl::Zeromq => false,
        crate::impls::Impl::ZmtpAt(_) => crate::impls::caps(imp).curve,
        _ => true,
    }
}
