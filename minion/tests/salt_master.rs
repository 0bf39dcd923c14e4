//! `salt-minion-rs` against a REAL `salt-master` 3008.5, driven by the real `salt` CLI.
//!
//! Needs the Salt venv (`scripts/install-salt.sh`; `SALT_VENV`, default `/opt/salt-venv`);
//! without it every test prints why and passes. Each test runs its own master under a short
//! temporary `root_dir` in `/tmp` (Unix socket paths must stay < 107 bytes) on free loopback
//! ports, and every process it starts (master, minions, CLI calls) runs in a process group of its
//! own that is killed when the test ends, whatever happens. Every wait is bounded. The tests are
//! serialised (a Salt master needs a few seconds of CPU to start).
//!
//! - `jobs_and_targeting`: two of our minions and one real `salt-minion`, auto-accepted: ping,
//!   `cmd.run_all` output and retcode, non-ASCII and ~500 kB outputs, unknown functions, grain,
//!   compound, list, pcre and glob targets selecting exactly the right minions, a job that does
//!   not block another one, key files, idle RSS.
//! - `pending_restart_and_key_change`: a pending key accepted with `salt-key -a`, a master
//!   restart survived, and a master with a new key refused (logged, never answered).

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value as J};

static SERIAL: Mutex<()> = Mutex::new(());

use testkit::{have_salt, kill_leftovers, run, salt_bin as bin, wait_for, Proc, StopScope};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn yaml_grains(grains: &[(&str, &str)]) -> String {
    let mut s = String::from("grains:\n");
    for (k, v) in grains {
        s.push_str(&format!("  {k}: {v}\n"));
    }
    s
}

/// One master with its minions under one temporary root.
struct Env {
    root: tempfile::TempDir,
    pub_port: u16,
    ret_port: u16,
    master: Option<Proc>,
    minions: Vec<(String, Proc)>,
}

impl Env {
    fn new(auto_accept: bool) -> Env {
        let root = tempfile::Builder::new().prefix("sm").tempdir_in("/tmp");
        let Ok(root) = root else { panic!("cannot create a temporary root") };
        let (pub_port, ret_port) = loop {
            let (a, b) = (free_port(), free_port());
            if a != 0 && b != 0 && a != b {
                break (a, b);
            }
        };
        let env = Env { root, pub_port, ret_port, master: None, minions: Vec::new() };
        env.write_master_config(auto_accept);
        env
    }

    fn r(&self) -> &Path {
        self.root.path()
    }

    fn conf_dir(&self) -> PathBuf {
        self.r().join("etc/salt")
    }

    fn write_master_config(&self, auto_accept: bool) {
        let r = self.r().display().to_string();
        let _ = fs::create_dir_all(self.conf_dir());
        let _ = fs::create_dir_all(self.r().join("srv/salt"));
        let _ = fs::create_dir_all(self.r().join("srv/pillar"));
        let text = format!(
            "root_dir: {r}\ninterface: 127.0.0.1\npublish_port: {}\nret_port: {}\nauto_accept: {}\n\
             file_roots: {{base: [{r}/srv/salt]}}\npillar_roots: {{base: [{r}/srv/pillar]}}\nlog_level_logfile: info\n",
            self.pub_port,
            self.ret_port,
            if auto_accept { "True" } else { "False" },
        );
        if fs::write(self.conf_dir().join("master"), text).is_err() {
            panic!("cannot write the master config");
        }
    }

    fn start_master(&mut self) {
        assert!(self.master.is_none(), "master already running");
        let mut cmd = Command::new(bin("salt-master"));
        cmd.arg("-c").arg(self.conf_dir()).args(["-l", "warning"]).current_dir(self.r());
        let started = Instant::now();
        self.master = Some(Proc::spawn("salt-master", cmd, &self.r().join("master.out")));
        let pull = self.r().join("var/run/salt/master/publish_pull.ipc");
        let port = self.ret_port;
        let master_out = self.r().join("master.out");
        wait_for("the salt-master to listen", Duration::from_secs(90), || {
            if let Some(m) = &mut self.master {
                if let Some(st) = m.exited() {
                    let out = fs::read_to_string(&master_out).unwrap_or_default();
                    panic!("salt-master exited ({st}):\n{out}");
                }
            }
            pull.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        eprintln!("salt-master up in {:.1}s", started.elapsed().as_secs_f64());
    }

    fn stop_master(&mut self) {
        if let Some(mut m) = self.master.take() {
            m.stop(StopScope::Group, Duration::from_secs(20));
        }
        kill_leftovers(&self.conf_dir().display().to_string());
        // The ports must be free again before a restart.
        let port = self.ret_port;
        wait_for("the ret port to be released", Duration::from_secs(30), || {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
    }

    fn minion_root(&self, id: &str) -> PathBuf {
        self.r().join(id)
    }

    fn write_minion_config(&self, id: &str, grains: &[(&str, &str)]) -> PathBuf {
        let root = self.minion_root(id);
        let conf = root.join("etc/salt");
        let _ = fs::create_dir_all(&conf);
        let text = format!(
            "root_dir: {}\nid: {id}\nmaster: 127.0.0.1\nmaster_port: {}\nacceptance_wait_time: 2\n\
             log_level_logfile: debug\n{}",
            root.display(),
            self.ret_port,
            yaml_grains(grains)
        );
        if fs::write(conf.join("minion"), text).is_err() {
            panic!("cannot write the config of {id}");
        }
        conf
    }

    fn stderr_log(&self, id: &str) -> PathBuf {
        self.r().join(format!("{id}.out"))
    }

    /// Start one of our minions.
    fn start_rust_minion(&mut self, id: &str, grains: &[(&str, &str)]) -> u32 {
        let conf = self.write_minion_config(id, grains);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_salt-minion-rs"));
        cmd.arg("-c").arg(conf).args(["-l", "info"]).current_dir(self.r());
        let p = Proc::spawn(id, cmd, &self.stderr_log(id));
        let pid = p.pid();
        self.minions.push((id.to_string(), p));
        pid
    }

    /// Start a real `salt-minion`.
    fn start_py_minion(&mut self, id: &str, grains: &[(&str, &str)]) -> u32 {
        let conf = self.write_minion_config(id, grains);
        let mut cmd = Command::new(bin("salt-minion"));
        cmd.arg("-c").arg(conf).args(["-l", "warning"]).current_dir(self.r());
        let p = Proc::spawn(id, cmd, &self.stderr_log(id));
        let pid = p.pid();
        self.minions.push((id.to_string(), p));
        pid
    }

    fn stop_minion(&mut self, id: &str) {
        if let Some(i) = self.minions.iter().position(|(m, _)| m == id) {
            let (_, mut p) = self.minions.remove(i);
            let st = p.stop(StopScope::Group, Duration::from_secs(10));
            eprintln!("{id} stopped: {st:?}");
        }
    }

    /// `salt -c ... --out json --static -t T <args>`: exit code and the parsed JSON (Null if
    /// the output is not JSON, e.g. "No minions matched the target").
    fn salt(&self, timeout: u32, args: &[&str]) -> (i32, J) {
        let mut cmd = Command::new(bin("salt"));
        cmd.arg("-c").arg(self.conf_dir()).args(["--out", "json", "--static", "-t", &timeout.to_string()]);
        cmd.args(args).current_dir(self.r());
        let (code, out, err) = run(cmd, Duration::from_secs(u64::from(timeout) + 60)).parts();
        let parsed = serde_json::from_str(&out).unwrap_or(J::Null);
        if parsed.is_null() {
            eprintln!("salt {args:?}: exit {code}, stdout {out:?}, stderr {err:?}");
        }
        (code, parsed)
    }

    fn salt_key(&self, args: &[&str]) -> J {
        let mut cmd = Command::new(bin("salt-key"));
        cmd.arg("-c").arg(self.conf_dir()).args(["--out", "json"]).args(args).current_dir(self.r());
        let (_, out, _) = run(cmd, Duration::from_secs(60)).parts();
        serde_json::from_str(&out).unwrap_or(J::Null)
    }

    fn keys_in(&self, state: &str) -> Vec<String> {
        let v = self.salt_key(&["-L"]);
        let mut ids: Vec<String> = v[state]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Wait until `salt -L ids test.ping` gets `true` from every one of `ids`.
    fn wait_ping(&self, ids: &[&str], limit: Duration) {
        let list = ids.join(",");
        wait_for(&format!("test.ping answers from {list}"), limit, || {
            let (_, v) = self.salt(5, &["-L", &list, "test.ping"]);
            ids.iter().all(|id| v[id] == json!(true))
        });
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for (_, p) in &mut self.minions {
            p.stop(StopScope::Group, Duration::from_secs(5));
        }
        self.minions.clear();
        if let Some(mut m) = self.master.take() {
            m.stop(StopScope::Group, Duration::from_secs(10));
        }
        kill_leftovers(&self.r().display().to_string());
        if std::thread::panicking() {
            // Keep what explains the failure on stderr.
            for name in ["master.out", "rs1.out", "rs2.out", "rs3.out", "py1.out"] {
                if let Ok(text) = fs::read_to_string(self.r().join(name)) {
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("---- {name} (last lines) ----");
                    for l in tail.into_iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

fn keys_of(v: &J) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn salt_pem_body(pem: &str) -> String {
    pem.split_whitespace().collect()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
}

#[test]
fn jobs_and_targeting() {
    if !have_salt() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut env = Env::new(true);
    env.start_master();
    let rs1 = env.start_rust_minion("rs1", &[("role", "web"), ("env", "prod")]);
    env.start_rust_minion("rs2", &[("role", "db"), ("env", "dev")]);
    env.start_py_minion("py1", &[("role", "web"), ("env", "dev")]);
    env.wait_ping(&["rs1", "rs2", "py1"], Duration::from_secs(180));

    // test.ping to everyone.
    let (_, v) = env.salt(30, &["*", "test.ping"]);
    assert_eq!(v, json!({"rs1": true, "rs2": true, "py1": true}));

    // Key files: as a real 3008.5 minion leaves them.
    for id in ["rs1", "py1"] {
        let pki = env.minion_root(id).join("etc/salt/pki/minion");
        assert_eq!(mode(&pki), 0o700, "{id} pki_dir");
        assert_eq!(mode(&pki.join("minion.pem")), 0o400, "{id} minion.pem");
        assert_eq!(mode(&pki.join("minion.pub")), 0o400, "{id} minion.pub");
        assert_eq!(mode(&pki.join("minion_master.pub")), 0o644, "{id} minion_master.pub");
    }
    let cached = |id: &str| fs::read_to_string(env.minion_root(id).join("etc/salt/pki/minion/minion_master.pub")).ok();
    assert!(cached("rs1").is_some());
    assert_eq!(cached("rs1"), cached("py1"), "minion_master.pub byte for byte as salt-minion writes it");
    let pem = fs::read_to_string(env.minion_root("rs1").join("etc/salt/pki/minion/minion.pem")).unwrap_or_default();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));

    // cmd.run_all: output and retcode exactly, the same as salt-minion's (but the pid).
    let (_, v) = env.salt(30, &["-L", "rs1,py1", "cmd.run_all", "printf héllo; exit 3"]);
    for id in ["rs1", "py1"] {
        let r = &v[id];
        assert_eq!(r["retcode"], json!(3), "{id}: {v}");
        assert_eq!(r["stdout"], json!("héllo"), "{id}: {v}");
        assert_eq!(r["stderr"], json!(""), "{id}: {v}");
        assert!(r["pid"].is_u64(), "{id}: {v}");
    }
    let strip_pid = |mut r: J| {
        if let Some(o) = r.as_object_mut() {
            o.remove("pid");
        }
        r
    };
    assert_eq!(strip_pid(v["rs1"].clone()), strip_pid(v["py1"].clone()));

    // Non-ASCII output.
    let text = "ünïcødé ✓ 日本語 🦀";
    let (_, v) = env.salt(30, &["-L", "rs1,py1", "cmd.run", &format!("printf '%s' '{text}'")]);
    assert_eq!(v, json!({"rs1": text, "py1": text}));

    // retcode alone.
    let (_, v) = env.salt(30, &["-L", "rs1,py1", "cmd.retcode", "exit 7"]);
    assert_eq!(v, json!({"rs1": 7, "py1": 7}));

    // ~500 kB of output in one return.
    let (_, v) = env.salt(60, &["-L", "rs1,py1", "cmd.run", "head -c 500000 /dev/zero | tr '\\0' x"]);
    for id in ["rs1", "py1"] {
        let out = v[id].as_str().unwrap_or_default();
        assert_eq!(out.len(), 500_000, "{id}");
        assert!(out.bytes().all(|b| b == b'x'), "{id}");
    }

    // Functions: same answers as salt-minion.
    let (_, v) = env.salt(30, &["-L", "rs1,py1", "test.version"]);
    assert_eq!(v, json!({"rs1": "3008.5", "py1": "3008.5"}));
    let (_, v) = env.salt(30, &["-L", "rs1,py1", "foo.bar"]);
    assert_eq!(v, json!({"rs1": "'foo.bar' is not available.", "py1": "'foo.bar' is not available."}));
    let (_, v) = env.salt(30, &["-L", "rs1,rs2,py1", "grains.item", "role"]);
    assert_eq!(v, json!({"rs1": {"role": "web"}, "rs2": {"role": "db"}, "py1": {"role": "web"}}));

    // Targeting: each target selects exactly the right minions (all of which answer).
    let cases: &[(&[&str], &[&str])] = &[
        (&["-G", "role:web"], &["rs1", "py1"]),
        (&["-G", "role:db"], &["rs2"]),
        (&["-G", "env:dev"], &["rs2", "py1"]),
        (&["-C", "G@role:web and G@env:dev"], &["py1"]),
        (&["-C", "rs* and not G@role:db"], &["rs1"]),
        (&["-C", "G@env:prod or py1"], &["rs1", "py1"]),
        (&["-C", "( G@role:db or G@env:prod ) and E@rs\\d"], &["rs1", "rs2"]),
        (&["-E", "rs[0-9]"], &["rs1", "rs2"]),
        (&["-L", "rs2,py1"], &["rs2", "py1"]),
        (&["rs*"], &["rs1", "rs2"]),
        (&["py?"], &["py1"]),
    ];
    for (target, want) in cases {
        let mut args: Vec<&str> = target.to_vec();
        args.push("test.ping");
        let (code, v) = env.salt(30, &args);
        assert_eq!(keys_of(&v), sorted(want), "target {target:?}: {v}");
        assert!(v.as_object().is_some_and(|o| o.values().all(|x| *x == json!(true))), "target {target:?}: {v}");
        assert_eq!(code, 0, "target {target:?}");
    }
    let (code, v) = env.salt(15, &["-G", "role:nothing", "test.ping"]);
    assert!(code != 0 && keys_of(&v).is_empty(), "a target matching nobody: {code} {v}");

    // A long job does not block another one (nor the publish loop).
    let sleeper = {
        let conf = env.conf_dir();
        let root = env.r().to_path_buf();
        std::thread::spawn(move || {
            let mut cmd = Command::new(bin("salt"));
            cmd.arg("-c").arg(conf).args(["--out", "json", "--static", "-t", "30", "rs1", "test.sleep", "6"]);
            cmd.current_dir(root);
            let (_, out, _) = run(cmd, Duration::from_secs(90)).parts();
            serde_json::from_str::<J>(&out).unwrap_or(J::Null)
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    let (_, v) = env.salt(30, &["rs1", "test.ping"]);
    let took = t.elapsed();
    assert_eq!(v, json!({"rs1": true}));
    assert!(took < Duration::from_secs(4), "test.ping took {took:?} while test.sleep ran");
    assert_eq!(sleeper.join().unwrap_or(J::Null), json!({"rs1": true}));

    // Idle memory of one of our minions (debug build here; see the release figure in the report).
    std::thread::sleep(Duration::from_secs(3));
    if let Some(kb) = vm_rss_kb(rs1) {
        eprintln!("salt-minion-rs (this build) idle VmRSS: {kb} kB");
    }
}

#[test]
fn pending_restart_and_key_change() {
    if !have_salt() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut env = Env::new(false);
    env.start_master();
    env.start_rust_minion("rs3", &[("role", "app")]);

    // Pending until accepted: never answers meanwhile.
    wait_for("rs3 in minions_pre", Duration::from_secs(120), || env.keys_in("minions_pre") == ["rs3"]);
    let (_, v) = env.salt(5, &["rs3", "test.ping"]);
    assert_ne!(v["rs3"], json!(true));
    let log = env.stderr_log("rs3");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("The Salt Master has cached the public key for this node"), "{text}");
    let accepted = env.salt_key(&["-a", "rs3", "-y"]);
    eprintln!("salt-key -a: {accepted}");
    assert_eq!(env.keys_in("minions"), ["rs3"]);
    let t = Instant::now();
    env.wait_ping(&["rs3"], Duration::from_secs(60));
    eprintln!("rs3 answered {:.1}s after its key was accepted", t.elapsed().as_secs_f64());

    // Master restart (same root, same ports): the minion notices the new AES key and goes on.
    env.stop_master();
    env.start_master();
    let t = Instant::now();
    env.wait_ping(&["rs3"], Duration::from_secs(60));
    eprintln!("rs3 answered {:.1}s after the master restarted", t.elapsed().as_secs_f64());
    let (_, v) = env.salt(30, &["rs3", "cmd.run", "echo back"]);
    assert_eq!(v, json!({"rs3": "back"}));

    // A master with a new key (its key pair deleted; the minion's key stays accepted there, so
    // it publishes to rs3): refused for good, logged, never answered.
    let cached_before = fs::read_to_string(env.minion_root("rs3").join("etc/salt/pki/minion/minion_master.pub"));
    assert!(cached_before.is_ok());
    env.stop_master();
    // 3008 names the pair after the master id (`<id>.pem`, `<id>.pub`; `master.pem` before).
    let pki = env.r().join("etc/salt/pki/master");
    let old_keys: Vec<PathBuf> =
        fs::read_dir(&pki).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect()).unwrap_or_default();
    assert!(old_keys.iter().any(|p| p.extension().is_some_and(|e| e == "pem")), "no master key in {pki:?}");
    for f in &old_keys {
        let _ = fs::remove_file(f);
    }
    env.start_master();
    assert_eq!(env.keys_in("minions"), ["rs3"]);
    let new_pub = old_keys.iter().find(|p| p.extension().is_some_and(|e| e == "pub")).map(fs::read_to_string);
    let Some(Ok(new_pub)) = new_pub else { panic!("the restarted master wrote no public key") };
    assert_ne!(
        salt_pem_body(&new_pub),
        salt_pem_body(cached_before.as_deref().unwrap_or_default()),
        "the master key did not change"
    );
    let refused = "The master key has changed";
    let count = |log: &Path| fs::read_to_string(log).unwrap_or_default().matches(refused).count();
    for round in 0..2 {
        let (_, v) = env.salt(10, &["rs3", "test.ping"]);
        assert_ne!(v["rs3"], json!(true), "round {round}: the minion answered a master whose key changed");
    }
    wait_for("the refusal in the minion's log", Duration::from_secs(60), || count(&log) >= 2);
    if let Some(line) = fs::read_to_string(&log).unwrap_or_default().lines().find(|l| l.contains(refused)) {
        eprintln!("refusal logged: {line}");
    }
    // Restarted, the minion refuses it at sign-in too.
    env.stop_minion("rs3");
    let before = count(&log);
    env.start_rust_minion("rs3", &[("role", "app")]);
    wait_for("the refusal at start-up", Duration::from_secs(60), || count(&log) > before);
    let (_, v) = env.salt(10, &["rs3", "test.ping"]);
    assert_ne!(v["rs3"], json!(true));
    let cached_after = fs::read_to_string(env.minion_root("rs3").join("etc/salt/pki/minion/minion_master.pub"));
    assert_eq!(cached_before.ok(), cached_after.ok(), "the cached master key must not be replaced");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(text.matches("Cached the master public key").count(), 1, "trusted on first use only");
}
