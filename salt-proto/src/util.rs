//! Small helpers Salt's protocol needs: random bytes, `uuid4().hex` nonces,
//! SHA-256 / SHA-1 hex digests, timestamps and job ids.

use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::{Error, Local, Result};

/// Fill `buf` from the operating system's random number generator.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    OsRng.try_fill_bytes(buf).map_err(|_| Error::Local(Local::Rng))
}

/// A uniform random integer in `[lo, hi]` from the OS generator (`random.randint`; `lo` when
/// `hi <= lo` or the generator fails). Salt draws start-up delays and reconnect intervals so.
pub fn randint(lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let mut b = [0u8; 8];
    if fill_random(&mut b).is_err() {
        return lo;
    }
    let span = hi - lo + 1;
    lo + u64::from_le_bytes(b) % span
}

/// Lower-case hex of `data`.
pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Salt's key fingerprint form (`salt.utils.crypt.pem_finger`): the digest's hex digits in
/// colon-separated pairs (`ab:cd:...`).
pub fn colon_pairs(hex: &str) -> String {
    let mut out = String::with_capacity(hex.len() * 3 / 2);
    for (i, c) in hex.chars().enumerate() {
        out.push(c);
        if i % 2 == 1 && i + 1 < hex.len() {
            out.push(':');
        }
    }
    out
}

/// Python `uuid.uuid4().hex`: 32 lower-case hex characters of a random
/// version-4 UUID. Salt uses these as request nonces.
pub fn uuid4_hex() -> Result<String> {
    let mut b = [0u8; 16];
    fill_random(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(hex(&b))
}

/// `hashlib.sha256(data).hexdigest()`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `hashlib.sha1(data).hexdigest()` (the ZeroMQ topic of a minion id when
/// `zmq_filtering` is on).
pub fn sha1_hex(data: &[u8]) -> String {
    hex(&Sha1::digest(data))
}

/// `int(time.time())`: the `ts` of v3 requests.
pub fn unix_time() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The jid Salt makes for a UTC instant given in microseconds since the
/// Unix epoch: `f"{dt:%Y%m%d%H%M%S%f}"`, 20 digits (utils/jid.py `gen_jid`
/// without `unique_jid`). Instants before 1970 are clamped to the epoch.
pub fn jid_from_unix_micros(micros: i64) -> String {
    let micros = micros.max(0);
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}{frac:06}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// `datetime.fromtimestamp(micros / 1e6, timezone.utc).isoformat()`: Salt's event `_stamp`,
/// e.g. `2026-08-01T10:00:00.123456+00:00` (no fraction when it is zero, as Python prints it).
/// Instants before 1970 are clamped to the epoch.
pub fn isoformat_utc(micros: i64) -> String {
    let micros = micros.max(0);
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let time = format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{time}+00:00")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{time}.{frac:06}+00:00")
    }
}

/// Microseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// A jid for the current time (see [`jid_from_unix_micros`]).
pub fn gen_jid() -> String {
    jid_from_unix_micros(unix_micros())
}

/// `time.asctime(time.gmtime(unix))`: `"Tue Nov 25 03:02:11 2025"` (the minion's start event).
pub fn asctime(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix.div_euclid(86_400);
    let rem = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let mon = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!("{wd} {mon} {d:>2} {:02}:{:02}:{:02} {y}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let n = uuid4_hex().unwrap_or_default();
        assert_eq!(n.len(), 32);
        assert_eq!(&n[12..13], "4");
    }

    #[test]
    fn asctime_like_python() {
        // time.asctime(time.gmtime(0)), (1764039731), (951782400)
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_764_039_731), "Tue Nov 25 03:02:11 2025");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(asctime(-86_400), "Wed Dec 31 00:00:00 1969");
    }

    #[test]
    fn randint_bounds() {
        for _ in 0..100 {
            let v = randint(1000, 11000);
            assert!((1000..=11000).contains(&v));
        }
        assert_eq!(randint(5, 5), 5);
        assert_eq!(randint(5, 1), 5);
    }

    #[test]
    fn jids() {
        assert_eq!(jid_from_unix_micros(0), "19700101000000000000");
        // 2024-02-29T23:59:59.123456Z
        assert_eq!(jid_from_unix_micros(1_709_251_199_123_456), "20240229235959123456");
        assert_eq!(jid_from_unix_micros(4_102_444_800_999_999), "21000101000000999999");
        assert_eq!(jid_from_unix_micros(951_782_400_000_001), "20000229000000000001");
        assert_eq!(gen_jid().len(), 20);
        assert_eq!(isoformat_utc(1_709_251_199_123_456), "2024-02-29T23:59:59.123456+00:00");
        assert_eq!(isoformat_utc(1_709_251_199_000_000), "2024-02-29T23:59:59+00:00");
        assert_eq!(isoformat_utc(0), "1970-01-01T00:00:00+00:00");
        assert!(unix_time() > 1_700_000_000);
    }
}
