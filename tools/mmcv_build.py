"""How tools/install.sh builds mmcv's compiled ops on this machine.

mmcv 2.1.0's setup.py compiles CUDA ops whenever torch sees a GPU (or FORCE_CUDA=1), which
needs an nvcc of torch's CUDA major version; without a GPU it compiles CPU ops only. This
script decides, before anything is built, which build this machine needs, for which GPU
architectures, with how many jobs, and under which wheel-cache key (so a CPU-only wheel is
never reused on a GPU machine), or stops with what to install.

    python tools/mmcv_build.py             # prints the plan as shell assignments
    python tools/mmcv_build.py --check     # exit 0 if the installed mmcv fits the plan

Environment: TORCH_CUDA_ARCH_LIST (e.g. "8.0;9.0") overrides the detected architectures,
MAX_JOBS the job count (default: one per usable core and 2 GiB of memory), CUDA_HOME the
toolkit; SWINV2_MM_MMCV_CPU=1 builds CPU-only ops on a GPU machine (GPU runs then fail in
RoIAlign).
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

MMCV_VERSION = '2.1.0'
NO_CUDA = 'not available'  # what mmcv.ops.get_compiling_cuda_version() says of a CPU build


class BuildPlanError(RuntimeError):
    """This machine cannot build the mmcv it needs; the message says what to install."""


@dataclass(frozen=True)
class Machine:
    """What the build depends on."""
    torch_version: str
    torch_cuda: Optional[str]  # torch.version.cuda; None for a CPU build of torch
    gpus: Tuple[Tuple[str, Tuple[int, int]], ...]  # (name, compute capability) per visible GPU
    nvcc: Optional[str]  # path of the nvcc that would build, None when there is none
    nvcc_release: Optional[str]  # e.g. '12.8'
    cpu_count: int  # cores this process may use, at most one per 2 GiB of available memory


def find_nvcc(env: Dict[str, str]) -> Optional[str]:
    """nvcc as torch's extension builder finds it: $CUDA_HOME/bin, PATH, /usr/local/cuda."""
    home = env.get('CUDA_HOME') or env.get('CUDA_PATH')
    candidates = [os.path.join(home, 'bin', 'nvcc')] if home else []
    candidates += [shutil.which('nvcc', path=env.get('PATH')) or '', '/usr/local/cuda/bin/nvcc']
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def nvcc_release(nvcc: str) -> Optional[str]:
    """'12.8' from nvcc's 'Cuda compilation tools, release 12.8, V12.8.93'."""
    out = subprocess.run([nvcc, '--version'], capture_output=True, text=True).stdout
    found = re.search(r'release (\d+\.\d+)', out)
    return found.group(1) if found else None


def usable_cores() -> int:
    """Cores this process may run on (cgroup affinity), at most one per 2 GiB of available
    memory: a C++20 or nvcc compile job can take that much."""
    cores = len(os.sched_getaffinity(0))
    try:
        with open('/proc/meminfo') as f:
            available_kib = next(int(line.split()[1]) for line in f
                                 if line.startswith('MemAvailable:'))
    except (OSError, StopIteration):
        return cores
    return max(1, min(cores, available_kib // (2 * 2**20)))


def detect(env: Dict[str, str]) -> Machine:
    import torch
    gpus = tuple((torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
                 for i in range(torch.cuda.device_count())) if torch.cuda.is_available() else ()
    nvcc = find_nvcc(env) if gpus else None
    return Machine(torch.__version__.split('+')[0], torch.version.cuda, gpus, nvcc,
                   nvcc_release(nvcc) if nvcc else None, usable_cores())


def arch_list(machine: Machine, env: Dict[str, str]) -> str:
    """TORCH_CUDA_ARCH_LIST: the user's, else the capabilities of the GPUs present."""
    if env.get('TORCH_CUDA_ARCH_LIST'):
        return env['TORCH_CUDA_ARCH_LIST']
    return ';'.join(f'{major}.{minor}' for major, minor in sorted({c for _, c in machine.gpus}))


def target(machine: Machine, env: Dict[str, str]) -> str:
    """'cuda' where torch sees a GPU (unless SWINV2_MM_MMCV_CPU=1), else 'cpu'."""
    return 'cuda' if machine.gpus and env.get('SWINV2_MM_MMCV_CPU') != '1' else 'cpu'


def plan(machine: Machine, env: Dict[str, str]) -> Dict[str, str]:
    """The build this machine needs: MMCV_TARGET ('cpu' or 'cuda'), MMCV_CACHE_KEY (the
    wheel-cache folder), FORCE_CUDA, TORCH_CUDA_ARCH_LIST, MAX_JOBS."""
    jobs = env.get('MAX_JOBS') or str(machine.cpu_count)
    base = f'mmcv-{MMCV_VERSION}-torch-{machine.torch_version}'
    if target(machine, env) == 'cpu':
        return dict(MMCV_TARGET='cpu', MMCV_CACHE_KEY=base, FORCE_CUDA='0',
                    TORCH_CUDA_ARCH_LIST='', MAX_JOBS=jobs)
    gpus = ', '.join(f'{name} (compute capability {c[0]}.{c[1]})' for name, c in machine.gpus)
    escape = ('or build CPU-only ops with SWINV2_MM_MMCV_CPU=1 bash tools/install.sh '
              '(then mmdet fails in RoIAlign on CUDA tensors)')
    if machine.nvcc is None:
        raise BuildPlanError(
            f'mmcv {MMCV_VERSION}: torch {machine.torch_version} sees {gpus}, so mmcv must be '
            f'built with CUDA ops, which needs nvcc from the CUDA toolkit {machine.torch_cuda} '
            f'(the CUDA torch was built with), and none was found (CUDA_HOME, PATH, '
            f'/usr/local/cuda). Install that toolkit (e.g. the cuda-toolkit-'
            f'{machine.torch_cuda.replace(".", "-")} package or conda\'s cuda-nvcc='
            f'{machine.torch_cuda}), put its nvcc on PATH or set CUDA_HOME, and run '
            f'tools/install.sh again; {escape}')
    if (machine.nvcc_release or '').split('.')[0] != machine.torch_cuda.split('.')[0]:
        raise BuildPlanError(
            f'mmcv {MMCV_VERSION}: {machine.nvcc} is CUDA {machine.nvcc_release}, but torch '
            f'{machine.torch_version} was built with CUDA {machine.torch_cuda}; the major '
            f'versions must match. Point CUDA_HOME at a CUDA {machine.torch_cuda} toolkit '
            f'and run tools/install.sh again; {escape}')
    archs = arch_list(machine, env)
    sm = re.sub(r'[^0-9a-z]+', '_', archs.lower().replace('.', ''))  # '8.0;9.0+PTX' -> 80_90_ptx
    key = f'{base}-cu{machine.torch_cuda.replace(".", "")}-sm{sm}'
    return dict(MMCV_TARGET='cuda', MMCV_CACHE_KEY=key, FORCE_CUDA='1',
                TORCH_CUDA_ARCH_LIST=archs, MAX_JOBS=jobs)


def installed_fits(target: str) -> bool:
    """Whether the installed mmcv is this version with the ops the target needs."""
    try:
        import mmcv
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return False
    has_cuda = get_compiling_cuda_version() != NO_CUDA
    return mmcv.__version__ == MMCV_VERSION and (has_cuda or target == 'cpu')


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='exit 0 if the installed mmcv fits this machine')
    args = parser.parse_args(argv)
    env = dict(os.environ)
    machine = detect(env)
    if args.check:
        return 0 if installed_fits(target(machine, env)) else 1
    try:
        decided = plan(machine, env)
    except BuildPlanError as err:
        print(f'[install] error: {err}', file=sys.stderr)
        return 2
    for name, value in decided.items():
        print(f'{name}={shlex.quote(value)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
