//! `salt-swarm-rs`: many protocol-complete Salt minions in one process, and a launcher that
//! spreads them over several processes, to size a master (ours or Salt's).
//!
//! Every swarm minion is the real minion of the [`minion`] crate, run through
//! [`minion::daemon::run_prepared`]: v3 `_auth` with its own RSA key, the SUB socket with Salt's
//! options, `_pillar` with its grains, the start events, jobs run by the minion's own execution
//! modules, returns over REQ, and the minion's own retries and back-off (`auth_timeout` ×
//! `auth_tries` per sign-in, `acceptance_wait_time` between sign-ins). What the swarm adds:
//!
//! - [`keys`]: key pairs generated once, in parallel, into a cache directory, and hard-linked
//!   into each run's `pki_dir`s (so the master key every run trusts is its own);
//! - [`stats`]: an [`minion::observer::Observer`] per process counting sign-ins, `_auth`
//!   requests, start-ups and per-job receipts and returns, written as a JSON status file;
//! - a small fixed grain set per minion ([`grains`]): `swarm_group` = index mod 10, for grain
//!   targeting.

pub mod keys;
pub mod stats;

use salt_core::value::{map, string, Value};

/// The id of swarm minion `index`: `PREFIX-NNNNN`.
pub fn minion_id(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index:05}")
}

/// The fixed grains of swarm minion `index` in process `proc_index`.
pub fn grains(id: &str, index: usize, proc_index: usize) -> Value {
    let int = |v: usize| Value::from(u64::try_from(v).unwrap_or(u64::MAX));
    map([
        ("id", string(id)),
        ("host", string(id)),
        ("nodename", string(id)),
        ("fqdn", string(id)),
        ("kernel", string("Linux")),
        ("os", string("Swarm")),
        ("os_family", string("Swarm")),
        ("saltversion", string(salt_core::SALT_VERSION)),
        ("swarm_group", int(index % 10)),
        ("swarm_index", int(index)),
        ("swarm_proc", int(proc_index)),
    ])
}

/// The Unix time (seconds) a Salt jid was made: `YYYYmmddHHMMSSffffff`, read as UTC (Salt
/// writes local time; the swarm and the master share a clock and a time zone in a benchmark).
pub fn jid_time(jid: &str) -> Option<f64> {
    let d = jid.as_bytes();
    if d.len() < 20 || !d[..20].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |a: usize, b: usize| jid[a..b].parse::<i64>().ok();
    let (y, mo, da) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (h, mi, s, us) = (num(8, 10)?, num(10, 12)?, num(12, 14)?, num(14, 20)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // H. Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    Some(secs as f64 + us as f64 / 1e6)
}

/// Now as Unix seconds.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jid_times() {
        // datetime(2026,12,5,5,37,50,123456, tzinfo=utc).timestamp()
        let t = jid_time("20261205053750123456").unwrap_or(0.0);
        assert!((t - 1_796_449_070.123_456).abs() < 1e-6, "{t}");
        assert_eq!(jid_time("19700101000000000000"), Some(0.0));
        // 2000-02-29 (a leap day) 12:00:00
        assert_eq!(jid_time("20000229120000000000"), Some(951_825_600.0));
        for bad in ["", "2026120505375012345", "2026130505375012345x", "20261305053750123456", "abcd"] {
            assert_eq!(jid_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_and_grains() {
        assert_eq!(minion_id("swarm", 7), "swarm-00007");
        let g = grains("swarm-00017", 17, 2);
        assert_eq!(salt_core::value::get(&g, "swarm_group"), Some(&Value::from(7u64)));
        assert_eq!(salt_core::value::get_str(&g, "id"), Some("swarm-00017"));
    }
}
