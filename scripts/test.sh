#!/usr/bin/env bash
# Runs every test: unit, corpus replay, and the interop tier against real libzmq (and Salt, where present).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/check-layers.sh
cargo test --workspace
bash scripts/static-check.sh
