//! The ZMTP 3.x wire codec, sans-IO.
//!
//! Nothing in this module touches a socket, a clock or a task: every function takes bytes and returns
//! values or bytes. It is the only place that knows the octets of the protocol.
//!
//! - [`greeting`]: the 64-octet greeting (signature, version, mechanism, as-server).
//! - [`frame`]: frame headers (MORE, LONG, COMMAND flags) and the incremental [`FrameDecoder`].
//! - [`command`]: READY, ERROR, PING, PONG, SUBSCRIBE, CANCEL and mechanism commands.
//! - [`metadata`]: the property list carried by READY (Socket-Type, Identity, `X-` properties).
//!
//! Decoders follow tokio-util's convention: `Ok(None)` means "need more bytes", `Err` means the stream
//! is corrupt and the connection must close. Limits are checked before a buffer grows, and a peer's
//! 64-bit length is compared to the configured maximum before anything is allocated for it.

pub mod command;
pub mod error;
pub mod frame;
pub mod greeting;
pub mod metadata;

pub use command::Command;
pub use error::CodecError;
pub use frame::{Frame, FrameDecoder};
pub use greeting::{Greeting, MechanismName};
pub use metadata::Metadata;
