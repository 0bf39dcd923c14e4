#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60), one after the other, and prints a
# table of executions, coverage (libFuzzer's final cov/ft) and findings per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# New inputs the fuzzer keeps land in fuzz/corpus/<target>/ (replayed by `cargo test`, see
# zmtp/tests/fuzz_corpus.rs); findings land in fuzz/artifacts/<target>/. With FUZZ_CMIN=1 each
# corpus is minimized (`cargo fuzz cmin`) after its run. Builds use fuzz/target, runs on stable
# (`--sanitizer none`). Exits non-zero if any target had a finding.
set -euo pipefail

per_target=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz..." >&2
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build --sanitizer none
logs=target/fuzz-logs
mkdir -p "$logs"

rows=()
total_findings=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    log="$logs/$t.log"
    echo "fuzzing $t for ${per_target}s..." >&2
    start=$(date +%s)
    set +e
    cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
        -max_total_time="$per_target" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    elapsed=$(($(date +%s) - start))
    after=$(find "artifacts/$t" -type f | wc -l)
    findings=$((after - before))
    if [ "$status" -ne 0 ] && [ "$findings" -eq 0 ]; then
        findings="exit $status"
        total_findings=$((total_findings + 1))
    else
        total_findings=$((total_findings + findings))
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '(DONE|pulse|NEW|REDUCE|INITED) +cov:' "$log" | tail -1 || true)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    if [ "${FUZZ_CMIN:-0}" = 1 ]; then
        cargo fuzz cmin --sanitizer none "$t" "corpus/$t" >"$logs/$t.cmin.log" 2>&1 || true
    fi
    files=$(find "corpus/$t" -type f | wc -l)
    size=$(find "corpus/$t" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", (s + 1023) / 1024}')
    rows+=("$(printf '%-14s %12s %8s %6s %7s %7s %8s %6ss  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "$files" "${size}K" "$elapsed" "$findings")")
done

printf '\n%-14s %12s %8s %6s %7s %7s %8s %7s  %s\n' target execs exec/s cov ft corpus size time findings
for row in "${rows[@]}"; do
    echo "$row"
done
echo "logs: fuzz/$logs/"
if [ "$total_findings" != 0 ]; then
    echo "findings: see fuzz/artifacts/<target>/; reproduce with cargo fuzz run --sanitizer none TARGET FILE" >&2
    exit 1
fi
