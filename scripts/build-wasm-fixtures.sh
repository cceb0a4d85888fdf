#!/usr/bin/env bash
# Rebuilds every WebAssembly fixture under fixtures/wasm/ from its source and
# prints the sizes. Installs missing toolchains through apt (idempotent: apt is
# only touched when something is missing).
#
#   scripts/build-wasm-fixtures.sh            install what is missing, rebuild all
#   scripts/build-wasm-fixtures.sh --no-install   never call apt/npm; fail if a tool is missing
#   scripts/build-wasm-fixtures.sh --check    rebuild into a temp dir and compare with the
#                                             committed .wasm files (non-zero exit on a difference)
#   scripts/build-wasm-fixtures.sh NAME...    only these fixtures (directory names)
#
# Toolchains (Debian bookworm):
#   WAT        wat2wasm 1.0.32           apt: wabt
#   C          clang 14 + wasm-ld        apt: clang lld wasi-libc libclang-rt-dev-wasm32
#   Rust       /usr/bin/rustc 1.63       apt: rustc libstd-rust-dev-wasm32 (wasm32 std, no cargo/crates)
#              (override with RUSTC=...; a rustup rustc needs the wasm32-unknown-unknown target)
#   Go         go >= 1.24 (GOOS=wasip1, //go:wasmexport); not from apt (bookworm has 1.19);
#              the one on PATH or /usr/local/go/bin is used
#   AssemblyScript  npm devDependency `assemblyscript` (node_modules/.bin/asc)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIX="$ROOT/fixtures/wasm"
INSTALL=1
CHECK=0
ONLY=()
for arg in "$@"; do
  case "$arg" in
    --no-install) INSTALL=0 ;;
    --check) CHECK=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) ONLY+=("$arg") ;;
  esac
done

RUSTC="${RUSTC:-/usr/bin/rustc}"
export PATH="$PATH:/usr/local/go/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- toolchains

want() {
  [ ${#ONLY[@]} -eq 0 ] && return 0
  local n
  for n in "${ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

# only the toolchains of the fixtures asked for
need_c=0; for d in sum-amounts compute-kernel wasi-probe signed-report host-call-bench replay-probe; do want "$d" && need_c=1; done
need_rust=0; for d in customer-tiers customer-analysis-plugin; do want "$d" && need_rust=1; done
need_asc=0; want low-stock && need_asc=1
need_go=0; want order-validation && need_go=1

apt_missing=()
command -v wat2wasm >/dev/null 2>&1 || apt_missing+=(wabt)
if [ "$need_c" = 1 ]; then
  command -v clang >/dev/null 2>&1 || apt_missing+=(clang)
  command -v wasm-ld >/dev/null 2>&1 || apt_missing+=(lld)
  [ -f /usr/lib/wasm32-wasi/libc.a ] || apt_missing+=(wasi-libc)
  ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || apt_missing+=(libclang-rt-dev-wasm32)
fi
if [ "$RUSTC" = /usr/bin/rustc ] && [ "$need_rust" = 1 ]; then
  [ -x /usr/bin/rustc ] || apt_missing+=(rustc)
  [ -d /usr/lib/rustlib/wasm32-unknown-unknown ] || apt_missing+=(libstd-rust-dev-wasm32)
fi

if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$INSTALL" = 1 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    log "installing: ${apt_missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  else
    log "missing apt packages: ${apt_missing[*]}"; exit 1
  fi
fi

ASC="$ROOT/node_modules/.bin/asc"
if [ "$need_asc" = 1 ] && [ ! -x "$ASC" ]; then
  if [ "$INSTALL" = 1 ]; then
    log "installing npm devDependencies (assemblyscript)"
    (cd "$ROOT" && npm install --no-audit --no-fund >/dev/null)
  fi
  [ -x "$ASC" ] || { log "assemblyscript missing: run npm install"; exit 1; }
fi

if [ "$need_go" = 0 ]; then :
elif ! command -v go >/dev/null 2>&1; then
  log "go >= 1.24 not found (needed for order-validation; bookworm's golang is too old)"; exit 1
fi
go_minor="$( [ "$need_go" = 1 ] && go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/' || echo 99)"
if [ "${go_minor:-0}" -lt 24 ]; then
  log "go $(go env GOVERSION) is too old: need >= 1.24 for GOOS=wasip1 with //go:wasmexport"; exit 1
fi

# ---------------------------------------------------------------- builds

OUT="$FIX"
if [ "$CHECK" = 1 ]; then
  OUT="$(mktemp -d)"
  trap 'rm -rf "$OUT"' EXIT
fi

built=()

wat() { # dir name: fixtures/wasm/dir/name.wat -> name.wasm
  mkdir -p "$OUT/$1"
  wat2wasm --debug-names -o "$OUT/$1/$2.wasm" "$FIX/$1/$2.wat"
  built+=("$1/$2.wasm")
}

# src out: builds the Rust source with the gold tier starting above 40,000 (was 50,000), from a
# copy of the source changed by sed (the copy is checked to differ in exactly that line).
gold40k() {
  local src="$1" out="$2" tmp
  tmp="$(mktemp -d)"
  sed 's/revenue > 50000\.0/revenue > 40000.0/' "$src" > "$tmp/variant.rs"
  [ "$(diff "$src" "$tmp/variant.rs" | grep -c '^>')" = 1 ] || { log "gold40k: expected one changed line in $src"; exit 1; }
  "$RUSTC" --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
    -C opt-level=z -C lto -C codegen-units=1 -C strip=symbols -C panic=abort -o "$out" "$tmp/variant.rs"
  chmod -x "$out"
  rm -rf "$tmp"
}

if want customer-tiers; then
  mkdir -p "$OUT/customer-tiers"
  (cd "$FIX/customer-tiers" && "$RUSTC" --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
    -C opt-level=z -C lto -C codegen-units=1 -C strip=symbols -C panic=abort \
    -o "$OUT/customer-tiers/customer-tiers.wasm" customer_tiers.rs)
  built+=(customer-tiers/customer-tiers.wasm)
  # The same source with the gold threshold at 40,000 instead of 50,000: the "changed version" a
  # shadow test replays recorded runs with (issue 20, test/replay/shadow*.test.ts).
  gold40k "$FIX/customer-tiers/customer_tiers.rs" "$OUT/customer-tiers/customer-tiers-gold-40000.wasm"
  built+=(customer-tiers/customer-tiers-gold-40000.wasm)
fi

if want customer-analysis-plugin; then
  mkdir -p "$OUT/customer-analysis-plugin"
  (cd "$FIX/customer-analysis-plugin" && "$RUSTC" --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
    -C opt-level=z -C lto -C codegen-units=1 -C strip=symbols -C panic=abort \
    -o "$OUT/customer-analysis-plugin/customer-analysis-plugin.wasm" customer_analysis_plugin.rs)
  chmod -x "$OUT/customer-analysis-plugin/customer-analysis-plugin.wasm"
  built+=(customer-analysis-plugin/customer-analysis-plugin.wasm)
  gold40k "$FIX/customer-analysis-plugin/customer_analysis_plugin.rs" "$OUT/customer-analysis-plugin/customer-analysis-plugin-gold-40000.wasm"
  built+=(customer-analysis-plugin/customer-analysis-plugin-gold-40000.wasm)
fi

if want low-stock; then
  mkdir -p "$OUT/low-stock"
  (cd "$ROOT" && "$ASC" fixtures/wasm/low-stock/low_stock.ts -O3 --runtime stub --use abort= --noAssert \
    -o "$OUT/low-stock/low-stock.wasm")
  built+=(low-stock/low-stock.wasm)
fi

if want order-validation; then
  mkdir -p "$OUT/order-validation"
  (cd "$FIX/order-validation" &&
    GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags="-s -w -buildid=" \
      -o "$OUT/order-validation/order-validation.wasm" . &&
    GOOS=wasip1 GOARCH=wasm go build -tags reactor -buildmode=c-shared -trimpath -ldflags="-s -w -buildid=" \
      -o "$OUT/order-validation/order-validation-reactor.wasm" .)
  chmod -x "$OUT/order-validation/"*.wasm
  built+=(order-validation/order-validation.wasm order-validation/order-validation-reactor.wasm)
fi

if want sum-amounts; then
  mkdir -p "$OUT/sum-amounts"
  (cd "$FIX/sum-amounts" && clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all \
    -o "$OUT/sum-amounts/sum-amounts.wasm" sum_amounts.c)
  chmod -x "$OUT/sum-amounts/sum-amounts.wasm"
  built+=(sum-amounts/sum-amounts.wasm)
fi

if want compute-kernel; then
  mkdir -p "$OUT/compute-kernel"
  (cd "$FIX/compute-kernel" && clang --target=wasm32 -O2 -nostdlib -fno-builtin -Wl,--no-entry -Wl,--strip-all \
    -o "$OUT/compute-kernel/compute-kernel.wasm" compute_kernel.c)
  chmod -x "$OUT/compute-kernel/compute-kernel.wasm"
  built+=(compute-kernel/compute-kernel.wasm)
fi

if want signed-report; then
  mkdir -p "$OUT/signed-report"
  (cd "$FIX/signed-report" && clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all \
    -o "$OUT/signed-report/signed-report.wasm" signed_report.c)
  chmod -x "$OUT/signed-report/signed-report.wasm"
  built+=(signed-report/signed-report.wasm)
fi

if want host-call-bench; then
  mkdir -p "$OUT/host-call-bench"
  (cd "$FIX/host-call-bench" && clang --target=wasm32 -O2 -nostdlib -fno-builtin -Wl,--no-entry -Wl,--strip-all \
    -o "$OUT/host-call-bench/host-call-bench.wasm" host_call_bench.c)
  chmod -x "$OUT/host-call-bench/host-call-bench.wasm"
  built+=(host-call-bench/host-call-bench.wasm)
fi

if want wasi-probe; then
  mkdir -p "$OUT/wasi-probe"
  (cd "$FIX/wasi-probe" && clang --target=wasm32-wasi -O2 -Wl,--strip-all \
    -o "$OUT/wasi-probe/wasi-probe.wasm" wasi_probe.c)
  chmod -x "$OUT/wasi-probe/wasi-probe.wasm"
  built+=(wasi-probe/wasi-probe.wasm)
fi

if want replay-probe; then
  mkdir -p "$OUT/replay-probe"
  (cd "$FIX/replay-probe" && clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all \
    -o "$OUT/replay-probe/replay-probe.wasm" replay_probe.c &&
    clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all -DRANDOM_BYTES=8 \
    -o "$OUT/replay-probe/replay-probe-changed.wasm" replay_probe.c)
  chmod -x "$OUT/replay-probe/"*.wasm
  built+=(replay-probe/replay-probe.wasm replay-probe/replay-probe-changed.wasm)
fi

if want customer-tiers; then chmod -x "$OUT/customer-tiers/customer-tiers.wasm"; fi

# every hand-written module: fixtures/wasm/<dir>/<name>.wat
for src in "$FIX"/*/*.wat; do
  dir="$(basename "$(dirname "$src")")"
  want "$dir" || continue
  wat "$dir" "$(basename "$src" .wat)"
done

# modules at V8's limits (issue 11): generated here (their WAT would be 200 KB of "i32")
gen_limits() { # name: writes $GEN/name.wat
  local name="$1" i32s
  case "$name" in
    params-1000) # a function of 1000 params (V8's limit), called by the entry
      i32s="$(printf ' i32%.0s' $(seq 1000))"
      { echo ';; engine-limits/params-1000: a function with 1000 parameters (V8'"'"'s limit). Generated by scripts/build-wasm-fixtures.sh.'
        echo '(module (memory (export "memory") 1) (data (i32.const 0) "{\"ok\":true}")'
        echo '  (func (export "alloc") (param i32) (result i32) (i32.const 1024))'
        echo "  (func \$wide (param$i32s) (result i32) (i32.add (local.get 0) (local.get 999)))"
        echo "  (func (export \"run\") (param i32 i32) (result i64)"
        echo "    (if (i32.ne (call \$wide $(printf '(i32.const %d) ' $(seq 1000))) (i32.const 1001)) (then unreachable)) (i64.const 11)))"
      } ;;
    results-1000) # a function of 1000 results
      i32s="$(printf ' i32%.0s' $(seq 1000))"
      { echo ';; engine-limits/results-1000: a function with 1000 results (V8'"'"'s limit). Generated by scripts/build-wasm-fixtures.sh.'
        echo '(module (memory (export "memory") 1) (data (i32.const 0) "{\"ok\":true}")'
        echo '  (func (export "alloc") (param i32) (result i32) (i32.const 1024))'
        echo "  (func \$many (result$i32s) $(printf '(i32.const %d) ' $(seq 1000)))"
        echo "  (func (export \"run\") (param i32 i32) (result i64)"
        echo "    (call \$many) $(printf 'drop%.0s ' $(seq 998)) i32.add i32.const 3 i32.ne (if (then unreachable)) (i64.const 11)))"
      } ;;
    locals-49999|locals-50000) # the entry: 2 params + declared locals = 49,999 (runs) or 50,000 (refused)
      local n=$(( ${name#locals-} - 2 ))
      { echo ";; engine-limits/$name: an entry with ${name#locals-} locals (2 params + $n declared). Generated by scripts/build-wasm-fixtures.sh."
        echo '(module (memory (export "memory") 1) (data (i32.const 0) "{\"ok\":true}")'
        echo '  (func (export "alloc") (param i32) (result i32) (i32.const 1024))'
        echo "  (func (export \"run\") (param i32 i32) (result i64) (local$(printf ' i32%.0s' $(seq $n)))"
        echo "    (local.set $(( n + 1 )) (i32.const 11)) (i64.extend_i32_u (local.get $(( n + 1 ))))))"
      } ;;
  esac > "$GEN/$name.wat"
}
if want engine-limits; then
  GEN="$(mktemp -d)"
  mkdir -p "$OUT/engine-limits"
  for name in params-1000 results-1000 locals-49999 locals-50000; do
    gen_limits "$name"
    wat2wasm --debug-names -o "$OUT/engine-limits/$name.wasm" "$GEN/$name.wat"
    built+=("engine-limits/$name.wasm")
  done
  rm -rf "$GEN"
fi

# ---------------------------------------------------------------- report

status=0
printf '%-52s %10s  %s\n' fixture bytes note
for f in "${built[@]}"; do
  size="$(stat -c %s "$OUT/$f")"
  note=""
  if [ "$CHECK" = 1 ]; then
    if [ ! -f "$FIX/$f" ]; then note="NOT COMMITTED"; status=1
    elif cmp -s "$OUT/$f" "$FIX/$f"; then note="same"
    else note="DIFFERS from committed"; status=1
    fi
  fi
  printf '%-52s %10s  %s\n' "$f" "$size" "$note"
done
exit $status
