#!/usr/bin/env bash
# Installs what is missing (tools/install.sh), then runs the test suite on the CPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
VENV="${SWINV2_MM_VENV:-${SWINV2_MM_HOME:-$HOME/.cache/swinv2_mm}/venv}"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
