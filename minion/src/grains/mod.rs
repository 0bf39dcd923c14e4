//! Core grains of a Linux host, computed in pure Rust from `/proc`, `/sys`, `/etc` and `uname`.
//!
//! Key names and value shapes follow Salt's `grains/core.py` (`os_data`, `_linux_cpudata`,
//! `_linux_memdata`, `_virtual`, `_linux_init_system`, `hostname`, `ip_fqdn`, `ip_interfaces`,
//! `ip4_interfaces`, `ip6_interfaces`, `hwaddr_interfaces`, `dns`, `get_machine_id`, `path`,
//! `saltversion`, `saltversioninfo`, `get_server_id`, `get_master`, `default_gateway`,
//! `kernelparams`), `grains/extra.py` (`shell`, `config`, `uefi`) and
//! `grains/minion_process.py` (`uid`, `gid`, `username`, `groupname`, `pid`).
//!
//! [`collect`] merges like `salt/loader/__init__.py:grains`: core grains, then the
//! `<confdir>/grains` file, then the `grains` option of the minion config (a shallow update).
//!
//! Not produced (Python-only or needing external programs): `pythonversion`, `pythonpath`,
//! `pythonexecutable`, `saltpath`, `zmqversion`, `ca_truststore`, `locale_info`, `systemd`,
//! `selinux`, `disks`, `ssds`, `fqdns`, `package`, `transactional`, `ps`, the `_hw_data` grains
//! (`biosversion`, `productname`, … read by Salt only on some platforms) and GPU detection
//! (`gpus` is `[]`, `num_gpus` 0, as Salt reports without `lspci`). `virtual` is best effort.

pub mod host;
pub mod net;
pub mod os;

use std::collections::BTreeMap;
use std::path::Path;

use salt_core::value::{str_list, string, Value};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Inputs of [`core_grains`] that come from the minion's configuration.
#[derive(Debug, Clone)]
pub struct GrainsInput {
    /// The minion id (`id` grain, `server_id`).
    pub id: String,
    /// The `master` option as configured (string or list).
    pub master: Value,
}

/// `_linux_cpudata()`: `num_cpus`, `cpu_model`, `cpu_flags` from `/proc/cpuinfo` text.
pub fn cpudata(cpuinfo: &str) -> (i64, String, Vec<String>) {
    let mut num = 0i64;
    let mut model: Option<String> = None;
    let mut flags: Vec<String> = Vec::new();
    for line in cpuinfo.lines() {
        let comps: Vec<&str> = line.split(':').collect();
        if comps.len() <= 1 {
            continue;
        }
        let key = comps[0].trim();
        let val = comps[1].trim();
        match key {
            "processor" => num += 1,
            "# processors" => num = val.parse().unwrap_or(num),
            "vendor_id" | "model name" | "cpu" => model = Some(val.to_string()),
            "flags" | "Features" => flags = val.split_whitespace().map(str::to_string).collect(),
            "Processor" => {
                model = Some(val.split('-').next().unwrap_or("").to_string());
                num = 1;
            }
            _ => {}
        }
    }
    (num, model.unwrap_or_else(|| "Unknown".into()), flags)
}

/// `_linux_memdata()`: `(mem_total, swap_total)` in MiB from `/proc/meminfo` text.
pub fn memdata(meminfo: &str) -> (i64, i64) {
    let mut mem = 0;
    let mut swap = 0;
    for line in meminfo.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let kib: i64 = v.split_whitespace().next().and_then(|x| x.parse().ok()).unwrap_or(0);
        match k.trim() {
            "MemTotal" => mem = kib / 1024,
            "SwapTotal" => swap = kib / 1024,
            _ => {}
        }
    }
    (mem, swap)
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// `_linux_init_system()`.
pub fn init_system() -> String {
    if std::fs::metadata("/run/systemd/system").is_ok() {
        return "systemd".into();
    }
    let Ok(raw) = std::fs::read("/proc/1/cmdline") else {
        return "unknown".into();
    };
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    let cmdline: Vec<&str> = text.split_whitespace().collect();
    let Some(first) = cmdline.first() else {
        return "unknown".into();
    };
    let init_bin =
        if first.contains('/') { Some(std::path::PathBuf::from(first)).filter(|p| p.is_file()) } else { which(first) };
    if let Some(bin) = init_bin.as_ref().filter(|b| b.to_string_lossy().ends_with("bin/init")) {
        if let Ok(data) = std::fs::read(bin) {
            let lower = data.to_ascii_lowercase();
            for item in [&b"upstart"[..], b"sysvinit", b"systemd"] {
                if lower.windows(item.len()).any(|w| w == item) {
                    return String::from_utf8_lossy(item).into_owned();
                }
            }
        }
        return "unknown".into();
    }
    let in_cmdline = |name: &str| which(name).is_some_and(|p| cmdline.iter().any(|c| Path::new(c) == p.as_path()));
    if in_cmdline("supervisord") {
        "supervisord".into()
    } else if in_cmdline("dumb-init") {
        "dumb-init".into()
    } else if in_cmdline("tini") {
        "tini".into()
    } else if cmdline == ["runit"] || cmdline.contains(&"/sbin/my_init") {
        "runit".into()
    } else {
        "unknown".into()
    }
}

/// Best-effort `virtual`/`virtual_subtype` (`_virtual`): the container checks
/// `systemd-detect-virt` and Salt's file checks make, then DMI/cpuinfo for hypervisors.
pub fn virtual_grains() -> (String, Option<String>) {
    let mut virt = "physical".to_string();
    let mut sub: Option<String> = None;
    // What systemd-detect-virt reports first: containers.
    let env1 = std::fs::read("/proc/1/environ").map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let container_env = env1
        .split('\0')
        .find_map(|kv| kv.strip_prefix("container="))
        .map(str::to_string)
        .or_else(|| read("/run/systemd/container").map(|s| s.trim().to_string()));
    let detected: Option<&str> = if std::path::Path::new("/.dockerenv").exists() {
        Some("docker")
    } else if std::path::Path::new("/run/.containerenv").exists() {
        Some("podman")
    } else {
        match container_env.as_deref() {
            Some("lxc") | Some("lxc-libvirt") => Some("lxc"),
            Some("docker") => Some("docker"),
            Some("podman") => Some("podman"),
            Some("systemd-nspawn") => Some("systemd-nspawn"),
            _ => None,
        }
    };
    let mut found = true;
    match detected {
        Some("docker") => {
            virt = "container".into();
            sub = Some("Docker".into());
        }
        Some("podman") => {
            virt = "container".into();
            sub = Some("Podman".into());
        }
        Some("lxc") => {
            virt = "container".into();
            sub = Some("LXC".into());
        }
        Some("systemd-nspawn") => virt = "systemd-nspawn".into(),
        _ => found = false,
    }
    if !found {
        // Hypervisors, from DMI as systemd-detect-virt / dmidecode would see them.
        let vendor = read("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
        let product = read("/sys/class/dmi/id/product_name").unwrap_or_default();
        let bios = read("/sys/class/dmi/id/bios_vendor").unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        if vendor.contains("QEMU") || bios.contains("SeaBIOS") || vendor.contains("Bochs") {
            virt = "kvm".into();
        } else if vendor.contains("VMware") || product.contains("VMware") {
            virt = "VMware".into();
        } else if product.contains("VirtualBox") {
            virt = "VirtualBox".into();
        } else if vendor.contains("Microsoft") && product.contains("Virtual Machine") {
            virt = "VirtualPC".into();
        } else if vendor.contains("Parallels") {
            virt = "Parallels".into();
        } else if vendor.contains("Google") {
            virt = "kvm".into();
        } else if vendor.contains("Amazon EC2") {
            virt = "Nitro".into();
            sub = Some("Amazon EC2".into());
        } else if cpuinfo.contains("QEMU Virtual CPU")
            || cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"))
        {
            // A CPU with the hypervisor flag and no DMI hint: most likely KVM (best effort).
            virt = "kvm".into();
        }
        if product.contains("BHYVE") {
            virt = "bhyve".into();
        }
    }
    // Salt's own file checks (Linux branch of _virtual).
    if let Ok(cg) = std::fs::read_to_string("/proc/1/cgroup") {
        if cg.contains(":/lxc/") {
            virt = "container".into();
            sub = Some("LXC".into());
        } else if cg.contains(":/kubepods/") {
            sub = Some("kubernetes".into());
        } else if cg.contains(":/libpod_parent/") {
            sub = Some("libpod".into());
        } else if [":/system.slice/docker", ":/docker/", ":/docker-ce/"].iter().any(|x| cg.contains(x)) {
            virt = "container".into();
            sub = Some("Docker".into());
        }
    }
    if sub.as_deref() != Some("LXC") && env1.contains("container=lxc") {
        virt = "container".into();
        sub = Some("LXC".into());
    }
    if sub.is_some() && virt == "physical" {
        virt = "virtual".into();
    }
    (virt, sub)
}

/// `kernelparams`: `/proc/cmdline` split like `shlex.split`, each `[key, value-or-None]`.
pub fn kernelparams(cmdline: &str) -> Value {
    let words = salt_core::args::shlex_split(cmdline).unwrap_or_default();
    Value::Array(
        words
            .iter()
            .map(|w| {
                let parts: Vec<&str> = w.split('=').collect();
                let val = if parts.len() == 2 { string(parts[1].trim_matches('"')) } else { Value::Nil };
                Value::Array(vec![string(parts[0]), val])
            })
            .collect(),
    )
}

/// `dns` grain: `salt.utils.dns.parse_resolv` of resolv.conf text.
pub fn parse_resolv(text: &str) -> Value {
    let mut ns: Vec<String> = Vec::new();
    let mut ns4: Vec<String> = Vec::new();
    let mut ns6: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut sortlist: Vec<String> = Vec::new();
    let mut domain = String::new();
    let mut options: Vec<String> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(directive) = words.first() else {
            continue;
        };
        let args: Vec<&str> =
            words[1..].iter().take_while(|w| !w.starts_with('#') && !w.starts_with(';')).copied().collect();
        match directive.to_lowercase().as_str() {
            "nameserver" => {
                if let Some(ip) = args.first().and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
                    let t = ip.to_string();
                    if !ns.contains(&t) {
                        ns.push(t.clone());
                    }
                    let fam = if ip.is_ipv4() { &mut ns4 } else { &mut ns6 };
                    if !fam.contains(&t) {
                        fam.push(t);
                    }
                }
            }
            "domain" => {
                if let Some(d) = args.first() {
                    domain = d.to_string();
                }
            }
            "search" => search = args.iter().map(|a| a.to_string()).collect(),
            "sortlist" => {
                for a in args {
                    if a.contains('/') && !sortlist.contains(&a.to_string()) {
                        sortlist.push(a.to_string());
                    }
                }
            }
            "options" => {
                if let Some(o) = args.first() {
                    if !options.iter().any(|x| x == o) {
                        options.push(o.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    salt_core::value::map([
        ("nameservers", str_list(ns)),
        ("ip4_nameservers", str_list(ns4)),
        ("ip6_nameservers", str_list(ns6)),
        ("sortlist", str_list(sortlist)),
        ("domain", string(domain)),
        ("search", str_list(search)),
        ("options", str_list(options)),
    ])
}

/// `default_gateway()`: `(ip4_gw, ip6_gw)`, each the gateway address, `True` (a default route
/// without a gateway) or `False`, from `/proc/net/route` and `/proc/net/ipv6_route`.
pub fn default_gateways(route: &str, ipv6_route: &str) -> (Value, Value) {
    let mut gw4 = Value::Boolean(false);
    for line in route.lines().skip(1) {
        let c: Vec<&str> = line.split_whitespace().collect();
        if c.len() < 8 || c[1] != "00000000" || c[7] != "00000000" {
            continue;
        }
        let flags = u32::from_str_radix(c[3], 16).unwrap_or(0);
        if flags & 0x0200 != 0 {
            continue; // RTF_REJECT
        }
        gw4 = match u32::from_str_radix(c[2], 16) {
            Ok(g) if g != 0 && flags & 0x2 != 0 => string(std::net::Ipv4Addr::from(u32::from_be(g)).to_string()),
            _ => Value::Boolean(true),
        };
        break;
    }
    let mut gw6 = Value::Boolean(false);
    for line in ipv6_route.lines() {
        let c: Vec<&str> = line.split_whitespace().collect();
        if c.len() < 10 || c[0] != "00000000000000000000000000000000" || c[1] != "00" {
            continue;
        }
        let flags = u32::from_str_radix(c[8], 16).unwrap_or(0);
        if flags & 0x0200 != 0 || c[9] == "lo" {
            continue;
        }
        gw6 = match u128::from_str_radix(c[4], 16) {
            Ok(g) if g != 0 && flags & 0x2 != 0 => string(std::net::Ipv6Addr::from(g).to_string()),
            _ => Value::Boolean(true),
        };
        break;
    }
    (gw4, gw6)
}

/// A `/etc/passwd`-style lookup: `(name, uid, gid)` of the entry matching `uid`.
fn passwd_by_uid(uid: u32) -> Option<(String, u32, u32)> {
    let text = read("/etc/passwd")?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[2].parse::<u32>().ok()? == uid {
            Some((f[0].to_string(), uid, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

fn group_name(gid: u32) -> Option<String> {
    let text = read("/etc/group")?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse::<u32>().ok()? == gid).then(|| f[0].to_string())
    })
}

/// `salt.utils.user.get_user()`: the name of the effective user (the uid as text if unnamed).
pub fn current_user() -> String {
    let uid = rustix::process::geteuid().as_raw();
    passwd_by_uid(uid).map_or_else(|| uid.to_string(), |p| p.0)
}

/// `get_server_id`: `abs(int(sha256(id).hexdigest(), 16) % 2**31)`.
pub fn server_id(id: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    // The value mod 2^31 only depends on the last 4 bytes (big-endian) of the digest.
    let tail = u32::from_be_bytes([digest[28], digest[29], digest[30], digest[31]]);
    i64::from(tail & 0x7fff_ffff)
}

/// All core grains of this host, keyed and shaped like Salt's (a sorted map).
pub fn core_grains(input: &GrainsInput) -> Value {
    let mut g: BTreeMap<String, Value> = BTreeMap::new();
    let uts = rustix::system::uname();
    let kernel = uts.sysname().to_string_lossy().into_owned();
    let cpuarch = uts.machine().to_string_lossy().into_owned();
    g.insert("kernel".into(), string(&kernel));
    g.insert("nodename".into(), string(uts.nodename().to_string_lossy()));
    g.insert("kernelrelease".into(), string(uts.release().to_string_lossy()));
    g.insert("kernelversion".into(), string(uts.version().to_string_lossy()));
    g.insert("cpuarch".into(), string(&cpuarch));
    g.insert("num_gpus".into(), Value::from(0));
    g.insert("gpus".into(), Value::Array(Vec::new()));
    g.insert("init".into(), string(init_system()));

    let os_release = read("/etc/os-release").or_else(|| read("/usr/lib/os-release")).map(|t| os::parse_os_release(&t));
    let lsb = read("/etc/lsb-release");
    g.extend(os::os_grains(os_release.as_ref(), lsb.as_deref(), &cpuarch));

    let (num_cpus, cpu_model, cpu_flags) = cpudata(&read("/proc/cpuinfo").unwrap_or_default());
    g.insert("num_cpus".into(), Value::from(num_cpus));
    g.insert("cpu_model".into(), string(cpu_model));
    g.insert("cpu_flags".into(), str_list(cpu_flags));
    let (mem, swap) = memdata(&read("/proc/meminfo").unwrap_or_default());
    g.insert("mem_total".into(), Value::from(mem));
    g.insert("swap_total".into(), Value::from(swap));
    let (virt, sub) = virtual_grains();
    g.insert("virtual".into(), string(virt));
    if let Some(sub) = sub {
        g.insert("virtual_subtype".into(), string(sub));
    }

    // hostname()
    let fqdn = host::fqdn();
    let (h, d) = fqdn.split_once('.').unwrap_or((fqdn.as_str(), ""));
    g.insert("localhost".into(), string(host::hostname()));
    g.insert("host".into(), string(h));
    g.insert("domain".into(), string(d));
    g.insert("fqdn".into(), string(&fqdn));

    // ip_fqdn(), ip*_interfaces(), hwaddr_interfaces()
    let ifaces = net::interfaces();
    let v4 = net::ip_addrs(&ifaces, false, true);
    let v6 = net::ip_addrs(&ifaces, true, true);
    let (r4, r6) = if v4.is_empty() && v6.is_empty() { (Vec::new(), Vec::new()) } else { host::resolve(&fqdn) };
    let ips = |v: &[std::net::IpAddr]| str_list(v.iter().map(|a| a.to_string()));
    g.insert("fqdn_ip4".into(), if v4.is_empty() { ips(&[]) } else { ips(&r4) });
    g.insert("fqdn_ip6".into(), if v6.is_empty() { ips(&[]) } else { ips(&r6) });
    g.insert("ipv4".into(), ips(&v4));
    g.insert("ipv6".into(), ips(&v6));
    let per_iface = |f: &dyn Fn(&net::Interface) -> Vec<std::net::IpAddr>| {
        Value::Map(ifaces.iter().map(|i| (string(&i.name), ips(&f(i)))).collect())
    };
    g.insert("ip4_interfaces".into(), per_iface(&|i| i.ipv4()));
    g.insert("ip6_interfaces".into(), per_iface(&|i| i.ipv6()));
    g.insert("ip_interfaces".into(), per_iface(&|i| i.all()));
    g.insert(
        "hwaddr_interfaces".into(),
        Value::Map(ifaces.iter().filter_map(|i| i.hwaddr.as_ref().map(|h| (string(&i.name), string(h)))).collect()),
    );
    let (gw4, gw6) = default_gateways(
        &read("/proc/net/route").unwrap_or_default(),
        &read("/proc/net/ipv6_route").unwrap_or_default(),
    );
    let any_gw = salt_core::value::truthy(&gw4) || salt_core::value::truthy(&gw6);
    g.insert("ip4_gw".into(), gw4);
    g.insert("ip6_gw".into(), gw6);
    g.insert("ip_gw".into(), Value::Boolean(any_gw));

    let resolv = if Path::new("/run/systemd/resolve/resolv.conf").exists() {
        read("/run/systemd/resolve/resolv.conf")
    } else {
        read("/etc/resolv.conf")
    };
    if let Some(text) = resolv {
        g.insert("dns".into(), parse_resolv(&text));
    }
    if let Some(id) = read("/etc/machine-id").or_else(|| read("/var/lib/dbus/machine-id")) {
        g.insert("machine_id".into(), string(id.trim()));
    }
    if let Some(cmdline) = read("/proc/cmdline") {
        g.insert("kernelparams".into(), kernelparams(&cmdline));
    }
    let efivars = ["/sys/firmware/efi/efivars", "/sys/firmware/efi/vars"].into_iter().find(|p| Path::new(p).exists());
    g.insert("efi".into(), Value::Boolean(efivars.is_some()));
    let secure = efivars.is_some_and(|dir| {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        let hits: Vec<_> =
            rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("SecureBoot-")).collect();
        hits.len() == 1 && {
            let p = if dir.ends_with("efivars") { hits[0].path() } else { hits[0].path().join("data") };
            std::fs::read(p).ok().and_then(|b| b.last().copied()) == Some(1)
        }
    });
    g.insert("efi-secure-boot".into(), Value::Boolean(secure));

    // extra.shell(), path(), cwd()
    g.insert("shell".into(), string(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())));
    let path = std::env::var("PATH").unwrap_or_default().trim().to_string();
    g.insert("systempath".into(), str_list(path.split(':')));
    g.insert("path".into(), string(path));
    if let Ok(cwd) = std::env::current_dir() {
        g.insert("cwd".into(), string(cwd.to_string_lossy()));
    }

    g.insert("saltversion".into(), string(salt_core::SALT_VERSION));
    g.insert(
        "saltversioninfo".into(),
        Value::Array(salt_core::SALT_VERSION_INFO.iter().map(|v| Value::from(*v)).collect()),
    );
    g.insert("id".into(), string(&input.id));
    g.insert("server_id".into(), Value::from(server_id(&input.id)));
    g.insert("master".into(), input.master.clone());

    // minion_process.grains()
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let pw = passwd_by_uid(euid);
    let username = pw.as_ref().map_or_else(|| euid.to_string(), |p| p.0.clone());
    let groupname = pw.as_ref().and_then(|p| group_name(p.2)).unwrap_or_default();
    g.insert("username".into(), string(username));
    g.insert("groupname".into(), string(groupname));
    g.insert("pid".into(), Value::from(std::process::id()));
    g.insert("uid".into(), Value::from(euid));
    g.insert("gid".into(), Value::from(egid));

    Value::Map(g.into_iter().map(|(k, v)| (string(k), v)).collect())
}

/// Read `<confdir>/grains` (`grains/extra.py:config`): a YAML mapping, `{}` when absent or bad.
pub fn grains_file(conf_dir: &Path) -> Value {
    let path = conf_dir.join("grains");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Value::Map(Vec::new());
    };
    match salt_core::yaml::safe_load(&text) {
        Ok(v @ Value::Map(_)) => v,
        Ok(Value::Nil) => Value::Map(Vec::new()),
        Ok(_) | Err(_) => {
            tracing::warn!("Bad syntax in grains file {}! Skipping.", path.display());
            Value::Map(Vec::new())
        }
    }
}

fn shallow_update(dst: &mut Value, src: &Value) {
    if let (Value::Map(_), Value::Map(entries)) = (&*dst, src) {
        for (k, v) in entries.clone() {
            if let Value::Map(d) = dst {
                if let Some(slot) = d.iter_mut().find(|(dk, _)| salt_core::value::py_eq(dk, &k)) {
                    slot.1 = v;
                } else {
                    d.push((k, v));
                }
            }
        }
    }
}

/// All grains as the minion would report them: core grains, the `<confdir>/grains` file, then the
/// `grains` config option on top.
pub fn collect(config: &crate::config::Config) -> Value {
    let mut g = core_grains(&GrainsInput { id: config.id.clone(), master: config.master.to_value() });
    if let Some(dir) = config.conf_file.parent() {
        shallow_update(&mut g, &grains_file(dir));
    }
    shallow_update(&mut g, &config.grains);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_parsing() {
        let t = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu vme\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu vme\n";
        let (n, m, f) = cpudata(t);
        assert_eq!((n, m.as_str(), f), (2, "AMD EPYC", vec!["fpu".to_string(), "vme".to_string()]));
        let (n, m, _) = cpudata("");
        assert_eq!((n, m.as_str()), (0, "Unknown"));
    }

    #[test]
    fn meminfo_parsing() {
        assert_eq!(memdata("MemTotal:       24684164 kB\nSwapTotal:  2048 kB\n"), (24105, 2));
    }

    #[test]
    fn server_id_matches_salt() {
        // python: abs(int(hashlib.sha256(b"testminion").hexdigest(), 16) % 2**31)
        assert_eq!(server_id("testminion"), 470207069);
    }

    #[test]
    fn kernelparams_shape() {
        let v = kernelparams("console=ttyS0 quiet a=b=c x=\"y z\"\n");
        assert_eq!(salt_core::value::py_str(&v), "[['console', 'ttyS0'], ['quiet', None], ['a', None], ['x', 'y z']]");
    }

    #[test]
    fn gateways() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        let (a, b) = default_gateways(route, v6);
        assert_eq!(a, string("192.0.2.1"));
        assert_eq!(b, string("fd00::1"));
        let (a, b) = default_gateways("", "");
        assert_eq!((a, b), (Value::Boolean(false), Value::Boolean(false)));
    }

    #[test]
    fn resolv_conf() {
        let v =
            parse_resolv("nameserver 10.0.0.1\nnameserver fd00::53 # x\nsearch a.example b.example\noptions ndots:2\n");
        assert_eq!(
            salt_core::value::py_str(&v),
            "{'nameservers': ['10.0.0.1', 'fd00::53'], 'ip4_nameservers': ['10.0.0.1'], 'ip6_nameservers': ['fd00::53'], 'sortlist': [], 'domain': '', 'search': ['a.example', 'b.example'], 'options': ['ndots:2']}"
        );
    }

    #[test]
    fn core_grains_have_the_basics() {
        let g = core_grains(&GrainsInput { id: "t1".into(), master: string("salt") });
        for k in ["os", "kernel", "cpuarch", "num_cpus", "host", "fqdn", "ipv4", "saltversion"] {
            assert!(salt_core::value::get(&g, k).is_some(), "missing {k}");
        }
        assert_eq!(salt_core::value::get(&g, "kernel"), Some(&string("Linux")));
    }
}
