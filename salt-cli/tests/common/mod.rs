//! A real `salt-master` 3008.5 and real `salt-minion`s under one short temporary root, on loopback
//! ports from 42500–42599, for comparing our tools with the stock ones on the same jobs.
//!
//! Needs the Salt venv (`SALT_VENV`, default `/opt/salt-venv`) and root; without them every test
//! prints why and passes. Every process started here runs in a process group of its own, killed
//! when the environment is dropped; every wait is bounded.

#![allow(dead_code)]

use std::fs;
use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests that start a master run one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn venv() -> PathBuf {
    PathBuf::from(std::env::var("SALT_VENV").unwrap_or_else(|_| "/opt/salt-venv".into()))
}

pub fn salt_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// Salt is installed and we are root (Salt's daemons as configured here need it).
pub fn have_salt() -> bool {
    let master = salt_bin("salt-master");
    if !master.exists() {
        eprintln!("SKIP: {} does not exist; install Salt 3008.5 with scripts/install-salt.sh", master.display());
        return false;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: the real-Salt tests run as root");
        return false;
    }
    true
}

fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// Two free ports from our range.
fn port_pair() -> (u16, u16) {
    let mut p = 42500;
    while p < 42598 {
        if port_free(p) && port_free(p + 1) {
            return (p, p + 1);
        }
        p += 2;
    }
    panic!("no free port pair in 42500-42599");
}

fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Kill what is left of processes whose command line mentions `needle` (daemon children that
/// left the group).
fn kill_leftovers(needle: &str) {
    let Ok(dir) = fs::read_dir("/proc") else { return };
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            if let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

/// A daemon in its own process group, killed with it.
pub struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, log: &Path) -> Proc {
    let Ok(out) = fs::OpenOptions::new().create(true).append(true).open(log) else {
        panic!("cannot open {}", log.display())
    };
    let Ok(err) = out.try_clone() else { panic!("cannot dup {}", log.display()) };
    cmd.process_group(0).stdin(Stdio::null()).stdout(out).stderr(err);
    match cmd.spawn() {
        Ok(child) => Proc { child },
        Err(e) => panic!("cannot start {cmd:?}: {e}"),
    }
}

/// What a command printed and its exit code (-1 when killed at the deadline).
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run a command to completion, at most `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot run {cmd:?}: {e}"),
    };
    let pipe = |p: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let err = pipe(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let deadline = Instant::now() + limit;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                eprintln!("{cmd:?} did not finish within {limit:?}; killed");
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
        }
    };
    kill_group(child.id());
    Output { code, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// Poll `ok` every 200 ms for at most `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for {what}");
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
        wait_for("the salt-master to listen", Duration::from_secs(90), || {
            pull.exists() && bus.exists() && key.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
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
