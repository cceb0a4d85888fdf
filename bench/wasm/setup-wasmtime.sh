#!/usr/bin/env bash
# Installs Wasmtime's Python bindings (PyPI package `wasmtime`) for bench/wasm.ts into a virtual
# environment, so the system Python is left alone. bench/wasm.ts runs this script when neither
# the venv's python nor `python3` can `import wasmtime`.
#
#   bash bench/wasm/setup-wasmtime.sh            # venv in $VECRON_WASMTIME_VENV or /tmp/vecron-wasmtime-venv
#
# Prints the path of the venv's python on the last line of stdout.
set -euo pipefail
VENV="${VECRON_WASMTIME_VENV:-/tmp/vecron-wasmtime-venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c 'import wasmtime' 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'wasmtime' >&2
fi
"$VENV/bin/python" -c 'import wasmtime, sys, importlib.metadata as m; print("wasmtime", m.version("wasmtime"), file=sys.stderr)' >&2
echo "$VENV/bin/python"
