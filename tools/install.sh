#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs the locked stack:
# requirements.lock pins every distribution the venv holds (transitive ones, pip, setuptools
# and the build tools included), installed with `pip install --no-deps -r`, so that pip puts
# exactly those versions there and nothing else, and exactly one distribution provides cv2.
# Idempotent: every step checks what is already there, so a second run takes seconds.
# The venv and the self-built mmcv wheel live outside the clone (SWINV2_MM_HOME), so a
# fresh clone on the same machine reuses them.
set -euo pipefail
{  # bash reads this whole group before running it, so editing this file mid-run is harmless

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${SWINV2_MM_HOME:-$HOME/.cache/swinv2_mm}"
VENV="${SWINV2_MM_VENV:-$HOME_DIR/venv}"
PY="$VENV/bin/python"
LOCK="$ROOT/requirements.lock"
STAMP="$VENV/.swinv2_mm_lock"  # the lock this venv was last brought to

# torch 2.14.1 / torchvision 0.29.1 (the newest pair here with an importable torchvision) and
# their CUDA libraries come from this machine's disk, where pip's find-links config points.
MMCV_VERSION="$(sed -n 's/^mmcv==//p' "$LOCK")"  # built below: no wheel exists for this torch
CV2_PROVIDER=opencv-contrib-python  # the one cv2 (mmaction2's; a superset of opencv-python)
ALLOWED_CHECK='^[^ ]+ [^ ]+ requires opencv-python, which is not installed\.$'  # pip check

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
# What the venv needs to match the lock, one "WHAT NAME" line each: drift (a locked
# distribution missing or at another version), uninstall (a cv2 provider other than
# CV2_PROVIDER, or a distribution the previous lock pinned and this one dropped), reinstall
# (NAME==VERSION of a locked distribution that shares files with one to uninstall, or whose
# files are gone: two providers write one cv2 folder), extra (installed, never locked: kept).
stack_state() { (cd / && "$PY" -I - "$LOCK" "$STAMP" "$CV2_PROVIDER") <<'STATE'
import re
import sys
from importlib.metadata import distributions
from pathlib import Path


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def pins(path):
    """{canonical name: 'Name==version'} of a lock file; {} when there is none yet."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return {}
    specs = (line.split('#', 1)[0].strip() for line in lines)
    return {canonical(spec.split('==')[0]): spec for spec in specs if spec}


def files(dist):
    """The files a distribution's RECORD lists, relative to site-packages."""
    return {str(f) for f in dist.files or ()}


def provides_cv2(dist):
    """Whether the distribution's RECORD lists a top-level cv2 package or module (read as
    text: parsing torch's RECORD into paths would take a second on every run)."""
    return re.search(r'^"?cv2[/.]', dist.read_text('RECORD') or '', re.MULTILINE) is not None


lock, previous, provider = pins(sys.argv[1]), pins(sys.argv[2]), canonical(sys.argv[3])
installed = {}
for dist in distributions():  # the first one on sys.path is the one Python imports
    installed.setdefault(canonical(dist.metadata['Name']), dist)
for name, spec in lock.items():
    if name != 'mmcv' and (name not in installed or installed[name].version != spec.split('==')[1]):
        print('drift', name)
remove = {name for name, dist in installed.items()
          if name != provider and provides_cv2(dist)}
remove |= {name for name in previous if name not in lock and name in installed}
gone = set().union(*(files(installed[name]) for name in remove))
for name, dist in installed.items():
    if name in lock and name not in remove and (gone or name == provider):
        mine = files(dist)
        if mine & gone or (name == provider and not all(
                Path(dist.locate_file(f)).exists() for f in mine)):
            print('reinstall', lock[name])
for name in sorted(remove):
    print('uninstall', name)
for name, dist in sorted(installed.items()):
    if name not in lock and name not in remove and name != 'swinv2-mm':
        print('extra', f"{dist.metadata['Name']}=={dist.version}")
STATE
}
field() { awk -v what="$1" '$1 == what { print $2 }' <<<"$STATE"; }

CHANGED=0
STATE="$(stack_state)"
if ! cmp -s "$LOCK" "$STAMP" || [ -n "$(field drift)" ]; then
  log "installing requirements.lock: $(grep -c '^[^#]' "$LOCK") pinned distributions, no others"
  pip_install --no-deps -r <(grep -v '^mmcv==' "$LOCK")  # mmcv is built below
  CHANGED=1
  STATE="$(stack_state)"
fi
REMOVE="$(field uninstall)"
REINSTALL="$(field reinstall)"
if [ -n "$REMOVE" ]; then
  log "removing what the lock does not pin there: $(echo $REMOVE)"
  "$PY" -m pip uninstall --disable-pip-version-check -q -y $REMOVE
  CHANGED=1
fi
if [ -n "$REINSTALL" ]; then
  log "reinstalling files that were shared with them: $(echo $REINSTALL)"
  pip_install --no-deps --force-reinstall $REINSTALL  # NAME==VERSION lines of the lock
  CHANGED=1
fi
EXTRA="$(field extra)"
[ -z "$EXTRA" ] || log "not in requirements.lock, left installed: $(echo $EXTRA)"

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
    (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA="$FORCE_CUDA" \
      TORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" MAX_JOBS="$MAX_JOBS" \
      "$PY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
      -w "$BUILD/out" .)
    mv "$BUILD"/out/mmcv-*.whl "$WHEELS"/
    rm -rf "$BUILD"
  fi
  pip_install --no-deps --force-reinstall "$WHEELS"/mmcv-*.whl  # its requirements are locked
  CHANGED=1
fi

# The locked versions must satisfy each other. The one accepted gap: mmengine (and an mmcv
# wheel built where no cv2 was importable) require opencv-python by name; CV2_PROVIDER
# provides its cv2 at the same version.
if [ "$CHANGED" = 1 ]; then
  BROKEN="$({ "$PY" -m pip check --disable-pip-version-check 2>&1 || true; } \
    | { grep -v -E -e "$ALLOWED_CHECK" -e '^No broken requirements found\.$' || true; })"
  if [ -n "$BROKEN" ]; then
    log "requirements.lock does not hold together; pip check says:"
    echo "$BROKEN" >&2
    exit 1
  fi
fi
cp "$LOCK" "$STAMP"  # last: a run stopped before here redoes the lock and the check
rm -f "$VENV/.swinv2_mm_requirements"  # the stamp of installs before the lock

# The package itself, editable, pointing at this clone (cheap; repeated for each clone).
# (checked from / so that a swinv2_mm folder in the current directory does not count)
if ! (cd / && "$PY" -c "import swinv2_mm, os, sys; sys.exit(os.path.dirname(os.path.dirname(swinv2_mm.__file__)) != sys.argv[1])" "$ROOT") 2>/dev/null; then
  log "installing swinv2_mm (editable) from $ROOT"
  pip_install --no-deps --no-build-isolation -e "$ROOT"
fi
log "ready: $VENV"
exit
}
