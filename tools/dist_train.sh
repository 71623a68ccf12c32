#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) training through torchrun and mmengine's DDP.
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
set -e
CONFIG=$1; GPUS=$2; shift 2
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
# inside a slurm job a port of its own (jobs sharing a node would collide on 29500), as mixcore.gpu.master_port
if [ -n "${SLURM_JOB_ID:-}" ]; then PORT=${PORT:-$((20000 + SLURM_JOB_ID % 10000))}; else PORT=${PORT:-29500}; fi
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --nproc_per_node="$GPUS" --master_port="$PORT" \
  "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
