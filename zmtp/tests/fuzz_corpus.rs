//! Replays the fuzz corpus on stable: every file under `fuzz/corpus/<target>/` (seeds from real
//! libzmq traffic and what the fuzzer kept) and `fuzz/regressions/<target>/` (inputs that once
//! failed) goes through the same `zmtp::fuzzing` entry point the cargo-fuzz target calls.
//!
//! A target without a corpus fails, and so does a cargo-fuzz target this file does not know, so
//! that no target can silently drop out of `cargo test`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use zmtp::fuzzing;

/// A fuzz entry point.
type Entry = fn(&[u8]);

/// Every cargo-fuzz target and its entry point.
const TARGETS: &[(&str, Entry)] = &[
    ("greeting", fuzzing::greeting),
    ("frame", fuzzing::frame),
    ("command", fuzzing::command),
    ("connection", fuzzing::connection),
    ("pair", fuzzing::pair),
    ("subscriptions", fuzzing::subscriptions),
    ("roundtrip", fuzzing::roundtrip),
    ("plain", fuzzing::plain),
    ("curve", fuzzing::curve),
    ("sockets", fuzzing::sockets),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

fn replay(target: &str) {
    let (_, entry) = TARGETS.iter().find(|(name, _)| *name == target).expect("known target");
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is missing or empty: run fuzz/capture_seeds.py");
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("readable corpus file");
        if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed (reproduce with `cargo fuzz run --sanitizer none {target} FILE`):\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn every_fuzz_target_is_replayed() {
    let mut on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(name, _)| name.to_string()).collect();
    known.sort();
    assert_eq!(on_disk, known, "fuzz/fuzz_targets/ and this file's TARGETS differ");
}

#[test]
fn greeting() {
    replay("greeting");
}

#[test]
fn frame() {
    replay("frame");
}

#[test]
fn command() {
    replay("command");
}

#[test]
fn connection() {
    replay("connection");
}

#[test]
fn pair() {
    replay("pair");
}

#[test]
fn subscriptions() {
    replay("subscriptions");
}

#[test]
fn roundtrip() {
    replay("roundtrip");
}

#[test]
fn plain() {
    replay("plain");
}

#[test]
fn curve() {
    replay("curve");
}

#[test]
fn sockets() {
    replay("sockets");
}
