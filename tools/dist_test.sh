#!/usr/bin/env bash
# Multi-GPU testing through torchrun.   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args]
set -e
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
# inside a slurm job a port of its own (jobs sharing a node would collide on 29500), as mixcore.gpu.master_port
if [ -n "${SLURM_JOB_ID:-}" ]; then PORT=${PORT:-$((20000 + SLURM_JOB_ID % 10000))}; else PORT=${PORT:-29500}; fi
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --nproc_per_node="$GPUS" --master_port="$PORT" \
  "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
