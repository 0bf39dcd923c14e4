//! A real `salt-master` 3008.5 and real `salt-minion`s under one short temporary root, on loopback
//! ports from 25700–25799 (below the kernel's ephemeral range, so no other program's outgoing
//! connection holds them), for comparing our tools with the stock ones on the same jobs.
//!
//! Needs the Salt venv (`SALT_VENV`, default `/opt/salt-venv`) and root; without them every test
//! prints why and passes. Every process started here runs in a process group of its own, killed
//! when the environment is dropped; every wait is bounded.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Tests that start a master run one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

#[allow(unused_imports)]
pub use testkit::{have_salt_as_root as have_salt, run, salt_bin, wait_for, Output};

use testkit::{kill_leftovers, Proc};

/// Two free ports from our range.
fn port_pair() -> (u16, u16) {
    let (a, b) = testkit::port_pair(25700);
    if !testkit::port_free(a) {
        panic!("no free port pair in 25700-25799");
    }
    (a, b)
}

fn spawn(cmd: Command, log: &Path) -> Proc {
    let name = log.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Proc::spawn(&name, cmd, log)
}

/// One master and its minions under one temporary root.
pub struct Env {
    pub root: tempfile::TempDir,
    pub pub_port: u16,
    pub ret_port: u16,
    master: Option<Proc>,
    minions: Vec<Proc>,
}

impl Env {
    pub fn new() -> Env {
        let Ok(root) = tempfile::Builder::new().prefix("sc").tempdir_in("/tmp") else { panic!("no temporary root") };
        let (pub_port, ret_port) = port_pair();
        let env = Env { root, pub_port, ret_port, master: None, minions: Vec::new() };
        let r = env.r().display().to_string();
        let _ = fs::create_dir_all(env.conf_dir());
        let text = format!(
            "root_dir: {r}\ninterface: 127.0.0.1\npublish_port: {pub_port}\nret_port: {ret_port}\nauto_accept: False\n\
             user: root\nlog_level_logfile: info\ngather_job_timeout: 3\n"
        );
        if fs::write(env.conf_dir().join("master"), text).is_err() {
            panic!("cannot write the master config");
        }
        env
    }

    pub fn r(&self) -> &Path {
        self.root.path()
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.r().join("etc/salt")
    }

    pub fn cachedir(&self) -> PathBuf {
        self.r().join("var/cache/salt/master")
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.r().join("etc/salt/pki/master")
    }

    /// Start the real `salt-master` and wait until the CLI can use it.
    pub fn start_master(&mut self) {
        self.start_master_exe(&salt_bin("salt-master"));
    }

    /// Start a master executable (the real one or ours) and wait until the CLI can use it.
    pub fn start_master_exe(&mut self, exe: &Path) {
        let mut cmd = Command::new(exe);
        cmd.arg("-c").arg(self.conf_dir()).args(["-l", "warning"]).current_dir(self.r());
        self.master = Some(spawn(cmd, &self.r().join("master.out")));
        let pull = self.r().join("var/run/salt/master/publish_pull.ipc");
        let bus = self.r().join("var/run/salt/master/master_event_pub.ipc");
        let key = self.cachedir().join(".root_key");
        let port = self.ret_port;
        let log = self.r().join("master.out");
        testkit::wait_for_explained(
            "the salt-master to listen",
            Duration::from_secs(90),
            || {
                pull.exists()
                    && bus.exists()
                    && key.exists()
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            },
            || {
                format!(
                    "publish_pull.ipc: {}, master_event_pub.ipc: {}, .root_key: {}, port {port} bindable: {}\n{}:\n{}",
                    pull.exists(),
                    bus.exists(),
                    key.exists(),
                    testkit::port_free(port),
                    log.display(),
                    fs::read_to_string(&log).unwrap_or_default()
                )
            },
        );
    }

    /// Start a real `salt-minion` with this id (its key waits in `minions_pre`).
    pub fn start_minion(&mut self, id: &str) {
        let root = self.r().join(id);
        let conf = root.join("etc/salt");
        let _ = fs::create_dir_all(&conf);
        let text = format!(
            "root_dir: {}\nid: {id}\nmaster: 127.0.0.1\nmaster_port: {}\npublish_port: {}\nacceptance_wait_time: 1\n\
             user: root\n",
            root.display(),
            self.ret_port,
            self.pub_port
        );
        if fs::write(conf.join("minion"), text).is_err() {
            panic!("cannot write the minion config");
        }
        let mut cmd = Command::new(salt_bin("salt-minion"));
        cmd.arg("-c").arg(&conf).args(["-l", "warning"]).current_dir(self.r());
        self.minions.push(spawn(cmd, &self.r().join(format!("{id}.out"))));
        let pre = self.pki_dir().join("minions_pre").join(id);
        let acc = self.pki_dir().join("minions").join(id);
        wait_for("the minion's key to reach the master", Duration::from_secs(60), || pre.exists() || acc.exists());
    }

    /// A stock tool (`salt`, `salt-key`, `salt-run`) with `-c` set.
    pub fn stock(&self, tool: &str) -> Command {
        let mut cmd = Command::new(salt_bin(tool));
        cmd.arg("-c").arg(self.conf_dir()).env("PYTHONWARNINGS", "ignore");
        cmd
    }

    /// One of ours (`salt-rs`, ...) with `-c` set.
    pub fn ours(&self, exe: &str) -> Command {
        let mut cmd = Command::new(exe);
        cmd.arg("-c").arg(self.conf_dir());
        cmd
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.minions.clear();
        self.master = None;
        kill_leftovers(&self.conf_dir().display().to_string());
        let root = self.r().display().to_string();
        kill_leftovers(&root);
    }
}

/// Our master, `salt-master-rs`, built beside our tools (by `cargo build`/`cargo test` of the
/// workspace); `None`, with the reason printed, when it has not been built.
pub fn our_master(beside: &str) -> Option<PathBuf> {
    let exe = Path::new(beside).parent()?.join("salt-master-rs");
    if exe.exists() {
        Some(exe)
    } else {
        eprintln!("SKIP: {} is not built (cargo build -p master)", exe.display());
        None
    }
}

/// Lines of a tool's stderr that are not Python warnings about unclosed objects.
pub fn real_stderr(s: &str) -> String {
    s.lines()
        .filter(|l| !l.contains("unclosed") && !l.contains("[WARNING ]") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
