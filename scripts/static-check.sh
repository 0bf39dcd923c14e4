#!/usr/bin/env bash
# Builds the minion and an example as static binaries (crt-static) and checks that they link no
# shared library, and that no crate in the shipped dependency trees is a C library (-sys crates
# other than the pure-Rust linux-raw-sys).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
for crate in zmtp salt-proto minion; do
  if cargo tree -p "$crate" -e normal --prefix none | grep -E -- '-sys v' | grep -v '^linux-raw-sys'; then
    echo "static-check: $crate depends on a -sys crate" >&2
    exit 1
  fi
done
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release --target "$target" -p minion -p zmtp --example hwserver
for bin in "target/$target/release/salt-minion-rs" "target/$target/release/examples/hwserver"; do
  if ! ldd "$bin" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "static-check: $bin is not statically linked: $(ldd "$bin" 2>&1)" >&2
    exit 1
  fi
done
echo "static-check: salt-minion-rs and hwserver are static, no C library in zmtp/salt-proto/minion"
