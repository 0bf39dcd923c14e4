#!/usr/bin/env bash
# Instructions per message, counted by callgrind (load does not distort them, unlike wall time):
# both ends of a pair in one process on a current-thread runtime (`zbench pair`), run for N1 and
# for N2 messages; the figure is (Ir(N2) - Ir(N1)) / (N2 - N1), so set-up and tear-down cancel.
# Each implementation runs its cases in turn, alternating, RUNS times; prints the median and the
# minimum of each.
#
#   scripts/bench-instr.sh                                  ours, the default cases
#   scripts/bench-instr.sh --impls zmtp,zmtp@0456f73        ours against ours at another revision
#   scripts/bench-instr.sh --cases pushpull:16:ipc,dealerrouter:16:tcp --n1 20000 --n2 120000 --runs 3
#   scripts/bench-instr.sh --keep DIR                       keep each N2 profile (callgrind_annotate)
#   scripts/bench-instr.sh --curve --impls zmtp,libzmq      both ends CURVE (the receiver the server)
#
# A `zmtp@REV` is built as for the suite (scripts/bench.sh --build-only; see bench/README.md).
# tcp uses 127.0.0.1:$ZBENCH_PORT (default 5600); ipc a file under ${TMPDIR:-/tmp}.
set -euo pipefail
cd "$(dirname "$0")/.."
impls=zmtp
cases=pushpull:16:tcp,pushpull:16:ipc,dealerrouter:16:tcp,dealerrouter:16:ipc
n1=20000
n2=120000
runs=3
keep=""
curve=()
while [ $# -gt 0 ]; do
    case "$1" in
        --impls) impls="$2"; shift 2 ;;
        --cases) cases="$2"; shift 2 ;;
        --n1) n1="$2"; shift 2 ;;
        --n2) n2="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --keep) keep="$2"; mkdir -p "$keep"; shift 2 ;;
        --curve) curve=(--curve); shift ;;
        *) echo "bench-instr.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "bench-instr.sh: valgrind not found" >&2; exit 1; }
scripts/bench.sh --build-only --impls "$impls"
bin=bench/target/release
port="${ZBENCH_PORT:-5600}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Total instructions of one `zbench pair` run of $5 messages.
instr() { # exe impl pattern size transport count
    local ep out
    case "$5" in
        tcp) ep="tcp://127.0.0.1:$port" ;;
        ipc) ep="ipc://$scratch/pair.ipc" ;;
        *) echo "bench-instr.sh: transport $5: tcp or ipc" >&2; exit 2 ;;
    esac
    out="$scratch/cg.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$1" pair --impl "$2" --pattern "$3" --size "$4" \
        --endpoint "$ep" --count "$6" ${curve[@]+"${curve[@]}"} >/dev/null 2>"$scratch/vg.log" \
        || { echo "bench-instr.sh: $1 pair failed:" >&2; tail -5 "$scratch/vg.log" >&2; exit 1; }
    rm -f "$scratch/pair.ipc"
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

declare -A got
for ((r = 0; r < runs; r++)); do
    for c in ${cases//,/ }; do
        IFS=: read -r pattern size transport <<<"$c"
        for imp in ${impls//,/ }; do
            case "$imp" in
                zmtp@*) exe="$bin/zbench-zmtp-${imp#zmtp@}"; as=zmtp ;;
                *) exe="$bin/zbench"; as="$imp" ;;
            esac
            a=$(instr "$exe" "$as" "$pattern" "$size" "$transport" "$n1")
            b=$(instr "$exe" "$as" "$pattern" "$size" "$transport" "$n2")
            if [ -n "$keep" ]; then cp "$scratch/cg.out" "$keep/$imp-$pattern-$size-$transport-$r.cg"; fi
            per=$(( (b - a) / (n2 - n1) ))
            got["$c|$imp"]+="$per "
            echo "run $r: $pattern $size B $transport $imp: $per instructions per message" >&2
        done
    done
done

echo "Instructions per message, both ends, current-thread runtime; (Ir at $n2 - Ir at $n1) / $((n2 - n1)); $runs runs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| case |'; for imp in ${impls//,/ }; do printf ' %s median (min) |' "$imp"; done
first="${impls%%,*}"
for imp in ${impls//,/ }; do [ "$imp" = "$first" ] || printf ' %s ÷ %s |' "$first" "$imp"; done
echo
printf '|---|'; for imp in ${impls//,/ }; do printf -- '---:|'; [ "$imp" = "$first" ] || printf -- '---:|'; done; echo
for c in ${cases//,/ }; do
    printf '| %s |' "$c"
    declare -A med=()
    for imp in ${impls//,/ }; do
        read -r m mn < <(tr ' ' '\n' <<<"${got[$c|$imp]}" | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)], v[1]}')
        med[$imp]=$m
        printf ' %s (%s) |' "$m" "$mn"
    done
    for imp in ${impls//,/ }; do
        [ "$imp" = "$first" ] || printf ' %s |' "$(awk -v a="${med[$first]}" -v b="${med[$imp]}" 'BEGIN {printf "%.3f", a / b}')"
    done
    echo
done
