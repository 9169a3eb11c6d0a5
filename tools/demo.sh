#!/usr/bin/env bash
# Installs what is missing (tools/install.sh), then runs the main job on the embedded default:
# for now a backbone smoke run (build via mmdet's registry, load window-8 weights at window 16).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
VENV="${SWINV2_MM_VENV:-${SWINV2_MM_HOME:-$HOME/.cache/swinv2_mm}/venv}"
cd "$ROOT"
exec "$VENV/bin/python" tools/backbone_smoke.py "$@"
