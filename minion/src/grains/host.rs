//! Host names: `fqdn`/`host`/`domain` grains and the default minion id.
//!
//! Mirrors `utils/network.py:get_fqhostname` (Python `socket.getfqdn()`, then the canonical name
//! from `getaddrinfo(gethostname(), AI_CANONNAME)`) and `utils/network.py:generate_minion_id`.
//! Without a C resolver we read the canonical name from `/etc/hosts` (glibc's `files` source gives
//! the first name of the first matching line); a name only DNS knows stays the bare host name.
//! Address lookups (`fqdn_ip4`/`fqdn_ip6`) go through std's resolver (`getaddrinfo`).

use std::net::{IpAddr, ToSocketAddrs};

use super::net::{ip_addrs, Interface};

/// `socket.gethostname()` (the uname node name).
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// One `/etc/hosts` line: an address and its names (canonical first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    /// The address column.
    pub addr: String,
    /// Canonical name, then aliases.
    pub names: Vec<String>,
}

/// Parse `/etc/hosts`-format text.
pub fn parse_hosts(text: &str) -> Vec<HostsEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut cols = line.split_whitespace();
            let addr = cols.next()?.to_string();
            let names: Vec<String> = cols.map(str::to_string).collect();
            (!names.is_empty()).then_some(HostsEntry { addr, names })
        })
        .collect()
}

fn read_hosts() -> Vec<HostsEntry> {
    std::fs::read_to_string("/etc/hosts").map(|t| parse_hosts(&t)).unwrap_or_default()
}

/// The canonical name of `name` according to the hosts file (glibc `AI_CANONNAME` from `files`).
pub fn canonical_name(hosts: &[HostsEntry], name: &str) -> Option<String> {
    hosts.iter().find(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name))).and_then(|e| e.names.first().cloned())
}

/// Python `socket.getfqdn(name)`: `gethostbyaddr(name)` then the first of its names with a dot.
pub fn getfqdn(hosts: &[HostsEntry], name: &str) -> String {
    let name = name.trim();
    let name = if name.is_empty() || name == "0.0.0.0" || name == "::" { hostname() } else { name.to_string() };
    // gethostbyaddr(name): resolve name to its first address, then reverse it.
    let addr = if name.parse::<IpAddr>().is_ok() {
        Some(name.clone())
    } else {
        hosts.iter().find(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(&name))).map(|e| e.addr.clone())
    };
    let Some(addr) = addr else { return name };
    let Some(entry) = hosts.iter().find(|e| e.addr == addr) else {
        return name;
    };
    entry.names.iter().find(|n| n.contains('.')).or(entry.names.first()).cloned().unwrap_or(name)
}

/// `salt.utils.network.get_fqhostname()`.
pub fn fqdn() -> String {
    let hosts = read_hosts();
    let host = hostname();
    canonical_name(&hosts, &host).unwrap_or_else(|| getfqdn(&hosts, ""))
}

/// Addresses of `name` from the system resolver, split by family, de-duplicated in order.
pub fn resolve(name: &str) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    if let Ok(addrs) = (name, 0u16).to_socket_addrs() {
        for a in addrs {
            let ip = a.ip();
            let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
    }
    (v4, v6)
}

fn is_localhost_name(name: &str) -> bool {
    use std::sync::OnceLock;
    static RX: OnceLock<Option<regex::Regex>> = OnceLock::new();
    // utils/network.py DistinctList.localhost_matchers, applied with re.match (anchored at start).
    let rx = RX.get_or_init(|| {
        regex::Regex::new(
            r"^(?:localhost.*|ip6-.*|127[.]\d|0\.0\.0\.0|::1.*|ipv6-.*|fe00::.*|fe02::.*|1.0.0.*.ip6.arpa)",
        )
        .ok()
    });
    rx.as_ref().is_some_and(|r| r.is_match(name))
}

/// `salt.utils.network.generate_minion_id()`: the first usable name of this host.
pub fn generate_minion_id(ifaces: &[Interface]) -> String {
    let hosts = read_hosts();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    candidate_ids(
        &hosts,
        &hostname(),
        &[read("/etc/hostname"), read("/etc/nodename"), read("/etc/hosts")],
        &ip_addrs(ifaces, false, false),
    )
    .into_iter()
    .next()
    .unwrap_or_else(|| "localhost".into())
}

/// The ordered candidate list of `_generate_minion_id` (exposed for tests).
pub fn candidate_ids(hosts: &[HostsEntry], host: &str, files: &[String], addrs: &[IpAddr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !n.is_empty() && !out.iter().any(|x| x == n) && !is_localhost_name(n) {
            out.push(n.to_string());
        }
    };
    add(&getfqdn(hosts, host));
    add(host); // platform.node()
    add(host); // socket.gethostname()
    for text in files {
        for line in text.lines() {
            let line = line.trim();
            let line = line.split('#').next().unwrap_or("").trim();
            let cols: Vec<&str> = line.split_whitespace().collect();
            if let Some(first) = cols.first() {
                let prefix: String = first.chars().take(4).collect();
                if prefix.starts_with("127.") || prefix.starts_with("::1") || cols.len() == 1 {
                    for c in &cols {
                        add(c);
                    }
                }
            }
        }
    }
    for a in addrs {
        add(&a.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str =
        "127.0.0.1 localhost\n127.0.0.1 runsc\n127.0.0.1 vm\n10.0.0.5 web1.example.com web1 # comment\n";

    #[test]
    fn getfqdn_like_python() {
        let h = parse_hosts(HOSTS);
        // gethostbyaddr("vm") -> 127.0.0.1 -> first line "localhost".
        assert_eq!(getfqdn(&h, "vm"), "localhost");
        assert_eq!(getfqdn(&h, "web1"), "web1.example.com");
        assert_eq!(getfqdn(&h, "unknown"), "unknown");
        assert_eq!(canonical_name(&h, "web1").as_deref(), Some("web1.example.com"));
        assert_eq!(canonical_name(&h, "vm").as_deref(), Some("vm"));
    }

    #[test]
    fn minion_id_candidates_skip_localhost() {
        let h = parse_hosts(HOSTS);
        let ids = candidate_ids(&h, "vm", &["vm\n".into(), String::new(), HOSTS.into()], &[]);
        assert_eq!(ids.first().map(String::as_str), Some("vm"));
        assert!(ids.contains(&"runsc".to_string()));
        assert!(!ids.iter().any(|i| i.starts_with("localhost")));
        let ids = candidate_ids(&h, "localhost", &[], &["192.0.2.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))]);
        assert_eq!(ids, vec!["192.0.2.7".to_string()]);
    }
}
