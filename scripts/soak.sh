#!/usr/bin/env bash
# The soak (issue #14): churn against one server process of each pattern (ROUTER, PULL, PUB), ours
# and libzmq's side by side; see scripts/soak.py for what it throws and what it checks.
#   bash scripts/soak.sh                 # 3 minutes
#   bash scripts/soak.sh --minutes 10    # longer; --impl ours (or zmq) for one side only; --json FILE
# Uses ports 26100-26299. Needs libzmq (libzmq3-dev) like the interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p interop-tests --bin zpeer
target="${CARGO_TARGET_DIR:-target}"
exec python3 scripts/soak.py --zpeer "$target/release/zpeer" "$@"
