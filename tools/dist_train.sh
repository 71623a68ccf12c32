#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) training through torchrun and mmengine's DDP.
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
set -e
CONFIG=$1; GPUS=$2; shift 2
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; PORT=${PORT:-29500}; MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --nproc_per_node="$GPUS" --master_port="$PORT" \
  "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
