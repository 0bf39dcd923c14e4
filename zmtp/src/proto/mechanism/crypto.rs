//! The cryptography CURVE needs, from RustCrypto (no C): keys, libsodium's `crypto_box`
//! (X25519 + XSalsa20-Poly1305) and `crypto_secretbox`, randomness, and the cookie keys.
//!
//! Built with `--cfg fuzzing` (cargo-fuzz sets it), boxes are the identity with an all-zero tag
//! and randomness is a counter, as rustls does, so that the fuzzer gets past the boxes and its
//! findings replay; nothing else changes. A normal build never contains that code.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::z85;

/// Octets a box adds to what it holds (the Poly1305 tag, which comes first, as in libsodium).
pub const TAG: usize = 16;

/// A CURVE public key: 32 octets, shown as 40 Z85 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurvePublicKey(pub [u8; 32]);

/// A CURVE secret key: 32 octets, wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct CurveSecretKey(Zeroizing<[u8; 32]>);

/// A long-term key pair.
#[derive(Clone, Debug)]
pub struct CurveKeyPair {
    /// The public half, given to peers.
    pub public: CurvePublicKey,
    /// The secret half.
    pub secret: CurveSecretKey,
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("a CURVE key is 32 octets or 40 Z85 characters, got {0} octets")]
pub struct InvalidKey(pub usize);

fn key_bytes(raw: &[u8]) -> Result<Zeroizing<[u8; 32]>, InvalidKey> {
    let mut out = Zeroizing::new([0u8; 32]);
    match raw.len() {
        32 => out.copy_from_slice(raw),
        40 => {
            let text = std::str::from_utf8(raw).map_err(|_| InvalidKey(raw.len()))?;
            let mut decoded = z85::decode(text).map_err(|_| InvalidKey(raw.len()))?;
            out.copy_from_slice(&decoded);
            decoded.zeroize();
        }
        n => return Err(InvalidKey(n)),
    }
    Ok(out)
}

impl CurvePublicKey {
    /// From 32 raw octets or 40 Z85 characters.
    pub fn from_slice(raw: &[u8]) -> Result<CurvePublicKey, InvalidKey> {
        key_bytes(raw).map(|k| CurvePublicKey(*k))
    }

    /// The key as 40 Z85 characters.
    pub fn to_z85(&self) -> String {
        // 32 is a multiple of 4.
        z85::encode(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for CurvePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CurvePublicKey({})", self.to_z85())
    }
}

impl std::str::FromStr for CurvePublicKey {
    type Err = InvalidKey;
    fn from_str(s: &str) -> Result<CurvePublicKey, InvalidKey> {
        CurvePublicKey::from_slice(s.as_bytes())
    }
}

impl CurveSecretKey {
    /// From 32 raw octets or 40 Z85 characters.
    pub fn from_slice(raw: &[u8]) -> Result<CurveSecretKey, InvalidKey> {
        key_bytes(raw).map(CurveSecretKey)
    }

    /// The raw octets.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 40 Z85 characters (for writing a key file; handle with care).
    pub fn to_z85(&self) -> Zeroizing<String> {
        Zeroizing::new(z85::encode(&self.0[..]).unwrap_or_default())
    }

    /// The public key of this secret key.
    pub fn public_key(&self) -> CurvePublicKey {
        CurvePublicKey(*crypto_box::SecretKey::from_bytes(*self.0).public_key().as_bytes())
    }
}

impl std::fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CurveSecretKey(..)")
    }
}

impl CurveKeyPair {
    /// A fresh random key pair (libzmq's `zmq_curve_keypair`).
    pub fn generate() -> CurveKeyPair {
        let mut raw = Zeroizing::new([0u8; 32]);
        random(&mut raw[..]);
        CurveKeyPair::from_secret(CurveSecretKey(raw))
    }

    /// The pair of a secret key (libzmq's `zmq_curve_public`).
    pub fn from_secret(secret: CurveSecretKey) -> CurveKeyPair {
        CurveKeyPair { public: secret.public_key(), secret }
    }
}

/// Fills `buf` from the operating system's generator.
///
/// # Panics
/// If the operating system has no random source: there is no safe way to go on.
pub(crate) fn random(buf: &mut [u8]) {
    #[cfg(not(fuzzing))]
    {
        if let Err(e) = getrandom::getrandom(buf) {
            panic!("no random source: {e}");
        }
    }
    #[cfg(fuzzing)]
    {
        use std::sync::atomic::{AtomicU8, Ordering};
        static NEXT: AtomicU8 = AtomicU8::new(1);
        buf.fill(NEXT.fetch_add(1, Ordering::Relaxed));
    }
}

/// A 24-octet nonce from a 16-octet prefix and a short (8-octet) nonce.
pub(crate) fn short_nonce(prefix: &[u8; 16], n: u64) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(prefix);
    out[16..].copy_from_slice(&n.to_be_bytes());
    out
}

/// A 24-octet nonce from an 8-octet prefix and a long (16-octet) nonce.
pub(crate) fn long_nonce(prefix: &[u8; 8], n: &[u8]) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(prefix);
    out[8..].copy_from_slice(&n[..16]);
    out
}

/// Constant-time equality of two keys or plaintexts.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `crypto_box` between one secret and one public key, precomputed (libsodium's `_beforenm`):
/// XSalsa20-Poly1305 under [`super::xsalsa::box_key`].
pub(crate) struct Boxer {
    #[cfg(not(fuzzing))]
    inner: crypto_secretbox::XSalsa20Poly1305,
}

impl std::fmt::Debug for Boxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Boxer(..)")
    }
}

impl Boxer {
    pub(crate) fn new(their_public: &[u8; 32], our_secret: &CurveSecretKey) -> Boxer {
        Boxer::from_key(&super::xsalsa::box_key(their_public, our_secret.as_bytes()))
    }

    /// From a precomputed box key.
    pub(crate) fn from_key(key: &[u8; 32]) -> Boxer {
        #[cfg(not(fuzzing))]
        {
            use crypto_secretbox::aead::KeyInit;
            Boxer { inner: crypto_secretbox::XSalsa20Poly1305::new(key.into()) }
        }
        #[cfg(fuzzing)]
        {
            let _ = key;
            Boxer {}
        }
    }

    /// Encrypts `buf` in place; returns the tag, which goes before it on the wire.
    pub(crate) fn seal_in_place(&self, nonce: &[u8; 24], buf: &mut [u8]) -> [u8; TAG] {
        #[cfg(not(fuzzing))]
        {
            use crypto_secretbox::aead::AeadInPlace;
            match self.inner.encrypt_in_place_detached(nonce.into(), b"", buf) {
                Ok(tag) => tag.into(),
                // Only associated data can make it fail, and there is none.
                Err(_) => unreachable!("crypto_box without associated data cannot fail"),
            }
        }
        #[cfg(fuzzing)]
        {
            let _ = (nonce, buf);
            [0; TAG]
        }
    }

    /// Decrypts `buf` in place if `tag` authenticates it.
    #[must_use]
    pub(crate) fn open_in_place(&self, nonce: &[u8; 24], tag: &[u8], buf: &mut [u8]) -> bool {
        if tag.len() != TAG {
            return false;
        }
        #[cfg(not(fuzzing))]
        {
            use crypto_secretbox::aead::AeadInPlace;
            self.inner.decrypt_in_place_detached(nonce.into(), b"", buf, tag.into()).is_ok()
        }
        #[cfg(fuzzing)]
        {
            let _ = (nonce, buf);
            tag.iter().all(|&b| b == 0)
        }
    }

    /// `tag || ciphertext` of `plain`.
    pub(crate) fn seal(&self, nonce: &[u8; 24], plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; TAG + plain.len()];
        out[TAG..].copy_from_slice(plain);
        let tag = self.seal_in_place(nonce, &mut out[TAG..]);
        out[..TAG].copy_from_slice(&tag);
        out
    }

    /// The plaintext of `boxed` (`tag || ciphertext`), if it authenticates; wiped when dropped.
    pub(crate) fn open(&self, nonce: &[u8; 24], boxed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if boxed.len() < TAG {
            return None;
        }
        let mut plain = Zeroizing::new(boxed[TAG..].to_vec());
        self.open_in_place(nonce, &boxed[..TAG], &mut plain).then_some(plain)
    }
}

/// How long a cookie key is used for new cookies; one is still accepted for as long again after
/// it was replaced, so a cookie is good for 60 to 120 seconds.
const COOKIE_KEY_LIFETIME: Duration = Duration::from_secs(60);

/// The server's cookie keys: a random symmetric key that seals the transient secret key into
/// the WELCOME's cookie, so that the server keeps nothing per client until INITIATE. Shared by
/// every CURVE server in the process and replaced every minute (the previous one still opens
/// cookies for another minute); keys are wiped when replaced.
#[derive(Default)]
pub(crate) struct CookieKeys {
    keys: Mutex<Option<CookieState>>,
}

struct CookieState {
    current: Zeroizing<[u8; 32]>,
    since: Instant,
    previous: Option<Zeroizing<[u8; 32]>>,
}

impl CookieKeys {
    /// The process-wide keys.
    pub(crate) fn global() -> &'static CookieKeys {
        static KEYS: OnceLock<CookieKeys> = OnceLock::new();
        KEYS.get_or_init(CookieKeys::default)
    }

    fn with<R>(&self, now: Instant, f: impl FnOnce(&CookieState) -> R) -> R {
        let mut guard = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = || {
            let mut k = Zeroizing::new([0u8; 32]);
            random(&mut k[..]);
            k
        };
        match guard.as_mut() {
            None => *guard = Some(CookieState { current: fresh(), since: now, previous: None }),
            Some(s) if now.saturating_duration_since(s.since) >= COOKIE_KEY_LIFETIME => {
                let stale = now.saturating_duration_since(s.since) >= 2 * COOKIE_KEY_LIFETIME;
                let old = std::mem::replace(&mut s.current, fresh());
                s.previous = if stale { None } else { Some(old) };
                s.since = now;
            }
            Some(_) => {}
        }
        match guard.as_ref() {
            Some(s) => f(s),
            None => unreachable!("initialised above"),
        }
    }

    /// Opens a cookie with the current or the previous key.
    pub(crate) fn open(&self, now: Instant, nonce: &[u8; 24], boxed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.with(now, |s| {
            secretbox_open(&s.current, nonce, boxed)
                .or_else(|| s.previous.as_ref().and_then(|p| secretbox_open(p, nonce, boxed)))
        })
    }

    /// Seals with the key in force at `now`.
    pub(crate) fn seal_at(&self, now: Instant, nonce: &[u8; 24], plain: &[u8]) -> Vec<u8> {
        self.with(now, |s| secretbox_seal(&s.current, nonce, plain))
    }
}

fn secretbox_seal(key: &[u8; 32], nonce: &[u8; 24], plain: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; TAG + plain.len()];
    out[TAG..].copy_from_slice(plain);
    #[cfg(not(fuzzing))]
    {
        use crypto_secretbox::aead::{AeadInPlace, KeyInit};
        let sb = crypto_secretbox::XSalsa20Poly1305::new(key.into());
        match sb.encrypt_in_place_detached(nonce.into(), b"", &mut out[TAG..]) {
            Ok(tag) => out[..TAG].copy_from_slice(&tag),
            Err(_) => unreachable!("secretbox without associated data cannot fail"),
        }
    }
    #[cfg(fuzzing)]
    let _ = (key, nonce);
    out
}

fn secretbox_open(key: &[u8; 32], nonce: &[u8; 24], boxed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if boxed.len() < TAG {
        return None;
    }
    #[cfg_attr(fuzzing, allow(unused_mut))]
    let mut plain = Zeroizing::new(boxed[TAG..].to_vec());
    #[cfg(not(fuzzing))]
    {
        use crypto_secretbox::aead::{AeadInPlace, KeyInit};
        let sb = crypto_secretbox::XSalsa20Poly1305::new(key.into());
        sb.decrypt_in_place_detached(nonce.into(), b"", &mut plain, boxed[..TAG].into()).ok()?;
    }
    #[cfg(fuzzing)]
    {
        let _ = (key, nonce);
        if boxed[..TAG].iter().any(|&b| b != 0) {
            return None;
        }
    }
    Some(plain)
}

#[cfg(all(test, not(fuzzing)))]
mod tests {
    use super::*;

    #[test]
    fn box_round_trip_and_tamper() {
        let a = CurveKeyPair::generate();
        let b = CurveKeyPair::generate();
        let ab = Boxer::new(&b.public.0, &a.secret);
        let ba = Boxer::new(&a.public.0, &b.secret);
        let nonce = short_nonce(b"CurveZMQMESSAGEC", 7);
        let boxed = ab.seal(&nonce, b"hello");
        assert_eq!(boxed.len(), TAG + 5);
        assert_eq!(ba.open(&nonce, &boxed).as_deref().map(Vec::as_slice), Some(&b"hello"[..]));
        let mut bad = boxed.clone();
        bad[TAG] ^= 1;
        assert!(ba.open(&nonce, &bad).is_none());
        assert!(ba.open(&short_nonce(b"CurveZMQMESSAGEC", 8), &boxed).is_none());
    }

    /// libsodium's crypto_box test vector (Alice to Bob, from NaCl's box.c / box2.c).
    #[test]
    fn nacl_test_vector() {
        let alice_sk = CurveSecretKey::from_slice(&[
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c,
            0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
        ])
        .expect("32 octets");
        let bob_pk = [
            0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61, 0xc2, 0xec, 0xe4, 0x35, 0x37, 0x3f, 0x83,
            0x43, 0xc8, 0x5b, 0x78, 0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f,
        ];
        // Alice's public key, from the same vector.
        assert_eq!(
            alice_sk.public_key().0[..4],
            [0x85, 0x20, 0xf0, 0x09],
            "X25519 base-point multiplication disagrees with NaCl"
        );
        let nonce = [
            0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8, 0x75, 0xfc, 0x73, 0xd6, 0x82, 0x19,
            0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37,
        ];
        let boxed = Boxer::new(&bob_pk, &alice_sk).seal(&nonce, &[0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5]);
        // The first octets of NaCl's ciphertext for this plaintext prefix (the tag, which covers
        // the whole message, differs).
        assert_eq!(boxed[TAG..TAG + 4], [0x8e, 0x99, 0x3b, 0x9f]);
    }

    #[test]
    fn cookie_keys_rotate() {
        let jar = CookieKeys::default();
        let t0 = Instant::now();
        let nonce = long_nonce(b"COOKIE--", &[3u8; 16]);
        let cookie = jar.seal_at(t0, &nonce, b"secret state");
        assert!(jar.open(t0 + Duration::from_secs(59), &nonce, &cookie).is_some());
        // Replaced at 60 s: the old key still opens it.
        assert!(jar.open(t0 + Duration::from_secs(61), &nonce, &cookie).is_some());
        // Replaced again: gone.
        assert!(jar.open(t0 + Duration::from_secs(125), &nonce, &cookie).is_none());
    }

    #[test]
    fn keys_from_z85_and_raw() {
        let pair = CurveKeyPair::generate();
        let z = pair.public.to_z85();
        assert_eq!(z.len(), 40);
        assert_eq!(CurvePublicKey::from_slice(z.as_bytes()), Ok(pair.public));
        assert_eq!(CurvePublicKey::from_slice(&pair.public.0), Ok(pair.public));
        assert_eq!(
            CurveSecretKey::from_slice(pair.secret.to_z85().as_bytes()).map(|s| s.public_key()),
            Ok(pair.public)
        );
        assert_eq!(CurvePublicKey::from_slice(b"short"), Err(InvalidKey(5)));
    }
}
