#!/usr/bin/env bash
# Run the default backtest. Extra arguments go to `arbkit backtest`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
exec .venv/bin/arbkit backtest "$@"
