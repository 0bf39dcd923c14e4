//! `_auth`: the clear request ([`AuthRequest`]), the master's clear-signed reply ([`ClearSigned`],
//! [`auth_status_reply`], [`auth_accept_load`], [`accept_auth`], [`auth_bad_algo_reply`]) and the
//! minion's check of it ([`open_auth_reply`] → [`AuthOutcome`]).

use rmpv::Value;

use super::request::Request;
use super::{ensure_map, int_of, need, need_bytes, need_str, opt_str, PROTOCOL_VERSION};
use crate::error::{Crypto, Error, Result};
use crate::msgpack;
use crate::rsa::{clean_key, EncAlgo, PrivateKey, PublicKey, SigAlgo};
use crate::util;
use crate::value::{self, as_bytes, as_str, bytes, get, string};

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
    /// token (a fresh [`Crypticle::generate_key_string`](crate::Crypticle::generate_key_string) as bytes); it is
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
    let minion_pub = PublicKey::from_pem(req.pub_key.trim())?;
    let master_pub = clean_key(&master_key.public_key().to_pem()?);
    let keys = AcceptKeys { minion_pub: &minion_pub, master_key, master_pub: &master_pub, aes_sig };
    auth_accept_load_prepared(req, &keys, aes_key, session_key, publish_port)
}

/// What a master has ready for an `_auth` success reply, parsed and
/// computed beforehand so a sign-in does each once: the minion's key as
/// `_auth` already parsed it to check it, the master key, its public key
/// as sent on the wire ([`clean_key`]ed SPKI PEM) and the `sig` of
/// [`aes_key_sig`].
#[derive(Debug, Clone, Copy)]
pub struct AcceptKeys<'a> {
    /// The key the minion presented (`req.pub_key`), parsed.
    pub minion_pub: &'a PublicKey,
    /// The master's private key.
    pub master_key: &'a PrivateKey,
    /// The master's public key, [`clean_key`]ed.
    pub master_pub: &'a str,
    /// [`aes_key_sig`] of the AES key sent.
    pub aes_sig: &'a [u8],
}

/// [`auth_accept_load_with_sig`] from [`AcceptKeys`]: nothing parsed again.
pub fn auth_accept_load_prepared(
    req: &AuthRequest,
    keys: &AcceptKeys<'_>,
    aes_key: &str,
    session_key: &str,
    publish_port: u16,
) -> Result<Value> {
    let AcceptKeys { minion_pub, master_key, master_pub, aes_sig } = *keys;
    let enc_algo = req.enc_algo()?;
    let mut m = vec![
        ("enc", string("pub")),
        ("pub_key", string(master_pub.to_owned())),
        ("publish_port", Value::from(publish_port)),
    ];
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

/// [`accept_auth_with_sig`] from [`AcceptKeys`] (what a master signing many
/// minions in uses: the minion's key is parsed once per sign-in, the
/// master's public key once per start).
pub fn accept_auth_prepared(
    req: &AuthRequest,
    keys: &AcceptKeys<'_>,
    aes_key: &str,
    session_key: &str,
    publish_port: u16,
) -> Result<Value> {
    let inner = auth_accept_load_prepared(req, keys, aes_key, session_key, publish_port)?;
    Ok(ClearSigned::sign(keys.master_key, &inner, req.sig_algo()?)?.to_value())
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
    /// The reply carries a master key other than the cached one (`verify_master`): nothing else
    /// in it was checked or may be trusted.
    MasterKeyChanged,
}

/// Minion side: check an `_auth` reply (crypt.py `handle_signin_response`,
/// `verify_master`, `decrypt_aes`).
///
/// * `cached_master_pub`: the contents of `minion_master.pub`, if any. If
///   the reply's `pub_key` differs, [`AuthOutcome::MasterKeyChanged`]. If none is
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
                return Ok(AuthOutcome::MasterKeyChanged);
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
        return Err(Error::Crypto(Crypto::NonceMismatch));
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(get(&load, "sig").and_then(as_bytes), Some(&sig[..]));
        // And a reply built from the cached sig opens on the minion side.
        let reply = accept_auth_with_sig(&req, &master, &aes, &sig, &session, 4505);
        let Ok(reply) = reply else { panic!("{reply:?}") };
        match open_auth_reply(&reply, &req, &minion, None, None) {
            Ok(AuthOutcome::Accepted(c)) => assert_eq!((c.aes.as_str(), c.session.as_str()), (&aes[..], &session[..])),
            other => panic!("{other:?}"),
        }
    }
}
