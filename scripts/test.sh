#!/usr/bin/env bash
# Runs every test: unit, corpus replay, and the interop tier against real libzmq (and Salt, where present).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/check-layers.sh
cargo test --workspace
# The wake-up hand-offs of the socket layer, model-checked (long form: LOOM_MAX_PREEMPTIONS=3).
LOOM_MAX_PREEMPTIONS=2 bash scripts/loom.sh
bash scripts/static-check.sh
