#!/usr/bin/env bash
# The long form of the racing-receivers stress test (zmtp/tests/sockets.rs): the assisted-receive
# race run RUNS times per transport (default 200) while busy loops in other processes and busy
# threads inside the test compete for every core. The test command runs the cheap form (3 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"
busy=()
for _ in $(seq 1 "$(( $(nproc) * 2 ))"); do
  sh -c 'while :; do :; done' &
  busy+=($!)
done
trap 'kill "${busy[@]}" 2>/dev/null || true' EXIT
ZMTP_STRESS_RUNS="$runs" cargo test --release -p zmtp --test sockets -- racing_receivers_under_cpu_load --nocapture
