#!/usr/bin/env bash
# Data-parallel testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py flags]
# (PYTHON=/path/to/python picks the interpreter; PORT, NNODES, NODE_RANK, MASTER_ADDR as usual)
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$NPROC" "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
