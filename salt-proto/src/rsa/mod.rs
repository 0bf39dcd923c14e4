//! RSA as Salt uses it (crypt.py `PrivateKey`/`PublicKey`, utils/rsax931.py).
//!
//! * Keys: 2048 bits, e = 65537 ([`PrivateKey::generate`]). PEM exactly as
//!   Salt (Python `cryptography`) writes it: private keys as PKCS#1
//!   (`-----BEGIN RSA PRIVATE KEY-----`), public keys as SubjectPublicKeyInfo
//!   (`-----BEGIN PUBLIC KEY-----`), 64-column base64, `\n` line endings.
//!   Unencrypted PKCS#8 private keys and PKCS#1 public keys are read too.
//! * [`PublicKey::encrypt`] / [`PrivateKey::decrypt`]: RSA-OAEP with MGF1
//!   and hash both SHA-1 (or SHA-224), empty label ([`EncAlgo`]).
//! * [`PrivateKey::sign`] / [`PublicKey::verify`]: RSASSA-PKCS1-v1_5 over
//!   SHA-1 (or SHA-224) of the data ([`SigAlgo`]).
//! * [`PrivateKey::sign_x931`] / [`PublicKey::recover_x931`]: OpenSSL's
//!   `RSA_private_encrypt` / `RSA_public_decrypt` with `RSA_X931_PADDING`,
//!   which Salt applies to *unhashed* data: the v3 request `tok`
//!   (`X931(minion_priv, b"salt")`) and the `_auth` reply `sig`
//!   (`X931(master_priv, sha256(aes_key).hexdigest())`). These are Salt's
//!   `PrivateKey.encrypt` / `PublicKey.decrypt`.
//! * [`clean_key`] and [`pem_finger`].
//!
//! Keys, public-key operations and PEM come from the RustCrypto `rsa`
//! crate. The private-key operation of 2-prime keys up to 4096 bits (the
//! master's hot path: two per sign-in) is ours: fixed-width Montgomery
//! arithmetic by the CRT, blinded and checked ([`crt`], [`monty`]), with the
//! OAEP and PKCS#1 v1.5 encodings around it ([`pad`]); other keys use the
//! `rsa` crate's `hazmat` primitives.

mod crt;
mod monty;
mod pad;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ::rsa::hazmat::{rsa_decrypt_and_check, rsa_encrypt};
use ::rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use ::rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use ::rsa::traits::PublicKeyParts;
#[cfg(test)]
use ::rsa::Oaep;
use ::rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use rand_core::OsRng;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Crypto, Error, Result};

/// Salt's default key size (`keysize: 2048`).
pub const DEFAULT_KEY_BITS: usize = 2048;
/// Salt's public exponent.
pub const PUBLIC_EXPONENT: u32 = 65537;

/// An encryption algorithm name as Salt sends it in `enc_algo`
/// (`encryption_algorithm` option; crypt.py `VALID_ENCRYPTION_ALGORITHMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncAlgo {
    /// `"OAEP-SHA1"`, the default.
    #[default]
    OaepSha1,
    /// `"OAEP-SHA224"`.
    OaepSha224,
}

impl EncAlgo {
    /// Every algorithm Salt allows (`VALID_ENCRYPTION_ALGORITHMS`), in Salt's order.
    pub const ALL: [EncAlgo; 2] = [EncAlgo::OaepSha1, EncAlgo::OaepSha224];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EncAlgo::OaepSha1 => "OAEP-SHA1",
            EncAlgo::OaepSha224 => "OAEP-SHA224",
        }
    }

    /// The `rsa` crate's scheme (the tests compare with it).
    #[cfg(test)]
    fn padding(self) -> Oaep {
        match self {
            EncAlgo::OaepSha1 => Oaep::new::<Sha1>(),
            EncAlgo::OaepSha224 => Oaep::new::<Sha224>(),
        }
    }
}

impl FromStr for EncAlgo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "OAEP-SHA1" => Ok(EncAlgo::OaepSha1),
            "OAEP-SHA224" => Ok(EncAlgo::OaepSha224),
            _ => Err(Error::Crypto(Crypto::UnsupportedAlgorithm(s.to_owned()))),
        }
    }
}

impl fmt::Display for EncAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing algorithm name as Salt sends it in `sig_algo`
/// (`signing_algorithm` / `publish_signing_algorithm` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigAlgo {
    /// `"PKCS1v15-SHA1"`, the default.
    #[default]
    Pkcs1v15Sha1,
    /// `"PKCS1v15-SHA224"`.
    Pkcs1v15Sha224,
}

impl SigAlgo {
    /// Every algorithm Salt allows (`VALID_SIGNING_ALGORITHMS`), in Salt's order.
    pub const ALL: [SigAlgo; 2] = [SigAlgo::Pkcs1v15Sha1, SigAlgo::Pkcs1v15Sha224];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigAlgo::Pkcs1v15Sha1 => "PKCS1v15-SHA1",
            SigAlgo::Pkcs1v15Sha224 => "PKCS1v15-SHA224",
        }
    }

    fn scheme_and_digest(self, data: &[u8]) -> (Pkcs1v15Sign, Vec<u8>) {
        match self {
            SigAlgo::Pkcs1v15Sha1 => (Pkcs1v15Sign::new::<Sha1>(), Sha1::digest(data).to_vec()),
            SigAlgo::Pkcs1v15Sha224 => (Pkcs1v15Sign::new::<Sha224>(), Sha224::digest(data).to_vec()),
        }
    }
}

impl FromStr for SigAlgo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "PKCS1v15-SHA1" => Ok(SigAlgo::Pkcs1v15Sha1),
            "PKCS1v15-SHA224" => Ok(SigAlgo::Pkcs1v15Sha224),
            _ => Err(Error::Crypto(Crypto::UnsupportedAlgorithm(s.to_owned()))),
        }
    }
}

impl fmt::Display for SigAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Salt's `clean_key`: `"\n".join(key.strip().splitlines())`: surrounding
/// whitespace removed, every line ending (`\r\n`, `\r`, ...) made `\n`,
/// no trailing newline. Salt compares and sends public keys in this form.
pub fn clean_key(key: &str) -> String {
    let key = key.trim();
    let mut out = String::with_capacity(key.len());
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            // Python's str.splitlines() boundaries.
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            _ => out.push(c),
        }
    }
    out
}

/// `salt.utils.crypt.pem_finger(path)` (the `master_finger` fingerprint) of a
/// PEM file's contents: SHA-256 over the non-blank lines between the
/// first and the last (newlines kept, `\r\n` made `\n`), as colon-separated
/// hex pairs.
pub fn pem_finger(pem_file: &str) -> String {
    let lines: Vec<&str> = pem_file.split_inclusive('\n').filter(|l| !l.trim().is_empty()).collect();
    let body: String = if lines.len() > 2 { lines[1..lines.len() - 1].concat() } else { String::new() };
    let body = body.replace("\r\n", "\n");
    let hex = crate::util::hex(&Sha256::digest(body.as_bytes()));
    crate::util::colon_pairs(&hex)
}

/// An RSA private key (`minion.pem`, `master.pem`).
#[derive(Clone)]
pub struct PrivateKey {
    key: RsaPrivateKey,
    /// The fast private-key operation, for the keys it handles.
    fast: Option<Arc<crt::Engine>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("bits", &self.key.n().bits()).finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generate a key with e = 65537 (Salt's `gen_keys(keysize)`); use
    /// [`DEFAULT_KEY_BITS`]. This is slow in unoptimized builds.
    pub fn generate(bits: usize) -> Result<Self> {
        let key = RsaPrivateKey::new_with_exp(&mut OsRng, bits, &BigUint::from(PUBLIC_EXPONENT))?;
        Ok(Self::from_rsa(key))
    }

    /// Parse an unencrypted PEM private key: PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`, what Salt writes) or PKCS#8 (`BEGIN PRIVATE KEY`). Surrounding
    /// whitespace and `\r\n` line endings are accepted.
    /// Passphrase-protected keys are not supported.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let pem = Zeroizing::new(clean_key(pem));
        let key = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(&pem).map_err(|e| Error::Crypto(Crypto::InvalidKey(e.to_string())))?
        } else {
            RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| Error::Crypto(Crypto::InvalidKey(e.to_string())))?
        };
        Ok(Self::from_rsa(key))
    }

    /// Wrap an `rsa` crate key (preparing the fast private-key operation
    /// when the key is one it handles).
    pub fn from_rsa(key: RsaPrivateKey) -> Self {
        let fast = crt::Engine::new(&key).map(Arc::new);
        PrivateKey { key, fast }
    }

    /// Whether the private-key operation runs on our fixed-width code
    /// rather than the `rsa` crate's (2-prime keys up to 4096 bits with a
    /// public exponent below 2^64).
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The raw private-key operation `em^d mod n` (blinded, checked), `em`
    /// big-endian, the result exactly [`size`](Self::size) bytes.
    fn private_op(&self, em: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(engine) = &self.fast {
            match engine.private(em) {
                // The check failed (a fault): redo it on the `rsa` crate,
                // which checks its own result too.
                Err(::rsa::Error::Internal) => {}
                r => return Ok(r?),
            }
        }
        let m = rsa_decrypt_and_check(&self.key, Some(&mut OsRng), &BigUint::from_bytes_be(em))?;
        Ok(Zeroizing::new(left_pad(&m.to_bytes_be(), self.size())))
    }

    /// The key as Salt writes `*.pem`: PKCS#1 PEM, `\n` line endings, with
    /// a trailing newline.
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        self.key.to_pkcs1_pem(LineEnding::LF).map_err(|e| Error::Crypto(Crypto::InvalidKey(e.to_string())))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_rsa(self.key.to_public_key())
    }

    /// Modulus size in bytes (`RSA_size`).
    pub fn size(&self) -> usize {
        self.key.size()
    }

    /// The wrapped `rsa` crate key.
    pub fn as_rsa(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// RSA-OAEP decryption (Salt's `PrivateKey.decrypt(data, algorithm)`),
    /// blinded.
    pub fn decrypt(&self, data: &[u8], algo: EncAlgo) -> Result<Vec<u8>> {
        if data.len() != self.size() {
            return Err(::rsa::Error::Decryption.into());
        }
        let mut em = self.private_op(data)?;
        let msg = match algo {
            EncAlgo::OaepSha1 => pad::oaep_decode::<Sha1>(&mut em),
            EncAlgo::OaepSha224 => pad::oaep_decode::<Sha224>(&mut em),
        };
        msg.ok_or_else(|| ::rsa::Error::Decryption.into())
    }

    /// RSASSA-PKCS1-v1_5 signature of `data` (hashed here with the
    /// algorithm's hash), Salt's `PrivateKey.sign(data, algorithm)`.
    /// Deterministic.
    pub fn sign(&self, data: &[u8], algo: SigAlgo) -> Result<Vec<u8>> {
        let (scheme, digest) = algo.scheme_and_digest(data);
        let em = pad::pkcs1v15_sign_encode(&scheme.prefix, &digest, self.size()).ok_or(::rsa::Error::MessageTooLong)?;
        Ok(self.private_op(&em)?.to_vec())
    }

    /// ANSI X9.31 "private encrypt" of the raw `msg` (Salt's
    /// `PrivateKey.encrypt`, OpenSSL `RSA_private_encrypt(...,
    /// RSA_X931_PADDING)`).
    ///
    /// Encoded message: `0x6B 0xBB.. 0xBA || msg || 0xCC` filling the modulus
    /// size, or `0x6A || msg || 0xCC` when there is no room for filler;
    /// signature `min(s, n - s)` where `s = em^d mod n`, left-padded to the
    /// modulus size. Deterministic. `msg` may be at most `size() - 2` bytes.
    pub fn sign_x931(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let k = self.size();
        if msg.len() + 2 > k {
            return Err(Error::Crypto(Crypto::X931("data too large for key size")));
        }
        let j = k - msg.len() - 2;
        let mut em = Zeroizing::new(Vec::with_capacity(k));
        if j == 0 {
            em.push(0x6A);
        } else {
            em.push(0x6B);
            em.resize(j, 0xBB);
            em.push(0xBA);
        }
        em.extend_from_slice(msg);
        em.push(0xCC);
        let n = self.key.n();
        if &BigUint::from_bytes_be(&em) >= n {
            return Err(Error::Crypto(Crypto::X931("data too large for modulus")));
        }
        let s = BigUint::from_bytes_be(&self.private_op(&em)?);
        let t = n - &s;
        let sig = if s > t { t } else { s };
        Ok(left_pad(&sig.to_bytes_be(), k))
    }
}

/// An RSA public key (`minion.pub`, `master.pub`, `minion_master.pub`,
/// `pki_dir/minions/<id>`).
#[derive(Clone)]
pub struct PublicKey {
    key: RsaPublicKey,
    /// The fast public-key operation, for the keys it handles.
    fast: Option<Arc<crt::PublicOp>>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("bits", &self.key.n().bits()).finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parse a PEM public key: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`,
    /// what Salt writes and sends) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    /// Surrounding whitespace and `\r\n` line endings are accepted.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let pem = clean_key(pem);
        let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            RsaPublicKey::from_pkcs1_pem(&pem).map_err(|e| Error::Crypto(Crypto::InvalidKey(e.to_string())))?
        } else {
            RsaPublicKey::from_public_key_pem(&pem).map_err(|e| Error::Crypto(Crypto::InvalidKey(e.to_string())))?
        };
        Ok(Self::from_rsa(key))
    }

    /// Wrap an `rsa` crate key (preparing the fast public-key operation
    /// when the key is one it handles: moduli up to 4096 bits, public
    /// exponents below 2^64).
    pub fn from_rsa(key: RsaPublicKey) -> Self {
        let fast = crt::PublicOp::new(&key).map(Arc::new);
        PublicKey { key, fast }
    }

    /// The raw public-key operation `x^e mod n`, `x` big-endian (below n),
    /// the result exactly [`size`](Self::size) bytes.
    fn public_op(&self, x: &[u8]) -> Result<Vec<u8>> {
        if let Some(fast) = &self.fast {
            return Ok(fast.public(x)?);
        }
        let x = BigUint::from_bytes_be(x);
        if &x >= self.key.n() {
            return Err(::rsa::Error::Decryption.into());
        }
        Ok(left_pad(&rsa_encrypt(&self.key, &x)?.to_bytes_be(), self.size()))
    }

    /// The key as Salt writes `*.pub`: SubjectPublicKeyInfo PEM with `\n`
    /// line endings and a trailing newline. Apply [`clean_key`] for the form
    /// Salt sends on the wire (`pub` in `_auth`, `pub_key` in its reply).
    pub fn to_pem(&self) -> Result<String> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|e| Error::Crypto(Crypto::InvalidKey(e.to_string())))
    }

    /// Modulus size in bytes.
    pub fn size(&self) -> usize {
        self.key.size()
    }

    /// The wrapped `rsa` crate key.
    pub fn as_rsa(&self) -> &RsaPublicKey {
        &self.key
    }

    /// RSA-OAEP encryption (Salt's `PublicKey.encrypt(data, algorithm)`).
    /// Randomized.
    pub fn encrypt(&self, data: &[u8], algo: EncAlgo) -> Result<Vec<u8>> {
        let k = self.size();
        let em = match algo {
            EncAlgo::OaepSha1 => pad::oaep_encode::<Sha1>(data, k, &mut OsRng),
            EncAlgo::OaepSha224 => pad::oaep_encode::<Sha224>(data, k, &mut OsRng),
        };
        let em = Zeroizing::new(em.ok_or(::rsa::Error::MessageTooLong)?);
        self.public_op(&em)
    }

    /// Verify an RSASSA-PKCS1-v1_5 signature over `data` (Salt's
    /// `PublicKey.verify`); [`Crypto::BadSignature`] if it does not verify.
    pub fn verify(&self, data: &[u8], sig: &[u8], algo: SigAlgo) -> Result<()> {
        let (scheme, digest) = algo.scheme_and_digest(data);
        let k = self.size();
        let bad = || Error::Crypto(Crypto::BadSignature);
        if sig.len() != k {
            return Err(bad());
        }
        let em = self.public_op(sig).map_err(|_| bad())?;
        let want = pad::pkcs1v15_sign_encode(&scheme.prefix, &digest, k).ok_or_else(bad)?;
        if bool::from(em.ct_eq(&want)) {
            Ok(())
        } else {
            Err(bad())
        }
    }

    /// ANSI X9.31 "public decrypt" (Salt's `PublicKey.decrypt`, OpenSSL
    /// `RSA_public_decrypt(..., RSA_X931_PADDING)`): recover the message
    /// signed by [`PrivateKey::sign_x931`]. The caller compares it with the
    /// expected value (`b"salt"` for `tok`).
    ///
    /// Mirrors OpenSSL: `r = sig^e mod n`, replaced by `n - r` unless its
    /// low nibble is `0xC`; then the padding is checked exactly as
    /// `RSA_padding_check_X931` does.
    pub fn recover_x931(&self, sig: &[u8]) -> Result<Vec<u8>> {
        let k = self.size();
        if sig.len() > k {
            return Err(Error::Crypto(Crypto::X931("data greater than modulus length")));
        }
        let n = self.key.n();
        if &BigUint::from_bytes_be(sig) >= n {
            return Err(Error::Crypto(Crypto::X931("data too large for modulus")));
        }
        let mut r = BigUint::from_bytes_be(&self.public_op(sig)?);
        let low = r.to_bytes_le().first().copied().unwrap_or(0);
        if low & 0xF != 0xC {
            r = n - &r;
        }
        let em = left_pad(&r.to_bytes_be(), k);
        x931_unpad(&em).map(<[u8]>::to_vec)
    }
}

/// `RSA_padding_check_X931(to, tlen, from, flen = num, num)`.
fn x931_unpad(em: &[u8]) -> Result<&[u8]> {
    let flen = em.len();
    if flen < 2 {
        return Err(Error::Crypto(Crypto::X931("invalid header")));
    }
    let mut p = match em[0] {
        0x6A | 0x6B => 1usize,
        _ => return Err(Error::Crypto(Crypto::X931("invalid header"))),
    };
    let j = if em[0] == 0x6B {
        let j = flen.saturating_sub(3);
        let mut i = 0;
        while i < j {
            let c = em[p];
            p += 1;
            if c == 0xBA {
                break;
            }
            if c != 0xBB {
                return Err(Error::Crypto(Crypto::X931("invalid padding")));
            }
            i += 1;
        }
        if i == 0 {
            return Err(Error::Crypto(Crypto::X931("invalid padding")));
        }
        j - i
    } else {
        flen - 2
    };
    if em.get(p + j) != Some(&0xCC) {
        return Err(Error::Crypto(Crypto::X931("invalid trailer")));
    }
    Ok(&em[p..p + j])
}

fn left_pad(b: &[u8], k: usize) -> Vec<u8> {
    if b.len() >= k {
        return b.to_vec();
    }
    let mut out = vec![0u8; k - b.len()];
    out.extend_from_slice(b);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_key_like_python() {
        assert_eq!(clean_key("  a\r\nb\rc\n\nd\n\n"), "a\nb\nc\n\nd");
    }

    #[test]
    fn x931_unpad_cases() {
        let ok = [0x6B, 0xBB, 0xBA, 1, 2, 0xCC];
        assert_eq!(x931_unpad(&ok).ok(), Some(&[1u8, 2][..]));
        let short = [0x6A, 1, 2, 0xCC];
        assert_eq!(x931_unpad(&short).ok(), Some(&[1u8, 2][..]));
        // OpenSSL rejects 0x6B immediately followed by 0xBA.
        assert!(x931_unpad(&[0x6B, 0xBA, 1, 0xCC]).is_err());
        assert!(x931_unpad(&[0x6B, 0xBB, 0xBA, 1, 0xCD]).is_err());
        assert!(x931_unpad(&[0x6C, 0xBB, 0xBA, 1, 0xCC]).is_err());
        assert!(x931_unpad(&[0x6B, 0xBB, 0xBC, 1, 0xCC]).is_err());
        assert!(x931_unpad(&[]).is_err());
        assert!(x931_unpad(&[0x6B]).is_err());
    }

    /// The fast private-key path against the `rsa` crate's own functions
    /// (the path every key took before), and the `rsa` crate path kept for
    /// other keys, on random inputs, on several keys of each size.
    fn compare_with_rsa_crate(key: &PrivateKey, rounds: usize) {
        use rand_core::RngCore;
        let slow = PrivateKey { key: key.key.clone(), fast: None };
        let public = key.public_key();
        assert!(public.fast.is_some());
        let slow_public = PublicKey { key: public.key.clone(), fast: None };
        let k = key.size();
        for i in 0..rounds {
            let mut data = vec![0u8; 1 + i * 7 % 300];
            OsRng.fill_bytes(&mut data);
            for algo in SigAlgo::ALL {
                let (scheme, digest) = algo.scheme_and_digest(&data);
                let Ok(want) = key.key.sign(scheme, &digest) else { panic!("rsa sign") };
                assert_eq!(key.sign(&data, algo).ok(), Some(want.clone()));
                assert_eq!(slow.sign(&data, algo).ok(), Some(want.clone()));
                // Verification: ours (both paths) agrees with the rsa crate's
                // on the signature and on damaged ones.
                let mut bad = want.clone();
                bad[i % k] ^= 0x10;
                let other = if algo == SigAlgo::Pkcs1v15Sha1 { SigAlgo::Pkcs1v15Sha224 } else { SigAlgo::Pkcs1v15Sha1 };
                for (s, a, ok) in [(&want, algo, true), (&bad, algo, false), (&want, other, false)] {
                    let (scheme, digest) = a.scheme_and_digest(&data);
                    assert_eq!(public.key.verify(scheme, &digest, s).is_ok(), ok);
                    assert_eq!(public.verify(&data, s, a).is_ok(), ok);
                    assert_eq!(slow_public.verify(&data, s, a).is_ok(), ok);
                }
                assert!(public.verify(&data, &want[1..], algo).is_err());
            }
            for algo in EncAlgo::ALL {
                let msg = &data[..data.len().min(k - 2 * 28 - 2)];
                let Ok(ct) = public.encrypt(msg, algo) else { panic!("encrypt") };
                assert_eq!(key.decrypt(&ct, algo).ok().as_deref(), Some(msg));
                assert_eq!(slow.decrypt(&ct, algo).ok().as_deref(), Some(msg));
                // Our encryption opens with the rsa crate's decryption, and
                // the rsa crate's (the path before) with ours.
                assert_eq!(key.key.decrypt(algo.padding(), &ct).ok().as_deref(), Some(msg));
                let Ok(ct2) = slow_public.encrypt(msg, algo) else { panic!("encrypt") };
                assert_eq!(key.decrypt(&ct2, algo).ok().as_deref(), Some(msg));
                let Ok(ct3) = public.key.encrypt(&mut OsRng, algo.padding(), msg) else { panic!("encrypt") };
                assert_eq!(key.decrypt(&ct3, algo).ok().as_deref(), Some(msg));
                // A damaged ciphertext, the wrong hash, or random numbers
                // below n: whatever the rsa crate says, we say.
                let mut bad = ct.clone();
                bad[i % k] ^= 1 << (i % 8);
                let mut random = vec![0u8; k + 8];
                OsRng.fill_bytes(&mut random);
                let mut random = (BigUint::from_bytes_be(&random) % key.key.n()).to_bytes_be();
                random.splice(0..0, std::iter::repeat(0).take(k - random.len()));
                let other = if algo == EncAlgo::OaepSha1 { EncAlgo::OaepSha224 } else { EncAlgo::OaepSha1 };
                for (c, a) in [(&bad, algo), (&ct, other), (&random, algo)] {
                    let want = key.key.decrypt(a.padding(), c).ok();
                    assert_eq!(key.decrypt(c, a).ok(), want);
                    assert_eq!(slow.decrypt(c, a).ok(), want);
                }
            }
            // X9.31 as the code before the fast path computed it.
            let msg = &data[..data.len().min(k - 2)];
            let sig = key.sign_x931(msg);
            assert_eq!(sig.as_ref().ok(), slow.sign_x931(msg).as_ref().ok());
            let Ok(sig) = sig else { panic!("x931") };
            assert_eq!(public.recover_x931(&sig).ok().as_deref(), Some(msg));
            assert_eq!(slow_public.recover_x931(&sig).ok().as_deref(), Some(msg));
            // A shortened signature (leading zero byte dropped, as a peer
            // may send it) and a damaged one.
            let short: Vec<u8> = sig.iter().copied().skip_while(|&b| b == 0).collect();
            assert_eq!(public.recover_x931(&short).ok().as_deref(), Some(msg));
            let mut bad = sig.clone();
            bad[k / 2] ^= 1;
            assert_eq!(public.recover_x931(&bad).ok(), slow_public.recover_x931(&bad).ok());
        }
        // Too long for the key: refused.
        let long = vec![0u8; k - 2 * 20 - 1];
        assert!(public.encrypt(&long, EncAlgo::OaepSha1).is_err());
        assert!(public.encrypt(&long[1..], EncAlgo::OaepSha1).is_ok());
        // Wrong lengths are refused as the rsa crate refuses them.
        assert!(key.decrypt(&vec![0; k - 1], EncAlgo::OaepSha1).is_err());
        assert!(key.decrypt(&vec![0; k + 1], EncAlgo::OaepSha1).is_err());
        assert!(key.decrypt(&vec![0xff; k], EncAlgo::OaepSha1).is_err());
    }

    #[test]
    fn fast_private_key_operations_match_rsa_crate() {
        for (bits, keys, rounds) in [(1024, 2, 16), (2048, 1, 10), (4096, 1, 2)] {
            for _ in 0..keys {
                let Ok(key) = PrivateKey::generate(bits) else { panic!("keygen {bits}") };
                assert!(key.is_fast(), "{bits}-bit key not on the fast path");
                compare_with_rsa_crate(&key, rounds);
            }
        }
    }

    #[test]
    fn algo_names() {
        assert_eq!("OAEP-SHA1".parse::<EncAlgo>().ok(), Some(EncAlgo::OaepSha1));
        assert_eq!("PKCS1v15-SHA224".parse::<SigAlgo>().ok(), Some(SigAlgo::Pkcs1v15Sha224));
        assert!("OAEP-MD5".parse::<EncAlgo>().is_err());
    }
}
