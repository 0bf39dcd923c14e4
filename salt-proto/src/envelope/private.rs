//! `send_private` replies (`_pillar`): a fresh AES key under the minion's RSA key, and the data
//! signed by the master inside it ([`seal_private_reply`], [`open_private_reply`]).

use rmpv::Value;

use super::{ensure_map, need, need_bytes, need_str};
use crate::crypticle::Crypticle;
use crate::error::{Crypto, Error, Result};
use crate::msgpack;
use crate::rsa::{EncAlgo, PrivateKey, PublicKey, SigAlgo};
use crate::value::{self, bytes, string};

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
        return Err(Error::Crypto(Crypto::NonceMismatch));
    }
    Ok(need(&data, "pillar")?.clone())
}
