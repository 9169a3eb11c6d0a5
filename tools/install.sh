#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs the pinned stack.
# Idempotent: every step checks what is already there, so a second run takes seconds.
# The venv and the self-built mmcv wheel live outside the clone (SWINV2_MM_HOME), so a
# fresh clone on the same machine reuses them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${SWINV2_MM_HOME:-$HOME/.cache/swinv2_mm}"
VENV="${SWINV2_MM_VENV:-$HOME_DIR/venv}"
PY="$VENV/bin/python"

TORCH_VERSION=2.14.1       # newest torch here with an importable torchvision (timm, mmpretrain)
TORCHVISION_VERSION=0.29.1
SETUPTOOLS_VERSION=80.9.0  # mmcv's setup.py imports pkg_resources (<81); torch 2.14 asks for >=77
MMCV_VERSION=2.1.0         # mmdet 3.3 / mmseg 1.2 require mmcv < 2.2; no wheel for this torch

log() { echo "[install] $*"; }

if [ ! -x "$PY" ]; then
  log "creating virtual environment at $VENV"
  python3 -m venv "$VENV"
fi

# pip's find-links configuration on these machines warns once per package; keep logs readable
pip_install() {
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}
have() { "$PY" - "$@" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
name, want = sys.argv[1], sys.argv[2]
sys.exit(0 if version(name) == want else 1)
EOF
}

have setuptools "$SETUPTOOLS_VERSION" || pip_install "setuptools==$SETUPTOOLS_VERSION" wheel
if ! have torch "$TORCH_VERSION" || ! have torchvision "$TORCHVISION_VERSION"; then
  log "installing torch $TORCH_VERSION / torchvision $TORCHVISION_VERSION"
  pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# mmcv with compiled ops. Its sdist says -std=c++17; torch 2.14's headers need C++20, so we
# build a patched copy once and keep the wheel. tools/mmcv_build.py decides the build: CPU ops,
# or CUDA ops for the GPUs torch sees (nvcc of torch's CUDA version needed; it stops before
# building and says what to install when there is none), and the cache key (versions, CUDA,
# architectures), so that a CPU-only wheel is never reused on a GPU machine.
if ! "$PY" "$ROOT/tools/mmcv_build.py" --check; then
  PLAN="$("$PY" "$ROOT/tools/mmcv_build.py")" || exit 1
  eval "$PLAN"  # MMCV_TARGET MMCV_CACHE_KEY FORCE_CUDA TORCH_CUDA_ARCH_LIST MAX_JOBS
  WHEELS="$HOME_DIR/wheels/$MMCV_CACHE_KEY"
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with $MMCV_TARGET ops${TORCH_CUDA_ARCH_LIST:+ for $TORCH_CUDA_ARCH_LIST}, $MAX_JOBS jobs (about 12 minutes for the CPU ops on 2 cores, once per machine)"
    BUILD="$(mktemp -d)"
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    pip_install "numpy==1.26.4" ninja
    (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA="$FORCE_CUDA" \
      TORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" MAX_JOBS="$MAX_JOBS" \
      "$PY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
      -w "$BUILD/out" .)
    mv "$BUILD"/out/mmcv-*.whl "$WHEELS"/
    rm -rf "$BUILD"
  fi
  pip_install --no-deps --force-reinstall "$WHEELS"/mmcv-*.whl
  pip_install addict packaging Pillow pyyaml yapf opencv-python
fi

REQ_STAMP="$VENV/.swinv2_mm_requirements"
if ! cmp -s "$ROOT/requirements.txt" "$REQ_STAMP"; then
  log "installing pinned requirements"
  pip_install -r "$ROOT/requirements.txt"
  cp "$ROOT/requirements.txt" "$REQ_STAMP"
fi

# The package itself, editable, pointing at this clone (cheap; repeated for each clone).
# (checked from / so that a swinv2_mm folder in the current directory does not count)
if ! (cd / && "$PY" -c "import swinv2_mm, os, sys; sys.exit(os.path.dirname(os.path.dirname(swinv2_mm.__file__)) != sys.argv[1])" "$ROOT") 2>/dev/null; then
  log "installing swinv2_mm (editable) from $ROOT"
  pip_install --no-deps --no-build-isolation -e "$ROOT"
fi
log "ready: $VENV"
