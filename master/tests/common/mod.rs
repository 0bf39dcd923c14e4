//! Harness of the master's real-Salt tests: one temporary root under
//! `/tmp` (short: Unix socket paths stay under 107 bytes) holding our
//! master's config (`ma/`), and one config dir per minion; every process
//! started runs in its own process group, killed when the test ends,
//! whatever happens; every wait is bounded.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use salt_proto::envelope::{self, AuthOutcome, AuthRequest};
use salt_proto::{msgpack, Crypticle, EncAlgo, PrivateKey, SigAlgo, Value};
use zmtp::{Message, Socket, SocketType};

#[allow(unused_imports)]
pub use testkit::{have_salt, run as run_output, salt_bin, wait_for, wait_for_explained, Proc, StopScope};

/// Run a command to completion within `limit`: `(exit code or -1, stdout, stderr)`.
pub fn run(cmd: Command, limit: Duration) -> (i32, String, String) {
    run_output(cmd, limit).parts()
}

/// `salt-minion-rs`, next to this test's binary (built on demand).
pub fn rust_minion_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.to_path_buf();
    let bin = dir.join("salt-minion-rs");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let st = Command::new(cargo).args(["build", "-q", "-p", "minion", "--bin", "salt-minion-rs"]).status();
        if !matches!(st, Ok(s) if s.success()) {
            eprintln!("SKIP part: cannot build salt-minion-rs");
            return None;
        }
    }
    bin.exists().then_some(bin)
}

/// One master of ours and its minions under one temporary root.
pub struct Env {
    pub root: tempfile::TempDir,
    pub pub_port: u16,
    pub ret_port: u16,
    pub master: Option<Proc>,
    pub minions: Vec<Proc>,
    /// Appended to every minion config written after it is set.
    pub minion_extra: String,
}

impl Env {
    /// A root with our master's config (`extra` appended to `master`), on
    /// the port pair `preferred`/`preferred+1`, or the next free pair in the
    /// hundred it lies in (this crate's ranges 25500-25599 and 25600-25699,
    /// below the kernel's ephemeral range 32768-60999, so no outgoing
    /// connection of another program can hold them as source ports).
    pub fn new(preferred: u16, extra: &str) -> Env {
        let root = tempfile::Builder::new().prefix("mt").tempdir_in("/tmp");
        let Ok(root) = root else { panic!("no temp dir") };
        let (pub_port, ret_port) = testkit::port_pair(preferred);
        let ma = root.path().join("ma");
        let _ = fs::create_dir_all(ma.join("master.d"));
        let conf = format!(
            "root_dir: {}\ninterface: 127.0.0.1\npublish_port: {pub_port}\nret_port: {ret_port}\nid: t_master\n\
             log_level_logfile: debug\nloop_interval: 2\n{extra}",
            ma.display()
        );
        let _ = fs::write(ma.join("master"), conf);
        Env { root, pub_port, ret_port, master: None, minions: Vec::new(), minion_extra: String::new() }
    }

    pub fn conf(&self) -> PathBuf {
        self.root.path().join("ma")
    }

    pub fn master_root(&self) -> PathBuf {
        self.root.path().join("ma")
    }

    pub fn pki(&self) -> PathBuf {
        self.master_root().join("etc/salt/pki/master")
    }

    pub fn cachedir(&self) -> PathBuf {
        self.master_root().join("var/cache/salt/master")
    }

    pub fn sock_dir(&self) -> PathBuf {
        self.master_root().join("var/run/salt/master")
    }

    /// Start our master and wait until its sockets are up.
    pub fn start_master(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_salt-master-rs"));
        cmd.arg("-c").arg(self.conf()).args(["-l", "info"]);
        let log = self.root.path().join("master.log");
        self.master = Some(Proc::spawn("salt-master-rs", cmd, &log));
        let sock = self.sock_dir();
        let ret = self.ret_port;
        let log_path = log.clone();
        let master = self.master.as_mut();
        let Some(master) = master else { return };
        let pull = sock.join("publish_pull.ipc");
        let bus = sock.join("master_event_pub.ipc");
        wait_for_explained(
            "our master's sockets",
            Duration::from_secs(120),
            || {
                if !master.alive() {
                    panic!("our master exited: {}", fs::read_to_string(&log_path).unwrap_or_default());
                }
                pull.exists() && bus.exists() && std::net::TcpStream::connect(("127.0.0.1", ret)).is_ok()
            },
            || {
                format!(
                    "publish_pull.ipc: {}, master_event_pub.ipc: {}, port {ret} bindable: {}\nmaster log:\n{}",
                    pull.exists(),
                    bus.exists(),
                    testkit::port_free(ret),
                    fs::read_to_string(&log_path).unwrap_or_default()
                )
            },
        );
    }

    pub fn stop_master(&mut self) -> bool {
        self.master.take().map(|mut m| m.stop(StopScope::Process, Duration::from_secs(10)).is_some()).unwrap_or(true)
    }

    fn minion_conf(&self, dir: &str, id: &str) -> PathBuf {
        let d = self.root.path().join(dir);
        let _ = fs::create_dir_all(&d);
        let conf = format!(
            "root_dir: {}\nid: {id}\nmaster: 127.0.0.1\nmaster_port: {}\npublish_port: {}\nacceptance_wait_time: 1\n\
             log_level_logfile: debug\nrandom_reauth_delay: 0\nmine_enabled: False\n{}",
            d.display(),
            self.ret_port,
            self.pub_port,
            self.minion_extra
        );
        let _ = fs::write(d.join("minion"), conf);
        d
    }

    /// Start a real salt-minion with id `id`.
    pub fn start_salt_minion(&mut self, id: &str) {
        let d = self.minion_conf(&format!("py-{id}"), id);
        let mut cmd = Command::new(salt_bin("salt-minion"));
        cmd.arg("-c").arg(&d).args(["-l", "info"]);
        let log = self.root.path().join(format!("minion-{id}.log"));
        self.minions.push(Proc::spawn(id, cmd, &log));
    }

    /// Start our salt-minion-rs with id `id`; false if it is not available.
    pub fn start_rust_minion(&mut self, id: &str) -> bool {
        let Some(bin) = rust_minion_bin() else { return false };
        let d = self.minion_conf(&format!("rs-{id}"), id);
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(&d).args(["-l", "info"]);
        let log = self.root.path().join(format!("minion-{id}.log"));
        self.minions.push(Proc::spawn(id, cmd, &log));
        true
    }

    /// Run a stock Salt CLI (`salt`, `salt-key`, `salt-run`) against our master.
    pub fn cli(&self, tool: &str, args: &[&str], limit: Duration) -> (i32, String, String) {
        let mut cmd = Command::new(salt_bin(tool));
        cmd.arg("-c").arg(self.conf()).args(args).current_dir("/tmp");
        run(cmd, limit)
    }

    /// The JSON document in a CLI's stdout (text before it skipped).
    pub fn json(out: &str) -> serde_json::Value {
        let start = out.find('{').unwrap_or(0);
        serde_json::from_str(&out[start..]).unwrap_or(serde_json::Value::Null)
    }

    pub fn master_log(&self) -> String {
        fs::read_to_string(self.root.path().join("master.log")).unwrap_or_default()
    }

    pub fn dump_logs(&self) {
        testkit::dump_log_tails(self.root.path(), 40);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        self.minions.clear();
        self.master = None;
    }
}

// --- a minion / local client built from salt_proto, for request-level tests

/// One request on a fresh REQ socket; the decoded reply (bounded wait).
pub async fn request(port: u16, frame: Vec<u8>) -> Value {
    let s = Socket::new(SocketType::Req);
    if s.connect(&format!("tcp://127.0.0.1:{port}")).await.is_err() {
        panic!("connect");
    }
    if s.send(Message::from(vec![Bytes::from(frame)])).await.is_err() {
        panic!("send");
    }
    let reply = match tokio::time::timeout(Duration::from_secs(30), s.recv()).await {
        Ok(Ok(m)) => m,
        other => panic!("no reply: {other:?}"),
    };
    s.close().await;
    msgpack::decode(reply.first().map(|b| &b[..]).unwrap_or_default()).unwrap_or(Value::Nil)
}

/// A signed-in minion's credentials.
pub struct Minion {
    pub id: String,
    pub key: PrivateKey,
    pub session: Crypticle,
    pub tok: Vec<u8>,
}

/// `_auth` as `id` with `key`; the credentials if accepted.
pub async fn sign_in(port: u16, id: &str, key: &PrivateKey) -> Result<Minion, String> {
    let token = Crypticle::generate_key_string().map_err(|e| e.to_string())?;
    let req = AuthRequest::new(id, &key.public_key(), None, token.as_bytes(), EncAlgo::OaepSha1, SigAlgo::Pkcs1v15Sha1)
        .map_err(|e| e.to_string())?;
    let reply = request(port, req.to_request().encode()).await;
    match envelope::open_auth_reply(&reply, &req, key, None, None) {
        Ok(AuthOutcome::Accepted(creds)) => Ok(Minion {
            id: id.to_owned(),
            key: key.clone(),
            session: Crypticle::new(&creds.session).map_err(|e| e.to_string())?,
            tok: envelope::make_tok(key).map_err(|e| e.to_string())?,
        }),
        other => Err(format!("{other:?}")),
    }
}

/// A v3 aes request frame from `m` with `tok`.
pub fn aes_frame(m: &Minion, load: Value, tok: &[u8], nonce: &str) -> Vec<u8> {
    let r = envelope::seal_aes_request(
        &m.session,
        &m.id,
        load,
        nonce,
        salt_proto::util::unix_time(),
        tok,
        EncAlgo::OaepSha1,
        SigAlgo::Pkcs1v15Sha1,
    );
    match r {
        Ok(r) => r.encode(),
        Err(e) => panic!("seal: {e}"),
    }
}
