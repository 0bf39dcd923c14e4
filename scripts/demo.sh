#!/usr/bin/env bash
# The main job until the Salt master lands: the zguide examples, each its own process, talking to
# each other over loopback (REQ/REP, PUB/SUB, PUSH/PULL).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p zmtp --examples
bin=target/release/examples
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

echo "== Hello World: hwserver (REP, tcp://*:5555) <- hwclient (REQ)"
$bin/hwserver & pids+=($!)
timeout 20 $bin/hwclient

echo "== Weather: wuserver (PUB, tcp://*:5556) -> wuclient (SUB, zipcode 10001)"
$bin/wuserver & pids+=($!)
timeout 60 $bin/wuclient "10001 "

echo "== Divide and conquer: taskvent (PUSH 5557) -> 3 x taskwork -> tasksink (PULL 5558)"
$bin/tasksink > /tmp/zmtp-demo-sink.$$ & sink=$!
for _ in 1 2 3; do $bin/taskwork > /dev/null & pids+=($!); done
sleep 0.5
timeout 20 $bin/taskvent --no-wait
timeout 30 tail --pid=$sink -f /dev/null
cat /tmp/zmtp-demo-sink.$$; rm -f /tmp/zmtp-demo-sink.$$
echo "== all examples talked to each other"
