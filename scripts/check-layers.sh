#!/usr/bin/env bash
# Checks the layering rules of ARCHITECTURE.md ("Salt layers") on the resolved dependency graph
# (`cargo tree`, so indirect dependencies count too):
#
#   - master never depends on minion or salt-cli; minion never depends on master or salt-cli;
#     salt-cli never depends on minion (no kind of dependency: normal, build or dev; interop
#     tests run the other daemons' binaries, they do not link them);
#   - salt-core never depends on tokio, zmtp, minion, master or salt-cli (normal and build
#     dependencies: what ships);
#   - salt-proto never depends on tokio, zmtp, salt-core, minion, master or salt-cli;
#   - zmtp's sans-IO floors (codec, proto, Message, Subscriptions) build without tokio: with its
#     default features off (no `sockets`), zmtp must not depend on tokio and must compile.
#
# A crate that is not (yet) a workspace member is skipped. Exits 1 on a violation.
set -euo pipefail
cd "$(dirname "$0")/.."

members=$(cargo tree --workspace --depth 0 -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)

failed=0
# forbid CRATE EDGE-KINDS FORBIDDEN...
forbid() {
    local crate=$1 edges=$2
    shift 2
    if ! grep -qx "$crate" <<<"$members"; then
        echo "check-layers: $crate is not a workspace member; skipped"
        return
    fi
    local deps
    deps=$(cargo tree -p "$crate" -e "$edges" --prefix none --format '{p}' | awk 'NR > 1 {print $1}' | sort -u)
    local bad
    for bad in "$@"; do
        if grep -qx "$bad" <<<"$deps"; then
            echo "check-layers: $crate must not depend on $bad (found in: cargo tree -p $crate -e $edges -i $bad)" >&2
            failed=1
        fi
    done
}

forbid master normal,build,dev minion salt-cli swarm
forbid minion normal,build,dev master salt-cli swarm
forbid salt-cli normal,build,dev minion swarm
forbid swarm normal,build,dev master salt-cli
forbid salt-core normal,build tokio zmtp minion master salt-cli
forbid salt-proto normal,build tokio zmtp salt-core minion master salt-cli

# zmtp without its sockets: no tokio in the graph, and the sans-IO floors compile on their own.
if cargo tree -p zmtp --no-default-features -e normal,build --prefix none --format '{p}' | awk '{print $1}' | grep -qx tokio; then
    echo "check-layers: zmtp --no-default-features must not depend on tokio (cargo tree -p zmtp --no-default-features -i tokio)" >&2
    failed=1
fi
if ! cargo check -q -p zmtp --no-default-features; then
    echo "check-layers: zmtp's sans-IO floors do not build without the sockets feature" >&2
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "check-layers: ok"
