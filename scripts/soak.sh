#!/usr/bin/env bash
# The soak (issue #14), two halves run side by side:
#   zmtp: churn against one server process of each pattern (ROUTER, PULL, PUB, REP), ours and libzmq's
#         side by side (scripts/soak.py);
#   salt: our master with our minions, jobs from our CLI, minions SIGKILLed and restarted, the master
#         restarted once (scripts/soak_salt.py).
#   bash scripts/soak.sh                 # 3 minutes
#   bash scripts/soak.sh --minutes 10    # longer; --only zmtp (or salt) for one half; --seed N
# Reports to target/soak-zmtp.json and target/soak-salt.json. Uses ports 22100-22119 (zmtp) and
# 22405-22406 (salt). Needs libzmq (libzmq3-dev) like the interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=3 only="" seed=14
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: $0 [--minutes N] [--only zmtp|salt] [--seed N]" >&2; exit 2 ;;
  esac
done
target="${CARGO_TARGET_DIR:-target}"
# `--bin` applies to every package of one command, so zpeer is built on its own.
cargo build --release -q -p interop-tests --bin zpeer
cargo build --release -q -p master -p minion -p salt-cli
# A private copy of the binaries: the target directory may be rebuilt meanwhile.
BIN=$(mktemp -d /tmp/soak-bin.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$BIN"; }
trap cleanup EXIT
cp "$target"/release/{zpeer,salt-master-rs,salt-minion-rs,salt-rs} "$BIN"/
echo "soak: $minutes min, seed $seed, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
if [ "$only" != salt ]; then
  python3 scripts/soak.py --zpeer "$BIN/zpeer" --minutes "$minutes" --seed "$seed" --json "$target/soak-zmtp.json" &
  pids+=($!)
fi
if [ "$only" != zmtp ]; then
  python3 scripts/soak_salt.py --bin "$BIN" --minutes "$minutes" --seed "$seed" --json "$target/soak-salt.json" &
  pids+=($!)
fi
for p in "${pids[@]}"; do wait "$p" || rc=1; done
pids=()
echo "soak: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $rc = 0 ] && echo "SOAK PASSED" || echo "SOAK FAILED"
exit $rc
