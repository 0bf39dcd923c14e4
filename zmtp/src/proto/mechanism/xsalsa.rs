//! The MESSAGE boxes' fast path: XSalsa20-Poly1305 (NaCl's `crypto_box_afternm`) specialised for
//! CURVE's short nonces.
//!
//! Every MESSAGE box of one direction uses a nonce `prefix || counter` whose 16-octet prefix is
//! fixed ("CurveZMQMESSAGEC" or "...S"). XSalsa20 spends one HSalsa20 on those 16 octets per box;
//! here it is spent once per connection and direction ([`MessageKey::new`]), so a box costs one
//! Salsa20 block plus Poly1305 for a short message. Poly1305 of short messages uses the 64-bit
//! "donna" arithmetic below; from [`LONG`] octets on, RustCrypto's `poly1305` (AVX2 when the CPU
//! has it), whose per-key setup costs more than a short message. Block 0 of the keystream (the
//! Poly1305 key and the first 32 octets) is computed here (scalar); the blocks after it too, as
//! many at a time as the CPU's vector lanes hold (`xor_blocks`, through `fearless_simd`: 1.4-2.2x
//! RustCrypto's scalar `salsa20` from 96 to 4,033 octets here). Boxes of [`BULK`] octets or more go
//! whole to `salsabox` (pure Rust, no `unsafe`,
//! SIMD Salsa20 through `fearless_simd`, which picks SSE4.2/AVX2/AVX-512/NEON at run time):
//! measured 3x RustCrypto's scalar Salsa20 at 64 KiB, but about 2 µs of set-up per box, which
//! only long boxes repay.
//!
//! The result is byte for byte libsodium's `crypto_box_afternm`: the tests compare every length
//! up to a few blocks against RustCrypto's `crypto_box`, and Poly1305 against RFC 8439's vector
//! and the `poly1305` crate.
//!
//! Built with `--cfg fuzzing`, boxes are the identity with an all-zero tag (see `crypto.rs`).

#![cfg_attr(fuzzing, allow(dead_code))]

use zeroize::{Zeroize, Zeroizing};

use super::crypto::TAG;

/// From this length on, Poly1305 goes through the `poly1305` crate.
const LONG: usize = 512;

/// From this length on, the whole box goes through `salsabox`.
const BULK: usize = 2048;

const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Salsa20's 20 rounds (10 double rounds) over any lane type.
macro_rules! double_rounds {
    ($x:ident, $xor_rotl:ident) => {
        for _ in 0..10 {
            // Columns.
            $xor_rotl!($x, 4, 0, 12, 7);
            $xor_rotl!($x, 8, 4, 0, 9);
            $xor_rotl!($x, 12, 8, 4, 13);
            $xor_rotl!($x, 0, 12, 8, 18);
            $xor_rotl!($x, 9, 5, 1, 7);
            $xor_rotl!($x, 13, 9, 5, 9);
            $xor_rotl!($x, 1, 13, 9, 13);
            $xor_rotl!($x, 5, 1, 13, 18);
            $xor_rotl!($x, 14, 10, 6, 7);
            $xor_rotl!($x, 2, 14, 10, 9);
            $xor_rotl!($x, 6, 2, 14, 13);
            $xor_rotl!($x, 10, 6, 2, 18);
            $xor_rotl!($x, 3, 15, 11, 7);
            $xor_rotl!($x, 7, 3, 15, 9);
            $xor_rotl!($x, 11, 7, 3, 13);
            $xor_rotl!($x, 15, 11, 7, 18);
            // Rows.
            $xor_rotl!($x, 1, 0, 3, 7);
            $xor_rotl!($x, 2, 1, 0, 9);
            $xor_rotl!($x, 3, 2, 1, 13);
            $xor_rotl!($x, 0, 3, 2, 18);
            $xor_rotl!($x, 6, 5, 4, 7);
            $xor_rotl!($x, 7, 6, 5, 9);
            $xor_rotl!($x, 4, 7, 6, 13);
            $xor_rotl!($x, 5, 4, 7, 18);
            $xor_rotl!($x, 11, 10, 9, 7);
            $xor_rotl!($x, 8, 11, 10, 9);
            $xor_rotl!($x, 9, 8, 11, 13);
            $xor_rotl!($x, 10, 9, 8, 18);
            $xor_rotl!($x, 12, 15, 14, 7);
            $xor_rotl!($x, 13, 12, 15, 9);
            $xor_rotl!($x, 14, 13, 12, 13);
            $xor_rotl!($x, 15, 14, 13, 18);
        }
    };
}

/// `x[a] ^= rotl(x[b] + x[c], k)` on one lane.
macro_rules! xor_rotl1 {
    ($x:ident, $a:expr, $b:expr, $c:expr, $k:expr) => {
        $x[$a] ^= $x[$b].wrapping_add($x[$c]).rotate_left($k);
    };
}

/// The same on vectors, one block per lane.
macro_rules! xor_rotl_v {
    ($x:ident, $a:expr, $b:expr, $c:expr, $k:expr) => {
        let t = $x[$b] + $x[$c];
        $x[$a] ^= (t << $k) | (t >> (32 - $k));
    };
}

/// The initial state for `key`, an 8-octet nonce (as two words) and a block counter.
fn state(key: &[u32; 8], nonce: [u32; 2], counter: u64) -> [u32; 16] {
    [
        SIGMA[0],
        key[0],
        key[1],
        key[2],
        key[3],
        SIGMA[1],
        nonce[0],
        nonce[1],
        counter as u32,
        (counter >> 32) as u32,
        SIGMA[2],
        key[4],
        key[5],
        key[6],
        key[7],
        SIGMA[3],
    ]
}

/// One Salsa20 block.
fn block(key: &[u32; 8], nonce: [u32; 2], counter: u64) -> Zeroizing<[u8; 64]> {
    let init = state(key, nonce, counter);
    let mut x = init;
    double_rounds!(x, xor_rotl1);
    let mut out = Zeroizing::new([0u8; 64]);
    for i in 0..16 {
        out[4 * i..4 * i + 4].copy_from_slice(&x[i].wrapping_add(init[i]).to_le_bytes());
    }
    x.zeroize();
    out
}

/// Salsa20 blocks `counter..` of `key`/`nonce` XORed into `data`, as many at once as the CPU's
/// vector lanes hold (4 with SSE4.2 or NEON, 8 with AVX2, 16 with AVX-512; the level is detected
/// once, through `fearless_simd`, which needs no `unsafe` here): lane `l` of vector `i` is word
/// `i` of block `counter + l`. A last partial batch runs on 4 lanes, a last lone block scalar.
fn xor_blocks(key: &[u32; 8], nonce: [u32; 2], counter: u64, data: &mut [u8]) {
    use std::sync::LazyLock;
    static LEVEL: LazyLock<fearless_simd::Level> = LazyLock::new(fearless_simd::Level::new);
    fearless_simd::dispatch!(*LEVEL, simd => xor_blocks_simd(simd, key, nonce, counter, data));
}

/// The vector operations Salsa20 needs.
trait Lanes:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::BitXor<Output = Self>
    + std::ops::BitOr<Output = Self>
    + std::ops::Shl<u32, Output = Self>
    + std::ops::Shr<u32, Output = Self>
    + std::ops::Index<usize, Output = u32>
    + std::ops::AddAssign
    + std::ops::BitXorAssign
{
}

impl<T> Lanes for T where
    T: Copy
        + std::ops::Add<Output = T>
        + std::ops::BitXor<Output = T>
        + std::ops::BitOr<Output = T>
        + std::ops::Shl<u32, Output = T>
        + std::ops::Shr<u32, Output = T>
        + std::ops::Index<usize, Output = u32>
        + std::ops::AddAssign
        + std::ops::BitXorAssign
{
}

#[inline(always)]
fn xor_blocks_simd<S: fearless_simd::Simd>(simd: S, key: &[u32; 8], nonce: [u32; 2], mut counter: u64, data: &mut [u8])
where
    S::u32s: Lanes,
{
    use fearless_simd::SimdBase;
    let wide = <S::u32s as SimdBase<S>>::LEN;
    let mut rest = data;
    while rest.len() > 64 {
        let lanes = if rest.len() >= wide * 64 { wide } else { 4 };
        let take = rest.len().min(lanes * 64);
        let (chunk, tail) = rest.split_at_mut(take);
        if lanes == wide {
            xor_batch::<S, S::u32s>(simd, key, nonce, counter, chunk);
        } else {
            xor_batch::<S, fearless_simd::u32x4<S>>(simd, key, nonce, counter, chunk);
        }
        counter = counter.wrapping_add(lanes as u64);
        rest = tail;
    }
    if !rest.is_empty() {
        let ks = block(key, nonce, counter);
        for (b, k) in rest.iter_mut().zip(ks.iter()) {
            *b ^= k;
        }
    }
}

/// One batch of `V::LEN` blocks (`chunk` holds at most that many).
#[inline(always)]
fn xor_batch<S: fearless_simd::Simd, V>(simd: S, key: &[u32; 8], nonce: [u32; 2], counter: u64, chunk: &mut [u8])
where
    V: fearless_simd::SimdBase<S, Element = u32> + fearless_simd::SimdFrom<u32, S> + Lanes,
{
    let init = state(key, nonce, counter);
    let mut x: [V; 16] = std::array::from_fn(|i| V::simd_from(simd, init[i]));
    x[8] = V::from_fn(simd, |l| counter.wrapping_add(l as u64) as u32);
    x[9] = V::from_fn(simd, |l| (counter.wrapping_add(l as u64) >> 32) as u32);
    let start = x;
    double_rounds!(x, xor_rotl_v);
    for (w, s) in x.iter_mut().zip(start) {
        *w += s;
    }
    // Block l is lane l of each word, in word order.
    for (l, block_bytes) in chunk.chunks_mut(64).enumerate() {
        for (i, word) in block_bytes.chunks_mut(4).enumerate() {
            let k = x[i][l].to_le_bytes();
            for (b, k) in word.iter_mut().zip(k) {
                *b ^= k;
            }
        }
    }
}

/// HSalsa20: the key of XSalsa20 for the first 16 octets of its nonce.
fn hsalsa(key: &[u8; 32], input: &[u8; 16]) -> Zeroizing<[u32; 8]> {
    let mut k = [0u32; 8];
    for (i, w) in k.iter_mut().enumerate() {
        *w = le32(&key[4 * i..]);
    }
    let mut x = state(
        &k,
        [le32(&input[0..]), le32(&input[4..])],
        u64::from(le32(&input[8..])) | u64::from(le32(&input[12..])) << 32,
    );
    k.zeroize();
    double_rounds!(x, xor_rotl1);
    let out = Zeroizing::new([x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9]]);
    x.zeroize();
    out
}

/// Poly1305 of `msg` under the one-time key `key` (r then s).
pub(crate) fn poly1305(key: &[u8; 32], msg: &[u8]) -> [u8; TAG] {
    if msg.len() >= LONG {
        use poly1305::universal_hash::KeyInit;
        return poly1305::Poly1305::new(key.into()).compute_unpadded(msg).into();
    }
    const M44: u64 = 0xfff_ffff_ffff;
    const M42: u64 = 0x3ff_ffff_ffff;
    let t0 = le64(&key[0..]);
    let t1 = le64(&key[8..]);
    let r0 = t0 & 0xffc_0fff_ffff;
    let r1 = ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff;
    let r2 = (t1 >> 24) & 0x00f_ffff_fc0f;
    let s1 = r1 * (5 << 2);
    let s2 = r2 * (5 << 2);
    let (mut h0, mut h1, mut h2) = (0u64, 0u64, 0u64);
    let mut absorb = |m: &[u8], hibit: u64| {
        let t0 = le64(&m[0..]);
        let t1 = le64(&m[8..]);
        h0 += t0 & M44;
        h1 += ((t0 >> 44) | (t1 << 20)) & M44;
        h2 += ((t1 >> 24) & M42) | hibit;
        let m = |a: u64, b: u64| u128::from(a) * u128::from(b);
        let d0 = m(h0, r0) + m(h1, s2) + m(h2, s1);
        let mut d1 = m(h0, r1) + m(h1, r0) + m(h2, s2);
        let mut d2 = m(h0, r2) + m(h1, r1) + m(h2, r0);
        let mut c = (d0 >> 44) as u64;
        h0 = d0 as u64 & M44;
        d1 += u128::from(c);
        c = (d1 >> 44) as u64;
        h1 = d1 as u64 & M44;
        d2 += u128::from(c);
        c = (d2 >> 42) as u64;
        h2 = d2 as u64 & M42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= M44;
        h1 += c;
    };
    let mut chunks = msg.chunks_exact(16);
    for m in &mut chunks {
        absorb(m, 1 << 40);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 16];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] = 1;
        absorb(&last, 0);
    }
    // Fully carry h.
    let mut c = h1 >> 44;
    h1 &= M44;
    h2 += c;
    c = h2 >> 42;
    h2 &= M42;
    h0 += c * 5;
    c = h0 >> 44;
    h0 &= M44;
    h1 += c;
    c = h1 >> 44;
    h1 &= M44;
    h2 += c;
    c = h2 >> 42;
    h2 &= M42;
    h0 += c * 5;
    c = h0 >> 44;
    h0 &= M44;
    h1 += c;
    // h - p, taken (without a branch) unless it is negative.
    let mut g0 = h0 + 5;
    c = g0 >> 44;
    g0 &= M44;
    let mut g1 = h1 + c;
    c = g1 >> 44;
    g1 &= M44;
    let mut g2 = h2.wrapping_add(c).wrapping_sub(1 << 42);
    let keep = (g2 >> 63).wrapping_sub(1);
    g0 &= keep;
    g1 &= keep;
    g2 &= keep;
    h0 = (h0 & !keep) | g0;
    h1 = (h1 & !keep) | g1;
    h2 = (h2 & !keep) | g2;
    // h + s.
    let s0 = le64(&key[16..]);
    let s1 = le64(&key[24..]);
    h0 += s0 & M44;
    c = h0 >> 44;
    h0 &= M44;
    h1 += (((s0 >> 44) | (s1 << 20)) & M44) + c;
    c = h1 >> 44;
    h1 &= M44;
    h2 += ((s1 >> 24) & M42) + c;
    h2 &= M42;
    let lo = h0 | (h1 << 44);
    let hi = (h1 >> 20) | (h2 << 24);
    let mut tag = [0u8; TAG];
    tag[..8].copy_from_slice(&lo.to_le_bytes());
    tag[8..].copy_from_slice(&hi.to_le_bytes());
    tag
}

/// The keys of one direction's MESSAGE boxes: HSalsa20 of the connection's precomputed box key
/// and the direction's nonce prefix. Wiped when dropped.
pub(crate) struct MessageKey {
    subkey: Zeroizing<[u32; 8]>,
    /// Long boxes: the box key itself, and the prefix of the whole nonce.
    bulk: salsabox::SecretBox,
    prefix: [u8; 16],
}

impl MessageKey {
    /// `key` is `crypto_box_beforenm`'s (HSalsa20 of the X25519 shared secret).
    pub(crate) fn new(key: &[u8; 32], prefix: &[u8; 16]) -> MessageKey {
        MessageKey { subkey: hsalsa(key, prefix), bulk: salsabox::SecretBox::from_key(key), prefix: *prefix }
    }

    fn nonce(&self, n: u64) -> [u8; 24] {
        super::crypto::short_nonce(&self.prefix, n)
    }

    /// Block 0 of short nonce `n`'s keystream: Poly1305's key, then 32 octets for the message.
    fn first_block(&self, n: u64) -> Zeroizing<[u8; 64]> {
        let nonce = n.to_be_bytes();
        block(&self.subkey, [le32(&nonce[0..]), le32(&nonce[4..])], 0)
    }

    /// XORs `buf` with the keystream of short nonce `n` from octet 32 of block 0 (`first`) on.
    fn apply(&self, n: u64, first: &[u8; 64], buf: &mut [u8]) {
        let (head, rest) = buf.split_at_mut(buf.len().min(32));
        for (b, k) in head.iter_mut().zip(&first[32..]) {
            *b ^= k;
        }
        if !rest.is_empty() {
            let nonce = n.to_be_bytes();
            xor_blocks(&self.subkey, [le32(&nonce[0..]), le32(&nonce[4..])], 1, rest);
        }
    }

    /// Poly1305's one-time key: the first 32 octets of block 0.
    fn poly_key(first: &[u8; 64]) -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&first[..32]);
        k
    }

    /// Encrypts `buf` in place under short nonce `n`; returns the tag.
    pub(crate) fn seal(&self, n: u64, buf: &mut [u8]) -> [u8; TAG] {
        #[cfg(not(fuzzing))]
        {
            if buf.len() >= BULK {
                return self.bulk.encrypt_detached(&self.nonce(n), buf);
            }
            let first = self.first_block(n);
            self.apply(n, &first, buf);
            poly1305(&Self::poly_key(&first), buf)
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
            use subtle::ConstantTimeEq;
            if buf.len() >= BULK {
                let mut t = [0u8; TAG];
                t.copy_from_slice(tag);
                return self.bulk.decrypt_detached(&self.nonce(n), buf, &t).is_ok();
            }
            // Block 0 once: the tag is checked with its first half, then its second half (and
            // what follows) decrypts.
            let first = self.first_block(n);
            let expected = poly1305(&Self::poly_key(&first), buf);
            if !bool::from(expected.ct_eq(tag)) {
                return false;
            }
            self.apply(n, &first, buf);
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
    let words = hsalsa(&shared, &[0u8; 16]);
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, w) in words.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
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

    #[test]
    fn poly1305_rfc8439_vector() {
        let key: [u8; 32] = [
            0x85, 0xd6, 0xbe, 0x78, 0x57, 0x55, 0x6d, 0x33, 0x7f, 0x44, 0x52, 0xfe, 0x42, 0xd5, 0x06, 0xa8, 0x01, 0x03,
            0x80, 0x8a, 0xfb, 0x0d, 0xb2, 0xfd, 0x4a, 0xbf, 0xf6, 0xaf, 0x41, 0x49, 0xf5, 0x1b,
        ];
        let tag = [0xa8, 0x06, 0x1d, 0xc1, 0x30, 0x51, 0x36, 0xc6, 0xc2, 0x2b, 0x8b, 0xaf, 0x0c, 0x01, 0x27, 0xa9];
        assert_eq!(poly1305(&key, b"Cryptographic Forum Research Group"), tag);
    }

    #[test]
    fn poly1305_agrees_with_the_poly1305_crate() {
        use poly1305::universal_hash::KeyInit;
        let mut msg = vec![0u8; LONG + 40];
        for len in (0..LONG + 40).chain([1000, 4096]) {
            let mut key = [0u8; 32];
            fill(&mut key, len as u64);
            if len > msg.len() {
                msg.resize(len, 0);
            }
            fill(&mut msg[..len], !(len as u64));
            let ours = poly1305(&key, &msg[..len]);
            let theirs: [u8; 16] = poly1305::Poly1305::new((&key).into()).compute_unpadded(&msg[..len]).into();
            assert_eq!(ours, theirs, "length {len}");
        }
        // Limbs at their largest: all-ones message and key.
        for len in [16, 32, 33, 160, 511] {
            let ones = vec![0xffu8; len];
            let key = [0xffu8; 32];
            let theirs: [u8; 16] = poly1305::Poly1305::new((&key).into()).compute_unpadded(&ones).into();
            assert_eq!(poly1305(&key, &ones), theirs, "all ones, length {len}");
        }
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
            for len in (0..1100).step_by(7).chain([31, 32, 33, 287, 288, 289, BULK - 1, BULK, 4099, 65536, 1 << 20]) {
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
