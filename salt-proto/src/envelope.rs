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

use rmpv::Value;

use crate::crypticle::{Crypticle, SerialGuard};
use crate::error::{Error, Result};
use crate::msgpack;
use crate::rsa::{clean_key, EncAlgo, PrivateKey, PublicKey, SigAlgo};
use crate::util;
use crate::value::{self, as_bytes, as_str, bytes, get, insert, remove, string};

/// The request protocol version this crate speaks (v3: per-minion session
/// keys, `ts`/`tok`/`id` in every aes request). Salt 3008 masters reject
/// anything lower by default (`minimum_auth_version: 3`).
pub const PROTOCOL_VERSION: i64 = 3;

/// The clear text Salt signs with X9.31 into every aes request's `tok`.
pub const TOK_PLAINTEXT: &[u8] = b"salt";

/// The error string a Salt master replies with to a request it refuses.
pub const BAD_LOAD: &str = "bad load";

fn need<'a>(map: &'a Value, key: &str) -> Result<&'a Value> {
    get(map, key).ok_or_else(|| Error::bad(format!("missing field {key:?}")))
}

fn need_str<'a>(map: &'a Value, key: &str) -> Result<&'a str> {
    as_str(need(map, key)?).ok_or_else(|| Error::bad(format!("field {key:?} is not a string")))
}

fn need_bytes<'a>(map: &'a Value, key: &str) -> Result<&'a [u8]> {
    as_bytes(need(map, key)?).ok_or_else(|| Error::bad(format!("field {key:?} is not bytes")))
}

fn opt_str(map: &Value, key: &str) -> Option<String> {
    get(map, key).and_then(as_str).map(str::to_owned)
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i.as_i64(),
        // Python's int("3") also works for strings.
        _ => as_str(v).and_then(|s| s.trim().parse().ok()),
    }
}

fn ensure_map(v: &Value, what: &str) -> Result<()> {
    match v {
        Value::Map(_) => Ok(()),
        _ => Err(Error::bad(format!("{what} is not a map"))),
    }
}

// ---------------------------------------------------------------------------
// Request envelope (4506)
// ---------------------------------------------------------------------------

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
/// `nonce` is a fresh [`util::uuid4_hex`]; keep it to open the reply with
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
    if minion_pub.recover_x931(tok)? != TOK_PLAINTEXT {
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
/// reported as [`Error::Remote`]; a wrong key as
/// [`Error::AuthenticationFailed`] (re-authenticate and retry).
pub fn open_aes_reply(session: &Crypticle, reply: &Value, nonce: &str) -> Result<Value> {
    if !value::truthy(reply) {
        return Ok(reply.clone());
    }
    let Some(data) = as_bytes(reply) else {
        return Err(Error::bad("aes reply is neither bytes nor empty"));
    };
    match session.loads(data, Some(nonce)) {
        Ok(v) => Ok(v),
        Err(e @ (Error::AuthenticationFailed | Error::BadCiphertextLength(_))) => match as_str(reply) {
            Some(s) if s.len() < 256 => Err(Error::Remote(s.to_owned())),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// Clear-signed replies (`_clear_signed`, master.py)
// ---------------------------------------------------------------------------

/// `{"enc":"clear","load":<msgpack bytes>,"sig":<PKCS#1 v1.5 sig of those bytes>}`,
/// the form of every `_auth` reply to a version > 1 request.
#[derive(Debug, Clone, PartialEq)]
pub struct ClearSigned {
    /// The msgpack encoding of the inner reply.
    pub load: Vec<u8>,
    /// Master signature over `load`.
    pub sig: Vec<u8>,
}

impl ClearSigned {
    /// Master side (`_clear_signed`): pack `ret` and sign the bytes.
    pub fn sign(master_key: &PrivateKey, ret: &Value, algo: SigAlgo) -> Result<Self> {
        let load = msgpack::encode(ret);
        let sig = master_key.sign(&load, algo)?;
        Ok(ClearSigned { load, sig })
    }

    /// The envelope map.
    pub fn to_value(&self) -> Value {
        value::map([("enc", string("clear")), ("load", bytes(self.load.clone())), ("sig", bytes(self.sig.clone()))])
    }

    /// Verify the signature and decode the inner reply.
    pub fn open(&self, master_pub: &PublicKey, algo: SigAlgo) -> Result<Value> {
        master_pub.verify(&self.load, &self.sig, algo)?;
        msgpack::decode(&self.load)
    }
}

// ---------------------------------------------------------------------------
// _auth
// ---------------------------------------------------------------------------

/// The load of a minion's `_auth` request (crypt.py `minion_sign_in_payload`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthRequest {
    /// Minion id.
    pub id: String,
    /// `uuid4().hex`, echoed in the reply.
    pub nonce: String,
    /// Encryption algorithm name (`"OAEP-SHA1"`); kept as sent so a master
    /// can answer `"bad enc algo"`.
    pub enc_algo: String,
    /// Signing algorithm name (`"PKCS1v15-SHA1"`).
    pub sig_algo: String,
    /// The minion's public key PEM, [`clean_key`]ed.
    pub pub_key: String,
    /// OAEP(master_pub, minion token), sent only when the minion has the
    /// master's public key cached.
    pub token: Option<Vec<u8>>,
    /// Optional `autosign_grains` map.
    pub autosign_grains: Option<Value>,
}

impl AuthRequest {
    /// Minion side: build the sign-in load. `token` is the plaintext
    /// token (a fresh [`Crypticle::generate_key_string`] as bytes); it is
    /// OAEP-encrypted to `master_pub` when that key is cached (pass `None`
    /// on first contact).
    pub fn new(
        id: &str,
        minion_pub: &PublicKey,
        master_pub: Option<&PublicKey>,
        token: &[u8],
        enc_algo: EncAlgo,
        sig_algo: SigAlgo,
    ) -> Result<Self> {
        let token = match master_pub {
            Some(m) => Some(m.encrypt(token, enc_algo)?),
            None => None,
        };
        Ok(AuthRequest {
            id: id.to_owned(),
            nonce: util::uuid4_hex()?,
            enc_algo: enc_algo.as_str().to_owned(),
            sig_algo: sig_algo.as_str().to_owned(),
            pub_key: clean_key(&minion_pub.to_pem()?),
            token,
            autosign_grains: None,
        })
    }

    /// The load map, keys in Salt's order.
    pub fn to_load(&self) -> Value {
        let mut m = vec![
            ("cmd", string("_auth")),
            ("id", string(self.id.clone())),
            ("nonce", string(self.nonce.clone())),
            ("enc_algo", string(self.enc_algo.clone())),
            ("sig_algo", string(self.sig_algo.clone())),
        ];
        if let Some(g) = &self.autosign_grains {
            m.push(("autosign_grains", g.clone()));
        }
        if let Some(t) = &self.token {
            m.push(("token", bytes(t.clone())));
        }
        m.push(("pub", string(self.pub_key.clone())));
        value::map(m)
    }

    /// The clear request envelope (version 3).
    pub fn to_request(&self) -> Request {
        Request::Clear { load: self.to_load(), version: PROTOCOL_VERSION }
    }

    /// Master side: parse an `_auth` load. Missing algorithms default to
    /// OAEP-SHA1 / PKCS1v15-SHA1 as in Salt.
    pub fn from_load(load: &Value) -> Result<Self> {
        ensure_map(load, "_auth load")?;
        if need_str(load, "cmd")? != "_auth" {
            return Err(Error::bad("not an _auth load"));
        }
        Ok(AuthRequest {
            id: need_str(load, "id")?.to_owned(),
            nonce: need_str(load, "nonce")?.to_owned(),
            enc_algo: opt_str(load, "enc_algo").unwrap_or_else(|| EncAlgo::OaepSha1.to_string()),
            sig_algo: opt_str(load, "sig_algo").unwrap_or_else(|| SigAlgo::Pkcs1v15Sha1.to_string()),
            pub_key: need_str(load, "pub")?.to_owned(),
            token: get(load, "token").and_then(as_bytes).map(<[u8]>::to_vec),
            autosign_grains: get(load, "autosign_grains").cloned(),
        })
    }

    /// The parsed encryption algorithm.
    pub fn enc_algo(&self) -> Result<EncAlgo> {
        self.enc_algo.parse()
    }

    /// The parsed signing algorithm.
    pub fn sig_algo(&self) -> Result<SigAlgo> {
        self.sig_algo.parse()
    }
}

/// Master side: the unsigned `{"enc":"clear","load":{"ret":"bad enc algo"}}`
/// (or `"bad sig algo"`) reply to an `_auth` with an algorithm Salt does
/// not allow.
pub fn auth_bad_algo_reply(what: &str) -> Value {
    value::map([("enc", string("clear")), ("load", value::map([("ret", string(what))]))])
}

/// Master side: a clear-signed `{"ret": ret, "nonce": nonce}` reply:
/// `ret = true` means "pending, retry later", `false` "rejected",
/// `"full"` "max_minions reached".
pub fn auth_status_reply(master_key: &PrivateKey, ret: Value, nonce: &str, algo: SigAlgo) -> Result<Value> {
    let inner = value::map([("ret", ret), ("nonce", string(nonce))]);
    Ok(ClearSigned::sign(master_key, &inner, algo)?.to_value())
}

/// Master side: the inner `_auth` success reply (before [`ClearSigned`]),
/// built like master.py `_auth_impl` with `auth_mode` 1 (the default):
/// `{"enc":"pub","pub_key",["pub_sig"],"publish_port",["token"],"aes","session","sig","nonce"}`.
///
/// * `aes_key` is the master's shared AES key string, `session_key` the
///   minion's session key string (both Crypticle key strings).
/// * `token` (if the request had one) is OAEP-decrypted with the master key
///   and re-encrypted to the minion; a token that does not decrypt is
///   dropped, as Salt does.
/// * `sig` = X9.31(master_key, sha256(aes_key).hexdigest()).
pub fn auth_accept_load(
    req: &AuthRequest,
    master_key: &PrivateKey,
    aes_key: &str,
    session_key: &str,
    publish_port: u16,
) -> Result<Value> {
    auth_accept_load_with_sig(req, master_key, aes_key, &aes_key_sig(master_key, aes_key)?, session_key, publish_port)
}

/// The `sig` of an `_auth` success reply: X9.31(master_key,
/// sha256(aes_key).hexdigest()). X9.31 is deterministic and the value
/// depends only on the master key and the shared AES key, so a master
/// computes it once per AES key rather than once per sign-in (one RSA
/// private-key operation of the two an `_auth` costs).
pub fn aes_key_sig(master_key: &PrivateKey, aes_key: &str) -> Result<Vec<u8>> {
    let digest = util::sha256_hex(aes_key.as_bytes());
    master_key.sign_x931(digest.as_bytes())
}

/// [`auth_accept_load`] with the `sig` computed beforehand by [`aes_key_sig`].
pub fn auth_accept_load_with_sig(
    req: &AuthRequest,
    master_key: &PrivateKey,
    aes_key: &str,
    aes_sig: &[u8],
    session_key: &str,
    publish_port: u16,
) -> Result<Value> {
    let enc_algo = req.enc_algo()?;
    let minion_pub = PublicKey::from_pem(req.pub_key.trim())?;
    let master_pub = clean_key(&master_key.public_key().to_pem()?);
    let mut m =
        vec![("enc", string("pub")), ("pub_key", string(master_pub)), ("publish_port", Value::from(publish_port))];
    if let Some(t) = &req.token {
        if let Ok(plain) = master_key.decrypt(t, enc_algo) {
            m.push(("token", bytes(minion_pub.encrypt(&plain, enc_algo)?)));
        }
    }
    m.push(("aes", bytes(minion_pub.encrypt(aes_key.as_bytes(), enc_algo)?)));
    m.push(("session", bytes(minion_pub.encrypt(session_key.as_bytes(), enc_algo)?)));
    m.push(("sig", bytes(aes_sig.to_vec())));
    m.push(("nonce", string(req.nonce.clone())));
    Ok(value::map(m))
}

/// Master side: the whole clear-signed `_auth` success reply envelope
/// ([`auth_accept_load`] signed with the request's `sig_algo`).
pub fn accept_auth(
    req: &AuthRequest,
    master_key: &PrivateKey,
    aes_key: &str,
    session_key: &str,
    publish_port: u16,
) -> Result<Value> {
    accept_auth_with_sig(req, master_key, aes_key, &aes_key_sig(master_key, aes_key)?, session_key, publish_port)
}

/// [`accept_auth`] with the `sig` computed beforehand by [`aes_key_sig`].
pub fn accept_auth_with_sig(
    req: &AuthRequest,
    master_key: &PrivateKey,
    aes_key: &str,
    aes_sig: &[u8],
    session_key: &str,
    publish_port: u16,
) -> Result<Value> {
    let inner = auth_accept_load_with_sig(req, master_key, aes_key, aes_sig, session_key, publish_port)?;
    Ok(ClearSigned::sign(master_key, &inner, req.sig_algo()?)?.to_value())
}

/// What a minion learns from a successful `_auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCreds {
    /// The master's shared AES key string (publishes).
    pub aes: String,
    /// This minion's session key string (aes requests and replies).
    pub session: String,
    /// The master's publish port.
    pub publish_port: u16,
    /// The master public key from the reply, [`clean_key`]ed. On first
    /// contact (no cached key) the minion stores it as
    /// `minion_master.pub` (trust on first use).
    pub master_pub: String,
}

/// The result of an `_auth` exchange, from the minion's point of view.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    /// Accepted: connect the publish channel with these credentials.
    Accepted(AuthCreds),
    /// `ret: True` (and other truthy `ret`s): the key is pending on the
    /// master; retry after `acceptance_wait_time`.
    Pending,
    /// `ret: False`: the key was rejected or denied.
    Rejected,
    /// `ret: "full"`: `max_minions` reached.
    Full,
    /// The master does not accept our `enc_algo`.
    BadEncAlgo,
    /// The master does not accept our `sig_algo`.
    BadSigAlgo,
}

/// Minion side: check an `_auth` reply (crypt.py `handle_signin_response`,
/// `verify_master`, `decrypt_aes`).
///
/// * `cached_master_pub`: the contents of `minion_master.pub`, if any. If
///   the reply's `pub_key` differs, [`Error::MasterKeyChanged`]. If none is
///   cached the reply's key is trusted (and should then be stored).
/// * `token`: the plaintext token whose encryption was sent in
///   `req.token`; when the request carried one, the reply must return it.
///
/// Checks, in Salt's order: `aes` decrypts and its X9.31 `sig` recovers
/// `sha256(aes).hexdigest()`; `token` round-trips; `session` decrypts; the
/// clear signature over `load` verifies with the master key (skipped only
/// when no master key is known, i.e. a pending reply on first contact);
/// `nonce` matches.
pub fn open_auth_reply(
    reply: &Value,
    req: &AuthRequest,
    minion_key: &PrivateKey,
    cached_master_pub: Option<&str>,
    token: Option<&[u8]>,
) -> Result<AuthOutcome> {
    ensure_map(reply, "auth reply")?;
    let load = need(reply, "load")?;
    if let Value::Map(_) = load {
        // Unsigned replies: algorithm refusals (or a pre-v2 master).
        return match get(load, "ret").and_then(as_str) {
            Some("bad enc algo") => Ok(AuthOutcome::BadEncAlgo),
            Some("bad sig algo") => Ok(AuthOutcome::BadSigAlgo),
            _ => Err(Error::bad("unsigned _auth reply")),
        };
    }
    let signed = ClearSigned {
        load: as_bytes(load).ok_or_else(|| Error::bad("_auth reply load is not bytes"))?.to_vec(),
        sig: need_bytes(reply, "sig")?.to_vec(),
    };
    let enc_algo = req.enc_algo()?;
    let sig_algo = req.sig_algo()?;
    let payload = msgpack::decode(&signed.load)?;
    ensure_map(&payload, "_auth reply payload")?;

    let cached = match cached_master_pub {
        Some(pem) => Some((clean_key(pem), PublicKey::from_pem(pem)?)),
        None => None,
    };
    let mut creds = None;
    let mut verify_key = cached.as_ref().map(|(_, k)| k.clone());
    if let Some(pub_key) = get(&payload, "pub_key").and_then(as_str) {
        let received = clean_key(pub_key);
        if let Some((cached_pem, _)) = &cached {
            if *cached_pem != received {
                return Err(Error::MasterKeyChanged);
            }
        }
        let master_pub = PublicKey::from_pem(&received)?;
        let aes = minion_key.decrypt(need_bytes(&payload, "aes")?, enc_algo)?;
        let digest = master_pub.recover_x931(need_bytes(&payload, "sig")?)?;
        if digest != util::sha256_hex(&aes).as_bytes() {
            return Err(Error::bad("the master's aes signature did not verify"));
        }
        let aes = String::from_utf8(aes).map_err(|_| Error::bad("aes key is not text"))?;
        // auth_mode >= 2 sends "<aes>_|-<token>".
        let (aes, returned_token) = match aes.split_once("_|-") {
            Some((a, t)) => (a.to_owned(), Some(t.as_bytes().to_vec())),
            None => {
                let t = match get(&payload, "token").and_then(as_bytes) {
                    Some(ct) => Some(minion_key.decrypt(ct, enc_algo)?),
                    None => None,
                };
                (aes, t)
            }
        };
        if req.token.is_some() && returned_token.as_deref() != token {
            return Err(Error::bad("the master failed to return our token"));
        }
        let session = minion_key.decrypt(need_bytes(&payload, "session")?, enc_algo)?;
        let session = String::from_utf8(session).map_err(|_| Error::bad("session key is not text"))?;
        let publish_port = need(&payload, "publish_port")
            .ok()
            .and_then(int_of)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| Error::bad("bad publish_port"))?;
        verify_key = Some(master_pub);
        creds = Some(AuthCreds { aes, session, publish_port, master_pub: received });
    }
    if let Some(k) = &verify_key {
        k.verify(&signed.load, &signed.sig, sig_algo)?;
    }
    if get(&payload, "nonce").and_then(as_str) != Some(req.nonce.as_str()) {
        return Err(Error::NonceMismatch);
    }
    if let Some(ret) = get(&payload, "ret") {
        return Ok(if !value::truthy(ret) {
            AuthOutcome::Rejected
        } else if as_str(ret) == Some("full") {
            AuthOutcome::Full
        } else {
            AuthOutcome::Pending
        });
    }
    creds.map(AuthOutcome::Accepted).ok_or_else(|| Error::bad("_auth reply has neither pub_key nor ret"))
}

// ---------------------------------------------------------------------------
// send_private (`_pillar`)
// ---------------------------------------------------------------------------

/// Master side: server.py `_encrypt_private` with `sign_messages` (v > 1):
/// a one-off Crypticle key, OAEP-encrypted to the minion, and
/// `{dictkey: Crypticle(key).dumps({"data": D, "sig": sign(D)})}` where
/// `D = msgpack({"key": <encrypted key>, "pillar": ret, "nonce": nonce})`.
/// Send the returned map as the reply frame. `ret = false` becomes `{}`.
pub fn seal_private_reply(
    master_key: &PrivateKey,
    minion_pub: &PublicKey,
    ret: &Value,
    dictkey: &str,
    nonce: &str,
    enc_algo: EncAlgo,
    sig_algo: SigAlgo,
) -> Result<Value> {
    let key = Crypticle::generate()?;
    let enc_key = minion_pub.encrypt(key.key_string().as_bytes(), enc_algo)?;
    let ret = if *ret == Value::Boolean(false) { Value::Map(Vec::new()) } else { ret.clone() };
    let tosign =
        msgpack::encode(&value::map([("key", bytes(enc_key.clone())), ("pillar", ret), ("nonce", string(nonce))]));
    let sig = master_key.sign(&tosign, sig_algo)?;
    let signed = value::map([("data", bytes(tosign)), ("sig", bytes(sig))]);
    Ok(value::map([("key", bytes(enc_key)), (dictkey, bytes(key.dumps(&signed, None)?))]))
}

/// Minion side: client.py `crypted_transfer_decode_dictentry`: decrypt the
/// one-off key, open `reply[dictkey]`, verify the master's signature over
/// `data`, check that the signed `key` is the one received and the nonce
/// is ours; returns the `pillar` value.
pub fn open_private_reply(
    minion_key: &PrivateKey,
    master_pub: &PublicKey,
    reply: &Value,
    dictkey: &str,
    nonce: &str,
    enc_algo: EncAlgo,
    sig_algo: SigAlgo,
) -> Result<Value> {
    ensure_map(reply, "private reply")?;
    let enc_key = need_bytes(reply, "key")?;
    let key = minion_key.decrypt(enc_key, enc_algo)?;
    let key = std::str::from_utf8(&key).map_err(|_| Error::bad("one-off key is not text"))?;
    let pcrypt = Crypticle::new(key)?;
    let signed = pcrypt.loads(need_bytes(reply, dictkey)?, None)?;
    let data = need_bytes(&signed, "data")?;
    master_pub.verify(data, need_bytes(&signed, "sig")?, sig_algo)?;
    let data = msgpack::decode(data)?;
    if need_bytes(&data, "key")? != enc_key {
        return Err(Error::bad("key verification failed"));
    }
    if need_str(&data, "nonce")? != nonce {
        return Err(Error::NonceMismatch);
    }
    Ok(need(&data, "pillar")?.clone())
}

// ---------------------------------------------------------------------------
// Publish (4505)
// ---------------------------------------------------------------------------

/// The topic every minion with `zmq_filtering` subscribes to besides its own.
pub const BROADCAST_TOPIC: &[u8] = b"broadcast";

/// The ZeroMQ topic of one minion with `zmq_filtering`: `sha1(id).hexdigest()`
/// (`transport/zeromq.py`; the minion subscribes to it, the master addresses it).
pub fn publish_topic(minion_id: &str) -> String {
    crate::util::sha1_hex(minion_id.as_bytes())
}

/// Master side: the topics of one publish (`zeromq.PublishServer.publish_payload`).
/// `None`: send the payload as a single frame (no `zmq_filtering`). `Some(topics)`: send
/// `[topic, payload]` once per topic — one per targeted minion when the publish has a topic
/// list (`glob`/`pcre`/`list` targets resolved to ids), else just [`BROADCAST_TOPIC`].
pub fn publish_topics(zmq_filtering: bool, topic_list: Option<&[String]>) -> Option<Vec<Vec<u8>>> {
    if !zmq_filtering {
        return None;
    }
    Some(match topic_list {
        Some(ids) => ids.iter().map(|id| publish_topic(id).into_bytes()).collect(),
        None => vec![BROADCAST_TOPIC.to_vec()],
    })
}

/// Minion side: the payload of a publish message (`_decode_messages`): one frame is the payload;
/// two frames are `[topic, payload]`, and `Ok(None)` unless the topic is [`BROADCAST_TOPIC`] or
/// `own_topic` (see [`publish_topic`]). Any other frame count is an error.
pub fn publish_payload<'a, F: AsRef<[u8]>>(frames: &'a [F], own_topic: &str) -> Result<Option<&'a [u8]>> {
    match frames {
        [payload] => Ok(Some(payload.as_ref())),
        [topic, payload] => {
            let topic = topic.as_ref();
            Ok((topic == BROADCAST_TOPIC || topic == own_topic.as_bytes()).then_some(payload.as_ref()))
        }
        _ => Err(Error::PublishFrameCount(frames.len())),
    }
}

/// Master side: `PubServerChannel.wrap_payload`: set `load["serial"]`,
/// encrypt with the shared AES Crypticle and, when `signer` is given
/// (`sign_pub_messages: True`, the master default), add `sig_algo` and a
/// PKCS#1 v1.5 signature over the ciphertext. Send
/// `msgpack::encode(&envelope)` as the single PUB frame.
pub fn wrap_publish(
    aes: &Crypticle,
    mut load: Value,
    serial: u64,
    signer: Option<(&PrivateKey, SigAlgo)>,
) -> Result<Value> {
    ensure_map(&load, "publish load")?;
    insert(&mut load, "serial", Value::from(serial));
    let ct = aes.dumps(&load, None)?;
    let mut m = vec![("enc", string("aes"))];
    match signer {
        Some((key, algo)) => {
            let sig = key.sign(&ct, algo)?;
            m.push(("load", bytes(ct)));
            m.push(("sig_algo", string(algo.as_str())));
            m.push(("sig", bytes(sig)));
        }
        None => m.push(("load", bytes(ct))),
    }
    Ok(value::map(m))
}

/// Minion side: open a publish envelope (client.py `_decode_payload`):
/// verify the signature if `verify_with` is given (the minion's
/// `sign_pub_messages`; a missing `sig` is then an error), decrypt with the
/// shared AES Crypticle and apply the `serial` replay guard. Returns the
/// load (a map, `serial` removed).
pub fn open_publish(
    aes: &Crypticle,
    envelope: &Value,
    verify_with: Option<&PublicKey>,
    guard: &mut SerialGuard,
) -> Result<Value> {
    ensure_map(envelope, "publish envelope")?;
    if need_str(envelope, "enc")? != "aes" {
        return Err(Error::bad("publish is not enc aes"));
    }
    let ct = need_bytes(envelope, "load")?;
    if let Some(master_pub) = verify_with {
        let sig = get(envelope, "sig")
            .and_then(as_bytes)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::bad("publish has no signature"))?;
        let algo: SigAlgo = need_str(envelope, "sig_algo")?.parse()?;
        master_pub.verify(ct, sig, algo)?;
    }
    let load = aes.loads_checked(ct, None, guard)?;
    ensure_map(&load, "publish load")?;
    Ok(load)
}

/// Keys of a publish load that go before `tgt_type`, in `_prep_pub` order.
const PUB_KEYS_BEFORE_TGT_TYPE: &[&str] = &["master_id", "delimiter", "id"];
/// Keys that go after `tgt_type` and before `user`, in `_prep_pub` order.
const PUB_KEYS_AFTER_TGT_TYPE: &[&str] =
    &["to", "ret_config", "metadata", "module_executors", "executor_opts", "ret_kwargs", "start_event"];

/// A job publish load (master.py `_prep_pub`), the plaintext of a publish.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishLoad {
    /// Function name (`"test.ping"`), or a list of names for compound jobs.
    pub fun: Value,
    /// Arguments; keyword arguments appear as a trailing
    /// `{"__kwarg__": true, k: v, ...}` map. A list of lists for compound jobs.
    pub arg: Vec<Value>,
    /// Target: a string, or a list for `tgt_type: list`.
    pub tgt: Value,
    /// `glob`, `pcre`, `list`, `grain`, `compound`, ...
    pub tgt_type: String,
    /// The job id (20 digits).
    pub jid: String,
    /// Returner(s), usually `""`.
    pub ret: Value,
    /// The publishing user.
    pub user: Option<String>,
    /// The publish serial (set by [`wrap_publish`]; removed by
    /// [`open_publish`]).
    pub serial: Option<u64>,
    /// Every other key (`master_id`, `delimiter`, `to`, `metadata`, ...).
    pub extra: Vec<(String, Value)>,
}

impl PublishLoad {
    /// A minimal load for `fun(*arg)` on `tgt` (glob), `ret: ""`.
    pub fn new(fun: &str, arg: Vec<Value>, tgt: &str, jid: &str) -> Self {
        PublishLoad {
            fun: string(fun),
            arg,
            tgt: string(tgt),
            tgt_type: "glob".to_owned(),
            jid: jid.to_owned(),
            ret: string(""),
            user: None,
            serial: None,
            extra: Vec::new(),
        }
    }

    /// The function name when `fun` is a single string.
    pub fn fun_name(&self) -> Option<&str> {
        as_str(&self.fun)
    }

    /// The load map, keys in the order `_prep_pub` writes them (then
    /// unknown extras, then `serial`).
    pub fn to_value(&self) -> Value {
        let mut m: Vec<(Value, Value)> = vec![
            (string("fun"), self.fun.clone()),
            (string("arg"), Value::Array(self.arg.clone())),
            (string("tgt"), self.tgt.clone()),
            (string("jid"), string(self.jid.clone())),
            (string("ret"), self.ret.clone()),
        ];
        let extra = |k: &str| self.extra.iter().find(|(ek, _)| ek == k).map(|(_, v)| v);
        for k in PUB_KEYS_BEFORE_TGT_TYPE {
            if let Some(v) = extra(k) {
                m.push((string(*k), v.clone()));
            }
        }
        m.push((string("tgt_type"), string(self.tgt_type.clone())));
        for k in PUB_KEYS_AFTER_TGT_TYPE {
            if let Some(v) = extra(k) {
                m.push((string(*k), v.clone()));
            }
        }
        if let Some(u) = &self.user {
            m.push((string("user"), string(u.clone())));
        }
        for (k, v) in &self.extra {
            let known = PUB_KEYS_BEFORE_TGT_TYPE.contains(&k.as_str()) || PUB_KEYS_AFTER_TGT_TYPE.contains(&k.as_str());
            if !known {
                m.push((string(k.clone()), v.clone()));
            }
        }
        if let Some(s) = self.serial {
            m.push((string("serial"), Value::from(s)));
        }
        Value::Map(m)
    }

    /// Parse a publish load. Like the minion (`_handle_payload`), requires
    /// `tgt`, `jid`, `fun` and `arg`; `tgt_type` defaults to `glob`.
    pub fn from_value(v: &Value) -> Result<Self> {
        let Value::Map(pairs) = v else {
            return Err(Error::bad("publish load is not a map"));
        };
        let arg = match need(v, "arg")? {
            Value::Array(a) => a.clone(),
            _ => return Err(Error::bad("arg is not a list")),
        };
        let jid = match need(v, "jid")? {
            Value::Integer(i) => i.to_string(),
            other => as_str(other).ok_or_else(|| Error::bad("jid is not a string"))?.to_owned(),
        };
        let mut extra = Vec::new();
        for (k, val) in pairs {
            let Some(k) = as_str(k) else { continue };
            match k {
                "fun" | "arg" | "tgt" | "tgt_type" | "jid" | "ret" | "user" | "serial" => {}
                _ => extra.push((k.to_owned(), val.clone())),
            }
        }
        Ok(PublishLoad {
            fun: need(v, "fun")?.clone(),
            arg,
            tgt: need(v, "tgt")?.clone(),
            tgt_type: opt_str(v, "tgt_type").unwrap_or_else(|| "glob".to_owned()),
            jid,
            ret: get(v, "ret").cloned().unwrap_or_else(|| string("")),
            user: opt_str(v, "user"),
            serial: get(v, "serial").and_then(Value::as_u64),
            extra,
        })
    }
}

// ---------------------------------------------------------------------------
// _return
// ---------------------------------------------------------------------------

/// A job return load (`cmd: "_return"`, minion.py `_thread_return` +
/// `_prepare_return_pub`), sent as an aes request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnLoad {
    /// Minion id.
    pub id: String,
    /// The job id.
    pub jid: String,
    /// The function that ran.
    pub fun: Value,
    /// Its arguments (the publish `arg`).
    pub fun_args: Vec<Value>,
    /// The function's return value (key `"return"`).
    pub ret: Value,
    /// Exit code (usually an int).
    pub retcode: Value,
    /// Whether the function succeeded.
    pub success: bool,
    /// The outputter name, if any.
    pub out: Option<String>,
    /// Other keys (`user`, `master_id`, `metadata`, ...), written between
    /// `fun_args` and `out`.
    pub extra: Vec<(String, Value)>,
}

impl ReturnLoad {
    /// The load map in the order a Python minion writes it: `cmd`, `id`,
    /// `success`, `return`, `retcode`, `jid`, `fun`, `fun_args`, extras,
    /// `out`. ([`seal_aes_request`] then adds `nonce`, `ts`, `tok`.)
    pub fn to_value(&self) -> Value {
        let mut m: Vec<(Value, Value)> = vec![
            (string("cmd"), string("_return")),
            (string("id"), string(self.id.clone())),
            (string("success"), Value::Boolean(self.success)),
            (string("return"), self.ret.clone()),
            (string("retcode"), self.retcode.clone()),
            (string("jid"), string(self.jid.clone())),
            (string("fun"), self.fun.clone()),
            (string("fun_args"), Value::Array(self.fun_args.clone())),
        ];
        for (k, v) in &self.extra {
            m.push((string(k.clone()), v.clone()));
        }
        if let Some(o) = &self.out {
            m.push((string("out"), string(o.clone())));
        }
        Value::Map(m)
    }

    /// Parse a `_return` load (after [`open_aes_request`]). `ts` is
    /// dropped; unknown keys go to `extra`.
    pub fn from_value(v: &Value) -> Result<Self> {
        let Value::Map(pairs) = v else {
            return Err(Error::bad("return load is not a map"));
        };
        if let Some(cmd) = get(v, "cmd").and_then(as_str) {
            if cmd != "_return" {
                return Err(Error::bad("not a _return load"));
            }
        }
        let fun_args = match get(v, "fun_args") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let mut extra = Vec::new();
        for (k, val) in pairs {
            let Some(k) = as_str(k) else { continue };
            match k {
                "cmd" | "id" | "success" | "return" | "retcode" | "jid" | "fun" | "fun_args" | "out" | "ts"
                | "nonce" | "tok" => {}
                _ => extra.push((k.to_owned(), val.clone())),
            }
        }
        Ok(ReturnLoad {
            id: need_str(v, "id")?.to_owned(),
            jid: need_str(v, "jid")?.to_owned(),
            fun: get(v, "fun").cloned().unwrap_or(Value::Nil),
            fun_args,
            ret: get(v, "return").cloned().unwrap_or(Value::Nil),
            retcode: get(v, "retcode").cloned().unwrap_or(Value::from(0)),
            success: matches!(get(v, "success"), Some(Value::Boolean(true))),
            out: opt_str(v, "out"),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_topic_framing() {
        assert_eq!(publish_topic("m1"), "ae23b94ccaf714337e4ce5ba99ef3dc257e300df");
        assert_eq!(publish_topics(false, Some(&["m1".into()])), None);
        assert_eq!(publish_topics(true, None), Some(vec![b"broadcast".to_vec()]));
        let ids = ["m1".to_string(), "m2".to_string()];
        let topics = publish_topics(true, Some(&ids)).unwrap_or_default();
        assert_eq!(topics, vec![publish_topic("m1").into_bytes(), publish_topic("m2").into_bytes()]);

        let me = publish_topic("m1");
        let payload: &[u8] = b"env";
        assert_eq!(publish_payload(&[payload], &me).ok(), Some(Some(payload)));
        for topic in &topics[..1] {
            assert_eq!(publish_payload(&[topic.as_slice(), payload], &me).ok(), Some(Some(payload)));
        }
        assert_eq!(publish_payload(&[BROADCAST_TOPIC, payload], &me).ok(), Some(Some(payload)));
        assert_eq!(publish_payload(&[topics[1].as_slice(), payload], &me).ok(), Some(None));
        let none: [&[u8]; 0] = [];
        assert!(matches!(publish_payload(&none, &me), Err(Error::PublishFrameCount(0))));
        assert!(matches!(publish_payload(&[payload; 3], &me), Err(Error::PublishFrameCount(3))));
    }

    #[test]
    fn precomputed_aes_sig_is_the_same_reply() {
        let (Ok(master), Ok(minion)) = (PrivateKey::generate(1024), PrivateKey::generate(1024)) else { return };
        let Ok(aes) = crate::Crypticle::generate_key_string() else { return };
        let Ok(session) = crate::Crypticle::generate_key_string() else { return };
        let req = AuthRequest::new("m1", &minion.public_key(), None, b"t", EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1);
        let Ok(req) = req else { panic!("{req:?}") };
        let Ok(sig) = aes_key_sig(&master, &aes) else { panic!("sig") };
        // X9.31 is deterministic: the per-request computation gives the same bytes.
        let Ok(load) = auth_accept_load(&req, &master, &aes, &session, 4505) else { panic!("load") };
        assert_eq!(value::get(&load, "sig").and_then(value::as_bytes), Some(&sig[..]));
        // And a reply built from the cached sig opens on the minion side.
        let reply = accept_auth_with_sig(&req, &master, &aes, &sig, &session, 4505);
        let Ok(reply) = reply else { panic!("{reply:?}") };
        match open_auth_reply(&reply, &req, &minion, None, None) {
            Ok(AuthOutcome::Accepted(c)) => assert_eq!((c.aes.as_str(), c.session.as_str()), (&aes[..], &session[..])),
            other => panic!("{other:?}"),
        }
    }
}
