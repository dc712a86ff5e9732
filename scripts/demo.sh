#!/usr/bin/env bash
# Run the default backtest. Extra arguments go to `arbkit backtest`.
# The first run of an install compiles arbkit's numba kernel (about 2-4 min, once; later runs
# start in about a second): `arbkit backtest` says so on stderr, with a spinner on a terminal.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
exec .venv/bin/arbkit backtest "$@"
