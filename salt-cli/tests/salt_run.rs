//! `salt-run-rs jobs.*` against the job cache of a REAL `salt-master` 3008.5, on jobs a real
//! `salt-minion` ran for the stock `salt` CLI, compared with the stock `salt-run`.

mod common;

use std::time::Duration;

use common::{have_salt, run, wait_for, Env, Output, SERIAL};
use serde_json::{json, Value as J};

const SALT_RUN_RS: &str = env!("CARGO_BIN_EXE_salt-run-rs");
const LIMIT: Duration = Duration::from_secs(60);

fn salt_run(env: &Env, ours: bool, args: &[&str]) -> Output {
    let mut cmd = if ours { env.ours(SALT_RUN_RS) } else { env.stock("salt-run") };
    cmd.args(args);
    run(cmd, LIMIT)
}

fn parse(o: &Output) -> J {
    match serde_json::from_str(&o.stdout) {
        Ok(j) => j,
        Err(e) => panic!("not JSON ({e}): {o:?}"),
    }
}

/// A job run through the stock `salt` (exit code `code`); its jid.
fn stock_job(env: &Env, code: i32, args: &[&str]) -> String {
    let mut cmd = env.stock("salt");
    cmd.args(args).arg("--show-jid");
    let o = run(cmd, LIMIT);
    assert_eq!(o.code, code, "{o:?}");
    let jid = o.stdout.lines().next().and_then(|l| l.strip_prefix("jid: ")).unwrap_or("").to_string();
    assert_eq!(jid.len(), 20, "{o:?}");
    jid
}

#[test]
fn salt_run_rs_matches_stock_salt_run() {
    if !have_salt() {
        return;
    }
    let _serial = SERIAL.lock();
    let mut env = Env::new();
    env.start_master();
    env.start_minion("m1");
    let mut accept = env.stock("salt-key");
    accept.args(["-a", "m1", "-y"]);
    assert_eq!(run(accept, LIMIT).code, 0);
    wait_for("m1 to answer", LIMIT, || {
        let mut cmd = env.stock("salt");
        cmd.args(["m1", "test.ping", "--out", "json", "-t", "3"]);
        run(cmd, LIMIT).stdout.contains("true")
    });
    let ping = stock_job(&env, 0, &["m1", "test.ping"]);
    let grains = stock_job(&env, 0, &["m1", "grains.item", "os", "id"]);
    let shell = stock_job(&env, 1, &["-L", "m1,ghost", "cmd.run", "echo one; echo two"]);

    for jid in [&ping, &grains, &shell] {
        for args in [
            vec!["jobs.lookup_jid", jid.as_str()],
            vec!["jobs.lookup_jid", jid.as_str(), "--out", "json"],
            vec!["jobs.lookup_jid", jid.as_str(), "--out", "yaml"],
            vec!["jobs.lookup_jid", jid.as_str(), "missing=True"],
            vec!["jobs.list_job", jid.as_str()],
            vec!["jobs.list_job", jid.as_str(), "--out", "json"],
        ] {
            let stock = salt_run(&env, false, &args);
            let ours = salt_run(&env, true, &args);
            assert_eq!(ours.stdout, stock.stdout, "stdout of {args:?}");
            assert_eq!(ours.code, stock.code, "exit code of {args:?}");
        }
    }
    let ours = parse(&salt_run(&env, true, &["jobs.lookup_jid", &grains, "--out", "json"]));
    assert_eq!(ours["m1"]["id"], json!("m1"));
    let ours = parse(&salt_run(&env, true, &["jobs.lookup_jid", &shell, "--out", "json"]));
    assert_eq!(ours, json!({"m1": "one\ntwo"}));

    // list_jobs: the same jobs (each salt-run adds its own runner job, so filter on the function).
    for filter in ["search_function=test.*", "search_function=grains.*,cmd.*", "search_target=ghost"] {
        let stock = parse(&salt_run(&env, false, &["jobs.list_jobs", filter, "--out", "json"]));
        let ours = parse(&salt_run(&env, true, &["jobs.list_jobs", filter, "--out", "json"]));
        assert_eq!(ours, stock, "{filter}");
        assert!(ours.as_object().is_some_and(|o| !o.is_empty()), "{filter}: {ours}");
    }

    // A jid that does not exist: nothing, like stock.
    let stock = salt_run(&env, false, &["jobs.lookup_jid", "20000101000000000000"]);
    let ours = salt_run(&env, true, &["jobs.lookup_jid", "20000101000000000000"]);
    assert_eq!((ours.stdout.as_str(), ours.code), (stock.stdout.as_str(), stock.code));

    // Our runner run is itself a job in the cache, which the stock salt-run can list.
    let ours = salt_run(&env, true, &["jobs.list_jobs", "search_function=runner.jobs.list_jobs", "--out", "json"]);
    let mine = parse(&ours);
    let Some(runner_jobs) = mine.as_object() else { panic!("{ours:?}") };
    assert!(!runner_jobs.is_empty());
    for jid in runner_jobs.keys() {
        let stock = parse(&salt_run(&env, false, &["jobs.list_job", jid, "--out", "json"]));
        assert_eq!(stock["Function"], json!("runner.jobs.list_jobs"));
        assert_eq!(stock["Result"].as_object().map(|o| o.len()), Some(1), "{stock}");
    }

    // manage.status / up / down: an accepted key whose minion never runs is down.
    let pki = env.pki_dir();
    assert!(std::fs::copy(pki.join("minions/m1"), pki.join("minions/m9")).is_ok());
    for args in [
        &["manage.status", "timeout=2", "gather_job_timeout=1"][..],
        &["manage.status", "timeout=2", "gather_job_timeout=1", "--out", "json"],
        &["manage.up", "timeout=2", "gather_job_timeout=1"],
        &["manage.down", "timeout=2", "gather_job_timeout=1"],
        &["manage.status", "tgt=m1", "timeout=2"],
    ] {
        let stock = salt_run(&env, false, args);
        let ours = salt_run(&env, true, args);
        assert_eq!(ours.stdout, stock.stdout, "stdout of {args:?}");
        assert_eq!(ours.code, stock.code, "exit code of {args:?}");
    }
    let status = parse(&salt_run(&env, true, &["manage.status", "timeout=2", "gather_job_timeout=1", "--out", "json"]));
    assert_eq!(status, json!({"up": ["m1"], "down": ["m9"]}));
    assert!(std::fs::remove_file(pki.join("minions/m9")).is_ok());

    // jobs.active: a job still running on the minion shows up with its pid.
    let mut cmd = env.stock("salt");
    cmd.args(["m1", "test.sleep", "20", "--async"]);
    let o = run(cmd, LIMIT);
    let sleeping = o.stdout.trim().rsplit(' ').next().unwrap_or("").to_string();
    assert_eq!(sleeping.len(), 20, "{o:?}");
    let mut active = J::Null;
    wait_for("the sleeping job to be active", LIMIT, || {
        active = parse(&salt_run(&env, true, &["jobs.active", "--out", "json"]));
        active.get(&sleeping).is_some()
    });
    let job = &active[&sleeping];
    assert_eq!(job["Function"], json!("test.sleep"));
    assert_eq!(job["Returned"], json!([]));
    assert!(job["Running"][0]["m1"].as_i64().is_some_and(|pid| pid > 0), "{job}");
}
