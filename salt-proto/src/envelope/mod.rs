//! Salt 3008 envelopes and loads on ports 4506 (requests) and 4505
//! (publishes), as helpers over [`rmpv::Value`].
//!
//! Salt's payloads are Python dicts with optional and dynamically typed
//! fields, so they are kept as [`Value`] maps where that is simplest and
//! given typed structs where a peer needs to build or check them. Every
//! builder writes keys in the order Salt does, so the msgpack bytes match
//! what Salt would send (the tests compare them with Salt's own output).
//!
//! Request channel (4506, REQ → ROUTER, one msgpack frame each way):
//!
//! | direction | shape | here |
//! |---|---|---|
//! | minion → master, clear | `{"enc":"clear","load":{..},"version":3}` | [`Request::Clear`], [`AuthRequest`] |
//! | minion → master, aes | `{"enc":"aes","load":<bytes>,"version":3,"id":..,"enc_algo":..,"sig_algo":..}` | [`Request::Aes`], [`seal_aes_request`], [`open_aes_request`] |
//! | master → minion, aes reply | `<bytes>` = session `Crypticle.dumps(ret, nonce)` | [`seal_aes_reply`], [`open_aes_reply`] |
//! | master → minion, `_auth` reply | `{"enc":"clear","load":<msgpack bytes>,"sig":<bytes>}` | [`ClearSigned`], [`accept_auth`], [`auth_status_reply`], [`open_auth_reply`] |
//! | master → minion, `send_private` (`_pillar`) | `{"key":<OAEP bytes>,"pillar":<bytes>}` | [`seal_private_reply`], [`open_private_reply`] |
//!
//! Publish channel (4505): `{"enc":"aes","load":<bytes>,"sig_algo":..,"sig":<bytes>}`,
//! see [`wrap_publish`], [`open_publish`], [`PublishLoad`]. Job returns go
//! back over 4506 as an aes request carrying a [`ReturnLoad`].

//!
//! One file per channel: [`request`], [`auth`], [`private`], [`publish`], [`ret`]; everything is
//! re-exported here, so callers write `envelope::open_publish`. This file holds the field readers
//! they share. Salt's event framing (the master's event bus) is in [`crate::event`].

use rmpv::Value;

use crate::error::{Error, Result};
use crate::value::{as_bytes, as_str, get};

pub mod auth;
pub mod private;
pub mod publish;
pub mod request;
pub mod ret;

pub use auth::*;
pub use private::*;
pub use publish::*;
pub use request::*;
pub use ret::*;

/// The request protocol version this crate speaks (v3: per-minion session
/// keys, `ts`/`tok`/`id` in every aes request). Salt 3008 masters reject
/// anything lower by default (`minimum_auth_version: 3`).
pub const PROTOCOL_VERSION: i64 = 3;

/// The clear text Salt signs with X9.31 into every aes request's `tok`.
pub const TOK_PLAINTEXT: &[u8] = b"salt";

/// The error string a Salt master replies with to a request it refuses.
pub const BAD_LOAD: &str = "bad load";

pub(crate) fn need<'a>(map: &'a Value, key: &str) -> Result<&'a Value> {
    get(map, key).ok_or_else(|| Error::bad(format!("missing field {key:?}")))
}

pub(crate) fn need_str<'a>(map: &'a Value, key: &str) -> Result<&'a str> {
    as_str(need(map, key)?).ok_or_else(|| Error::bad(format!("field {key:?} is not a string")))
}

pub(crate) fn need_bytes<'a>(map: &'a Value, key: &str) -> Result<&'a [u8]> {
    as_bytes(need(map, key)?).ok_or_else(|| Error::bad(format!("field {key:?} is not bytes")))
}

pub(crate) fn opt_str(map: &Value, key: &str) -> Option<String> {
    get(map, key).and_then(as_str).map(str::to_owned)
}

pub(crate) fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i.as_i64(),
        // Python's int("3") also works for strings.
        _ => as_str(v).and_then(|s| s.trim().parse().ok()),
    }
}

pub(crate) fn ensure_map(v: &Value, what: &str) -> Result<()> {
    match v {
        Value::Map(_) => Ok(()),
        _ => Err(Error::bad(format!("{what} is not a map"))),
    }
}
