//! `salt-rs` against a REAL `salt-master` 3008.5 with a real `salt-minion`, compared with the stock
//! `salt` CLI on the same master (see `common/mod.rs` for the environment).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{have_salt, our_master, real_stderr, run, wait_for, Env, Output, SERIAL};
use serde_json::Value as J;

const SALT_RS: &str = env!("CARGO_BIN_EXE_salt-rs");
const LIMIT: Duration = Duration::from_secs(60);

fn salt(env: &Env, ours: bool, args: &[&str]) -> Output {
    let mut cmd: Command = if ours { env.ours(SALT_RS) } else { env.stock("salt") };
    cmd.args(args);
    run(cmd, LIMIT)
}

fn json(o: &Output) -> J {
    match serde_json::from_str(&o.stdout) {
        Ok(j) => j,
        Err(e) => panic!("not JSON ({e}): {o:?}"),
    }
}

/// The master with one accepted real minion that answers `test.ping`.
fn env_with_minion() -> Env {
    let mut env = Env::new();
    env.start_master();
    accept_m1(env)
}

fn accept_m1(mut env: Env) -> Env {
    env.start_minion("m1");
    let mut accept = env.stock("salt-key");
    accept.args(["-a", "m1", "-y"]);
    let o = run(accept, LIMIT);
    assert_eq!(o.code, 0, "{o:?}");
    wait_for("m1 to answer test.ping", Duration::from_secs(60), || {
        salt(&env, false, &["m1", "test.ping", "--out", "json", "-t", "3"]).stdout.contains("true")
    });
    env
}

#[test]
fn salt_rs_matches_stock_salt() {
    if !have_salt() {
        return;
    }
    let _serial = SERIAL.lock();
    let env = env_with_minion();

    // The same jobs through both CLIs: identical output, json and nested (the default), same codes.
    let jobs: [&[&str]; 4] = [
        &["*", "test.ping"],
        &["m1", "cmd.run", "echo hi; echo there"],
        &["-L", "m1", "grains.item", "os", "id", "num_cpus"],
        &["-C", "m1 or G@os:Nowhere", "cmd.run", "exit 3"],
    ];
    for job in jobs {
        for out in [&["--out", "json"][..], &[][..], &["--out", "yaml"][..], &["--out", "txt"][..]] {
            let args: Vec<&str> = job.iter().chain(out).copied().collect();
            let stock = salt(&env, false, &args);
            let ours = salt(&env, true, &args);
            assert_eq!(ours.stdout, stock.stdout, "stdout of {args:?}\nours: {ours:?}\nstock: {stock:?}");
            assert_eq!(ours.code, stock.code, "exit code of {args:?}\nours: {ours:?}\nstock: {stock:?}");
            assert_eq!(real_stderr(&ours.stderr), real_stderr(&stock.stderr), "stderr of {args:?}");
        }
    }
    let ping = json(&salt(&env, true, &["*", "test.ping", "--out", "json"]));
    assert_eq!(ping, serde_json::json!({"m1": true}));

    // --subset: only minions that have the function are picked.
    for args in [&["--subset", "1", "*", "test.ping"][..], &["--subset", "1", "*", "test.nosuchfun"]] {
        let stock = salt(&env, false, args);
        let ours = salt(&env, true, args);
        assert_eq!((&ours.stdout, ours.code), (&stock.stdout, stock.code), "{args:?}");
    }

    // -d / sys.doc: the documentation printed once per function, like stock.
    for args in
        [&["m1", "-d", "test.ping"][..], &["m1", "-d", "test.echo", "--out", "json"], &["-d", "m1", "test.ping"]]
    {
        let stock = salt(&env, false, args);
        let ours = salt(&env, true, args);
        assert_eq!((&ours.stdout, ours.code), (&stock.stdout, stock.code), "{args:?}");
    }
    assert!(salt(&env, true, &["m1", "-d", "test.ping"]).stdout.starts_with("test.ping:\n"));

    // --preview-target resolves the target from the master's files, like stock.
    for args in [
        &["--preview-target", "*"][..],
        &["--preview-target", "-G", "os:*"],
        &["--preview-target", "-C", "G@id:m1 and m*"],
        &["--preview-target", "-L", "m1,ghost"],
        &["--preview-target", "nosuch*"],
    ] {
        let stock = salt(&env, false, args);
        let ours = salt(&env, true, args);
        assert_eq!((&ours.stdout, ours.code), (&stock.stdout, stock.code), "{args:?}");
    }
    assert_eq!(salt(&env, true, &["--preview-target", "-G", "os:*"]).stdout, "- m1\n");

    // A target nothing matches: same message, exit code 2.
    let stock = salt(&env, false, &["nosuch*", "test.ping"]);
    let ours = salt(&env, true, &["nosuch*", "test.ping"]);
    assert_eq!(ours.stdout, stock.stdout);
    assert_eq!(ours.stdout.trim(), "No minions matched the target. No command was sent, no jid was assigned.");
    assert_eq!((ours.code, stock.code), (2, 2));

    // A listed minion that does not exist: reported as not returning, exit code 1, like stock.
    let stock = salt(&env, false, &["-L", "m1,ghost", "test.ping"]);
    let ours = salt(&env, true, &["-L", "m1,ghost", "test.ping"]);
    let strip_jid = |s: &str| s.lines().filter(|l| !l.contains("jobs.lookup_jid")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip_jid(&ours.stdout), strip_jid(&stock.stdout));
    assert!(ours.stdout.contains("ghost:\n    Minion did not return. [No response]"), "{ours:?}");
    assert_eq!((ours.code, stock.code), (1, 1));

    // --async: the jid line, and the job's return reaches the job cache (read by the stock salt-run).
    let ours = salt(&env, true, &["m1", "test.echo", "async-works", "--async"]);
    assert_eq!(ours.code, 0, "{ours:?}");
    let jid = ours.stdout.trim().strip_prefix("Executed command with job ID: ").unwrap_or("").to_string();
    assert!(jid.len() == 20 && jid.chars().all(|c| c.is_ascii_digit()), "{ours:?}");
    wait_for("the async job's return in the job cache", LIMIT, || {
        let mut cmd = env.stock("salt-run");
        cmd.args(["jobs.lookup_jid", &jid, "--out", "json"]);
        let o = run(cmd, LIMIT);
        serde_json::from_str::<J>(&o.stdout).ok() == Some(serde_json::json!({"m1": "async-works"}))
    });

    // A job that outlives -t and gather_job_timeout (3 s here): each saltutil.find_job round finds
    // it still running and the CLI keeps waiting.
    let ours = salt(&env, true, &["m1", "test.sleep", "7", "-t", "1", "--out", "json"]);
    assert_eq!((json(&ours), ours.code), (serde_json::json!({"m1": true}), 0), "{ours:?}");

    // --show-jid and -v print the jid first.
    let ours = salt(&env, true, &["m1", "test.ping", "--show-jid"]);
    assert!(ours.stdout.starts_with("jid: "), "{ours:?}");
    let ours = salt(&env, true, &["m1", "test.ping", "-v"]);
    assert!(ours.stdout.starts_with("Executing job with jid "), "{ours:?}");

    // --static: one document with every return.
    let stock = salt(&env, false, &["*", "test.ping", "--static", "--out", "json"]);
    let ours = salt(&env, true, &["*", "test.ping", "--static", "--out", "json"]);
    assert_eq!(json(&ours), json(&stock));

    // A wrong key in cachedir/.root_key: the master refuses, nothing runs.
    let key_file = env.cachedir().join(".root_key");
    let good = std::fs::read(&key_file).unwrap_or_default();
    assert!(!good.is_empty());
    assert!(std::fs::write(&key_file, b"not-the-key").is_ok());
    let stock = salt(&env, false, &["*", "test.ping"]);
    let ours = salt(&env, true, &["*", "test.ping"]);
    let _ = std::fs::write(&key_file, &good);
    assert_eq!(ours.stdout, stock.stdout);
    assert_eq!(ours.stdout.trim(), "Authentication error occurred.");
    // Salt exits 0 here; we exit 1 (an error is an error).
    assert_eq!(ours.code, 1);
}

/// Our CLI against OUR master (`salt-master-rs`) with a real `salt-minion`: the same answers as
/// the stock `salt` CLI gets from it.
#[test]
fn salt_rs_against_our_master() {
    if !have_salt() {
        return;
    }
    let Some(exe) = our_master(SALT_RS) else { return };
    let _serial = SERIAL.lock();
    let mut env = Env::new();
    env.start_master_exe(&exe);
    let env = accept_m1(env);
    for args in [
        &["*", "test.ping", "--out", "json"][..],
        &["m1", "cmd.run", "echo hi; echo there"],
        &["-G", "id:m1", "grains.item", "os", "id", "--out", "yaml"],
        &["-C", "m1 and G@os:*", "test.ping"],
        &["nosuch", "test.ping"],
    ] {
        let stock = salt(&env, false, args);
        let ours = salt(&env, true, args);
        assert_eq!(ours.stdout, stock.stdout, "stdout of {args:?}\nours: {ours:?}\nstock: {stock:?}");
        assert_eq!(ours.code, stock.code, "exit code of {args:?}");
    }
    assert_eq!(json(&salt(&env, true, &["m1", "test.ping", "--out", "json"])), serde_json::json!({"m1": true}));
    let ours = salt(&env, true, &["m1", "test.echo", "ours", "--async"]);
    let jid = ours.stdout.trim().rsplit(' ').next().unwrap_or("").to_string();
    assert_eq!(jid.len(), 20, "{ours:?}");
    wait_for("the async return in our master's job cache", LIMIT, || {
        let mut cmd = env.ours(env!("CARGO_BIN_EXE_salt-run-rs"));
        cmd.args(["jobs.lookup_jid", &jid, "--out", "json"]);
        run(cmd, LIMIT).stdout.contains("\"ours\"")
    });
}

/// What the tools say without a master, with a bad configuration and with bad options (no Salt
/// needed).
#[test]
fn salt_rs_errors_without_a_master() {
    let Ok(root) = tempfile::Builder::new().prefix("sc").tempdir_in("/tmp") else { panic!("tempdir") };
    let conf = root.path().join("etc/salt");
    assert!(std::fs::create_dir_all(&conf).is_ok());
    let r = root.path().display().to_string();
    assert!(std::fs::write(conf.join("master"), format!("root_dir: {r}\nret_port: 25799\n")).is_ok());
    let salt_rs = |args: &[&str]| {
        let mut cmd = Command::new(SALT_RS);
        cmd.arg("-c").arg(&conf).args(args);
        run(cmd, LIMIT)
    };

    // No master: no publish_pull.ipc under sock_dir.
    let o = salt_rs(&["*", "test.ping"]);
    assert_eq!(o.stdout, "The salt master could not be contacted. Is master running?\n");
    assert_eq!(
        o.stderr.trim(),
        format!("[ERROR   ] Unable to connect to the salt master publisher at {r}/var/run/salt/master")
    );
    assert_eq!(o.code, 1);
    let o = salt_rs(&["*", "test.ping", "--async"]);
    assert_eq!(o.code, 1, "{o:?}");

    // A master that looks alive but does not answer on ret_port: Salt's timeout message.
    let sock_dir = root.path().join("var/run/salt/master");
    assert!(std::fs::create_dir_all(&sock_dir).is_ok());
    assert!(std::fs::write(sock_dir.join("publish_pull.ipc"), b"").is_ok());
    let o = salt_rs(&["*", "test.ping", "--async", "-t", "1"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("Salt request timed out. The master is not responding."), "{o:?}");

    // Too few arguments, an unknown option.
    assert_eq!(salt_rs(&["*"]).code, 42);
    assert_eq!(salt_rs(&["*", "test.ping", "--no-such-option"]).code, 64);

    // A bad value in the config names the key and the file.
    assert!(std::fs::write(conf.join("master"), format!("root_dir: {r}\nret_port: abc\n")).is_ok());
    let o = salt_rs(&["*", "test.ping"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("ret_port") && o.stderr.contains(&conf.join("master").display().to_string()), "{o:?}");
}
