//! Network interfaces, as Salt's `utils/network.py:linux_interfaces` sees them.
//!
//! Salt runs `ip link show` + `ip addr show` and parses the text (`_interfaces_ip`). `ip` itself
//! asks the kernel over rtnetlink, so we do the same directly: an `RTM_GETLINK` dump (names, flags,
//! link-layer address, in ifindex order) and an `RTM_GETADDR` dump (addresses; `IFA_LOCAL` before
//! `IFA_ADDRESS` as `ip` prints them; `IFA_F_SECONDARY` ones go to `secondary` as in Salt).
//! Without netlink (a sandbox may forbid it) we fall back to `/sys/class/net` and
//! `/proc/net/if_inet6`, which give no IPv4 addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// One address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// The address itself.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefixlen: u8,
    /// `IFA_F_SECONDARY` (Salt lists these under `secondary`).
    pub secondary: bool,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    /// Kernel interface index.
    pub index: u32,
    /// Name (`eth0`; no `@parent` suffix).
    pub name: String,
    /// `IFF_UP`.
    pub up: bool,
    /// Link-layer address as `ip` prints it, when the link has one.
    pub hwaddr: Option<String>,
    /// Addresses in kernel order.
    pub addrs: Vec<IfAddr>,
}

impl Interface {
    /// IPv4 addresses as `ip4_interfaces` lists them (primary, then secondary).
    pub fn ipv4(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> =
            self.addrs.iter().filter(|a| a.addr.is_ipv4() && !a.secondary).map(|a| a.addr).collect();
        out.extend(self.addrs.iter().filter(|a| a.addr.is_ipv4() && a.secondary).map(|a| a.addr));
        out
    }

    /// IPv6 addresses as `ip6_interfaces` lists them.
    pub fn ipv6(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> =
            self.addrs.iter().filter(|a| a.addr.is_ipv6() && !a.secondary).map(|a| a.addr).collect();
        out.extend(self.addrs.iter().filter(|a| a.addr.is_ipv6() && a.secondary).map(|a| a.addr));
        out
    }

    /// All addresses as `ip_interfaces` lists them (inet, inet6, then secondaries).
    pub fn all(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> =
            self.addrs.iter().filter(|a| a.addr.is_ipv4() && !a.secondary).map(|a| a.addr).collect();
        out.extend(self.addrs.iter().filter(|a| a.addr.is_ipv6() && !a.secondary).map(|a| a.addr));
        out.extend(self.addrs.iter().filter(|a| a.secondary).map(|a| a.addr));
        out
    }
}

/// The host's interfaces (netlink, else sysfs/procfs).
pub fn interfaces() -> Vec<Interface> {
    match netlink_interfaces() {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!("rtnetlink unavailable ({e}); reading /sys/class/net");
            sysfs_interfaces()
        }
    }
}

/// `salt.utils.network.ip_addrs`/`ip_addrs6`: sorted, de-duplicated addresses of one family.
pub fn ip_addrs(ifaces: &[Interface], v6: bool, include_loopback: bool) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = ifaces
        .iter()
        .flat_map(|i| i.addrs.iter())
        .map(|a| a.addr)
        .filter(|a| a.is_ipv6() == v6)
        .filter(|a| include_loopback || !a.is_loopback())
        .collect();
    out.sort();
    out.dedup();
    out
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_SECONDARY: u32 = 1;
const IFF_UP: u32 = 1;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Iterate `(type, payload)` of the rtattrs in `b`.
fn rtattrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 4 <= b.len() {
        let (Some(len), Some(ty)) = (u16_at(b, off), u16_at(b, off + 2)) else {
            break;
        };
        let len = len as usize;
        if len < 4 || off + len > b.len() {
            break;
        }
        out.push((ty & 0x3fff, &b[off + 4..off + len]));
        off += (len + 3) & !3;
    }
    out
}

/// Send one dump request and collect the payloads (after the nlmsghdr) of messages of `want`.
fn dump(fd: &rustix::fd::OwnedFd, req_type: u16, body: &[u8], want: u16, seq: u32) -> std::io::Result<Vec<Vec<u8>>> {
    use rustix::net::{recv, sendto, RecvFlags, SendFlags};
    let len = 16 + body.len();
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&req_type.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(body);
    sendto(fd, &req, SendFlags::empty(), &rustix::net::netlink::SocketAddrNetlink::new(0, 0))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = recv(fd, &mut buf[..], RecvFlags::empty())?;
        if n == 0 {
            return Ok(out);
        }
        let data = &buf[..n.min(buf.len())];
        let mut off = 0;
        while off + 16 <= data.len() {
            let (Some(mlen), Some(mtype), Some(mseq)) =
                (u32_at(data, off), u16_at(data, off + 4), u32_at(data, off + 8))
            else {
                break;
            };
            let mlen = mlen as usize;
            if mlen < 16 || off + mlen > data.len() {
                break;
            }
            if mseq == seq {
                match mtype {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let errno = u32_at(data, off + 16).map(|e| e as i32).unwrap_or(-1);
                        if errno != 0 {
                            return Err(std::io::Error::from_raw_os_error(-errno));
                        }
                    }
                    t if t == want => out.push(data[off + 16..off + mlen].to_vec()),
                    _ => {}
                }
            }
            off += (mlen + 3) & !3;
        }
    }
}

fn format_hwaddr(b: &[u8]) -> String {
    if b.len() == 4 {
        return Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string();
    }
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn netlink_interfaces() -> std::io::Result<Vec<Interface>> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    // Protocol `None` is 0, i.e. NETLINK_ROUTE.
    let fd = socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Recv, Some(Duration::from_secs(2)))?;
    let mut ifaces: Vec<Interface> = Vec::new();
    for msg in dump(&fd, RTM_GETLINK, &[0u8; 16], RTM_NEWLINK, 1)? {
        let (Some(index), Some(flags)) = (u32_at(&msg, 4), u32_at(&msg, 8)) else {
            continue;
        };
        let mut iface = Interface { index, up: flags & IFF_UP != 0, ..Default::default() };
        for (ty, payload) in rtattrs(msg.get(16..).unwrap_or(&[])) {
            match ty {
                IFLA_IFNAME => {
                    let name = payload.split(|b| *b == 0).next().unwrap_or(&[]);
                    iface.name = String::from_utf8_lossy(name).into_owned();
                }
                IFLA_ADDRESS if !payload.is_empty() => iface.hwaddr = Some(format_hwaddr(payload)),
                _ => {}
            }
        }
        ifaces.push(iface);
    }
    for msg in dump(&fd, RTM_GETADDR, &[0u8; 8], RTM_NEWADDR, 2)? {
        let (Some(&family), Some(&prefixlen), Some(&flags8), Some(index)) =
            (msg.first(), msg.get(1), msg.get(2), u32_at(&msg, 4))
        else {
            continue;
        };
        let mut flags = u32::from(flags8);
        let mut local = None;
        let mut address = None;
        for (ty, payload) in rtattrs(msg.get(8..).unwrap_or(&[])) {
            let ip = match (family, payload.len()) {
                (2, 4) => Some(IpAddr::V4(Ipv4Addr::new(payload[0], payload[1], payload[2], payload[3]))),
                (10, 16) => <[u8; 16]>::try_from(payload).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a))),
                _ => None,
            };
            match ty {
                IFA_LOCAL => local = ip,
                IFA_ADDRESS => address = ip,
                IFA_FLAGS => flags = u32_at(payload, 0).unwrap_or(flags),
                _ => {}
            }
        }
        let Some(addr) = local.or(address) else {
            continue;
        };
        if let Some(iface) = ifaces.iter_mut().find(|i| i.index == index) {
            iface.addrs.push(IfAddr { addr, prefixlen, secondary: flags & IFA_F_SECONDARY != 0 });
        }
    }
    Ok(ifaces)
}

fn sysfs_interfaces() -> Vec<Interface> {
    let mut ifaces: Vec<Interface> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let base = entry.path();
            let read = |f: &str| std::fs::read_to_string(base.join(f)).ok();
            let index = read("ifindex").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            let flags = read("flags")
                .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            let hwaddr = read("address").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
            ifaces.push(Interface { index, name, up: flags & IFF_UP != 0, hwaddr, addrs: Vec::new() });
        }
    }
    ifaces.sort_by_key(|i| i.index);
    // /proc/net/if_inet6: "addr(32 hex) ifindex prefixlen scope flags name"
    if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 6 || cols[0].len() != 32 {
                continue;
            }
            let Ok(bits) = u128::from_str_radix(cols[0], 16) else {
                continue;
            };
            let prefixlen = u8::from_str_radix(cols[2], 16).unwrap_or(128);
            let flags = u32::from_str_radix(cols[4], 16).unwrap_or(0);
            if let Some(iface) = ifaces.iter_mut().find(|i| i.name == cols[5]) {
                iface.addrs.push(IfAddr {
                    addr: IpAddr::V6(Ipv6Addr::from(bits)),
                    prefixlen,
                    secondary: flags & IFA_F_SECONDARY != 0,
                });
            }
        }
    }
    ifaces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed() {
        let ifaces = interfaces();
        // Every Linux host (and network namespace) has `lo`.
        let lo = ifaces.iter().find(|i| i.name == "lo");
        assert!(lo.is_some(), "{ifaces:?}");
    }

    #[test]
    fn rtattr_parsing_is_bounded() {
        assert!(rtattrs(&[0xff, 0xff, 1, 0]).is_empty());
        assert!(rtattrs(&[2, 0]).is_empty());
        let attrs = rtattrs(&[8, 0, 3, 0, b'l', b'o', 0, 0]);
        assert_eq!(attrs, vec![(3u16, &b"lo\0\0"[..])]);
    }
}
