#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing (tools/install.sh), trains
# Cascade Mask R-CNN + a small SwinV2 on the generated shapes dataset (CPU), evaluates it
# with mmdet's CocoMetric (bbox and segm mAP) and draws its predictions.
# Extra arguments go to tools/train.py (e.g. --cfg-options train_cfg.max_iters=200).
# Stopped by SIGTERM or Ctrl-C, training saves its iteration and the demo ends there, saying
# so, with status 75 (EX_TEMPFAIL: try again) and without evaluating the half-trained model;
# the same command with --resume continues it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
VENV="${SWINV2_MM_VENV:-${SWINV2_MM_HOME:-$HOME/.cache/swinv2_mm}/venv}"
PY="$VENV/bin/python"
CONFIG=configs/demo/cascade_swinv2_shapes_demo.py
WORK="${WORK_DIR:-work_dirs/cascade_swinv2_shapes_demo}"
cd "$ROOT"
start=$(date +%s)
"$PY" -W ignore tools/train.py "$CONFIG" --work-dir "$WORK" "$@"
echo "[demo] training and validation took $(( $(date +%s) - start )) s"
if [ -f "$WORK/preempted.json" ]; then  # written by a preempted run, removed by the next one
  echo "[demo] training was stopped before its end (preempted): $(cat "$WORK/preempted.json")"
  echo "[demo] not evaluated; continue with: bash tools/demo.sh --resume (and the same arguments)"
  exit 75
fi
CKPT="$(cat "$WORK/last_checkpoint")"
"$PY" -W ignore tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK" --show-dir "$WORK/show" \
  | tee "$WORK/test.log" | grep -E "coco/(bbox|segm)_mAP|Epoch\(test\)|Iter\(test\)" || true
echo "[demo] predictions drawn in $WORK/show"
