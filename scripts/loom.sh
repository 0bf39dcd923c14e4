#!/usr/bin/env bash
# Model-checks the wake-up hand-offs of zmtp's socket layer (the bounded queue and the connection
# future shared by a connection's task and an assisted `recv`) with loom: every interleaving of
# each model's threads, up to LOOM_MAX_PREEMPTIONS preemptions (default 3).
# Builds zmtp with `--cfg zmtp_loom` in its own target directory (the flag changes every crate's
# fingerprint, so sharing the normal one would rebuild it twice per test run).
set -euo pipefail
cd "$(dirname "$0")/.."
base="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}"
export CARGO_TARGET_DIR="$base/loom"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg zmtp_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
cargo test -p zmtp --lib --release -- loom_models --test-threads 2 "$@"
