#!/usr/bin/env bash
# Builds the benchmark harness (bench/, its own cargo workspace and target dir) and runs the suite:
# zmtp against libzmq, zmq.rs and OMQ.rs, each end in its own process.
#
#   scripts/bench.sh            full suite, both runtime flavours (~25 minutes on 2 cores)
#   scripts/bench.sh --quick    smoke run (1-2 minutes)
#   scripts/bench.sh [--quick] [zbench suite options...]   e.g. --impls zmtp,libzmq --sections throughput
#
# Needs libzmq's development files (Debian: libzmq3-dev) and, for system-call counts, perf.
set -euo pipefail
cd "$(dirname "$0")/../bench"

if ! pkg-config --exists libzmq 2>/dev/null; then
    echo "bench.sh: libzmq not found (apt-get install -y libzmq3-dev pkg-config)" >&2
    exit 1
fi
command -v perf >/dev/null || echo "bench.sh: perf not found, skipping system-call counts" >&2

cargo build --release --quiet
# Prints where RESULTS.md (tables), chart.svg (ratios to the best peer) and results.jsonl (raw
# records) went: bench/results/ unless --out says otherwise.
./target/release/zbench suite "$@"
