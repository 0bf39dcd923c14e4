//! Job ids (`salt/utils/jid.py:gen_jid`): `%Y%m%d%H%M%S%f` of now (UTC; the stock tools use
//! local time, UTC on the hosts we target — `utc_jid` makes it explicit in Salt).

/// `gen_jid`.
pub fn gen_jid() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    salt_proto::util::jid_from_unix_micros(micros)
}
