//! Job ids and event stamps (`salt/utils/jid.py:gen_jid`, `fire_event`'s `_stamp`).
//!
//! Times are UTC: the stock tools use local time for jids, which is UTC on the hosts we target
//! (`utc_jid` makes it explicit in Salt).

use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down UTC time with microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

impl Utc {
    /// Now.
    pub fn now() -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix(d.as_secs() as i64, d.subsec_micros())
    }

    /// From seconds since the epoch.
    pub fn from_unix(secs: i64, micros: u32) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Days to civil date (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            micros,
        }
    }
}

/// `datetime.now(timezone.utc).isoformat()`, the `_stamp` of an event.
pub fn stamp_now() -> String {
    let t = Utc::now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
    )
}

/// `gen_jid`: `%Y%m%d%H%M%S%f`.
pub fn gen_jid() -> String {
    let t = Utc::now();
    format!("{:04}{:02}{:02}{:02}{:02}{:02}{:06}", t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(
            Utc::from_unix(0, 0),
            Utc { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, micros: 0 }
        );
        // 2026-12-05T05:02:58Z
        let t = Utc::from_unix(1_796_446_978, 416_347);
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2026, 12, 5, 5, 2, 58));
    }
}
