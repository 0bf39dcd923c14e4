#!/usr/bin/env bash
# Builds the minion, the master, the CLIs and an example as static binaries (crt-static) and checks
# that they link no shared library, and that no crate in the shipped dependency trees is a C library
# (-sys crates other than the pure-Rust linux-raw-sys).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
for crate in zmtp salt-proto minion master salt-cli; do
  if cargo tree -p "$crate" -e normal --prefix none | grep -E -- '-sys v' | grep -v '^linux-raw-sys'; then
    echo "static-check: $crate depends on a -sys crate" >&2
    exit 1
  fi
done
# Name every target: with --example alone cargo builds only the example, not the binaries.
# crt-static through --config, not RUSTFLAGS: RUSTFLAGS would replace .cargo/config.toml's flags
# (the portable Poly1305 backend, checked below) where --config is joined to them.
cargo build -q --release --target "$target" --config "target.$target.rustflags=['-C', 'target-feature=+crt-static']" \
  -p minion --bin salt-minion-rs -p master --bin salt-master-rs -p zmtp --example hwserver \
  -p salt-cli --bin salt-rs --bin salt-key-rs --bin salt-run-rs
out=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
for bin in "$out/$target/release/salt-minion-rs" "$out/$target/release/salt-master-rs" \
  "$out/$target/release/examples/hwserver" \
  "$out/$target/release/salt-rs" "$out/$target/release/salt-key-rs" "$out/$target/release/salt-run-rs"; do
  [ -f "$bin" ] || { echo "static-check: $bin was not built" >&2; exit 1; }
  if ! ldd "$bin" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "static-check: $bin is not statically linked: $(ldd "$bin" 2>&1)" >&2
    exit 1
  fi
  # CURVE keys Poly1305 for every message: short boxes take poly1305 0.8 built portable by
  # .cargo/config.toml's `--cfg poly1305_force_soft`; only 0.9 (long boxes) detects AVX2 at run
  # time (xsalsa.rs). Each crate that detects keeps one `avx2_cpuid::STORAGE`: a second one means
  # 0.8 was built without the switch. (The release profile keeps symbols: a binary without them
  # is not evidence.)
  syms=$(nm "$bin" 2>/dev/null | wc -l)
  detect=$(nm -C "$bin" 2>/dev/null | grep -c 'poly1305::backend::autodetect::avx2_cpuid::STORAGE' || true)
  if [ "$syms" -lt 1000 ] || [ "$detect" -gt 1 ]; then
    echo "static-check: $bin has two poly1305s detecting AVX2 ($detect), or no symbols to tell ($syms; .cargo/config.toml's flags not applied?)" >&2
    exit 1
  fi
done
echo "static-check: salt-minion-rs, salt-master-rs, the CLIs and hwserver are static, no C library in zmtp/salt-proto/minion/master/salt-cli"
