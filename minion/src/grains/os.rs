//! OS identification: `os`, `os_family`, `osfullname`, `osrelease`, `oscodename`, `lsb_distrib_*`,
//! `osrelease_info`, `osmajorrelease`, `osfinger`, `osarch`.
//!
//! Mirrors `grains/core.py`: `_linux_distribution_data`, `_os_release_to_grains`,
//! `_legacy_linux_distribution_data`, `_derive_os_grain`, `_OS_NAME_MAP`, `_OS_FAMILY_MAP`,
//! `_osrelease_data`, `_osarch`. Salt's packages cannot import the system `lsb_release` Python
//! module, so the "legacy" path runs on every distribution: `lsb_distrib_*` from `/etc/lsb-release`
//! or else from os-release, and `os_family` from `_OS_FAMILY_MAP`. Distro files other than
//! os-release and lsb-release (`/etc/SuSE-release`, `/etc/centos-release`, …) are not read.

use std::collections::BTreeMap;

use salt_core::value::{string, Value};

/// Parse os-release text (`platform.freedesktop_os_release` rules: `KEY=value`, shell quoting).
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("NAME".into(), "Linux".into());
    out.insert("ID".into(), "linux".into());
    out.insert("PRETTY_NAME".into(), "Linux".into());
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || k.is_empty() {
            continue;
        }
        let v = match salt_core::args::shlex_split(v) {
            Ok(parts) => parts.join(" "),
            Err(_) => continue,
        };
        out.insert(k.to_string(), v);
    }
    out
}

fn os_name_map(short: &str) -> Option<&'static str> {
    Some(match short {
        "redhatente" => "RedHat",
        "gentoobase" => "Gentoo",
        "archarm" => "Arch ARM",
        "arch" => "Arch",
        "debian" => "Debian",
        "Junos" => "Junos",
        "raspbian" => "Raspbian",
        "fedoraremi" => "Fedora",
        "chapeau" => "Chapeau",
        "korora" => "Korora",
        "amazonami" => "Amazon",
        "alt" => "ALT",
        "enterprise" => "OEL",
        "oracleserv" => "OEL",
        "cloudserve" => "CloudLinux",
        "cloudlinux" => "CloudLinux",
        "virtuozzo" => "Virtuozzo",
        "almalinux" => "AlmaLinux",
        "almalinuxk" => "AlmaLinux",
        "pidora" => "Fedora",
        "scientific" => "ScientificLinux",
        "synology" => "Synology",
        "nilrt" => "NILinuxRT",
        "poky" => "Poky",
        "manjaro" => "Manjaro",
        "manjarolin" => "Manjaro",
        "univention" => "Univention",
        "antergos" => "Antergos",
        "sles" => "SUSE",
        "void" => "Void",
        "slesexpand" => "RES",
        "linuxmint" => "Mint",
        "neon" => "KDE neon",
        "pop" => "Pop",
        "rocky" => "Rocky",
        "alibabaclo" => "Alinux",
        "mendel" => "Mendel",
        "photon" => "VMware Photon OS",
        _ => return None,
    })
}

fn os_family_map(os: &str) -> Option<&'static str> {
    Some(match os {
        "Ubuntu" | "Mint" | "Trisquel" | "GCEL" | "Linaro" | "elementary OS" | "elementary" | "Univention"
        | "Raspbian" | "Devuan" | "antiX" | "Kali" | "Parrot OS" | "neon" | "Cumulus" | "Deepin" | "KDE neon"
        | "IDMS" | "TurnKey" | "Pop" | "AstraLinuxCE" | "AstraLinuxSE" | "Mendel" | "OSMC" => "Debian",
        "Fedora" | "Chapeau" | "Korora" | "FedBerry" | "CentOS" | "CentOS Stream" | "GoOSe" | "Scientific"
        | "Amazon" | "CloudLinux" | "Virtuozzo" | "AlmaLinux" | "AlmaLinux Kitten" | "OVS" | "OEL" | "XCP"
        | "XCP-ng" | "XenServer" | "RES" | "Sangoma" | "VMware Photon OS" | "AlterOS" | "RED OS" | "ALT"
        | "ScientificLinux" | "Rocky" | "Alinux" | "openEuler" => "RedHat",
        "Mandrake" => "Mandriva",
        "VMwareESX" => "VMware",
        "Bluewhite64" => "Bluewhite",
        "Slamd64" => "Slackware",
        "SLES"
        | "SUSE Enterprise Server"
        | "SUSE  Enterprise Server"
        | "SLED"
        | "openSUSE"
        | "SUSE"
        | "openSUSE Leap"
        | "openSUSE Tumbleweed"
        | "SLES_SAP"
        | "alfaLinux"
        | "alfaLinux Rise" => "Suse",
        "Arch ARM" | "Manjaro" | "Manjaro ARM" | "Antergos" | "EndeavourOS" => "Arch",
        "NILinuxRT" => "NILinuxRT",
        "Void" => "Void",
        "Funtoo" => "Gentoo",
        _ => return None,
    })
}

/// `_derive_os_grain(osfullname, os_id)`.
pub fn derive_os_grain(osfullname: &str, os_id: Option<&str>) -> String {
    match (os_id, osfullname) {
        (Some("astra"), "Astra Linux (Orel)") => return "AstraLinuxCE".into(),
        (Some("astra"), "Astra Linux (Smolensk)") => return "AstraLinuxSE".into(),
        (Some("pop"), "Pop!_OS") => return "Pop".into(),
        _ => {}
    }
    // _REPLACE_LINUX_RE = r"\W(?:gnu/)?linux" (IGNORECASE), replaced by "".
    let distroname = regex::Regex::new(r"(?i)\W(?:gnu/)?linux")
        .map(|r| r.replace_all(osfullname, "").into_owned())
        .unwrap_or_else(|_| osfullname.to_string());
    let distroname = distroname.trim().to_string();
    let short: String = distroname.replace(' ', "").to_lowercase().chars().take(10).collect();
    os_name_map(&short).map_or(distroname, str::to_string)
}

/// Parse `/etc/lsb-release` (`_parse_lsb_release`).
pub fn parse_lsb_release(text: &str) -> Vec<(String, String)> {
    let rx = regex::Regex::new(r#"^(DISTRIB_(?:ID|RELEASE|CODENAME|DESCRIPTION))=(?:'|")?([\w\s\.\-_]+)(?:'|")?"#);
    let Ok(rx) = rx else { return Vec::new() };
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(c) = rx.captures(line) {
            let key = format!("lsb_{}", c[1].to_lowercase());
            let val = c[2].trim_end().to_string();
            out.retain(|(k, _)| k != &key);
            out.push((key, val));
        }
    }
    out
}

/// Compute the OS grains from os-release and lsb-release text.
pub fn os_grains(
    os_release: Option<&BTreeMap<String, String>>,
    lsb_release: Option<&str>,
    cpuarch: &str,
) -> BTreeMap<String, Value> {
    let mut g: BTreeMap<String, String> = BTreeMap::new();
    if let Some(text) = lsb_release {
        for (k, v) in parse_lsb_release(text) {
            g.insert(k, v);
        }
    }
    let empty = BTreeMap::new();
    let osr = os_release.unwrap_or(&empty);
    if let Some(osr) = os_release {
        // _os_release_to_grains (osrelease is dropped again for the legacy path).
        let id = osr.get("ID").cloned().unwrap_or_default();
        let name = osr.get("NAME").cloned().unwrap_or_default();
        g.insert("os".into(), derive_os_grain(&name, Some(&id)));
        g.insert("osfullname".into(), name.trim().to_string());
        // _legacy_linux_distribution_data with lsb_has_error = True.
        if !g.contains_key("lsb_distrib_id") {
            g.insert("lsb_distrib_id".into(), name.trim().to_string());
            if let Some(v) = osr.get("VERSION_ID") {
                g.insert("lsb_distrib_release".into(), v.clone());
            }
            if let Some(v) = osr.get("VERSION_CODENAME") {
                g.insert("lsb_distrib_codename".into(), v.clone());
            } else if let Some(v) = osr.get("PRETTY_NAME") {
                g.insert("lsb_distrib_codename".into(), v.clone());
            }
            if id.trim() == "mendel" {
                let parts: Vec<&str> =
                    osr.get("PRETTY_NAME").map(|p| p.split_whitespace().collect()).unwrap_or_default();
                if parts.len() >= 3 {
                    g.insert("lsb_distrib_release".into(), parts[2].to_string());
                }
            }
        }
    }
    // distro.linux_distribution() stand-in: (NAME, VERSION_ID, VERSION_CODENAME) from os-release.
    let d_name = osr.get("NAME").cloned().unwrap_or_default();
    let d_release = osr.get("VERSION_ID").cloned().unwrap_or_default();
    let d_codename = osr.get("VERSION_CODENAME").cloned().unwrap_or_default();
    if !g.contains_key("osfullname") {
        let full = g.get("lsb_distrib_id").cloned().unwrap_or(d_name).trim().to_string();
        g.insert("osfullname".into(), full);
    }
    let osrelease = g.get("lsb_distrib_release").cloned().unwrap_or(d_release).trim().to_string();
    g.insert("osrelease".into(), osrelease);
    let os_now = g.get("os").cloned().unwrap_or_default();
    if let Some(code) = g.get("lsb_distrib_codename").cloned() {
        if ["Rocky", "AlmaLinux", "AstraLinuxSE"].iter().any(|o| os_now.contains(o)) {
            if let Some((_, rest)) = code.split_once('(') {
                let inner = rest.split(')').next().unwrap_or("");
                let v = if os_now == "AstraLinuxSE" {
                    inner.split_whitespace().next().unwrap_or("").to_lowercase()
                } else {
                    inner.to_string()
                };
                g.insert("lsb_distrib_codename".into(), v);
            }
        }
    }
    let mut oscodename = g
        .get("lsb_distrib_codename")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| d_codename.clone());
    if oscodename.contains("Red Hat") {
        oscodename = d_codename;
    }
    g.insert("oscodename".into(), oscodename);
    if !g.contains_key("os") {
        let full = g.get("osfullname").cloned().unwrap_or_default();
        g.insert("os".into(), derive_os_grain(&full, None));
    }
    let os = g.get("os").cloned().unwrap_or_default();
    let family = os_family_map(&os).map_or_else(|| os.clone(), str::to_string);
    g.insert("os_family".into(), family.clone());

    let mut out: BTreeMap<String, Value> = g.into_iter().map(|(k, v)| (k, string(v))).collect();
    out.insert("osarch".into(), string(osarch(&family, cpuarch)));
    let osrelease = salt_core::value::as_str(&out["osrelease"]).unwrap_or("").to_string();
    let fullname = salt_core::value::as_str(&out["osfullname"]).unwrap_or("").to_string();
    if !osrelease.is_empty() {
        let info: Vec<Value> = osrelease
            .split('.')
            .map(|p| {
                if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
                    p.parse::<i64>().map(Value::from).unwrap_or_else(|_| string(p))
                } else {
                    string(p)
                }
            })
            .collect();
        if let Some(Value::Integer(major)) = info.first() {
            out.insert("osmajorrelease".into(), Value::Integer(*major));
        }
        let os_name =
            if ["Debian", "FreeBSD", "OpenBSD", "NetBSD", "Mac", "Raspbian", "AlmaLinux"].contains(&os.as_str()) {
                os.clone()
            } else {
                fullname
            };
        let ver = if ["Ubuntu", "Pop", "NixOS"].contains(&os.as_str()) {
            osrelease.clone()
        } else {
            info.first().map(salt_core::value::py_str).unwrap_or_default()
        };
        out.insert("osfinger".into(), string(format!("{os_name}-{ver}")));
        out.insert("osrelease_info".into(), Value::Array(info));
    }
    out
}

/// `_osarch`: Debian-family names from `dpkg --print-architecture`, else the CPU architecture.
pub fn osarch(os_family: &str, cpuarch: &str) -> String {
    if os_family == "Debian" {
        return match cpuarch {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "i386" | "i486" | "i586" | "i686" => "i386",
            "armv7l" | "armv6l" => "armhf",
            "ppc64le" => "ppc64el",
            "mips64" => "mips64el",
            other => other,
        }
        .to_string();
    }
    cpuarch.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use salt_core::value::py_str;

    const DEBIAN: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
    const UBUNTU: &str = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n";
    const UBUNTU_LSB: &str = "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\n";
    const ROCKY: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n";

    fn g(osr: &str, lsb: Option<&str>, arch: &str) -> BTreeMap<String, String> {
        os_grains(Some(&parse_os_release(osr)), lsb, arch).into_iter().map(|(k, v)| (k, py_str(&v))).collect()
    }

    #[test]
    fn debian() {
        let m = g(DEBIAN, None, "x86_64");
        assert_eq!(m["os"], "Debian");
        assert_eq!(m["os_family"], "Debian");
        assert_eq!(m["osfullname"], "Debian GNU/Linux");
        assert_eq!(m["osrelease"], "12");
        assert_eq!(m["oscodename"], "bookworm");
        assert_eq!(m["osfinger"], "Debian-12");
        assert_eq!(m["osmajorrelease"], "12");
        assert_eq!(m["osrelease_info"], "[12]");
        assert_eq!(m["osarch"], "amd64");
        assert_eq!(m["lsb_distrib_id"], "Debian GNU/Linux");
    }

    #[test]
    fn ubuntu_with_lsb_release() {
        let m = g(UBUNTU, Some(UBUNTU_LSB), "aarch64");
        assert_eq!(m["os"], "Ubuntu");
        assert_eq!(m["os_family"], "Debian");
        assert_eq!(m["osfullname"], "Ubuntu");
        assert_eq!(m["osrelease"], "22.04");
        assert_eq!(m["osfinger"], "Ubuntu-22.04");
        assert_eq!(m["osrelease_info"], "[22, 4]");
        assert_eq!(m["lsb_distrib_description"], "Ubuntu 22.04.4 LTS");
        assert_eq!(m["osarch"], "arm64");
    }

    #[test]
    fn rocky() {
        let m = g(ROCKY, None, "x86_64");
        assert_eq!(m["os"], "Rocky");
        assert_eq!(m["os_family"], "RedHat");
        assert_eq!(m["osfullname"], "Rocky Linux");
        assert_eq!(m["osfinger"], "Rocky Linux-9");
        assert_eq!(m["osarch"], "x86_64");
    }
}
