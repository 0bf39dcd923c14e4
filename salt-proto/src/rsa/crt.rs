//! The RSA private-key operation `c^d mod n` on fixed-width Montgomery
//! arithmetic ([`super::monty`]): two half-size exponentiations by the
//! Chinese remainder theorem, blinded, and checked.
//!
//! * **Blinding**, fresh for every operation: the input is multiplied by
//!   `r^e` for a random `r` used once, and the result by `r^-1`. `r` is
//!   drawn independently modulo each prime (so uniformly modulo `n`). The
//!   inverses are made in batches (one Fermat inversion of the batch's
//!   product, then three multiplications per element), kept in a per-key
//!   pool and each handed out once.
//! * **Constant time** in the secret values: fixed-window exponentiation
//!   over every bit of `dp`/`dq`, table entries read by scanning, masked
//!   final subtractions.
//! * **Checked**: the result is raised to `e` modulo `n` and compared with
//!   the input before it is returned, so a fault in one CRT half cannot
//!   leak a factor of `n`.

use std::sync::Mutex;

use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
use ::rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use rand_core::{CryptoRngCore, OsRng};
use zeroize::{Zeroize, Zeroizing};

use super::monty::{limbs_from_be, limbs_of, limbs_to_be, lt, mul_add, Limbs, Modulus};

/// Largest number of blinding pairs made at once (per pool refill).
const MAX_BATCH: usize = 32;
/// The first refill's size: a key used only a few times (a minion's)
/// should not pay for 32.
const FIRST_BATCH: usize = 4;

/// A private key prepared for [`Engine::private`]; `None` from
/// [`Engine::new`] for keys it does not handle (more than two primes, a
/// public exponent above 64 bits, primes above 2048 bits), which stay on
/// the `rsa` crate.
pub(super) struct Engine {
    size: usize,
    inner: Width,
}

enum Width {
    L8(Box<Crt<8, 16>>),
    L16(Box<Crt<16, 32>>),
    L24(Box<Crt<24, 48>>),
    L32(Box<Crt<32, 64>>),
}

impl Engine {
    pub(super) fn new(key: &RsaPrivateKey) -> Option<Engine> {
        let [p, q] = key.primes() else { return None };
        let limbs = |x: &BigUint| x.bits().div_ceil(64);
        let (half, full) = (limbs(p).max(limbs(q)), limbs(key.n()));
        let inner = match (half, full) {
            (..=8, ..=16) => Width::L8(Box::new(Crt::new(key)?)),
            (..=16, ..=32) => Width::L16(Box::new(Crt::new(key)?)),
            (..=24, ..=48) => Width::L24(Box::new(Crt::new(key)?)),
            (..=32, ..=64) => Width::L32(Box::new(Crt::new(key)?)),
            _ => return None,
        };
        Some(Engine { size: key.size(), inner })
    }

    /// `c^d mod n` for the big-endian `c` (at most the modulus size in
    /// bytes), as exactly that many big-endian bytes.
    /// [`::rsa::Error::Decryption`] if `c >= n`, [`::rsa::Error::Internal`]
    /// if the check of the result failed.
    pub(super) fn private(&self, c: &[u8]) -> Result<Zeroizing<Vec<u8>>, ::rsa::Error> {
        if c.len() > self.size {
            return Err(::rsa::Error::Decryption);
        }
        match &self.inner {
            Width::L8(k) => k.private_bytes(c, self.size),
            Width::L16(k) => k.private_bytes(c, self.size),
            Width::L24(k) => k.private_bytes(c, self.size),
            Width::L32(k) => k.private_bytes(c, self.size),
        }
    }
}

/// A public key prepared for [`PublicOp::public`]: `x^e mod n` on the same
/// arithmetic. `None` from [`PublicOp::new`] for moduli above 4096 bits
/// or exponents above 64 bits (they stay on the `rsa` crate).
pub(super) struct PublicOp {
    size: usize,
    inner: PublicWidth,
}

enum PublicWidth {
    L16(Box<Public<16>>),
    L32(Box<Public<32>>),
    L48(Box<Public<48>>),
    L64(Box<Public<64>>),
}

impl PublicOp {
    pub(super) fn new(key: &RsaPublicKey) -> Option<PublicOp> {
        let inner = match key.n().bits().div_ceil(64) {
            0..=16 => PublicWidth::L16(Box::new(Public::new(key.n(), key.e())?)),
            17..=32 => PublicWidth::L32(Box::new(Public::new(key.n(), key.e())?)),
            33..=48 => PublicWidth::L48(Box::new(Public::new(key.n(), key.e())?)),
            49..=64 => PublicWidth::L64(Box::new(Public::new(key.n(), key.e())?)),
            _ => return None,
        };
        Some(PublicOp { size: key.size(), inner })
    }

    /// `x^e mod n` for the big-endian `x` (at most the modulus size in
    /// bytes), as exactly that many big-endian bytes;
    /// [`::rsa::Error::Decryption`] if `x >= n`.
    pub(super) fn public(&self, x: &[u8]) -> Result<Vec<u8>, ::rsa::Error> {
        if x.len() > self.size {
            return Err(::rsa::Error::Decryption);
        }
        match &self.inner {
            PublicWidth::L16(k) => k.apply_bytes(x, self.size),
            PublicWidth::L32(k) => k.apply_bytes(x, self.size),
            PublicWidth::L48(k) => k.apply_bytes(x, self.size),
            PublicWidth::L64(k) => k.apply_bytes(x, self.size),
        }
    }
}

/// `n` and `e` of `M` limbs.
struct Public<const M: usize> {
    n: Modulus<M>,
    e: u64,
}

impl<const M: usize> Public<M> {
    fn new(n: &BigUint, e: &BigUint) -> Option<Self> {
        let e_bytes = e.to_bytes_be();
        if e_bytes.len() > 8 {
            return None;
        }
        let e = e_bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        Some(Public { n: Modulus::new(n)?, e })
    }

    /// `x^e mod n` for `x < n` (the timing depends on `e` only).
    fn apply(&self, x: &Limbs<M>) -> Limbs<M> {
        self.n.out_of_mont(&self.n.pow_public(&self.n.to_mont(x), self.e))
    }

    fn apply_bytes(&self, x: &[u8], size: usize) -> Result<Vec<u8>, ::rsa::Error> {
        let x = limbs_from_be::<M>(x).ok_or(::rsa::Error::Decryption)?;
        if !lt(&x, self.n.modulus()) {
            return Err(::rsa::Error::Decryption);
        }
        Ok(limbs_to_be(&self.apply(&x), size))
    }
}

/// `r^e` and `r^-1` modulo one prime, in Montgomery form.
struct Half<const N: usize> {
    r_e: Limbs<N>,
    r_inv: Limbs<N>,
}

impl<const N: usize> Drop for Half<N> {
    fn drop(&mut self) {
        self.r_e.zeroize();
        self.r_inv.zeroize();
    }
}

/// Unused blinding pairs, and how many refills there have been.
struct Pool<const N: usize> {
    pairs: Vec<(Half<N>, Half<N>)>,
    refills: u32,
}

struct Crt<const N: usize, const M: usize> {
    p: Modulus<N>,
    q: Modulus<N>,
    public: Public<M>,
    dp: Limbs<N>,
    dq: Limbs<N>,
    /// `q^-1 mod p`.
    qinv: Limbs<N>,
    pool: Mutex<Pool<N>>,
}

impl<const N: usize, const M: usize> Drop for Crt<N, M> {
    fn drop(&mut self) {
        self.dp.zeroize();
        self.dq.zeroize();
        self.qinv.zeroize();
    }
}

impl<const N: usize, const M: usize> Crt<N, M> {
    fn new(key: &RsaPrivateKey) -> Option<Self> {
        let [p, q] = key.primes() else { return None };
        let one = BigUint::from(1u8);
        let dp = Zeroizing::new(key.d() % (p - &one));
        let dq = Zeroizing::new(key.d() % (q - &one));
        let qinv = Zeroizing::new(key.crt_coefficient()?);
        let crt = Crt {
            p: Modulus::new(p)?,
            q: Modulus::new(q)?,
            public: Public::new(key.n(), key.e())?,
            dp: limbs_of(&dp)?,
            dq: limbs_of(&dq)?,
            qinv: limbs_of(&qinv)?,
            pool: Mutex::new(Pool { pairs: Vec::new(), refills: 0 }),
        };
        // q qinv = 1 (mod p): the recombination depends on it.
        let mut unit = [0u64; N];
        unit[0] = 1;
        let q_mod_p = crt.p.to_mont(crt.q.modulus());
        if !lt(&crt.qinv, crt.p.modulus()) || crt.p.mul(&q_mod_p, &crt.qinv) != unit {
            return None;
        }
        Some(crt)
    }

    fn private_bytes(&self, c: &[u8], size: usize) -> Result<Zeroizing<Vec<u8>>, ::rsa::Error> {
        let c = limbs_from_be::<M>(c).ok_or(::rsa::Error::Decryption)?;
        if !lt(&c, self.public.n.modulus()) {
            return Err(::rsa::Error::Decryption);
        }
        let mut m = self.private(&c).ok_or(::rsa::Error::Internal)?;
        let out = Zeroizing::new(limbs_to_be(&m, size));
        m.zeroize();
        Ok(out)
    }

    /// `c^d mod n` for `c < n`, or `None` if the check failed.
    fn private(&self, c: &Limbs<M>) -> Option<Limbs<M>> {
        let (bp, bq) = self.blinding();
        // c as two N-limb halves (M <= 2N).
        let (mut lo, mut hi) = ([0u64; N], [0u64; N]);
        for (i, &l) in c.iter().enumerate() {
            if let Some(x) = lo.get_mut(i).or_else(|| hi.get_mut(i - N)) {
                *x = l;
            }
        }
        // m mod p and m mod q, in Montgomery form, blinded then unblinded.
        let mut cp = self.p.mul(&self.p.to_mont_wide(&lo, &hi), &bp.r_e);
        let mut cq = self.q.mul(&self.q.to_mont_wide(&lo, &hi), &bq.r_e);
        let mut x = Modulus::pow_secret_pair([&self.p, &self.q], [&cp, &cq], [&self.dp, &self.dq]);
        let mut mp = self.p.mul(&x[0], &bp.r_inv);
        let mut mq = self.q.mul(&x[1], &bq.r_inv);
        x.zeroize();
        // Garner: m = mq + q ((mp - mq) qinv mod p).
        let mut mq_plain = self.q.out_of_mont(&mq);
        let mut mq_p = self.p.to_mont(&mq_plain);
        let mut h = self.p.mul(&self.p.sub(&mp, &mq_p), &self.qinv);
        let m: Limbs<M> = mul_add(self.q.modulus(), &h, &mq_plain);
        for x in [&mut cp, &mut cq, &mut mp, &mut mq, &mut mq_plain, &mut mq_p, &mut h] {
            x.zeroize();
        }
        // m < n here (mq < q and h < p), so it is a valid Montgomery input.
        (self.public.apply(&m) == *c).then_some(m)
    }

    /// A blinding pair for each prime, never handed out before.
    fn blinding(&self) -> (Half<N>, Half<N>) {
        let mut pool = match self.pool.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(pair) = pool.pairs.pop() {
            return pair;
        }
        let count = (FIRST_BATCH << pool.refills.min(8)).min(MAX_BATCH);
        pool.refills = pool.refills.saturating_add(1);
        // Made outside the lock: other threads keep drawing meanwhile.
        drop(pool);
        let mut rng = OsRng;
        let mut fresh = blinding_pairs([&self.p, &self.q], self.public.e, count, &mut rng);
        let Some(mine) = fresh.pop() else { unreachable!("count >= 1") };
        let mut pool = match self.pool.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        pool.pairs.append(&mut fresh);
        mine
    }
}

/// `count` blinding pairs modulo each of the two primes: random `r` in
/// `[1, m)` (drawn directly in Montgomery form, which is as uniform), `r^e`,
/// and `r^-1` by batch inversion (Montgomery's trick: the inverse of the
/// product, then peeled back one factor at a time).
fn blinding_pairs<const N: usize>(
    md: [&Modulus<N>; 2],
    e: u64,
    count: usize,
    rng: &mut impl CryptoRngCore,
) -> Vec<(Half<N>, Half<N>)> {
    let rs: Vec<[Zeroizing<Limbs<N>>; 2]> =
        (0..count).map(|_| md.map(|m| Zeroizing::new(random_unit(m, rng)))).collect();
    let mut prefix: Vec<[Zeroizing<Limbs<N>>; 2]> = Vec::with_capacity(count);
    let mut acc = md.map(|m| Zeroizing::new(*m.one()));
    for r in &rs {
        for lane in 0..2 {
            *acc[lane] = md[lane].mul(&acc[lane], &r[lane]);
        }
        prefix.push(acc.clone());
    }
    let mut inv = Modulus::inv_prime_pair(md, [&acc[0], &acc[1]]).map(Zeroizing::new);
    let mut out = Vec::with_capacity(count);
    for i in (0..count).rev() {
        let half = |lane: usize| {
            let r_inv = match i.checked_sub(1) {
                Some(j) => md[lane].mul(&inv[lane], &prefix[j][lane]),
                None => *inv[lane],
            };
            Half { r_e: md[lane].pow_public(&rs[i][lane], e), r_inv }
        };
        out.push((half(0), half(1)));
        for lane in 0..2 {
            *inv[lane] = md[lane].mul(&inv[lane], &rs[i][lane]);
        }
    }
    out
}

/// Uniform in `[1, m)` by rejection (at least half the draws are kept).
fn random_unit<const N: usize>(md: &Modulus<N>, rng: &mut impl CryptoRngCore) -> Limbs<N> {
    let m = md.modulus();
    let top = N - 1 - m.iter().rev().take_while(|&&l| l == 0).count();
    let mask = u64::MAX >> m[top].leading_zeros();
    let mut bytes = Zeroizing::new([0u8; 8]);
    loop {
        let mut r = [0u64; N];
        for l in r.iter_mut().take(top + 1) {
            rng.fill_bytes(&mut bytes[..]);
            *l = u64::from_le_bytes(*bytes);
        }
        r[top] &= mask;
        if lt(&r, m) && r.iter().any(|&l| l != 0) {
            return r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rsa::hazmat::rsa_decrypt_and_check;
    use rand_core::RngCore;

    fn check_key(bits: usize, rounds: usize) {
        let Ok(key) = RsaPrivateKey::new(&mut OsRng, bits) else { panic!("keygen") };
        let Some(engine) = Engine::new(&key) else { panic!("engine for {bits} bits") };
        let k = key.size();
        for i in 0..rounds {
            let mut wide = vec![0u8; k + 16];
            OsRng.fill_bytes(&mut wide);
            let mut c = (BigUint::from_bytes_be(&wide) % key.n()).to_bytes_be();
            c.splice(0..0, std::iter::repeat(0).take(k - c.len()));
            if i == 0 {
                c.fill(0);
            }
            if i == 1 {
                c.fill(0);
                c[k - 1] = 1;
            }
            let cb = BigUint::from_bytes_be(&c);
            let Ok(want) = rsa_decrypt_and_check(&key, None::<&mut OsRng>, &cb) else { panic!("rsa") };
            let Ok(got) = engine.private(&c) else { panic!("engine") };
            assert_eq!(BigUint::from_bytes_be(&got), want, "{bits} bits, round {i}");
            assert_eq!(got.len(), k);
        }
        // n - 1 is the largest input; n and above are refused.
        let n = key.n().to_bytes_be();
        let nm1 = (key.n() - BigUint::from(1u8)).to_bytes_be();
        let Ok(want) = rsa_decrypt_and_check(&key, None::<&mut OsRng>, &BigUint::from_bytes_be(&nm1)) else {
            panic!("rsa")
        };
        assert_eq!(engine.private(&nm1).map(|v| BigUint::from_bytes_be(&v)).ok(), Some(want));
        assert!(matches!(engine.private(&n), Err(::rsa::Error::Decryption)));
        assert!(matches!(engine.private(&vec![0xff; k]), Err(::rsa::Error::Decryption)));
        assert!(matches!(engine.private(&vec![0; k + 1]), Err(::rsa::Error::Decryption)));
    }

    #[test]
    fn private_op_matches_rsa_crate_1024() {
        for _ in 0..3 {
            check_key(1024, 20);
        }
    }

    #[test]
    fn private_op_matches_rsa_crate_2048() {
        check_key(2048, 20);
    }

    #[test]
    fn private_op_matches_rsa_crate_odd_sizes() {
        // Primes of 257 and 767 bits: padded limbs.
        check_key(514, 20);
        check_key(1534, 10);
    }

    #[test]
    fn a_fault_is_caught() {
        let Ok(key) = RsaPrivateKey::new(&mut OsRng, 1024) else { panic!("keygen") };
        let Some(mut crt) = Crt::<8, 16>::new(&key) else { panic!("engine") };
        crt.dp[0] ^= 1 << 7;
        let mut c = [0u64; 16];
        c[0] = 12345;
        assert!(crt.private(&c).is_none());
    }

    #[test]
    fn blinding_pairs_are_fresh_and_correct() {
        let Ok(key) = RsaPrivateKey::new(&mut OsRng, 1024) else { panic!("keygen") };
        let Some(crt) = Crt::<8, 16>::new(&key) else { panic!("engine") };
        let mut seen = Vec::new();
        for _ in 0..(FIRST_BATCH + MAX_BATCH + 3) {
            let (bp, bq) = crt.blinding();
            for (md, h) in [(&crt.p, &bp), (&crt.q, &bq)] {
                // r^e r^-e... check r^e (r^-1)^e = 1.
                let inv_e = md.pow_public(&h.r_inv, crt.public.e);
                assert_eq!(md.mul(&h.r_e, &inv_e), *md.one());
            }
            assert!(!seen.contains(&bp.r_inv), "a blinding pair was handed out twice");
            seen.push(bp.r_inv);
        }
    }
}
