//! A pure-Rust ZeroMQ: a sans-IO ZMTP 3.1 codec and connection core, and tokio sockets on top,
//! wire-compatible with libzmq 4.x.
//!
//! # Organisation
//!
//! ```text
//! bytes <-> codec (sans-IO) <-> proto::Connection (sans-IO) <-> socket patterns <-> Socket (tokio)
//! ```
//!
//! - [`codec`]: greeting, frames, commands and metadata. No IO, no clock, never panics on peer bytes.
//! - [`proto`]: the connection state machine: greeting → mechanism handshake → READY → traffic and
//!   heartbeats. Time is passed in; tests and fuzzers drive it without sockets.
//! - [`Socket`]: the tokio socket API. Each socket type is a routing strategy over one shared set of
//!   peer pipes (`socket::pattern`); `socket::engine` drives a `Connection` over a stream.
//! - [`Message`]: multipart messages as [`bytes::Bytes`] frames, received without copies.
//! - [`proxy()`]: `zmq_proxy` and its steerable form.
//! - `blocking` (feature `blocking`, on by default): a facade for programs that are not async.
//!
//! The sans-IO floors (`codec`, `proto`, [`Message`], [`Subscriptions`]) build without tokio:
//! the sockets, transports and `proxy` are the feature `sockets` (on by default), and
//! `scripts/check-layers.sh` checks that `--no-default-features` pulls in no tokio.

#[cfg(feature = "blocking")]
pub mod blocking;
pub mod cert;
pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
mod message;
pub mod proto;
#[cfg(feature = "sockets")]
pub mod proxy;
#[cfg(feature = "sockets")]
pub mod socket;
mod subscriptions;
#[cfg(feature = "sockets")]
pub mod transport;
pub mod z85;

pub use cert::Certificate;
pub use message::{Message, Properties};
pub use proto::mechanism::{CurveKeyPair, CurvePublicKey, CurveSecretKey};
pub use proto::SocketType;
#[cfg(feature = "sockets")]
pub use proxy::{proxy, proxy_steerable, ProxyStatistics};
#[cfg(feature = "sockets")]
pub use socket::{Error, Options, SendError, Socket, TrySendError};
pub use subscriptions::Subscriptions;

/// A fresh CURVE key pair (libzmq's `zmq_curve_keypair`).
pub fn curve_keypair() -> CurveKeyPair {
    CurveKeyPair::generate()
}

/// The public key of a CURVE secret key (libzmq's `zmq_curve_public`).
pub fn curve_public(secret: &CurveSecretKey) -> CurvePublicKey {
    secret.public_key()
}
