//! Fixed-width Montgomery arithmetic modulo an odd number of `N` 64-bit
//! limbs (little-endian limb order), for the RSA private-key operation
//! ([`super::crt`]).
//!
//! Multiplication is CIOS (coarsely integrated operand scanning) with a
//! final subtraction made by masking, so its timing does not depend on the
//! values; [`Modulus::pow_secret_pair`] is a fixed-window exponentiation
//! (of the two CRT halves at once, interleaved) whose window values are read
//! from the table by scanning every entry.

use ::rsa::BigUint;
use zeroize::Zeroize;

/// `N` limbs, least significant first.
pub(super) type Limbs<const N: usize> = [u64; N];

/// Exponent window of [`Modulus::pow_secret_pair`] (a 2^W-entry table).
const WINDOW: usize = 5;

#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(acc) + u128::from(a) * u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// `a - b - borrow`, and the borrow out (0 or 1).
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = u128::from(a).wrapping_sub(u128::from(b) + u128::from(borrow));
    (t as u64, (t >> 127) as u64)
}

/// `a` where `mask` is all ones, `b` where it is zero.
#[inline(always)]
fn select<const N: usize>(mask: u64, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
    let mut r = [0u64; N];
    for ((r, &a), &b) in r.iter_mut().zip(a).zip(b) {
        *r = (a & mask) | (b & !mask);
    }
    r
}

/// The little-endian limbs of `x`, or `None` if it needs more than `N`.
pub(super) fn limbs_of<const N: usize>(x: &BigUint) -> Option<Limbs<N>> {
    let mut bytes = x.to_bytes_le();
    let out = limbs_from_le(&bytes);
    bytes.zeroize();
    out
}

/// Little-endian bytes as `N` limbs, or `None` if a non-zero byte lies
/// beyond them.
pub(super) fn limbs_from_le<const N: usize>(bytes: &[u8]) -> Option<Limbs<N>> {
    let mut out = [0u64; N];
    for (i, &b) in bytes.iter().enumerate() {
        match out.get_mut(i / 8) {
            Some(l) => *l |= u64::from(b) << (8 * (i % 8)),
            None if b == 0 => {}
            None => return None,
        }
    }
    Some(out)
}

/// Big-endian bytes as `N` limbs, or `None` if they do not fit.
pub(super) fn limbs_from_be<const N: usize>(bytes: &[u8]) -> Option<Limbs<N>> {
    let mut out = [0u64; N];
    for (i, &b) in bytes.iter().rev().enumerate() {
        match out.get_mut(i / 8) {
            Some(l) => *l |= u64::from(b) << (8 * (i % 8)),
            None if b == 0 => {}
            None => return None,
        }
    }
    Some(out)
}

/// `x` as exactly `len` big-endian bytes (the caller knows `x < 2^(8 len)`;
/// higher bytes are dropped).
pub(super) fn limbs_to_be<const N: usize>(x: &Limbs<N>, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, o) in out.iter_mut().rev().enumerate() {
        if let Some(l) = x.get(i / 8) {
            *o = (l >> (8 * (i % 8))) as u8;
        }
    }
    out
}

/// `a < b` as numbers (variable time: for public values).
pub(super) fn lt<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// An odd modulus `m < 2^(64 N)` with its Montgomery constants
/// (R = 2^(64 N)).
#[derive(Clone)]
pub(super) struct Modulus<const N: usize> {
    m: Limbs<N>,
    /// `-m^-1 mod 2^64`.
    m0inv: u64,
    /// `R mod m`: one in Montgomery form.
    one: Limbs<N>,
    /// `R^2 mod m`.
    r2: Limbs<N>,
    /// `R^3 mod m`.
    r3: Limbs<N>,
}

impl<const N: usize> Drop for Modulus<N> {
    fn drop(&mut self) {
        // The moduli of a private key are its primes.
        self.m.zeroize();
        self.one.zeroize();
        self.r2.zeroize();
        self.r3.zeroize();
    }
}

impl<const N: usize> Modulus<N> {
    /// `None` unless `m` is odd, greater than one and fits in `N` limbs.
    pub(super) fn new(m: &BigUint) -> Option<Self> {
        let limbs = limbs_of::<N>(m)?;
        if limbs[0] & 1 == 0 || m <= &BigUint::from(1u8) {
            return None;
        }
        // Newton's iteration for m0^-1 mod 2^64: m0 is its own inverse
        // mod 8, and each step doubles the correct low bits (3, 6, .., 96).
        let m0 = limbs[0];
        let mut inv = m0;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
        }
        let one = limbs_of::<N>(&((BigUint::from(1u8) << (64 * N)) % m))?;
        let mut md = Modulus { m: limbs, m0inv: inv.wrapping_neg(), one, r2: [0; N], r3: [0; N] };
        // 2 in Montgomery form is 2R; raised to the power 64N (the bits of
        // R) it is the Montgomery form of R, that is R^2 mod m: a handful
        // of squarings rather than a long division.
        let two = md.add(&md.one, &md.one);
        md.r2 = md.pow_public(&two, 64 * N as u64);
        md.r3 = md.mul(&md.r2, &md.r2);
        Some(md)
    }

    /// The modulus.
    pub(super) fn modulus(&self) -> &Limbs<N> {
        &self.m
    }

    /// One in Montgomery form.
    pub(super) fn one(&self) -> &Limbs<N> {
        &self.one
    }

    /// `a b R^-1 mod m`, fully reduced, for `a < R` and `b < m` (or
    /// `a < m` and `b < R`). Constant time.
    #[inline]
    pub(super) fn mul(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        // One pass per limb of b (FIOS): add a b_i and u m (u making the low
        // limb zero) together and shift down a limb, in two independent
        // carry chains.
        let m = &self.m;
        let mut t = [0u64; N];
        let mut hi = 0u64;
        for &bi in b {
            let (t0, mut c1) = mac(t[0], a[0], bi, 0);
            let u = t0.wrapping_mul(self.m0inv);
            let (_, mut c2) = mac(t0, u, m[0], 0);
            for j in 1..N {
                let x;
                (x, c1) = mac(t[j], a[j], bi, c1);
                (t[j - 1], c2) = mac(x, u, m[j], c2);
            }
            let (x, top1) = adc(hi, c1, 0);
            let (x, top2) = adc(x, c2, 0);
            t[N - 1] = x;
            hi = top1 + top2;
        }
        self.reduce_once(&t, hi)
    }

    /// `a^2 R^-1 mod m` for `a < m`. Constant time. (A dedicated squaring
    /// — each cross product once, then a separate reduction — measured no
    /// faster here: its reduction is one long carry chain.)
    #[inline]
    pub(super) fn square(&self, a: &Limbs<N>) -> Limbs<N> {
        self.mul(a, a)
    }

    /// `hi 2^(64 N) + t` minus `m` if that is not below `m`, for a value
    /// below `2m`. Constant time.
    #[inline(always)]
    fn reduce_once(&self, t: &Limbs<N>, hi: u64) -> Limbs<N> {
        let mut d = [0u64; N];
        let mut borrow = 0;
        for ((d, &t), &m) in d.iter_mut().zip(t).zip(&self.m) {
            (*d, borrow) = sbb(t, m, borrow);
        }
        // Borrowing past `hi` means the value was below m: keep t.
        let (_, keep) = sbb(hi, 0, borrow);
        select(0u64.wrapping_sub(keep), t, &d)
    }

    /// `a + b mod m` for `a, b < m`. Constant time.
    pub(super) fn add(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let mut s = [0u64; N];
        let mut carry = 0;
        for ((s, &a), &b) in s.iter_mut().zip(a).zip(b) {
            (*s, carry) = adc(a, b, carry);
        }
        self.reduce_once(&s, carry)
    }

    /// `a - b mod m` for `a, b < m`. Constant time.
    pub(super) fn sub(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let mut d = [0u64; N];
        let mut borrow = 0;
        for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
            (*d, borrow) = sbb(a, b, borrow);
        }
        let mask = 0u64.wrapping_sub(borrow);
        let mut carry = 0;
        for (d, &m) in d.iter_mut().zip(&self.m) {
            (*d, carry) = adc(*d, m & mask, carry);
        }
        d
    }

    /// The Montgomery form `x R mod m` of any `x < R`.
    pub(super) fn to_mont(&self, x: &Limbs<N>) -> Limbs<N> {
        self.mul(x, &self.r2)
    }

    /// The Montgomery form of `hi R + lo mod m` (any two-limb-array
    /// number below `m R`, such as a ciphertext below `n = p q` modulo `p`).
    pub(super) fn to_mont_wide(&self, lo: &Limbs<N>, hi: &Limbs<N>) -> Limbs<N> {
        self.add(&self.mul(lo, &self.r2), &self.mul(hi, &self.r3))
    }

    /// `x` out of Montgomery form: `x R^-1 mod m`.
    pub(super) fn out_of_mont(&self, x: &Limbs<N>) -> Limbs<N> {
        let mut one = [0u64; N];
        one[0] = 1;
        self.mul(x, &one)
    }

    /// The inverses in Montgomery form, `a^-1 R` for `x = a R`, modulo two
    /// primes at once, by Fermat (`x^(m-2)`). Constant time.
    pub(super) fn inv_prime_pair(md: [&Self; 2], x: [&Limbs<N>; 2]) -> [Limbs<N>; 2] {
        let minus_two = |m: &Limbs<N>| {
            // m - 2 (m is odd and above 2).
            let mut e = *m;
            let mut borrow = 0;
            for (i, l) in e.iter_mut().enumerate() {
                (*l, borrow) = sbb(*l, if i == 0 { 2 } else { 0 }, borrow);
            }
            e
        };
        let mut e = [minus_two(&md[0].m), minus_two(&md[1].m)];
        let r = Self::pow_secret_pair(md, x, [&e[0], &e[1]]);
        e.zeroize();
        r
    }

    /// `a b R^-1` modulo two moduli at once: [`mul`](Self::mul) for
    /// each, interleaved limb by limb so that the processor overlaps their
    /// carry chains (the two halves of a CRT exponentiation are
    /// independent). Constant time.
    #[inline]
    pub(super) fn mul_pair(md: [&Self; 2], a: [&Limbs<N>; 2], b: [&Limbs<N>; 2]) -> [Limbs<N>; 2] {
        let [p, q] = md;
        let ([ap, aq], [bp, bq]) = (a, b);
        let (mp, mq) = (&p.m, &q.m);
        let (mut tp, mut tq) = ([0u64; N], [0u64; N]);
        let (mut hp, mut hq) = (0u64, 0u64);
        for i in 0..N {
            let (bpi, bqi) = (bp[i], bq[i]);
            let (t0p, mut c1p) = mac(tp[0], ap[0], bpi, 0);
            let (t0q, mut c1q) = mac(tq[0], aq[0], bqi, 0);
            let up = t0p.wrapping_mul(p.m0inv);
            let uq = t0q.wrapping_mul(q.m0inv);
            let (_, mut c2p) = mac(t0p, up, mp[0], 0);
            let (_, mut c2q) = mac(t0q, uq, mq[0], 0);
            for j in 1..N {
                let (x, y);
                (x, c1p) = mac(tp[j], ap[j], bpi, c1p);
                (y, c1q) = mac(tq[j], aq[j], bqi, c1q);
                (tp[j - 1], c2p) = mac(x, up, mp[j], c2p);
                (tq[j - 1], c2q) = mac(y, uq, mq[j], c2q);
            }
            let (x, t1p) = adc(hp, c1p, 0);
            let (x, t2p) = adc(x, c2p, 0);
            tp[N - 1] = x;
            hp = t1p + t2p;
            let (y, t1q) = adc(hq, c1q, 0);
            let (y, t2q) = adc(y, c2q, 0);
            tq[N - 1] = y;
            hq = t1q + t2q;
        }
        [p.reduce_once(&tp, hp), q.reduce_once(&tq, hq)]
    }

    /// `base^exp` in Montgomery form modulo two moduli at once (`base` in
    /// Montgomery form), for secret exponents: every bit of all `N` limbs
    /// is processed, and each window's table entry is read by scanning the
    /// whole table. The two lanes run interleaved ([`mul_pair`](Self::mul_pair)).
    pub(super) fn pow_secret_pair(md: [&Self; 2], base: [&Limbs<N>; 2], exp: [&Limbs<N>; 2]) -> [Limbs<N>; 2] {
        let mut table = [[[0u64; N]; 2]; 1 << WINDOW];
        table[0] = [md[0].one, md[1].one];
        table[1] = [*base[0], *base[1]];
        for i in 2..table.len() {
            let (x, y) = if i % 2 == 0 { (i / 2, i / 2) } else { (i - 1, 1) };
            table[i] = Self::mul_pair(md, [&table[x][0], &table[x][1]], [&table[y][0], &table[y][1]]);
        }
        let bits = 64 * N;
        // The top window holds the bits left over by whole windows.
        let top = match bits % WINDOW {
            0 => WINDOW,
            r => r,
        };
        let mut pos = bits - top;
        let mut acc = [lookup(&table, 0, window(exp[0], pos, top)), lookup(&table, 1, window(exp[1], pos, top))];
        while pos > 0 {
            pos -= WINDOW;
            for _ in 0..WINDOW {
                acc = Self::mul_pair(md, [&acc[0], &acc[1]], [&acc[0], &acc[1]]);
            }
            let mut t =
                [lookup(&table, 0, window(exp[0], pos, WINDOW)), lookup(&table, 1, window(exp[1], pos, WINDOW))];
            acc = Self::mul_pair(md, [&acc[0], &acc[1]], [&t[0], &t[1]]);
            t.zeroize();
        }
        table.zeroize();
        acc
    }

    /// `base^exp` in Montgomery form for a public exponent (square and
    /// multiply; the timing depends on `exp` only).
    pub(super) fn pow_public(&self, base: &Limbs<N>, exp: u64) -> Limbs<N> {
        if exp == 0 {
            return self.one;
        }
        let mut acc = *base;
        for i in (0..63 - exp.leading_zeros()).rev() {
            acc = self.square(&acc);
            if (exp >> i) & 1 == 1 {
                acc = self.mul(&acc, base);
            }
        }
        acc
    }
}

/// Bits `pos .. pos + w` of `exp` (w <= 8).
#[inline(always)]
fn window<const N: usize>(exp: &Limbs<N>, pos: usize, w: usize) -> usize {
    let (limb, shift) = (pos / 64, pos % 64);
    let mut v = exp[limb] >> shift;
    if shift + w > 64 {
        if let Some(next) = exp.get(limb + 1) {
            v |= next << (64 - shift);
        }
    }
    (v & ((1 << w) - 1)) as usize
}

/// `table[idx][lane]`, reading every entry (constant time in `idx`).
#[inline(always)]
fn lookup<const N: usize>(table: &[[Limbs<N>; 2]], lane: usize, idx: usize) -> Limbs<N> {
    let mut r = [0u64; N];
    for (i, entry) in table.iter().enumerate() {
        // All ones when i == idx: (i ^ idx) - 1 borrows only from zero.
        let diff = (i ^ idx) as u64;
        let mask = 0u64.wrapping_sub(((diff | diff.wrapping_neg()) >> 63) ^ 1);
        for (r, &e) in r.iter_mut().zip(&entry[lane]) {
            *r |= e & mask;
        }
    }
    r
}

/// `a b + c` as `M` limbs, for `a, b, c` of `N` limbs whose result is known
/// to fit (an RSA recombination `m_q + q h < n`). Constant time.
pub(super) fn mul_add<const N: usize, const M: usize>(a: &Limbs<N>, b: &Limbs<N>, c: &Limbs<N>) -> Limbs<M> {
    let mut r = [0u64; M];
    for (r, &c) in r.iter_mut().zip(c) {
        *r = c;
    }
    for (i, &bi) in b.iter().enumerate() {
        let mut carry = 0;
        for (j, &aj) in a.iter().enumerate() {
            if let Some(rij) = r.get_mut(i + j) {
                (*rij, carry) = mac(*rij, aj, bi, carry);
            }
        }
        // Propagate the carry through the higher limbs.
        for rk in r.iter_mut().skip(i + N) {
            (*rk, carry) = adc(*rk, carry, 0);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{OsRng, RngCore};

    fn big<const N: usize>(x: &Limbs<N>) -> BigUint {
        BigUint::from_bytes_be(&limbs_to_be(x, 8 * N))
    }

    fn random_below<const N: usize>(m: &BigUint) -> Limbs<N> {
        let mut b = vec![0u8; 8 * N + 16];
        OsRng.fill_bytes(&mut b);
        let Some(x) = limbs_of::<N>(&(BigUint::from_bytes_be(&b) % m)) else { panic!("fits") };
        x
    }

    fn check_ops<const N: usize>(m: &BigUint) {
        let Some(md) = Modulus::<N>::new(m) else { panic!("modulus") };
        let r = BigUint::from(1u8) << (64 * N);
        assert_eq!(big(&md.one), &r % m);
        assert_eq!(big(&md.r2), (&r * &r) % m);
        assert_eq!(big(&md.r3), (&r * &r * &r) % m);
        for _ in 0..50 {
            let a = random_below::<N>(m);
            let b = random_below::<N>(m);
            let (ab, bb) = (big(&a), big(&b));
            // Montgomery product against the definition.
            let prod = big(&md.mul(&a, &b));
            assert_eq!((&prod * &r) % m, (&ab * &bb) % m);
            assert!(&prod < m);
            assert_eq!(big(&md.add(&a, &b)), (&ab + &bb) % m);
            assert_eq!(big(&md.sub(&a, &b)), (&ab + m - &bb) % m);
            assert_eq!(big(&md.out_of_mont(&md.to_mont(&a))), ab);
            // pow against BigUint::modpow.
            let (e, f) = (random_below::<N>(m), random_below::<N>(m));
            let got = Modulus::pow_secret_pair([&md, &md], [&md.to_mont(&a), &md.to_mont(&b)], [&e, &f]);
            assert_eq!(big(&md.out_of_mont(&got[0])), ab.modpow(&big(&e), m));
            assert_eq!(big(&md.out_of_mont(&got[1])), bb.modpow(&big(&f), m));
            let pair = Modulus::mul_pair([&md, &md], [&a, &b], [&b, &e]);
            assert_eq!(pair, [md.mul(&a, &b), md.mul(&b, &e)]);
            let got = md.out_of_mont(&md.pow_public(&md.to_mont(&a), 65537));
            assert_eq!(big(&got), ab.modpow(&BigUint::from(65537u32), m));
        }
        // Edge values: 0, 1, m - 1, and the largest reduced operands.
        let mut m1 = md.m;
        m1[0] -= 1;
        for x in [[0u64; N], *md.one(), m1] {
            let xm = md.to_mont(&x);
            assert_eq!(big(&md.out_of_mont(&md.square(&xm))), (big(&x) * big(&x)) % m);
        }
    }

    #[test]
    fn montgomery_matches_biguint() {
        // Odd moduli of assorted sizes, including ones with few bits in the
        // top limb, and with all bits set.
        for bits in [64usize, 100, 511, 512, 1000, 1024] {
            for _ in 0..3 {
                let mut b = vec![0u8; bits.div_ceil(8)];
                OsRng.fill_bytes(&mut b);
                let mut m = BigUint::from_bytes_be(&b) >> (b.len() * 8 - bits);
                m |= BigUint::from(1u8) | (BigUint::from(1u8) << (bits - 1));
                match bits.div_ceil(64) {
                    1 | 2 => check_ops::<2>(&m),
                    8 => check_ops::<8>(&m),
                    16 => check_ops::<16>(&m),
                    _ => check_ops::<16>(&m),
                }
            }
        }
        let all_ones = (BigUint::from(1u8) << 1024) - BigUint::from(1u8);
        check_ops::<16>(&all_ones);
    }

    #[test]
    fn wide_reduction_and_mul_add() {
        let mut b = vec![0u8; 64];
        OsRng.fill_bytes(&mut b);
        let p = BigUint::from_bytes_be(&b) | BigUint::from(1u8) | (BigUint::from(1u8) << 511);
        let Some(md) = Modulus::<8>::new(&p) else { panic!("modulus") };
        for _ in 0..50 {
            let lo = random_below::<8>(&(BigUint::from(1u8) << 512));
            let hi = random_below::<8>(&p);
            let x = big(&hi) * (BigUint::from(1u8) << 512) + big(&lo);
            assert_eq!(big(&md.out_of_mont(&md.to_mont_wide(&lo, &hi))), &x % &p);
            let c = random_below::<8>(&p);
            let r: Limbs<16> = mul_add(&lo, &hi, &c);
            assert_eq!(big(&r), big(&lo) * big(&hi) + big(&c));
        }
        assert!(Modulus::<8>::new(&(p.clone() + BigUint::from(1u8))).is_none());
        assert!(Modulus::<4>::new(&p).is_none());
        assert!(Modulus::<8>::new(&BigUint::from(1u8)).is_none());
    }

    #[test]
    fn lookup_and_window() {
        let table: Vec<[Limbs<2>; 2]> = (0..32u64).map(|i| [[i, i * 7], [i * 3, i]]).collect();
        for i in 0..32 {
            assert_eq!(lookup(&table, 0, i), [i as u64, i as u64 * 7]);
            assert_eq!(lookup(&table, 1, i), [i as u64 * 3, i as u64]);
        }
        let e: Limbs<2> = [0xF000_0000_0000_0001, 0b1011];
        assert_eq!(window(&e, 0, 5), 1);
        assert_eq!(window(&e, 60, 5), 0b11111);
        assert_eq!(window(&e, 62, 5), 0b01111);
        assert_eq!(window(&e, 125, 3), 0);
    }
}
