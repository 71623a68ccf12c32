#!/usr/bin/env bash
# One-command install of the mixseg stack into a virtual environment (called by `make install`).
#
# mmsegmentation 1.2.2 and mmdet 3.3.0 pin mmcv<2.2.0, and no mmcv 2.1.0 wheel exists for torch 2.14,
# so mmcv 2.1.0 is built from its source distribution with CPU ops. Two known traps are handled here:
# its setup needs setuptools<70 (pkg_resources) and torch >= 2.10 headers need C++20 while mmcv's
# setup.py hard-codes an older -std flag. The build takes ~20 min on 2 cores, so the wheel is cached
# outside the repository (keyed by the torch version it was built against) and reused when present.
set -euo pipefail

VENV=$(realpath -m "${VENV:-.venv}")  # absolute: the mmcv build runs in another directory
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQ="$ROOT/requirements.txt"
pin() { grep -E "^$1==" "$REQ" | head -1; }
TORCH_PIN=$(pin torch); MMCV_PIN=$(pin mmcv)
TORCH_VER=${TORCH_PIN#torch==}; MMCV_VER=${MMCV_PIN#mmcv==}
CACHE=${MIXSEG_WHEEL_CACHE:-$HOME/.cache/mixseg/wheels}/torch-$TORCH_VER
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[install] %s\n' "$*"; }

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip)

log "build tools and torch ($TORCH_PIN)"
"${PIP[@]}" install -q "$TORCH_PIN" "$(pin torchvision)" "$(pin numpy)" "$(pin opencv-python-headless)"

shopt -s nullglob
# the cached wheel must be for this venv's Python (cpXY tag), else pip would ignore it and build the
# unpatched source package instead
PYTAG=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
wheels=("$CACHE"/mmcv-"$MMCV_VER"-"$PYTAG"-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  log "no cached mmcv $MMCV_VER $PYTAG wheel in $CACHE: building it from source (~20 min on 2 cores, once)"
  # torch pulls setuptools>=77, which has no pkg_resources any more; mmcv's setup.py needs it.
  "${PIP[@]}" install -q 'setuptools<70' wheel ninja
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: -d "$work" "$MMCV_PIN"
  tar -xzf "$work"/mmcv-"$MMCV_VER".tar.gz -C "$work"
  src="$work/mmcv-$MMCV_VER"
  sed -i -E 's/-std=c\+\+1[147]/-std=c++20/g' "$src/setup.py"
  grep -q 'std=c++20' "$src/setup.py" || { echo "[install] could not patch the C++ standard in $src/setup.py" >&2; exit 1; }
  # CPU ops only: no GPU here; FORCE_CUDA stays unset so setup.py builds the CPU extension.
  ( cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" . )
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
print(f"[install] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
      f"mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops), mmseg {mmseg.__version__}, mmdet {mmdet.__version__}")
PY
