#!/usr/bin/env bash
# The master's RSA operations, side by side in one run (bench/rsa, its own cargo workspace):
# salt-proto (ours) against the rsa crate 0.9, crypto-bigint 0.6 and OpenSSL through Python's
# `cryptography` (what Salt uses; /opt/salt-venv, or PYTHON=...). Rates per CPU-second of the
# measuring thread, median of the rounds; then, with --callgrind, instructions per operation for
# the two pure-Rust paths (valgrind; stable where the shared machine's wall time is not).
#
#   scripts/rsa-bench.sh [--seconds 1] [--rounds 3] [--bits 2048] [--callgrind]
# Writes bench/results/rsa/RESULTS.md and appends to bench/results/rsa/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/bench/rsa/target}
callgrind=0
args=()
for a in "$@"; do
  if [ "$a" = --callgrind ]; then callgrind=1; else args+=("$a"); fi
done
(cd bench/rsa && cargo build --release --quiet)
BIN=$CARGO_TARGET_DIR/release/rsabench
OUT=bench/results/rsa
mkdir -p "$OUT"
tmp=$(mktemp -d /tmp/rsabench.XXXX)
trap 'rm -rf "$tmp"' EXIT
{
  echo "# RSA operations: salt-proto against rsa 0.9, crypto-bigint and OpenSSL"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average $(cut -d' ' -f1 /proc/loadavg) at the start; $(${PYTHON:-/opt/salt-venv/bin/python} -c \
       'from cryptography.hazmat.backends.openssl import backend as b; print(b.openssl_version_text())' 2>/dev/null || echo 'no OpenSSL (python cryptography missing)')"
  echo
  echo "Operations per CPU-second (median of the rounds; \`crypto-bigint\` is its two CRT half"
  echo "exponentiations only, an upper bound):"
  echo
  "$BIN" "${args[@]}" --json "$tmp/run.json"
  cat "$tmp/run.json" >> "$OUT/results.jsonl"
  if [ $callgrind = 1 ] && command -v valgrind >/dev/null; then
    # One key for both: instructions per operation = (Ir at 2n - Ir at n) / n.
    "$BIN" --write-key "$tmp/key.pem"
    echo
    echo "Instructions per operation (callgrind):"
    echo
    echo "| operation | salt-proto | rsa-0.9 | ratio |"
    echo "|---|---|---|---|"
    ir() {
      valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$BIN" --key "$tmp/key.pem" --only "$1" --iters "$2" \
        >/dev/null 2>&1
      grep -m1 '^summary:' "$tmp/cg" | awk '{print $2}'
    }
    for op in sign decrypt encrypt verify; do
      n=20; [ $op = encrypt ] || [ $op = verify ] && n=200
      per() { echo $(( ($(ir "$1:$op" $((2 * n))) - $(ir "$1:$op" $n)) / n )); }
      ours=$(per salt-proto); theirs=$(per rsa-0.9)
      echo "| $op | $ours | $theirs | $(python3 -c "print(f'{$theirs / $ours:.2f}x fewer')") |"
    done
  fi
} | tee "$OUT/RESULTS.md"
