#!/usr/bin/env bash
# Data-parallel training with torchrun: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py flags]
# (PYTHON=/path/to/python picks the interpreter; PORT, NNODES, NODE_RANK, MASTER_ADDR as usual)
# MAX_RESTARTS=N (default 0: a failed worker ends the run) lets torchrun restart the workers up
# to N times after one fails; the restarted workers resume from the work dir's last checkpoint
# by themselves, or start afresh while there is none.
# SIGTERM or SIGINT (to torchrun, which forwards it, or to any worker) stops training after
# the current iteration on every rank, writes its checkpoint and exits with 0; --resume
# continues from it. torchrun gives its workers 30 s to finish before it kills them.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --max-restarts="${MAX_RESTARTS:-0}" --nproc_per_node="$NPROC" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
