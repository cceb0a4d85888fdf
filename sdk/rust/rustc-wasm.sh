#!/bin/sh
# Runs a rustc that can build for WASI, with the SDK's flags (docs/sdk/rust.md):
#   sh vecron-sdk/rustc-wasm.sh -o build/m.wasm src/lib.rs     build a cdylib for wasm32-wasi(p1)
#   sh vecron-sdk/rustc-wasm.sh --check                        exit 0 when such a rustc is here
# A rustup rustc earlier on PATH often has no wasm target installed (and rustup cannot download one
# offline), while Debian's /usr/bin/rustc with libstd-rust-dev-wasm32 has wasm32-wasi: so each
# candidate ($RUSTC, rustc on PATH, /usr/bin/rustc) is asked for its sysroot and the first one with
# the target's standard library is used. wasm32-wasip1 is the name of wasm32-wasi since Rust 1.78.
set -eu
pick() {
  for rc in ${RUSTC:-} rustc /usr/bin/rustc; do
    command -v "$rc" >/dev/null 2>&1 || continue
    root="$("$rc" --print sysroot 2>/dev/null)" || continue
    for t in wasm32-wasip1 wasm32-wasi; do
      if [ -d "$root/lib/rustlib/$t/lib" ]; then echo "$rc $t"; return 0; fi
    done
  done
  return 1
}
if ! found="$(pick)"; then
  echo "no rustc with a WASI target here: sudo apt-get install -y rustc libstd-rust-dev-wasm32 (or: rustup target add wasm32-wasip1)" >&2
  exit 1
fi
[ "${1:-}" = "--check" ] && exit 0
set -- $found "$@"
rc="$1"; target="$2"; shift 2
# -C strip=symbols and no debug info keep paths out of the binary: two builds give the same bytes.
exec "$rc" --edition 2021 --crate-type cdylib --target "$target" -C opt-level=s -C lto -C codegen-units=1 \
  -C panic=abort -C strip=symbols -C debuginfo=0 "$@"
