#!/usr/bin/env bash
# Builds the JavaScript engine of sdk/js (QuickJS compiled to WASI) into the cache, or finds it
# there: ~/.cache/vecron/js-engine/ (or $VECRON_CACHE_DIR). Nothing is rebuilt when its inputs
# (QuickJS's pinned crate, sdk/js/engine/*, the flags, the clang version) did not change, so CI can
# run this on every run and pay the build (1-2 minutes on two cores) only once per machine.
#
#   scripts/build-js-engine.sh            build or find the engine; exit 1 with the apt command
#                                         when clang / wasi-libc are missing
#   scripts/build-js-engine.sh --install  install the missing Debian packages first (apt-get)
#
# Environment: VECRON_CACHE_DIR, VECRON_JOBS (parallel compiles, default 2), VECRON_CLANG,
# VECRON_QUICKJS_CRATE (a local copy of rquickjs-sys-0.14.0.crate, for a machine offline).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" = "--install" ]; then
  missing=()
  command -v clang >/dev/null 2>&1 || missing+=(clang)
  command -v wasm-ld >/dev/null 2>&1 || missing+=(lld)
  [ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=(wasi-libc)
  ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || missing+=(libclang-rt-dev-wasm32)
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
elif [ $# -gt 0 ]; then
  echo "unknown option: $1 (usage: scripts/build-js-engine.sh [--install])" >&2
  exit 2
fi

exec node "$ROOT/sdk/js/build.mjs" --engine
