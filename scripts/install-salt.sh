#!/usr/bin/env bash
# Install SaltStack 3008.5 (pure Python) into a virtualenv, for interop tests
# and for regenerating salt-proto's test vectors.
#
# Idempotent: does nothing if the venv already has salt 3008.5.
# Venv location: ${SALT_VENV:-/opt/salt-venv}.
#
# 3008.5 pins a certifi newer than the registry carries, so we install 3008.4
# (which pulls in all dependencies) and then 3008.5 itself without deps.
set -euo pipefail

VENV="${SALT_VENV:-/opt/salt-venv}"
WANT="3008.5"
PYTHON="${PYTHON:-python3}"

have_version() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.stdout.write(m.version("salt"))
PY
}

if [ "$(have_version || true)" = "$WANT" ]; then
    echo "salt $WANT already installed in $VENV"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --disable-pip-version-check -q 'salt==3008.4'
"$VENV/bin/pip" install --disable-pip-version-check -q --no-deps "salt==$WANT"

got="$(have_version || true)"
if [ "$got" != "$WANT" ]; then
    echo "install-salt.sh: expected salt $WANT in $VENV, found '${got}'" >&2
    exit 1
fi
echo "salt $WANT installed in $VENV"
