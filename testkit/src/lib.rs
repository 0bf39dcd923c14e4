//! What every real-peer test needs, written once: the Salt venv, daemons started in process
//! groups of their own and killed with them whatever happens, commands run to completion within
//! a deadline, bounded waits, free loopback ports.
//!
//! Used as a dev-dependency by the `master`, `minion` and `salt-cli` tests. Tests panic on a
//! broken environment (a daemon that cannot start); that is their way of failing.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// The Salt 3008.5 virtualenv: `SALT_VENV`, or `/opt/salt-venv` (where
/// `scripts/install-salt.sh` puts it).
pub fn venv() -> PathBuf {
    PathBuf::from(std::env::var("SALT_VENV").unwrap_or_else(|_| "/opt/salt-venv".into()))
}

/// A Salt executable of the venv (`salt-master`, `salt`, ...).
pub fn salt_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// Whether Salt is installed; prints why the caller skips when it is not.
pub fn have_salt() -> bool {
    let master = salt_bin("salt-master");
    let ok = master.exists();
    if !ok {
        eprintln!("SKIP: {} does not exist; install Salt 3008.5 with scripts/install-salt.sh", master.display());
    }
    ok
}

/// Whether Salt is installed and we are root (Salt's daemons as the tests configure them need it).
pub fn have_salt_as_root() -> bool {
    if !have_salt() {
        return false;
    }
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("SKIP: the real-Salt tests run as root");
    }
    root
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Send `sig` to the process group `pgid`.
pub fn signal_group(pgid: u32, sig: Signal) {
    if let Some(pid) = pid_of(pgid) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// Send `sig` to the process `pid` only.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = pid_of(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// SIGKILL every process whose command line mentions `needle` (a test's temporary root): the
/// daemons' children, should any have left their process group.
pub fn kill_leftovers(needle: &str) {
    let Ok(dir) = fs::read_dir("/proc") else { return };
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            signal(pid, Signal::KILL);
        }
    }
}

/// Whom `Proc::stop` sends its SIGTERM to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopScope {
    /// The daemon only: it must stop its own children (as our master stops its units).
    Process,
    /// The daemon's whole process group.
    Group,
}

/// A daemon started in a process group of its own, its output appended to a log file; the
/// group is SIGKILLed on drop.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    /// Start `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let Ok(out) = fs::OpenOptions::new().create(true).append(true).open(log) else {
            panic!("cannot open {}", log.display())
        };
        let Ok(err) = out.try_clone() else { panic!("cannot dup {}", log.display()) };
        cmd.process_group(0).stdin(Stdio::null()).stdout(out).stderr(err);
        match cmd.spawn() {
            Ok(child) => Proc { name: name.to_owned(), child },
            Err(e) => panic!("cannot start {name} ({cmd:?}): {e}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM (to `scope`), wait up to `grace`, then SIGKILL the group. The exit status if it
    /// exited by itself within `grace`.
    pub fn stop(&mut self, scope: StopScope, grace: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.exited() {
            signal_group(self.pid(), Signal::KILL);
            return Some(st);
        }
        match scope {
            StopScope::Process => signal(self.pid(), Signal::TERM),
            StopScope::Group => signal_group(self.pid(), Signal::TERM),
        }
        let deadline = Instant::now() + grace;
        let mut status = None;
        while Instant::now() < deadline {
            if let Some(st) = self.exited() {
                status = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if status.is_none() {
            eprintln!("{} did not stop within {grace:?}; killing it", self.name);
        }
        self.kill();
        status
    }

    fn kill(&mut self) {
        signal_group(self.pid(), Signal::KILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a command printed, and its exit code (-1 when it was killed at the deadline or by a signal).
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// `(code, stdout, stderr)`.
    pub fn parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }
}

/// Run `cmd` to completion in a process group of its own, for at most `limit` (then the group is
/// killed).
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot run {cmd:?}: {e}"),
    };
    fn drain(p: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                eprintln!("{cmd:?} did not finish within {limit:?}; killed");
                break -1;
            }
        }
    };
    signal_group(child.id(), Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
    Output { code, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// Poll `ok` every 200 ms until it holds; panic after `limit`.
pub fn wait_for(what: &str, limit: Duration, ok: impl FnMut() -> bool) {
    wait_for_explained(what, limit, ok, String::new)
}

/// [`wait_for`], with `explain()` (a daemon's log, the ports it holds) in the panic message.
pub fn wait_for_explained(what: &str, limit: Duration, mut ok: impl FnMut() -> bool, explain: impl FnOnce() -> String) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for {what}\n{}", explain());
}

/// Whether a loopback TCP port can be bound now.
pub fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// Two adjacent free loopback ports `(p, p + 1)`, searched from `preferred` to the end of the
/// hundred it lies in, then from the start of that hundred; `preferred` itself if none is free.
/// Fixed ranges keep tests that run at once apart; a port of the range may still be held as an
/// ephemeral source port by another program's connection, hence the search.
pub fn port_pair(preferred: u16) -> (u16, u16) {
    let base = preferred - preferred % 100;
    let p = (preferred..base + 99)
        .step_by(2)
        .chain((base..preferred).step_by(2))
        .find(|&p| port_free(p) && port_free(p + 1))
        .unwrap_or(preferred);
    (p, p + 1)
}

/// The last `lines` lines of every `*.log` / `*.out` file directly in `dir`, on stderr (what
/// explains a failure).
pub fn dump_log_tails(dir: &Path, lines: usize) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> =
        rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log" || x == "out")).collect();
    paths.sort();
    for path in paths {
        let text = fs::read_to_string(&path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        eprintln!("==== {} (last lines) ====", path.display());
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
}
