#!/usr/bin/env bash
# Quickstart: our Salt master and one of our minions on loopback, under a temporary root, with
# embedded defaults and no set-up. Builds the binaries (release), starts salt-master-rs and
# salt-minion-rs, accepts the minion's key with salt-key-rs, runs test.ping, cmd.run and
# grains.item through salt-rs, prints the answers, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building salt-master-rs, salt-minion-rs, salt-rs, salt-key-rs (release)"
cargo build --release -q -p master -p minion -p salt-cli
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

root="$(mktemp -d /tmp/saltqs.XXXXXX)"
# Two free ports on loopback for the publisher and the request server.
read -r pub ret < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT

mkdir -p "$root/master/etc/salt" "$root/minion/etc/salt"
cat > "$root/master/etc/salt/master" <<CONF
root_dir: $root/master
interface: 127.0.0.1
publish_port: $pub
ret_port: $ret
CONF
cat > "$root/minion/etc/salt/minion" <<CONF
root_dir: $root/minion
id: quickstart-minion
master: 127.0.0.1
master_port: $ret
publish_port: $pub
acceptance_wait_time: 1
CONF
M="$root/master/etc/salt"

wait_for() { # what, seconds, test...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" && return 0; sleep 0.1; done
  echo "quickstart: timed out waiting for $what" >&2
  exit 1
}

echo "== starting salt-master-rs (publisher :$pub, request server :$ret, root $root/master)"
"$bin/salt-master-rs" -c "$M" -l warning > "$root/master.log" 2>&1 &
pids+=($!)
wait_for "the master" 30 test -e "$root/master/var/run/salt/master/publish_pull.ipc"

echo "== starting salt-minion-rs (id quickstart-minion)"
"$bin/salt-minion-rs" -c "$root/minion/etc/salt" -l warning > "$root/minion.log" 2>&1 &
pids+=($!)
wait_for "the minion's key" 30 test -e "$root/master/etc/salt/pki/master/minions_pre/quickstart-minion"

echo "== salt-key-rs -L, then -a quickstart-minion -y"
"$bin/salt-key-rs" -c "$M" -L
"$bin/salt-key-rs" -c "$M" -a quickstart-minion -y

# The minion signs in again within acceptance_wait_time; ping until it answers.
answered() { "$bin/salt-rs" -c "$M" -t 3 quickstart-minion test.ping --out json 2>/dev/null | grep -q true; }
wait_for "the minion to sign in" 60 answered

for job in "test.ping" "cmd.run 'uname -sr; echo hello from the minion'" "grains.item os kernel saltversion"; do
  echo "== salt-rs '*' $job"
  eval "\"$bin/salt-rs\" -c \"$M\" '*' $job"
done
echo "== done (the master, the minion and $root are removed)"
