//! The request envelope of port 4506 and the aes request/reply: [`Request`], [`seal_aes_request`],
//! [`open_aes_request`], [`seal_aes_reply`], [`open_aes_reply`], and the `tok` every aes request
//! carries ([`make_tok`]).

use rmpv::Value;

use super::{ensure_map, int_of, need, need_bytes, need_str, opt_str, PROTOCOL_VERSION, TOK_PLAINTEXT};
use crate::crypticle::Crypticle;
use crate::error::{Crypto, Error, Malformed, Result};
use crate::msgpack;
use crate::rsa::{EncAlgo, PrivateKey, PublicKey, SigAlgo};
use crate::value::{self, as_bytes, as_str, bytes, get, insert, remove, string};

/// A request envelope on port 4506 (`salt/channel/client.py` `_package_load`).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `{"enc":"clear","load":{..},"version":3}`: `_auth`, and the salt
    /// CLI's `publish`.
    Clear {
        /// The plain load (a map).
        load: Value,
        /// Protocol version (0 when absent).
        version: i64,
    },
    /// `{"enc":"aes","load":<bytes>,"version":3,"id":..,"enc_algo":..,"sig_algo":..}`.
    Aes {
        /// Session-Crypticle ciphertext of the inner load.
        load: Vec<u8>,
        /// Protocol version (0 when absent).
        version: i64,
        /// The minion id (selects the session key on the master).
        id: String,
        /// `enc_algo` as sent (absent in pre-v3 requests).
        enc_algo: Option<String>,
        /// `sig_algo` as sent.
        sig_algo: Option<String>,
    },
}

impl Request {
    /// The envelope as a map, keys in Salt's order.
    pub fn to_value(&self) -> Value {
        match self {
            Request::Clear { load, version } => {
                value::map([("enc", string("clear")), ("load", load.clone()), ("version", Value::from(*version))])
            }
            Request::Aes { load, version, id, enc_algo, sig_algo } => {
                let mut m = vec![
                    ("enc", string("aes")),
                    ("load", bytes(load.clone())),
                    ("version", Value::from(*version)),
                    ("id", string(id.clone())),
                ];
                if let Some(a) = enc_algo {
                    m.push(("enc_algo", string(a.clone())));
                }
                if let Some(a) = sig_algo {
                    m.push(("sig_algo", string(a.clone())));
                }
                value::map(m)
            }
        }
    }

    /// The msgpack frame.
    pub fn encode(&self) -> Vec<u8> {
        msgpack::encode(&self.to_value())
    }

    /// Parse an envelope map (master side). Fails like Salt's "bad load"
    /// when `enc` or `load` is missing or of the wrong kind; the version
    /// check is left to the caller ([`Request::version`]).
    pub fn from_value(v: &Value) -> Result<Self> {
        ensure_map(v, "request")?;
        let enc = need_str(v, "enc")?;
        let version = get(v, "version").and_then(int_of).unwrap_or(0);
        match enc {
            "clear" => Ok(Request::Clear { load: need(v, "load")?.clone(), version }),
            "aes" => Ok(Request::Aes {
                load: need_bytes(v, "load")?.to_vec(),
                version,
                id: need_str(v, "id")?.to_owned(),
                enc_algo: opt_str(v, "enc_algo"),
                sig_algo: opt_str(v, "sig_algo"),
            }),
            other => Err(Error::bad(format!("unknown enc {other:?}"))),
        }
    }

    /// Decode a msgpack frame.
    pub fn decode(frame: &[u8]) -> Result<Self> {
        Self::from_value(&msgpack::decode(frame)?)
    }

    /// The protocol version.
    pub fn version(&self) -> i64 {
        match self {
            Request::Clear { version, .. } | Request::Aes { version, .. } => *version,
        }
    }

    /// The `cmd` of a clear request's load (`"_auth"`, `"publish"`).
    pub fn clear_cmd(&self) -> Option<&str> {
        match self {
            Request::Clear { load, .. } => get(load, "cmd").and_then(as_str),
            Request::Aes { .. } => None,
        }
    }
}

/// The `tok` a minion puts in every aes request: X9.31 signature of
/// `b"salt"` with its private key. Deterministic: compute it once per key.
pub fn make_tok(minion_key: &PrivateKey) -> Result<Vec<u8>> {
    minion_key.sign_x931(TOK_PLAINTEXT)
}

/// Minion side: wrap `load` (a map) into a v3 aes request, as
/// `_package_load` does: set `nonce`, `ts`, `tok`, `id` (Python dict
/// assignment: an existing key keeps its position), encrypt with the
/// session Crypticle (no nonce prefix), wrap.
///
/// `nonce` is a fresh [`util::uuid4_hex`](crate::util::uuid4_hex); keep it to open the reply with
/// [`open_aes_reply`]. `ts` is the current Unix time in seconds. `tok` is
/// [`make_tok`].
#[allow(clippy::too_many_arguments)]
pub fn seal_aes_request(
    session: &Crypticle,
    id: &str,
    mut load: Value,
    nonce: &str,
    ts: i64,
    tok: &[u8],
    enc_algo: EncAlgo,
    sig_algo: SigAlgo,
) -> Result<Request> {
    ensure_map(&load, "load")?;
    insert(&mut load, "nonce", string(nonce));
    insert(&mut load, "ts", Value::from(ts));
    insert(&mut load, "tok", bytes(tok));
    insert(&mut load, "id", string(id));
    Ok(Request::Aes {
        load: session.dumps(&load, None)?,
        version: PROTOCOL_VERSION,
        id: id.to_owned(),
        enc_algo: Some(enc_algo.as_str().to_owned()),
        sig_algo: Some(sig_algo.as_str().to_owned()),
    })
}

/// A decrypted and verified v3 aes request.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedRequest {
    /// The inner load with `nonce` and `tok` removed (as the master's
    /// handlers see it; `id`, `ts` and `cmd` remain).
    pub load: Value,
    /// The request nonce, to pass to [`seal_aes_reply`].
    pub nonce: Option<String>,
}

impl OpenedRequest {
    /// The `cmd` of the load (`"_return"`, `"_minion_event"`, `"_pillar"`, ...).
    pub fn cmd(&self) -> Option<&str> {
        get(&self.load, "cmd").and_then(as_str)
    }
}

/// Master side: open a v3 [`Request::Aes`] (server.py `handle_message` +
/// `_decode_payload` + `validate_token`): decrypt `ciphertext` with the
/// minion's session Crypticle, pop `nonce`, require `load.id == envelope_id`
/// (no NUL byte), pop `tok` and require that it X9.31-recovers to `b"salt"`
/// with the minion's accepted public key.
///
/// Not done here: the `request_server_ttl` check on `ts` (off by default)
/// and Salt's `valid_id` rules for ids.
pub fn open_aes_request(
    envelope_id: &str,
    ciphertext: &[u8],
    session: &Crypticle,
    minion_pub: &PublicKey,
) -> Result<OpenedRequest> {
    open_aes_request_with(envelope_id, ciphertext, session, |tok| token_valid(minion_pub, tok))
}

/// Whether `tok` is a minion token of `minion_pub`: it X9.31-recovers to
/// `b"salt"` with that key.
pub fn token_valid(minion_pub: &PublicKey, tok: &[u8]) -> Result<bool> {
    Ok(minion_pub.recover_x931(tok)? == TOK_PLAINTEXT)
}

/// [`open_aes_request`] with the `tok` check left to `tok_valid` (the
/// master answers it from the tokens it already verified against the
/// unchanged accepted key, and with [`token_valid`] otherwise).
pub fn open_aes_request_with(
    envelope_id: &str,
    ciphertext: &[u8],
    session: &Crypticle,
    tok_valid: impl FnOnce(&[u8]) -> Result<bool>,
) -> Result<OpenedRequest> {
    let mut load = session.loads(ciphertext, None)?;
    ensure_map(&load, "load")?;
    let nonce = remove(&mut load, "nonce").and_then(|n| as_str(&n).map(str::to_owned));
    let load_id = need_str(&load, "id")?;
    if load_id != envelope_id {
        return Err(Error::bad("request id mismatch"));
    }
    if load_id.contains('\0') {
        return Err(Error::bad("id contains a null byte"));
    }
    let tok = remove(&mut load, "tok").ok_or_else(|| Error::bad("missing tok"))?;
    let tok = as_bytes(&tok).ok_or_else(|| Error::bad("tok is not bytes"))?;
    if !tok_valid(tok)? {
        return Err(Error::bad("minion token did not validate"));
    }
    Ok(OpenedRequest { load, nonce })
}

/// Master side: the reply to an aes request with `fun: send` =
/// session `Crypticle.dumps(ret, nonce)`. Send it as the frame
/// `msgpack::encode(&value::bytes(reply))`.
pub fn seal_aes_reply(session: &Crypticle, ret: &Value, nonce: Option<&str>) -> Result<Vec<u8>> {
    session.dumps(ret, nonce)
}

/// Minion side: open the reply (already msgpack-decoded) to an aes request
/// sent with `nonce`.
///
/// Like Salt's `_crypted_transfer`, an empty/false reply is returned as is.
/// A reply that does not decrypt and is a short text (`"bad load"`, ...) is
/// reported as [`Error::Refused`]; a wrong key as
/// [`Crypto::AuthenticationFailed`] (re-authenticate and retry).
pub fn open_aes_reply(session: &Crypticle, reply: &Value, nonce: &str) -> Result<Value> {
    if !value::truthy(reply) {
        return Ok(reply.clone());
    }
    let Some(data) = as_bytes(reply) else {
        return Err(Error::bad("aes reply is neither bytes nor empty"));
    };
    match session.loads(data, Some(nonce)) {
        Ok(v) => Ok(v),
        Err(e @ (Error::Crypto(Crypto::AuthenticationFailed) | Error::Malformed(Malformed::CiphertextLength(_)))) => {
            match as_str(reply) {
                Some(s) if s.len() < 256 => Err(Error::Refused(s.to_owned())),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
