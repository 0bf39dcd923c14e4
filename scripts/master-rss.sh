#!/usr/bin/env bash
# Idle resident memory of salt-master-rs vs Salt 3008.5's salt-master, same config
# (WORKERS workers, default 5; loopback, no minions), summed over every process of each.
# Usage: scripts/master-rss.sh [settle-seconds]   (needs a release build and /opt/salt-venv)
set -euo pipefail
SETTLE=${1:-15}
BIN=${CARGO_TARGET_DIR:-target}/release/salt-master-rs
VENV=${SALT_VENV:-/opt/salt-venv}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p master"; exit 1; }
[ -x "$VENV/bin/salt-master" ] || { echo "SKIP: no Salt in $VENV"; exit 0; }
rss_tree() { # total RSS (KiB) of a process group
  ps -eo pgid=,rss= | awk -v g="$1" '$1==g {s+=$2} END {print s+0}'
}
nproc_tree() { ps -eo pgid= | awk -v g="$1" '$1==g {n++} END {print n+0}'; }
run() { # name port cmd...
  local name=$1 port=$2; shift 2
  local R; R=$(mktemp -d /tmp/rss.XXXX)
  mkdir -p "$R/etc/salt"
  printf 'root_dir: %s\ninterface: 127.0.0.1\npublish_port: %s\nret_port: %s\nworker_threads: %s\nuser: root\n' \
    "$R" "$port" "$((port+1))" "${WORKERS:-5}" > "$R/etc/salt/master"
  setsid "$@" -c "$R/etc/salt" -l error >"$R/out.log" 2>&1 &
  local pid=$!
  sleep "$SETTLE"
  local kib; kib=$(rss_tree "$pid"); local n; n=$(nproc_tree "$pid")
  local threads; threads=$(ps -o nlwp= -p "$pid" | tr -d ' ')
  printf '%-16s %3s processes (%s threads in the main one)  RSS %6.1f MiB\n' "$name" "$n" "$threads" "$(echo "$kib/1024" | bc -l)"
  kill -TERM -- "-$pid" 2>/dev/null || true
  sleep 3; kill -KILL -- "-$pid" 2>/dev/null || true
  rm -rf "$R"
}
run salt-master-rs 41580 "$BIN"
[ -n "${RUST_ONLY:-}" ] || run salt-master 41590 "$VENV/bin/salt-master"
