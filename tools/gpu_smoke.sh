#!/usr/bin/env bash
# Smoke test of a GPU node (≤ 8 min on one GPU): the stack, the mixing benchmark, stage 1 through dist_train.sh
# with AMP and a resume, stage 2 (Segmenter from the exported backbone, Mask R-CNN), a summary table.
#
#   bash tools/gpu_smoke.sh [--device cuda|cpu] [--work-dir DIR] [--keep]
#
# --device cuda (default): DeiT-S TransMix recipe (batch 128, 2 iterations per epoch on generated data) with
#   --amp, resumed for a second epoch; Segmenter-Mask DeiT-S 512² for 50 iterations from its backbone file, then
#   tools/test.py; the demo Mask R-CNN (PVT) for one epoch where mmcv has CUDA ops (else SKIP).
# --device cpu: the same steps with the tiny demo configs and data (tests/test_gpu_smoke.py runs it).
# Exit status: 0 when no step failed. Logs: <work dir>/logs/<step>.log.
#
# Offline GPU nodes (no package registry): put wheels beside this script, in tools/wheels/, made on a machine
# with the registry and the node's platform (Linux x86_64, Python 3.11):
#   pip download -d tools/wheels -r requirements.txt --only-binary :all: \
#       $(grep -v '^mmcv==' requirements.txt | grep -v '^#')          # every pinned wheel except mmcv
#   MMCV_CUDA=1 bash tools/install.sh                                  # needs nvcc; builds + caches mmcv CUDA ops
#   cp ~/.cache/mixseg/wheels/torch-2.14.1-cu130/mmcv-2.1.0-*.whl tools/wheels/
#   (pip wheel -d tools/wheels PACKAGE for any pinned package that only has a source distribution)
# The script then creates .venv from them when the stack is missing (pip install --no-index --find-links).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=cuda; WORK=$ROOT/work_dirs/gpu_smoke; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --work-dir) WORK=$(realpath -m "$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "--device must be cuda or cpu" >&2; exit 2 ;; esac
cd "$ROOT"
export PYTHONPATH="$ROOT:${PYTHONPATH:-}"
[ "$DEVICE" = cpu ] && export CUDA_VISIBLE_DEVICES=-1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# --- the environment (offline wheels when the stack is missing) ---------------------------------------------
PY=${PYTHON:-}
if [ -z "$PY" ]; then if [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi; fi
if ! "$PY" -c 'import torch, timm, mmengine, mmcv.ops, mmseg, mmdet' 2>/dev/null; then
  WHEELS=${WHEELS:-$ROOT/tools/wheels}
  [ -d "$WHEELS" ] || { echo "the mm stack is missing and there is no $WHEELS (see the header of $0)" >&2; exit 1; }
  [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
  PY=$ROOT/.venv/bin/python
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" --only-binary mmcv -r requirements.txt || exit 1
fi

# --- steps ------------------------------------------------------------------------------------------------
[ "$KEEP" = 1 ] || rm -rf "$WORK/runs" "$WORK/logs"
mkdir -p "$WORK/logs" "$WORK/runs"
NAMES=(); STATES=(); SECS=(); NOTES=(); FAILED=0
step() {  # step NAME TIMEOUT_S COMMAND... : run, log, record PASS/FAIL and the time
  local name=$1 limit=$2 t0 rc; shift 2
  t0=$(date +%s)
  echo "=== $name: $*"
  timeout "$limit" "$@" >"$WORK/logs/$name.log" 2>&1; rc=$?
  NAMES+=("$name"); SECS+=($(( $(date +%s) - t0 )))
  if [ $rc -eq 0 ]; then STATES+=(PASS); NOTES+=("${NOTE:-}")
  else
    STATES+=(FAIL); FAILED=1
    NOTES+=("exit $rc$([ $rc -eq 124 ] && echo ' (timeout)'), see logs/$name.log")
    tail -n 25 "$WORK/logs/$name.log"
  fi
  NOTE=
}
skip() { NAMES+=("$1"); STATES+=(SKIP); SECS+=(0); NOTES+=("$2"); echo "=== $1: SKIP ($2)"; }

DATA=$WORK/data
R=$WORK/runs
export PYTHON=$PY  # what dist_train.sh runs
export PORT=${PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
if [ "$DEVICE" = cuda ]; then
  SIZE=small; AMP=(--amp)
  PRE=configs/pretrain/deit-s_transmix_8xb128-300e_in1k.py; PRE_OPTS=(model.num_classes=10 default_hooks.logger.interval=1)
  SEG=configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py; SEG_ITERS=50
  BENCH=(--model deit_small_patch16_224 --batch 128 --img-size 224 --device cuda --rounds 3 --warmup 1)
else
  SIZE=tiny; AMP=()
  PRE=configs/demo/pretrain_vit-nano_transmix_demo.py; PRE_OPTS=(default_hooks.logger.interval=1)
  SEG=configs/demo/segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py; SEG_ITERS=4
  BENCH=(--model vit_tiny_patch16_224 --batch 4 --img-size 64 --device cpu --threads 1 --rounds 1 --warmup 0
         --only transmix)
fi
DET=configs/demo/mask-rcnn_pvt-demo_fpn_1xb2-4e_coco-demo.py

NOTE=$("$PY" -m mixcore.gpu --short 2>&1 | tail -1)
if [ "$DEVICE" = cuda ]; then
  step stack 120 "$PY" -c 'import sys, torch; from mixcore.gpu import stack_report
r = stack_report(); [print(f"{k:16s} {v}") for k, v in r.items()]
sys.exit(0 if r["cuda_available"] and r.get("arch_supported") else "no usable CUDA GPU (driver, or an arch this torch build lacks)")'
else
  step stack 120 "$PY" -m mixcore.gpu
fi
cat "$WORK/logs/stack.log"
if [ "$DEVICE" = cuda ]; then
  BEST=$("$PY" -c 'from mixcore.gpu import resolve_amp; print(resolve_amp("auto"))' 2>/dev/null || echo fp16)
  BENCH+=(--amp "$BEST")
fi
OPS=$("$PY" -c 'from mixcore.gpu import mmcv_cuda_ops; print(int(bool(mmcv_cuda_ops())))' 2>/dev/null || echo 0)

step data 300 "$PY" tools/make_demo_data.py --out "$DATA" --size $SIZE --only imagenet,ade20k,coco --quiet
step benchmark_mix 300 "$PY" tools/benchmark_mix.py "${BENCH[@]}"

# stage 1: one epoch through dist_train.sh (1 process), then --resume for a second; the backbone file at the end
TRAIN=(bash tools/dist_train.sh "$PRE" 1 --work-dir "$R/pretrain" --data-root "$DATA/imagenet" "${AMP[@]}")
step pretrain 420 "${TRAIN[@]}" --cfg-options train_cfg.max_epochs=1 "${PRE_OPTS[@]}"
step pretrain_resume 420 "${TRAIN[@]}" --resume --cfg-options train_cfg.max_epochs=2 "${PRE_OPTS[@]}"
step resumed_from_epoch_1 30 grep -q "resumed epoch: 1" "$WORK/logs/pretrain_resume.log"
BACKBONE=$R/pretrain/backbone.safetensors
step backbone_file 30 test -s "$BACKBONE"

# stage 2: Segmenter from the exported backbone, then tools/test.py
SEG_OPTS=(model.backbone.checkpoint="$BACKBONE" train_cfg.max_iters=$SEG_ITERS train_cfg.val_interval=$SEG_ITERS
          default_hooks.checkpoint.interval=$SEG_ITERS default_hooks.logger.interval=10)
step segmenter_train 420 bash tools/dist_train.sh "$SEG" 1 --work-dir "$R/seg" \
  --data-root "$DATA/ade/ADEChallengeData2016" "${AMP[@]}" --cfg-options "${SEG_OPTS[@]}"
step segmenter_test 300 "$PY" tools/test.py "$SEG" "$R/seg/iter_$SEG_ITERS.pth" --work-dir "$R/seg" \
  --data-root "$DATA/ade/ADEChallengeData2016" --cfg-options model.backbone.checkpoint=None
[ "${STATES[-1]}" = PASS ] && NOTES[${#NOTES[@]}-1]=$("$PY" -c 'import json, sys
print("mIoU", json.load(open(sys.argv[1]))["metrics"].get("mIoU"))' "$R/seg/results/ss.json" 2>&1 | tail -1)

# Mask R-CNN (RoIAlign/NMS: mmcv CUDA ops on a GPU)
if [ "$DEVICE" = cpu ] || [ "$OPS" = 1 ]; then
  step mask_rcnn 420 bash tools/dist_train.sh "$DET" 1 --work-dir "$R/det" --data-root "$DATA/coco" \
    "${AMP[@]}" --cfg-options train_cfg.max_epochs=1 train_cfg.val_interval=1 default_hooks.checkpoint.interval=1
else
  skip mask_rcnn "mmcv has CPU ops only: MMCV_CUDA=1 bash tools/install.sh"
fi

# --- summary ----------------------------------------------------------------------------------------------
echo
echo "gpu_smoke --device $DEVICE   ($WORK)"
printf '| %-20s | %-6s | %7s | %s\n' step status seconds note
printf '|%s|%s|%s|%s\n' "----------------------" "--------" "---------" "------"
for i in "${!NAMES[@]}"; do
  printf '| %-20s | %-6s | %7s | %s\n' "${NAMES[$i]}" "${STATES[$i]}" "${SECS[$i]}" "${NOTES[$i]}"
done
[ $FAILED -eq 0 ] && echo "all steps passed" || echo "FAILED"
exit $FAILED
