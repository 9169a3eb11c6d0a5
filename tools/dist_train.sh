#!/usr/bin/env bash
# Data-parallel training with torchrun: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py flags]
# (PYTHON=/path/to/python picks the interpreter; PORT, NNODES, NODE_RANK, MASTER_ADDR as usual)
# MAX_RESTARTS=N (default 0: a failed worker ends the run) lets torchrun restart the workers up
# to N times after one fails; the restarted workers resume from the work dir's last checkpoint
# by themselves, or start afresh while there is none. A restart that would start from the same
# checkpoint as the attempt before it (which failed before writing a newer one) stops instead
# of repeating that failure; WORK_DIR/torchrun_attempts.json records where each attempt began.
# SIGTERM or SIGINT (to torchrun, which forwards it, or to any worker) stops training after
# the current iteration (or validation batch) on every rank, writes its checkpoint and
# WORK_DIR/preempted.json, and the workers exit with 0 (torchrun would restart workers that
# exit otherwise); torchrun's own status is 0 when only workers were signalled, 1 when it was.
# --resume continues. torchrun gives its workers 30 s (TORCH_ELASTIC_SHUTDOWN_TIMEOUT) to
# finish before it kills them; a second signal 2 s or more after the first aborts at once.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --max-restarts="${MAX_RESTARTS:-0}" --nproc_per_node="$NPROC" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
