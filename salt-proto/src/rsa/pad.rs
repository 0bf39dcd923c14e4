//! The encodings around the RSA operations that the fast path
//! ([`super::crt`]) needs itself: OAEP (RFC 8017 7.1, empty label) and the
//! RSASSA-PKCS1-v1_5 encoding (RFC 8017 9.2).

use rand_core::CryptoRngCore;
use sha2::Digest;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// `out ^= MGF1(seed, out.len())` with hash `D`.
fn mgf1_xor<D: Digest>(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in out.chunks_mut(<D as Digest>::output_size()).enumerate() {
        let mut h = D::new();
        h.update(seed);
        // Fewer than 2^32 chunks: `out` is at most a modulus long.
        h.update((counter as u32).to_be_bytes());
        for (o, m) in chunk.iter_mut().zip(h.finalize()) {
            *o ^= m;
        }
    }
}

/// The OAEP encoding of `msg` for a `k`-byte modulus with a random seed,
/// or `None` if `msg` is longer than `k - 2 hLen - 2`.
pub(super) fn oaep_encode<D: Digest>(msg: &[u8], k: usize, rng: &mut impl CryptoRngCore) -> Option<Vec<u8>> {
    let h = <D as Digest>::output_size();
    if k < 2 * h + 2 || msg.len() > k - 2 * h - 2 {
        return None;
    }
    // EM = 0x00 || maskedSeed || maskedDB, DB = lHash || PS || 0x01 || M.
    let mut em = vec![0u8; k];
    let (seed, db) = em[1..].split_at_mut(h);
    rng.fill_bytes(seed);
    db[..h].copy_from_slice(&D::digest(b""));
    let one_at = db.len() - msg.len() - 1;
    db[one_at] = 1;
    db[one_at + 1..].copy_from_slice(msg);
    mgf1_xor::<D>(db, seed);
    mgf1_xor::<D>(seed, db);
    Some(em)
}

/// The message of an OAEP-encoded block `em` (as long as the modulus, the
/// result of the private-key operation), `None` if it is not a valid
/// encoding. Which check failed, and where the message starts, are found
/// in constant time; only the final yes/no branches.
pub(super) fn oaep_decode<D: Digest>(em: &mut [u8]) -> Option<Vec<u8>> {
    let h = <D as Digest>::output_size();
    if em.len() < 2 * h + 2 {
        return None;
    }
    let (y, rest) = em.split_at_mut(1);
    let (seed, db) = rest.split_at_mut(h);
    mgf1_xor::<D>(seed, db);
    mgf1_xor::<D>(db, seed);
    let lhash = D::digest(b"");
    let mut good = y[0].ct_eq(&0) & db[..h].ct_eq(&lhash[..]);
    // DB = lHash || PS (zeros) || 0x01 || M.
    let mut looking = Choice::from(1);
    let mut index = 0u32;
    let mut nonzero_first = Choice::from(0);
    for (i, b) in db[h..].iter().enumerate() {
        let (is0, is1) = (b.ct_eq(&0), b.ct_eq(&1));
        index.conditional_assign(&(i as u32), looking & is1);
        looking &= !is1;
        nonzero_first |= looking & !is0;
    }
    good &= !nonzero_first & !looking;
    if bool::from(good) {
        Some(db[h + index as usize + 1..].to_vec())
    } else {
        None
    }
}

/// `0x00 0x01 0xFF.. 0x00 || prefix || hash`, `k` bytes, or `None` if it
/// does not fit with at least eight 0xFF.
pub(super) fn pkcs1v15_sign_encode(prefix: &[u8], hash: &[u8], k: usize) -> Option<Vec<u8>> {
    let t = prefix.len() + hash.len();
    if k < t + 11 {
        return None;
    }
    let mut em = vec![0xff; k];
    em[0] = 0;
    em[1] = 1;
    em[k - t - 1] = 0;
    em[k - t..k - hash.len()].copy_from_slice(prefix);
    em[k - hash.len()..].copy_from_slice(hash);
    Some(em)
}
