//! Our grains against `salt-call --local grains.items` of a real Salt 3008.5 on the same host.
//!
//! Needs the Salt venv (`scripts/install-salt.sh`; `SALT_VENV`, default `/opt/salt-venv`); without
//! it the comparison is skipped with a message. The key-shape checks run always.

use std::path::PathBuf;
use std::process::Command;

use minion::config::{Config, LoadOptions};
use salt_core::value::{get, to_json};
use serde_json::Value as J;

/// Grains whose values must equal Salt's on the same host.
const STRICT: &[&str] = &[
    "os",
    "os_family",
    "osfullname",
    "osrelease",
    "osrelease_info",
    "osmajorrelease",
    "oscodename",
    "osfinger",
    "osarch",
    "lsb_distrib_id",
    "lsb_distrib_release",
    "lsb_distrib_codename",
    "kernel",
    "kernelrelease",
    "kernelversion",
    "kernelparams",
    "cpuarch",
    "num_cpus",
    "cpu_model",
    "cpu_flags",
    "mem_total",
    "swap_total",
    "host",
    "fqdn",
    "domain",
    "nodename",
    "localhost",
    "fqdn_ip4",
    "fqdn_ip6",
    "ipv4",
    "ipv6",
    "ip4_interfaces",
    "ip6_interfaces",
    "ip_interfaces",
    "hwaddr_interfaces",
    "ip_gw",
    "ip4_gw",
    "ip6_gw",
    "dns",
    "machine_id",
    "init",
    "id",
    "master",
    "server_id",
    "saltversion",
    "saltversioninfo",
    "shell",
    "path",
    "systempath",
    "uid",
    "gid",
    "username",
    "groupname",
    "gpus",
    "num_gpus",
    "efi",
    "efi-secure-boot",
    "roles",
    "from_file",
];

/// Best-effort grains: a difference is reported, not fatal.
const SOFT: &[&str] = &["virtual", "virtual_subtype"];

/// Differ by nature between two processes.
const VOLATILE: &[&str] = &["pid", "cwd"];

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("SALT_VENV").unwrap_or_else(|_| "/opt/salt-venv".into()))
}

fn write_conf(dir: &std::path::Path) {
    let conf = dir.join("etc/salt");
    std::fs::create_dir_all(&conf).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        conf.join("minion"),
        format!(
            "root_dir: {}\nid: testminion\nmaster: [m1, m2]\nfile_client: local\ngrains:\n  roles: [web, db]\n  os_family: Overridden\n",
            dir.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(conf.join("grains"), "from_file: yes\nos_family: FromFile\n").unwrap_or_else(|e| panic!("{e}"));
}

fn our_grains(dir: &std::path::Path) -> J {
    let config = Config::load(dir.join("etc/salt"), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    to_json(&minion::grains::collect(&config))
}

#[test]
fn grains_have_salts_shapes() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_conf(tmp.path());
    let g = our_grains(tmp.path());
    assert_eq!(g["os_family"], J::String("Overridden".into()), "config grains win over the grains file");
    assert_eq!(g["from_file"], J::Bool(true));
    assert_eq!(g["id"], J::String("testminion".into()));
    assert!(g["num_cpus"].as_i64().is_some_and(|n| n > 0));
    assert!(g["mem_total"].as_i64().is_some_and(|n| n > 0));
    assert!(g["osrelease_info"].is_array() && g["ipv4"].is_array() && g["ip_interfaces"].is_object());
    assert_eq!(g["saltversioninfo"], serde_json::json!([3008, 5]));
    let core = minion::grains::core_grains(&minion::grains::GrainsInput {
        id: "x".into(),
        master: salt_core::value::string("salt"),
    });
    assert!(get(&core, "kernel").is_some());
}

#[test]
fn grains_match_salt_call() {
    let salt_call = venv().join("bin/salt-call");
    if !salt_call.exists() {
        eprintln!(
            "SKIPPED: {} not found; install Salt with scripts/install-salt.sh (or set SALT_VENV) to compare grains with real Salt",
            salt_call.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_conf(tmp.path());
    let out = Command::new(&salt_call)
        .args(["-c"])
        .arg(tmp.path().join("etc/salt"))
        .args(["--local", "grains.items", "--out", "json", "-l", "quiet"])
        .current_dir(tmp.path())
        .output()
        .unwrap_or_else(|e| panic!("running salt-call: {e}"));
    assert!(out.status.success(), "salt-call failed: {}", String::from_utf8_lossy(&out.stderr));
    let salt: J = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("salt-call output: {e}"));
    let salt = &salt["local"];
    let ours = our_grains(tmp.path());
    let (J::Object(salt_map), J::Object(our_map)) = (salt, &ours) else {
        panic!("unexpected shapes");
    };

    // Every grain we produce is one Salt produces too.
    let extra: Vec<&String> = our_map.keys().filter(|k| !salt_map.contains_key(*k)).collect();
    assert!(extra.is_empty(), "grains Salt does not have: {extra:?}");
    // The common grains are all there.
    let missing: Vec<&&str> =
        STRICT.iter().chain(SOFT).filter(|k| salt_map.contains_key(**k) && !our_map.contains_key(**k)).collect();
    assert!(missing.is_empty(), "grains Salt has and we lack: {missing:?}");

    let mut bad = Vec::new();
    for key in our_map.keys() {
        if VOLATILE.contains(&key.as_str()) {
            continue;
        }
        let (a, b) = (&salt_map[key], &our_map[key]);
        if a == b {
            continue;
        }
        let msg = format!("{key}: salt={a} rust={b}");
        if SOFT.contains(&key.as_str()) {
            eprintln!("best-effort grain differs: {msg}");
        } else {
            bad.push(msg);
        }
    }
    assert!(bad.is_empty(), "grains differ from Salt:\n  {}", bad.join("\n  "));
}

#[test]
fn generated_minion_id_matches_salt() {
    let python = venv().join("bin/python");
    if !python.exists() {
        eprintln!("SKIPPED: {} not found; cannot compare generate_minion_id() with Salt", python.display());
        return;
    }
    let out = Command::new(&python)
        .args(["-c", "import salt.utils.network as n; print(n.generate_minion_id())"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let salt_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ours = minion::grains::host::generate_minion_id(&minion::grains::net::interfaces());
    assert_eq!(ours, salt_id);
}
