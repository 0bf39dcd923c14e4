//! `salt-key-rs` against the key store of a REAL `salt-master` 3008.5 with a real `salt-minion`
//! waiting for acceptance: what it prints is compared with the stock `salt-key` on the same
//! state, and what it changes is checked through the stock tools (and the reverse).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::{have_salt, real_stderr, run, wait_for, Env, Output, SERIAL};
use serde_json::json;

const SALT_KEY_RS: &str = env!("CARGO_BIN_EXE_salt-key-rs");
const LIMIT: Duration = Duration::from_secs(60);

fn key(env: &Env, ours: bool, args: &[&str]) -> Output {
    let mut cmd = if ours { env.ours(SALT_KEY_RS) } else { env.stock("salt-key") };
    cmd.args(args);
    run(cmd, LIMIT)
}

fn listing(env: &Env) -> serde_json::Value {
    let o = key(env, false, &["-L", "--out", "json"]);
    match serde_json::from_str(&o.stdout) {
        Ok(j) => j,
        Err(e) => panic!("stock salt-key -L --out json: {e}: {o:?}"),
    }
}

#[test]
fn salt_key_rs_matches_stock_salt_key() {
    if !have_salt() {
        return;
    }
    let _serial = SERIAL.lock();
    let mut env = Env::new();
    env.start_master();
    env.start_minion("m1");
    let pki = env.pki_dir();
    let m1_pub = fs::read_to_string(pki.join("minions_pre/m1")).unwrap_or_default();
    assert!(m1_pub.contains("PUBLIC KEY"));
    // Two more keys to play with: x1 pending, x2 rejected (the same key text, as salt-key allows).
    assert!(fs::write(pki.join("minions_pre/x1"), &m1_pub).is_ok());
    assert!(fs::write(pki.join("minions_rejected/x2"), &m1_pub).is_ok());

    // Read-only commands print exactly what the stock salt-key prints.
    for args in [
        &["-L"][..],
        &["-L", "--out", "json"],
        &["-L", "--out", "yaml"],
        &["-l", "un"],
        &["-l", "rej", "--out", "json"],
        &["-F"],
        &["-F", "--out", "json"],
        &["-f", "x*"],
        &["-P"],
        &["-p", "m1", "--out", "json"],
        &["-a", "nosuch*"],
        &["-r", "nosuch*", "--include-all"],
        // Without -y and with no answer on stdin nothing is changed.
        &["-a", "x1"],
    ] {
        let stock = key(&env, false, args);
        let ours = key(&env, true, args);
        assert_eq!(ours.stdout, stock.stdout, "stdout of {args:?}");
        assert_eq!(ours.code, stock.code, "exit code of {args:?}");
        assert_eq!(real_stderr(&ours.stderr).is_empty(), real_stderr(&stock.stderr).is_empty(), "stderr of {args:?}");
    }
    assert_eq!(listing(&env)["minions_pre"], json!(["m1", "x1"]));
    let bad = key(&env, true, &["-l", "bogus"]);
    assert_eq!(bad.code, 64, "{bad:?}");

    // Ours accepts the real minion; the stock salt-key sees it, and the minion gets in.
    let ours = key(&env, true, &["-a", "m1", "-y"]);
    assert_eq!(
        ours.stdout,
        "The following keys are going to be accepted:\nUnaccepted Keys:\nm1\nKey for minion m1 accepted.\n"
    );
    assert_eq!(listing(&env)["minions"], json!(["m1"]));
    assert_eq!(fs::metadata(pki.join("minions/m1")).map(|m| m.permissions().mode() & 0o777).ok(), Some(0o600));
    wait_for("m1 to answer test.ping once accepted", LIMIT, || {
        let mut cmd = env.stock("salt");
        cmd.args(["m1", "test.ping", "--out", "json", "-t", "3"]);
        run(cmd, LIMIT).stdout.contains("true")
    });

    // The reverse: the stock salt-key accepts x1 and rejects... ours sees the result.
    let stock = key(&env, false, &["-a", "x1", "-y"]);
    assert_eq!(stock.code, 0, "{stock:?}");
    let ours = key(&env, true, &["-L", "--out", "json"]);
    let j: serde_json::Value = serde_json::from_str(&ours.stdout).unwrap_or_default();
    assert_eq!(
        j,
        json!({"minions_pre": [], "minions_rejected": ["x2"], "minions": ["m1", "x1"], "minions_denied": []})
    );

    // Ours rejects x1 (an accepted key: --include-accepted), with the events Salt fires and the
    // rotation request (.dfn) that makes the master rotate its AES key.
    let dfn = env.cachedir().join(".dfn");
    let _ = fs::remove_file(&dfn);
    let ours = key(&env, true, &["-r", "x1", "--include-accepted", "-y"]);
    assert!(ours.stdout.ends_with("Key for minion x1 rejected.\n"), "{ours:?}");
    assert_eq!(listing(&env)["minions_rejected"], json!(["x1", "x2"]));
    let dfn_meta = fs::symlink_metadata(&dfn);
    // The real master's Maintenance may already have consumed it (it checks every 60 s).
    if let Ok(m) = dfn_meta {
        assert_eq!(m.permissions().mode() & 0o777, 0o400);
        assert!(fs::read_to_string(&dfn).unwrap_or_default().ends_with("_master"));
    }

    // Ours deletes both rejected keys; the stock salt-key no longer lists them.
    let stock_view = key(&env, false, &["-d", "x*"]);
    assert!(stock_view.stdout.starts_with("The following keys are going to be deleted:\nRejected Keys:\nx1\nx2\n"));
    let ours = key(&env, true, &["-d", "x*", "-y"]);
    assert_eq!(
        ours.stdout,
        "The following keys are going to be deleted:\nRejected Keys:\nx1\nx2\nKey for minion x1 deleted.\nKey for minion x2 deleted.\n"
    );
    assert_eq!(
        listing(&env),
        json!({"minions_pre": [], "minions_rejected": [], "minions": ["m1"], "minions_denied": []})
    );
}

#[test]
fn salt_key_rs_fires_key_events_on_the_real_master_bus() {
    if !have_salt() {
        return;
    }
    let _serial = SERIAL.lock();
    let mut env = Env::new();
    env.start_master();
    env.start_minion("m1");
    let Ok(opts) = salt_cli::opts::MasterOpts::load(&env.conf_dir()) else { panic!("config") };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { panic!("runtime") };
    rt.block_on(async {
        let Ok(mut sub) = salt_cli::events::Subscriber::connect(&opts, Duration::from_secs(10)).await else {
            panic!("cannot subscribe to the master's event bus")
        };
        let o = key(&env, true, &["-a", "m1", "-y"]);
        assert_eq!(o.code, 0, "{o:?}");
        let o = key(&env, true, &["-d", "m1", "-y"]);
        assert_eq!(o.code, 0, "{o:?}");
        let mut acts = Vec::new();
        while acts.len() < 2 {
            let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(20), sub.next()).await else {
                panic!("no salt/key events after {acts:?}")
            };
            if ev.tag == "salt/key" {
                let get =
                    |k: &str| salt_cli::py::get(&ev.data, k).and_then(salt_cli::py::as_str).unwrap_or("").to_string();
                acts.push((get("act"), get("id"), salt_cli::py::get(&ev.data, "pub").is_some()));
            }
        }
        assert_eq!(acts, vec![("accepted".into(), "m1".into(), true), ("delete".into(), "m1".into(), false)]);
    });
}

/// `--gen-keys`: a key pair Salt's own code loads, with the fingerprint Salt computes for it (the
/// stock 3008.5 `salt-key --gen-keys` writes the files and then fails printing the fingerprint).
#[test]
fn salt_key_rs_gen_keys() {
    if !have_salt() {
        return;
    }
    let Ok(dir) = tempfile::Builder::new().prefix("sc").tempdir_in("/tmp") else { panic!("tempdir") };
    let conf = dir.path().join("conf");
    assert!(fs::create_dir_all(&conf).is_ok());
    let mut cmd = std::process::Command::new(SALT_KEY_RS);
    cmd.arg("-c").arg(&conf).args(["--gen-keys", "web9", "--gen-keys-dir"]).arg(dir.path());
    let o = run(cmd, LIMIT);
    assert_eq!(o.code, 0, "{o:?}");
    let (pem, pubkey) = (dir.path().join("web9.pem"), dir.path().join("web9.pub"));
    for p in [&pem, &pubkey] {
        assert_eq!(fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok(), Some(0o400), "{}", p.display());
    }
    let script = "import sys, salt.crypt, salt.utils.crypt\n\
                  k = salt.crypt.PrivateKey(open(sys.argv[1], 'rb').read())\n\
                  print(k.key.key_size, salt.utils.crypt.pem_finger(key=open(sys.argv[2], 'rb').read()))";
    let mut py = std::process::Command::new(common::salt_bin("python3"));
    py.args(["-c", script]).arg(&pem).arg(&pubkey);
    let py = run(py, LIMIT);
    let mut words = py.stdout.split_whitespace();
    assert_eq!(words.next(), Some("2048"), "{py:?}");
    let finger = words.next().unwrap_or("").to_string();
    assert_eq!(o.stdout, format!("return:\n    {finger}\n"));
    // A second run keeps the pair.
    let before = fs::read(&pem).unwrap_or_default();
    let mut cmd = std::process::Command::new(SALT_KEY_RS);
    cmd.arg("-c").arg(&conf).args(["--gen-keys", "web9", "--gen-keys-dir"]).arg(dir.path());
    assert_eq!(run(cmd, LIMIT).stdout, o.stdout);
    assert_eq!(fs::read(&pem).unwrap_or_default(), before);
}
