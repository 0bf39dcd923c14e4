#!/usr/bin/env bash
# Scale benchmark matrix: our master at N = 100, 1,000, 5,000, 10,000 and Salt 3008.5's at 100, 1,000,
# 2,000, in one run labelled LABEL; then `scale.py publish` rewrites the README's scale table,
# docs/scale.md's latest results and bench/results/scale/scale.svg from that run's rows alone.
# Appends to bench/results/scale/results.jsonl; rewrites bench/results/scale/RESULTS.md.
# Usage: scripts/scale.sh [--quick]   (needs /opt/salt-venv for Salt's side; ports 44505/44506)
#   SALT_NS="100 1000 2000"  OURS_NS="100 1000 5000 10000" (set but empty: none of that master)  RUNS=3  WORKERS=5  BIG_KEYSIZE=1024
#   LABEL=text (default: run-<UTC time>-<commit>)  PUBLISH=0 (do not rewrite README/docs/plot)
#   SCALE_PUB_PORT / SCALE_RET_PORT (default 44505/44506), SCALE_TMP (default /tmp/sc)
# Swarm keys are generated once into /var/tmp/salt-swarm-keys (2048-bit keys take ~0.2 s each
# per core: 1,000 take about 2 minutes on this 2-core machine; 10,000 1,024-bit ones about 3 minutes).
# The full default matrix takes about 25-30 minutes on a quiet 2-core machine with the keys cached.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -p master -p salt-cli -p swarm
# A private copy of the binaries: the shared target directory may be rebuilt meanwhile.
BIN=$(mktemp -d /tmp/scale-bin.XXXX)
TMPD=${SCALE_TMP:-/tmp/sc}
# The runs' trees are deleted at the end, not between runs (see Run.stop in scale.py).
trap 'rm -rf "$BIN"; python3 scripts/scale.py clean --tmp "$TMPD"' EXIT
cp "$CARGO_TARGET_DIR"/release/{salt-master-rs,salt-rs,salt-swarm-rs} "$BIN"/
SALT_NS=${SALT_NS-100 1000 2000}
OURS_NS=${OURS_NS-100 1000 5000 10000}
RUNS=${RUNS:-3}
LABEL=${LABEL:-run-$(date -u +%Y%m%dT%H%MZ)-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if [ "${1:-}" = --quick ]; then SALT_NS=100; OURS_NS=100; RUNS=2; fi
[ -n "${ROTATE:-}" ] && args_rotate=(--rotate) || args_rotate=()
OUT=bench/results/scale
args=(--bin "$BIN" --out "$OUT" --runs "$RUNS" --workers "${WORKERS:-5}" --tmp "$TMPD"
      --label "$LABEL" "${args_rotate[@]}")
echo "scale run labelled: $LABEL"
for n in $OURS_NS; do
  ks=2048; [ "$n" -gt 1000 ] && ks=${BIG_KEYSIZE:-1024}
  python3 scripts/scale.py run --master ours -n "$n" --keysize "$ks" "${args[@]}"
done
if [ -x "${SALT_VENV:-/opt/salt-venv}/bin/salt-master" ]; then
  for n in $SALT_NS; do
    ks=2048; [ "$n" -gt 1000 ] && ks=${BIG_KEYSIZE:-1024}
    python3 scripts/scale.py run --master salt -n "$n" --keysize "$ks" "${args[@]}"
  done
else
  echo "SKIP Salt's master: no ${SALT_VENV:-/opt/salt-venv}/bin/salt-master"
fi
if [ "${PUBLISH:-1}" = 1 ]; then
  python3 scripts/scale.py publish --label "$LABEL"
else
  python3 scripts/scale.py report "$OUT"
fi
echo "scale run labelled: $LABEL (again: python3 scripts/scale.py publish --label '$LABEL')"
