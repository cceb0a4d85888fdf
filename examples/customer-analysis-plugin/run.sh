#!/usr/bin/env bash
# Runs this example with everything it needs on loopback (see ../run-example.mjs and ../README.md):
# against $VECRON_URL with $VECRON_TOKEN (an admin token: granting permissions is an admin's act),
# or a vecron server of its own when they are not set.
exec node "$(dirname "${BASH_SOURCE[0]}")/../run-example.mjs" customer-analysis-plugin "$@"
