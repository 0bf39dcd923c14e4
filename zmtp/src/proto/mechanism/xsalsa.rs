//! The MESSAGE boxes' fast path: XSalsa20-Poly1305 (NaCl's `crypto_box_afternm`) specialised for
//! CURVE's short nonces, composed from RustCrypto's primitives (`salsa20`, `poly1305`); no
//! cryptographic primitive is written here.
//!
//! Every MESSAGE box of one direction uses a nonce `prefix || counter` whose 16-octet prefix is
//! fixed ("CurveZMQMESSAGEC" or "...S"). XSalsa20 spends one HSalsa20 on those 16 octets per box;
//! here it is spent once per connection and direction ([`MessageKey::new`]), so a box costs the
//! Salsa20 keystream under the 8-octet counter plus Poly1305: XSalsa20 with nonce
//! `prefix || counter` is, by definition, Salsa20 keyed with HSalsa20(key, prefix) and nonced
//! with `counter`.
//!
//! The result is byte for byte libsodium's `crypto_box_afternm`: the tests compare every length
//! up to a few blocks, and long ones, against RustCrypto's `crypto_box`.
//!
//! Built with `--cfg fuzzing`, boxes are the identity with an all-zero tag (see `crypto.rs`).

#![cfg_attr(fuzzing, allow(dead_code))]

use poly1305::universal_hash::KeyInit as _;
use salsa20::cipher::generic_array::GenericArray;
use salsa20::cipher::{KeyIvInit as _, StreamCipherCore as _};
use zeroize::Zeroizing;

use super::crypto::TAG;

/// Boxes of at least this many octets are authenticated by `poly1305` 0.9 (AVX2 where the CPU
/// has it), shorter ones by 0.8's portable backend; see [`MessageKey::tag`].
const LONG_BOX: usize = 8 * 1024;

/// Salsa20/20's block function with its counter (the `salsa20` crate's core).
type SalsaCore = salsa20::SalsaCore<salsa20::cipher::consts::U10>;

/// HSalsa20 (20 rounds) of `key` and `input`, from the `salsa20` crate.
fn hsalsa(key: &[u8; 32], input: &[u8; 16]) -> Zeroizing<[u8; 32]> {
    let out = salsa20::hsalsa::<salsa20::cipher::consts::U10>(key.into(), input.into());
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&out);
    let mut out = out;
    zeroize::Zeroize::zeroize(out.as_mut_slice());
    k
}

/// The keys of one direction's MESSAGE boxes: HSalsa20 of the connection's precomputed box key
/// and the direction's nonce prefix. Wiped when dropped.
pub(crate) struct MessageKey {
    subkey: Zeroizing<[u8; 32]>,
}

impl MessageKey {
    /// `key` is `crypto_box_beforenm`'s (HSalsa20 of the X25519 shared secret).
    pub(crate) fn new(key: &[u8; 32], prefix: &[u8; 16]) -> MessageKey {
        MessageKey { subkey: hsalsa(key, prefix) }
    }

    /// The Salsa20 keystream of short nonce `n` at its first block, which it returns: the
    /// first 32 octets key Poly1305 (NaCl's secretbox), the other 32 cover the message's first
    /// 32 octets. The core is left at the second block, where the rest of the message starts.
    /// The block-level core, not the buffering `Salsa20` wrapper: a box needs no keystream state
    /// beyond itself, and the wrapper (its buffer moved around, the key block applied through it)
    /// cost about 155 instructions a box, 5% of a 16 B message at both ends (callgrind).
    /// The block comes as its two halves: `[poly1305 key, keystream of the first 32 octets]`.
    fn start(&self, n: u64) -> (SalsaCore, Zeroizing<[[u8; 32]; 2]>) {
        let mut core = SalsaCore::new((&*self.subkey).into(), (&n.to_be_bytes()).into());
        let mut first = Zeroizing::new([[0u8; 32]; 2]);
        core.write_keystream_block(GenericArray::from_mut_slice(first.as_flattened_mut()));
        (core, first)
    }

    /// Applies the keystream that `start` began to `buf`, the whole message.
    fn apply(core: SalsaCore, first: &[[u8; 32]; 2], buf: &mut [u8]) {
        let (head, rest) = buf.split_at_mut(buf.len().min(32));
        for (b, k) in head.iter_mut().zip(&first[1]) {
            *b ^= k;
        }
        if !rest.is_empty() {
            core.apply_keystream_partial(rest.into());
        }
    }

    /// Poly1305 of `buf` (the ciphertext) under the key in `first`. A box shorter than
    /// [`LONG_BOX`] goes through `poly1305` 0.8, built with its portable backend; a longer one
    /// through 0.9, whose AVX2 backend (picked at run time, where the CPU has AVX2) costs about
    /// 1 µs of set-up per key but 0.23 ns an octet instead of 0.35 (measured on this project's
    /// machine: a 64 KiB tag 15.3 µs against 23.2 µs; equal near 8 KiB). Both compute the same tag.
    fn tag(first: &[[u8; 32]; 2], buf: &[u8]) -> [u8; TAG] {
        let key = &first[0];
        if buf.len() >= LONG_BOX {
            use poly1305_long::universal_hash::KeyInit as _;
            poly1305_long::Poly1305::new(key.into()).compute_unpadded(buf).into()
        } else {
            poly1305::Poly1305::new(key.into()).compute_unpadded(buf).into()
        }
    }

    /// Encrypts `buf` in place under short nonce `n`; returns the tag.
    pub(crate) fn seal(&self, n: u64, buf: &mut [u8]) -> [u8; TAG] {
        #[cfg(not(fuzzing))]
        {
            let (core, first) = self.start(n);
            MessageKey::apply(core, &first, buf);
            MessageKey::tag(&first, buf)
        }
        #[cfg(fuzzing)]
        {
            let _ = (n, buf);
            [0; TAG]
        }
    }

    /// Decrypts `buf` in place under short nonce `n` if `tag` authenticates it; untouched if not.
    #[must_use]
    pub(crate) fn open(&self, n: u64, tag: &[u8], buf: &mut [u8]) -> bool {
        if tag.len() != TAG {
            return false;
        }
        #[cfg(not(fuzzing))]
        {
            use subtle::ConstantTimeEq as _;
            let (core, first) = self.start(n);
            if !bool::from(MessageKey::tag(&first, buf).ct_eq(tag)) {
                return false;
            }
            MessageKey::apply(core, &first, buf);
            true
        }
        #[cfg(fuzzing)]
        {
            let _ = (n, buf);
            tag.iter().all(|&b| b == 0)
        }
    }
}

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKey(..)")
    }
}

/// `crypto_box_beforenm`: HSalsa20 of the X25519 shared secret of `their_public` and
/// `our_secret`, under a zero input.
pub(crate) fn box_key(their_public: &[u8; 32], our_secret: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let shared = Zeroizing::new(curve25519_dalek::MontgomeryPoint(*their_public).mul_clamped(*our_secret).0);
    hsalsa(&shared, &[0u8; 16])
}

#[cfg(all(test, not(fuzzing)))]
mod tests {
    use super::*;
    use crate::proto::mechanism::crypto::{short_nonce, CurveKeyPair};

    /// A small deterministic generator for test inputs.
    fn fill(buf: &mut [u8], mut seed: u64) {
        for b in buf {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (seed >> 33) as u8;
        }
    }

    /// Short boxes take `poly1305` 0.8's portable backend only when the build has
    /// `.cargo/config.toml`'s `--cfg poly1305_force_soft` (which also reaches this crate): without
    /// it, 0.8 picks its AVX2 backend, whose per-key set-up makes a 16 B box's tag about 20 times
    /// dearer. A build that replaced the config's flags (a `RUSTFLAGS` variable) fails here.
    #[test]
    #[allow(
        clippy::assertions_on_constants,
        reason = "a const assertion would stop scripts/loom.sh's build, whose RUSTFLAGS replace the config's"
    )]
    fn the_build_selects_the_portable_poly1305_for_short_boxes() {
        assert!(cfg!(poly1305_force_soft), "built without .cargo/config.toml's rustflags");
    }

    /// Byte for byte what RustCrypto's `crypto_box` (libsodium's format) makes, every length up
    /// to several four-block rounds, both prefixes; and it opens, and a flipped bit does not.
    #[test]
    fn boxes_agree_with_crypto_box() {
        let a = CurveKeyPair::generate();
        let b = CurveKeyPair::generate();
        let reference = crypto_box::SalsaBox::new(
            &crypto_box::PublicKey::from_bytes(b.public.0),
            &crypto_box::SecretKey::from_bytes(*a.secret.as_bytes()),
        );
        let key = box_key(&b.public.0, a.secret.as_bytes());
        let peer_key = box_key(&a.public.0, b.secret.as_bytes());
        assert_eq!(*key, *peer_key, "both sides derive the same box key");
        for prefix in [b"CurveZMQMESSAGEC", b"CurveZMQMESSAGES"] {
            let ours = MessageKey::new(&key, prefix);
            let theirs = MessageKey::new(&peer_key, prefix);
            for len in (0..1100).step_by(7).chain([31, 32, 33, 287, 288, 289, 2047, 2048, 4099]).chain([
                LONG_BOX - 1,
                LONG_BOX,
                LONG_BOX + 1,
                65536,
                1 << 20,
            ]) {
                let n = 1 + len as u64 * 977;
                let mut plain = vec![0u8; len];
                fill(&mut plain, len as u64);
                // tag || ciphertext, NaCl's combined form.
                let expected = {
                    use crypto_box::aead::Aead;
                    reference.encrypt(&short_nonce(prefix, n).into(), &plain[..]).expect("no associated data")
                };
                let mut buf = plain.clone();
                let tag = ours.seal(n, &mut buf);
                assert_eq!(&expected[..TAG], &tag[..], "tag, length {len}");
                assert_eq!(&expected[TAG..], &buf[..], "ciphertext, length {len}");
                let mut wrong = buf.clone();
                if let Some(x) = wrong.last_mut() {
                    *x ^= 0x20;
                    assert!(!theirs.open(n, &tag, &mut wrong), "flipped bit, length {len}");
                }
                assert!(!theirs.open(n + 1, &tag, &mut buf.clone()), "wrong nonce, length {len}");
                assert!(theirs.open(n, &tag, &mut buf), "length {len}");
                assert_eq!(buf, plain, "length {len}");
            }
        }
    }
}
