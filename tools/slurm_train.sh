#!/usr/bin/env bash
# Training on a Slurm cluster (one task per GPU, mmengine's slurm launcher).
#   [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=10 SRUN_ARGS=...] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
set -x
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; WORK_DIR=$4; shift 4
# CPUS_PER_TASK: one per data-loader worker, default CPUS_PER_GPU of tools/slurm_defaults.sh (the README's loader
# measurement; reproduce.py --submit uses the same); the tools cap num_workers at it
. "$(dirname "$0")/slurm_defaults.sh"
GPUS=${GPUS:-8}; GPUS_PER_NODE=${GPUS_PER_NODE:-8}; CPUS_PER_TASK=${CPUS_PER_TASK:-$CPUS_PER_GPU}; SRUN_ARGS=${SRUN_ARGS:-""}
# a rendezvous port per job (inside an allocation; otherwise the tools derive it from the job id)
[ -n "${SLURM_JOB_ID:-}" ] && export MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 10000))}
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
  --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
  "${PYTHON:-python}" -u "$DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "$@"
