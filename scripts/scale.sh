#!/usr/bin/env bash
# Scale benchmark matrix: our master and Salt 3008.5's at N = 100 and 1,000, then ours further.
# Writes bench/results/scale/results.jsonl (appends) and bench/results/scale/RESULTS.md.
# Usage: scripts/scale.sh [--quick]   (needs /opt/salt-venv for Salt's side; ports 44505/44506)
#   SALT_NS="100 1000"  OURS_NS="100 1000 5000 9000"  RUNS=3  WORKERS=5  BIG_KEYSIZE=1024  LABEL=text
#   SCALE_PUB_PORT / SCALE_RET_PORT (default 44505/44506), SCALE_TMP (default /tmp/sc)
# Swarm keys are generated once into /var/tmp/salt-swarm-keys (2048-bit keys take ~0.2 s each
# per core: 1,000 take about 2 minutes on this 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -p master -p salt-cli -p swarm
# A private copy of the binaries: the shared target directory may be rebuilt meanwhile.
BIN=$(mktemp -d /tmp/scale-bin.XXXX)
trap 'rm -rf "$BIN"' EXIT
cp "$CARGO_TARGET_DIR"/release/{salt-master-rs,salt-rs,salt-swarm-rs} "$BIN"/
SALT_NS=${SALT_NS:-100 1000}
OURS_NS=${OURS_NS:-100 1000 5000 9000}
RUNS=${RUNS:-3}
if [ "${1:-}" = --quick ]; then SALT_NS=100; OURS_NS=100; RUNS=2; fi
[ -n "${ROTATE:-}" ] && args_rotate=(--rotate) || args_rotate=()
OUT=bench/results/scale
args=(--bin "$BIN" --out "$OUT" --runs "$RUNS" --workers "${WORKERS:-5}" --tmp "${SCALE_TMP:-/tmp/sc}"
      --label "${LABEL:-}" "${args_rotate[@]}")
for n in $OURS_NS; do
  ks=2048; [ "$n" -gt 1000 ] && ks=${BIG_KEYSIZE:-2048}
  python3 scripts/scale.py run --master ours -n "$n" --keysize "$ks" "${args[@]}"
done
if [ -x "${SALT_VENV:-/opt/salt-venv}/bin/salt-master" ]; then
  for n in $SALT_NS; do
    ks=2048; [ "$n" -gt 1000 ] && ks=${BIG_KEYSIZE:-2048}
    python3 scripts/scale.py run --master salt -n "$n" --keysize "$ks" "${args[@]}"
  done
else
  echo "SKIP Salt's master: no ${SALT_VENV:-/opt/salt-venv}/bin/salt-master"
fi
python3 scripts/scale.py report "$OUT"
