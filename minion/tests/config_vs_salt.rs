//! The Rust config loader against Salt's own `salt.config.minion_config`.
//!
//! `tests/data/config/<case>/expected.json` was produced by Salt 3008.5 from the same files with
//! `tests/data/gen_config_expected.py` (see there for the `@CONFDIR@`/`@USER@` placeholders).

use std::path::Path;

use minion::config::{Config, LoadOptions};
use salt_core::value::to_json;
use serde_json::Value as J;

fn copy_tree(src: &Path, dst: &Path, confdir: &str) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for entry in entries.flatten() {
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_tree(&from, &to, confdir);
        } else if entry.file_name() != "expected.json" {
            let text = std::fs::read_to_string(&from).unwrap_or_default();
            std::fs::write(&to, text.replace("@CONFDIR@", confdir))
                .unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
        }
    }
}

fn restore(v: J, tmp: &str, user: &str) -> J {
    match v {
        J::String(t) if t == user => J::String("@USER@".into()),
        J::String(t) => J::String(t.replace(tmp, "@CONFDIR@")),
        J::Array(a) => J::Array(a.into_iter().map(|x| restore(x, tmp, user)).collect()),
        J::Object(o) => J::Object(o.into_iter().map(|(k, x)| (k, restore(x, tmp, user))).collect()),
        other => other,
    }
}

/// Salt keeps numbers as written (`10` vs our `10.0`; a quoted `master_port` stays a string that
/// Salt `int()`s when used): compare numbers by value.
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::String(x), J::Number(y)) | (J::Number(y), J::String(x)) => x.parse::<f64>().ok() == y.as_f64(),
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn check_case(case: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config").join(case);
    let expected: J = serde_json::from_str(
        &std::fs::read_to_string(src.join("expected.json")).unwrap_or_else(|e| panic!("{case}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let conf = tmp.path().join("conf");
    let conf_s = conf.to_string_lossy().into_owned();
    copy_tree(&src, &conf, &conf_s);
    let config = Config::load(&conf, &LoadOptions::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
    let ours = restore(to_json(&config.to_value()), &conf_s, &minion::grains::current_user());
    let J::Object(exp) = expected else { panic!("{case}: expected.json is not an object") };
    let mut bad = Vec::new();
    for (key, want) in &exp {
        let got = ours.get(key).cloned().unwrap_or(J::Null);
        if !same(&got, want) {
            bad.push(format!("{key}: salt={want} rust={got}"));
        }
    }
    assert!(bad.is_empty(), "{case}: differences from Salt:\n  {}", bad.join("\n  "));
}

#[test]
fn full_config_matches_salt() {
    check_case("full");
}

#[test]
fn default_config_matches_salt() {
    check_case("defaults");
}

#[test]
fn rerooted_config_with_cached_id_matches_salt() {
    check_case("rooted");
}
