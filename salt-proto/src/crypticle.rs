//! Salt's `Crypticle`: the symmetric layer of the protocol (crypt.py).
//!
//! * Key string: `base64(os.urandom(24 + 32))`, i.e. an **AES-192** key
//!   followed by an **HMAC-SHA256** key (Salt's default `key_size=192`;
//!   48- and 64-byte keys, AES-128/256, are accepted too).
//! * [`Crypticle::encrypt`]: PKCS#7 pad to 16, random 16-byte IV,
//!   AES-CBC; output `IV || ciphertext || HMAC-SHA256(hmac_key, IV || ciphertext)`.
//! * [`Crypticle::decrypt`]: constant-time HMAC check first, then CBC
//!   decryption and padding removal. Never panics on bad input.
//! * [`Crypticle::dumps`] / [`Crypticle::loads`]: `encrypt(b"pickle::" +
//!   nonce + msgpack(value))` and back, with the nonce check replies use.
//! * [`SerialGuard`]: the monotonic `serial` check Salt applies to
//!   publishes (`serial <= last_serial` is a replay and is dropped).
//!
//! Three kinds of key use a Crypticle: the master's shared AES key
//! (publishes), the per-minion session key (v3 requests and replies) and
//! one-off keys (`_pillar` replies, see [`crate::envelope`]).

use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rmpv::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{Crypto, Error, Malformed, Result};
use crate::msgpack;
use crate::value;

/// Prefix of every serialized plaintext (`Crypticle.PICKLE_PAD`).
pub const PICKLE_PAD: &[u8] = b"pickle::";
/// AES block and IV size.
pub const AES_BLOCK_SIZE: usize = 16;
/// HMAC-SHA256 tag size (`Crypticle.SIG_SIZE`).
pub const SIG_SIZE: usize = 32;
/// AES key size Salt uses by default (192 bits).
pub const DEFAULT_AES_KEY_LEN: usize = 24;
/// Length of the nonces Salt puts in replies (`uuid4().hex`).
pub const NONCE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A Salt symmetric key (AES-CBC + HMAC-SHA256) with the operations Salt
/// performs with it.
///
/// Cheap to clone; the key material is wiped on drop. `Debug` does not
/// print the key.
#[derive(Clone)]
pub struct Crypticle {
    key_string: String,
    /// 16, 24 or 32 bytes.
    aes_key: Vec<u8>,
    hmac_key: [u8; SIG_SIZE],
}

impl fmt::Debug for Crypticle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypticle").field("aes_bits", &(self.aes_key.len() * 8)).finish_non_exhaustive()
    }
}

impl Drop for Crypticle {
    fn drop(&mut self) {
        self.key_string.zeroize();
        self.aes_key.zeroize();
        self.hmac_key.zeroize();
    }
}

impl Crypticle {
    /// `Crypticle.generate_key_string()`: base64 (standard alphabet, padded,
    /// no newline) of 56 random bytes.
    pub fn generate_key_string() -> Result<String> {
        let mut raw = [0u8; DEFAULT_AES_KEY_LEN + SIG_SIZE];
        crate::util::fill_random(&mut raw)?;
        let s = base64::engine::general_purpose::STANDARD.encode(raw);
        raw.zeroize();
        Ok(s)
    }

    /// A Crypticle with a freshly generated key.
    pub fn generate() -> Result<Self> {
        Self::new(&Self::generate_key_string()?)
    }

    /// Build a Crypticle from a key string as Salt stores it (files
    /// `cachedir/sessions/<id>`, the master's AES secret, OAEP-decrypted
    /// `aes`/`session` fields). Surrounding whitespace is ignored.
    pub fn new(key_string: &str) -> Result<Self> {
        let key_string = key_string.trim();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(key_string)
            .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("not base64")))?;
        let aes_len = match raw.len() {
            48 => 16,
            56 => 24,
            64 => 32,
            _ => {
                raw.zeroize();
                return Err(Error::Crypto(Crypto::InvalidCrypticleKey("decoded key must be 48, 56 or 64 bytes")));
            }
        };
        let mut hmac_key = [0u8; SIG_SIZE];
        hmac_key.copy_from_slice(&raw[aes_len..]);
        let aes_key = raw[..aes_len].to_vec();
        raw.zeroize();
        Ok(Crypticle { key_string: key_string.to_owned(), aes_key, hmac_key })
    }

    /// The key string this Crypticle was built from.
    pub fn key_string(&self) -> &str {
        &self.key_string
    }

    fn mac(&self) -> Result<HmacSha256> {
        HmacSha256::new_from_slice(&self.hmac_key).map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("hmac key")))
    }

    /// Encrypt and authenticate `data` with a random IV (Salt's `encrypt`).
    pub fn encrypt(&self, data: &[u8]) -> Result<Vec<u8>> {
        let mut iv = [0u8; AES_BLOCK_SIZE];
        crate::util::fill_random(&mut iv)?;
        self.encrypt_with_iv(data, &iv)
    }

    /// Encrypt with a caller-chosen IV. Deterministic, for test vectors
    /// only: **never reuse an IV** with the same key in real traffic; use
    /// [`Crypticle::encrypt`].
    pub fn encrypt_with_iv(&self, data: &[u8], iv: &[u8; AES_BLOCK_SIZE]) -> Result<Vec<u8>> {
        let ct = match self.aes_key.len() {
            16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.aes_key, iv)
                .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("aes key")))?
                .encrypt_padded_vec_mut::<Pkcs7>(data),
            24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(&self.aes_key, iv)
                .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("aes key")))?
                .encrypt_padded_vec_mut::<Pkcs7>(data),
            _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(&self.aes_key, iv)
                .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("aes key")))?
                .encrypt_padded_vec_mut::<Pkcs7>(data),
        };
        let mut out = Vec::with_capacity(AES_BLOCK_SIZE + ct.len() + SIG_SIZE);
        out.extend_from_slice(iv);
        out.extend_from_slice(&ct);
        let mut mac = self.mac()?;
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        Ok(out)
    }

    /// Verify the HMAC (constant time) and decrypt (Salt's `decrypt`).
    ///
    /// Errors: [`Crypto::AuthenticationFailed`] on a wrong tag (the usual
    /// sign of a rotated key: re-authenticate), [`Malformed::CiphertextLength`]
    /// if the data cannot be `IV || n*16 bytes || tag`, [`Crypto::BadPadding`].
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>> {
        if data.len() < SIG_SIZE {
            return Err(Error::Crypto(Crypto::AuthenticationFailed));
        }
        let (body, tag) = data.split_at(data.len() - SIG_SIZE);
        let mut mac = self.mac()?;
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(Error::Crypto(Crypto::AuthenticationFailed));
        }
        if body.len() < 2 * AES_BLOCK_SIZE || body.len() % AES_BLOCK_SIZE != 0 {
            return Err(Error::Malformed(Malformed::CiphertextLength(data.len())));
        }
        let (iv, ct) = body.split_at(AES_BLOCK_SIZE);
        let pt = match self.aes_key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.aes_key, iv)
                .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("aes key")))?
                .decrypt_padded_vec_mut::<Pkcs7>(ct),
            24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&self.aes_key, iv)
                .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("aes key")))?
                .decrypt_padded_vec_mut::<Pkcs7>(ct),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.aes_key, iv)
                .map_err(|_| Error::Crypto(Crypto::InvalidCrypticleKey("aes key")))?
                .decrypt_padded_vec_mut::<Pkcs7>(ct),
        };
        pt.map_err(|_| Error::Crypto(Crypto::BadPadding))
    }

    /// Salt's `dumps(obj, nonce)`: `encrypt(b"pickle::" + nonce + msgpack(value))`.
    ///
    /// As in Salt, an empty nonce is the same as none. Replies to v3
    /// requests carry the request's 32-hex-char nonce.
    pub fn dumps(&self, value: &Value, nonce: Option<&str>) -> Result<Vec<u8>> {
        self.encrypt(&Self::plaintext(value, nonce))
    }

    /// [`Crypticle::dumps`] with a fixed IV, for test vectors only.
    pub fn dumps_with_iv(&self, value: &Value, nonce: Option<&str>, iv: &[u8; AES_BLOCK_SIZE]) -> Result<Vec<u8>> {
        self.encrypt_with_iv(&Self::plaintext(value, nonce), iv)
    }

    fn plaintext(value: &Value, nonce: Option<&str>) -> Vec<u8> {
        let mut pt = Vec::with_capacity(64);
        pt.extend_from_slice(PICKLE_PAD);
        if let Some(n) = nonce {
            pt.extend_from_slice(n.as_bytes());
        }
        msgpack::encode_into(value, &mut pt, false);
        pt
    }

    /// Salt's `loads(data, nonce=nonce)`: decrypt, check the `pickle::`
    /// prefix, check the nonce if one is expected, decode msgpack.
    ///
    /// Differences from Python, all stricter: a missing prefix is an
    /// [`Malformed::MissingPicklePrefix`] (Salt silently returns `{}`), and the
    /// `serial` replay check is not done here; use
    /// [`Crypticle::loads_checked`] (or [`SerialGuard::check`]) for publishes.
    pub fn loads(&self, data: &[u8], nonce: Option<&str>) -> Result<Value> {
        let pt = self.decrypt(data)?;
        let rest = pt.strip_prefix(PICKLE_PAD).ok_or(Error::Malformed(Malformed::MissingPicklePrefix))?;
        let rest = match nonce {
            Some(n) if !n.is_empty() => {
                if rest.len() < NONCE_LEN || &rest[..NONCE_LEN] != n.as_bytes() {
                    return Err(Error::Crypto(Crypto::NonceMismatch));
                }
                &rest[NONCE_LEN..]
            }
            _ => rest,
        };
        msgpack::decode(rest)
    }

    /// [`Crypticle::loads`] followed by the serial replay check, as the
    /// minion does for publishes (the `serial` key is removed).
    pub fn loads_checked(&self, data: &[u8], nonce: Option<&str>, guard: &mut SerialGuard) -> Result<Value> {
        let mut v = self.loads(data, nonce)?;
        guard.check(&mut v)?;
        Ok(v)
    }
}

/// The replay guard of `Crypticle.loads`: every publish load carries a
/// `serial` the master increments; a load whose `serial` is not greater than
/// the last accepted one is rejected.
///
/// Salt keeps the last serial inside the Crypticle and starts again at 0
/// whenever it builds a new one (a re-authentication, a new AES key): do
/// the same by creating a new guard when the key changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SerialGuard {
    last: u64,
}

impl SerialGuard {
    /// A guard that has seen serial `last` (Salt starts at 0).
    pub fn new(last: u64) -> Self {
        SerialGuard { last }
    }

    /// The last accepted serial.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// If `payload` is a map with a `serial` key: remove it, reject it
    /// ([`Error::Replay`]) if it is not an integer greater than the
    /// last accepted serial, else remember it. Other payloads pass.
    pub fn check(&mut self, payload: &mut Value) -> Result<()> {
        let Some(serial) = value::remove(payload, "serial") else {
            return Ok(());
        };
        match serial.as_u64() {
            Some(s) if s > self.last => {
                self.last = s;
                Ok(())
            }
            _ => Err(Error::Replay { serial: serial.to_string(), last: self.last }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Crypticle {
        match Crypticle::generate() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn key_string_shape() {
        let k = Crypticle::generate_key_string().unwrap_or_default();
        assert_eq!(k.len(), 76);
        assert!(Crypticle::new(&k).is_ok());
        assert!(Crypticle::new("not base64!").is_err());
        assert!(Crypticle::new("AAAA").is_err());
    }

    #[test]
    fn roundtrip_and_tamper() {
        let c = c();
        for len in [0usize, 1, 15, 16, 17, 100] {
            let data = vec![7u8; len];
            let ct = c.encrypt(&data).unwrap_or_default();
            assert_eq!(ct.len(), 16 + (len / 16 + 1) * 16 + 32);
            assert_eq!(c.decrypt(&ct).ok(), Some(data));
            let mut bad = ct.clone();
            bad[20] ^= 1;
            assert!(matches!(c.decrypt(&bad), Err(Error::Crypto(Crypto::AuthenticationFailed))));
        }
        for len in [0usize, 5, 31, 32, 40, 48] {
            assert!(c.decrypt(&vec![0u8; len]).is_err());
        }
        // Wrong key.
        let ct = c.encrypt(b"x").unwrap_or_default();
        assert!(matches!(
            super::Crypticle::generate().and_then(|o| o.decrypt(&ct)),
            Err(Error::Crypto(Crypto::AuthenticationFailed))
        ));
    }

    #[test]
    fn bad_padding_behind_valid_mac_is_an_error() {
        let c = c();
        // Encrypt a block without padding, then MAC it: padding byte 0x00.
        let iv = [1u8; 16];
        let mut enc = cbc::Encryptor::<aes::Aes192>::new_from_slices(&c.aes_key, &iv).unwrap_or_else(|_| panic!("key"));
        let mut block = aes::Block::default();
        enc.encrypt_block_mut(&mut block);
        let mut data = iv.to_vec();
        data.extend_from_slice(&block);
        let mut mac = c.mac().unwrap_or_else(|_| panic!("mac"));
        mac.update(&data);
        data.extend_from_slice(&mac.finalize().into_bytes());
        assert!(matches!(c.decrypt(&data), Err(Error::Crypto(Crypto::BadPadding))));
    }

    #[test]
    fn dumps_loads_nonce_and_serial() {
        let c = c();
        let nonce = "0123456789abcdef0123456789abcdef";
        let v = value::map([("fun", value::string("test.ping"))]);
        let ct = c.dumps(&v, Some(nonce)).unwrap_or_default();
        assert_eq!(c.loads(&ct, Some(nonce)).ok(), Some(v.clone()));
        assert!(matches!(
            c.loads(&ct, Some("ffffffffffffffffffffffffffffffff")),
            Err(Error::Crypto(Crypto::NonceMismatch))
        ));
        let mut g = SerialGuard::default();
        let mut p = value::map([("a", Value::from(1)), ("serial", Value::from(1))]);
        let ct = c.dumps(&p, None).unwrap_or_default();
        let got = c.loads_checked(&ct, None, &mut g).ok();
        value::remove(&mut p, "serial");
        assert_eq!(got, Some(p));
        assert_eq!(g.last(), 1);
        assert!(matches!(c.loads_checked(&ct, None, &mut g), Err(Error::Replay { .. })));
        let no_prefix = c.encrypt(b"\x80").unwrap_or_default();
        assert!(matches!(c.loads(&no_prefix, None), Err(Error::Malformed(Malformed::MissingPicklePrefix))));
    }
}
