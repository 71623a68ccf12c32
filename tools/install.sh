#!/usr/bin/env bash
# One-command install of the mixseg stack into a virtual environment (called by `make install`).
#
# mmsegmentation 1.2.2 and mmdet 3.3.0 pin mmcv<2.2.0, and no mmcv 2.1.0 wheel exists for torch 2.14,
# so mmcv 2.1.0 is built from its source distribution. Two known traps are handled here: its setup needs
# setuptools<70 (pkg_resources) and torch >= 2.10 headers need C++20 while mmcv's setup.py hard-codes an
# older -std flag. The build takes ~20 min on 2 cores (CPU ops), so the wheel is cached outside the
# repository and reused when present.
#
# CUDA ops: where torch has CUDA, nvcc exists (CUDA_HOME/bin or PATH) and an NVIDIA driver with a GPU is there
# (nvidia-smi -L lists one, or /proc/driver/nvidia exists), mmcv is built with CUDA ops
# (FORCE_CUDA=1; Mask R-CNN's RoIAlign/NMS on the GPU), for the architectures the installed torch was built
# for (torch 2.14.1 cu130: TORCH_CUDA_ARCH_LIST="7.5;8.0;8.6;9.0;10.0;12.0+PTX"; set TORCH_CUDA_ARCH_LIST to
# build fewer, e.g. "9.0" for H100 only, much faster). MMCV_CUDA=1 insists on CUDA ops (fails without nvcc; use it
# on a GPU-less login node that builds for the GPU nodes; a machine with the CUDA toolkit but no GPU, like CI's,
# builds CPU ops in the default auto mode),
# MMCV_CUDA=0 builds CPU ops only. The cache key says what the wheel holds:
#   ~/.cache/mixseg/wheels/torch-<version>-cpu          CPU ops (older installs: .../torch-<version>, reused)
#   ~/.cache/mixseg/wheels/torch-<version>-cu<XY>       CUDA ops for torch.version.cuda X.Y, torch's arch list
#   ~/.cache/mixseg/wheels/torch-<version>-cu<XY>-sm<A_B>   ... for an explicit TORCH_CUDA_ARCH_LIST
# `bash tools/install.sh --print-key` prints the key (and the wheel it would use) for an existing venv.
# Other torch builds (older GPUs, CUDA 12): TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 (README).
set -euo pipefail

VENV=$(realpath -m "${VENV:-.venv}")  # absolute: the mmcv build runs in another directory
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQ="$ROOT/requirements.txt"
pin() { grep -E "^$1==" "$REQ" | head -1; }
TORCH_PIN=$(pin torch); MMCV_PIN=$(pin mmcv)
TORCH_VER=${TORCH_PIN#torch==}; MMCV_VER=${MMCV_PIN#mmcv==}
CACHE_ROOT=${MIXSEG_WHEEL_CACHE:-$HOME/.cache/mixseg/wheels}
LEGACY_CACHE=$CACHE_ROOT/torch-$TORCH_VER  # CPU wheels of installs before the CUDA key
PRINT_KEY=0
[ "${1:-}" = "--print-key" ] && PRINT_KEY=1

has_gpu_driver() {  # an NVIDIA driver with at least one GPU (the toolkit alone is not enough: CI has nvcc, no GPU)
  [ -r /proc/driver/nvidia/version ] && return 0
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'
}

find_nvcc() {  # CUDA_HOME first (what torch's extension builder uses), then PATH
  if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then echo "$CUDA_HOME/bin/nvcc"; return; fi
  command -v nvcc 2>/dev/null || true
}

# Sets PYTAG, FLAVOUR (cpu|cuda), CACHE, ARCH_LIST from the venv's Python and torch, nvcc and MMCV_CUDA / TORCH_CUDA_ARCH_LIST.
wheel_cache_key() {
  local info torch_cuda archs nvcc
  info=$("$VENV/bin/python" -c 'import sys, torch
flags = torch._C._cuda_getArchFlags() if torch.version.cuda and hasattr(torch._C, "_cuda_getArchFlags") else ""
archs = [f"{a[3:-1]}.{a[-1]}" for a in flags.split() if a.startswith("sm_")]
print(f"cp{sys.version_info[0]}{sys.version_info[1]}", torch.version.cuda or "-",
      ";".join(archs[:-1] + [archs[-1] + "+PTX"]) if archs else "-")')
  read -r PYTAG torch_cuda archs <<<"$info"
  [ "$torch_cuda" = - ] && torch_cuda=""
  [ "$archs" = - ] && archs=""
  nvcc=$(find_nvcc)
  FLAVOUR=cpu
  case "${MMCV_CUDA:-auto}" in
    0) ;;
    1) [ -n "$torch_cuda" ] || { echo "[install] MMCV_CUDA=1 but the installed torch has no CUDA" >&2; exit 1; }
       [ -n "$nvcc" ] || { echo "[install] MMCV_CUDA=1 but no nvcc (set CUDA_HOME or put nvcc on PATH)" >&2; exit 1; }
       FLAVOUR=cuda ;;
    auto) [ -n "$torch_cuda" ] && [ -n "$nvcc" ] && has_gpu_driver && FLAVOUR=cuda ;;
    *) echo "[install] MMCV_CUDA must be 0, 1 or auto, got ${MMCV_CUDA}" >&2; exit 1 ;;
  esac
  if [ "$FLAVOUR" = cuda ]; then
    NVCC=$nvcc
    CACHE=$CACHE_ROOT/torch-$TORCH_VER-cu${torch_cuda//./}
    if [ -n "${TORCH_CUDA_ARCH_LIST:-}" ]; then
      ARCH_LIST=$TORCH_CUDA_ARCH_LIST
      CACHE=$CACHE-sm$(printf '%s' "$ARCH_LIST" | tr -d '. ' | sed 's/+PTX/ptx/g' | tr ';,' '__' | tr -cd '0-9a-z_')
    else
      ARCH_LIST=${archs:-7.5;8.0;8.6;9.0;10.0;12.0+PTX}
    fi
  else
    CACHE=$CACHE_ROOT/torch-$TORCH_VER-cpu
    ARCH_LIST=
  fi
}

export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[install] %s\n' "$*"; }

if [ "$PRINT_KEY" = 1 ]; then
  [ -x "$VENV/bin/python" ] || { echo "[install] --print-key: no venv at $VENV" >&2; exit 1; }
fi
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip)

if [ "$PRINT_KEY" = 0 ]; then
  log "build tools and torch ($TORCH_PIN)"
  # TORCH_INDEX_URL: another build of the pinned torch (e.g. CUDA 12.6 for GPUs older than sm_75 / drivers < 580)
  "${PIP[@]}" install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple} \
    "$TORCH_PIN" "$(pin torchvision)" "$(pin numpy)" "$(pin opencv-python-headless)"
fi

shopt -s nullglob
wheel_cache_key
# the cached wheel must be for this venv's Python (PYTAG, cpXY), else pip would ignore it and build the
# unpatched source package instead
wheels=("$CACHE"/mmcv-"$MMCV_VER"-"$PYTAG"-*.whl)
legacy=("$LEGACY_CACHE"/mmcv-"$MMCV_VER"-"$PYTAG"-*.whl)
if [ ${#wheels[@]} -eq 0 ] && [ "$FLAVOUR" = cpu ] && [ ${#legacy[@]} -gt 0 ]; then
  # a CPU wheel cached under the old key (torch version only): reuse it under the new key (hard link)
  if [ "$PRINT_KEY" = 1 ]; then
    wheels=("${legacy[@]}")
  else
    mkdir -p "$CACHE"
    for w in "${legacy[@]}"; do ln -f "$w" "$CACHE/" 2>/dev/null || cp "$w" "$CACHE/"; done
    log "reusing the CPU wheel of $LEGACY_CACHE (linked into $CACHE)"
    wheels=("$CACHE"/mmcv-"$MMCV_VER"-"$PYTAG"-*.whl)
  fi
fi
if [ "$PRINT_KEY" = 1 ]; then
  echo "flavour=$FLAVOUR"
  echo "cache=$CACHE"
  echo "arch_list=$ARCH_LIST"
  echo "wheel=${wheels[0]:-}"
  exit 0
fi
if [ ${#wheels[@]} -eq 0 ]; then
  log "no cached mmcv $MMCV_VER $PYTAG wheel ($FLAVOUR ops) in $CACHE: building it from source (once; CPU ops ~20 min on 2 cores, CUDA ops for ${ARCH_LIST:-none} longer)"
  # torch pulls setuptools>=77, which has no pkg_resources any more; mmcv's setup.py needs it.
  "${PIP[@]}" install -q 'setuptools<70' wheel ninja
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: -d "$work" "$MMCV_PIN"
  tar -xzf "$work"/mmcv-"$MMCV_VER".tar.gz -C "$work"
  src="$work/mmcv-$MMCV_VER"
  sed -i -E 's/-std=c\+\+1[147]/-std=c++20/g' "$src/setup.py"
  grep -q 'std=c++20' "$src/setup.py" || { echo "[install] could not patch the C++ standard in $src/setup.py" >&2; exit 1; }
  if [ "$FLAVOUR" = cuda ]; then  # setup.py builds the CUDA extension with FORCE_CUDA (no GPU needed, nvcc is)
    log "CUDA ops with $NVCC for TORCH_CUDA_ARCH_LIST=$ARCH_LIST"
    ( cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH_LIST" \
        CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" . )
  else  # CPU ops: FORCE_CUDA unset and no GPU visible, so setup.py builds the CPU extension
    ( cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=-1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" . )
  fi
  mkdir -p "$CACHE"
  for w in "$work"/dist/mmcv-*.whl; do
    cp "$w" "$CACHE/.$(basename "$w").part" && mv "$CACHE/.$(basename "$w").part" "$CACHE/$(basename "$w")"
  done
  log "cached $(ls "$CACHE")"
else
  log "using cached ${wheels[0]}"
fi

log "the rest of requirements.txt"
"${PIP[@]}" install -q --find-links "$CACHE" --only-binary mmcv -r "$REQ"  # never the unpatched sdist
# mmengine/mmcv declare `opencv-python`, which pulls the GUI build next to the headless one; keep only
# the headless build (no libGL needed) — both provide the same cv2 module.
if "$VENV/bin/python" -m pip show -q opencv-python >/dev/null 2>&1; then
  log "replacing opencv-python with $(pin opencv-python-headless)"
  "${PIP[@]}" uninstall -q -y opencv-python
  "${PIP[@]}" install -q --force-reinstall --no-deps "$(pin opencv-python-headless)"
fi
log "the project (editable)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"
"$VENV/bin/python" - <<'PY'
import mmcv, mmcv.ops, mmdet, mmseg, mmengine, timm, torch, torchvision
from mmcv.ops import get_compiling_cuda_version
ops = get_compiling_cuda_version()
ops = "CPU ops" if ops in ("", "not available") else f"CUDA {ops} ops"
print(f"[install] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
      f"mmengine {mmengine.__version__}, mmcv {mmcv.__version__} ({ops}), mmseg {mmseg.__version__}, mmdet {mmdet.__version__}")
PY
