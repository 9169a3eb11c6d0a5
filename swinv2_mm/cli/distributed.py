"""Data-parallel runs without GPUs through mmengine's own code paths, and a clean exit."""
import os

import torch
from mmengine.config import Config, ConfigDict

from ..engine.fsdp import use_fsdp_runner
from .config import retype


def prepare_distributed(cfg: Config) -> None:
    """A run with a launcher on a machine without GPUs gets :func:`prepare_cpu_distributed`;
    single-process and GPU runs keep mmengine's defaults. A config that asks for FSDP
    (``model_wrapper_cfg.type='MMFullyShard'``) gets its runner and optimizer constructor."""
    use_fsdp_runner(cfg)
    if cfg.get('launcher', 'none') != 'none' and not torch.cuda.is_available():
        prepare_cpu_distributed(cfg)


def prepare_cpu_distributed(cfg: Config) -> None:
    """Makes a multi-process run work without GPUs through mmengine's own code paths.

    mmengine 0.10.7 assumes CUDA in three places: its pytorch launcher calls
    ``torch.cuda.set_device`` (so the gloo process group is created here first, and
    mmengine, finding it, skips its own), its DDP wrapper passes ``device_ids=[LOCAL_RANK]``
    (rejected for CPU modules: ``model_wrapper_cfg`` passes None) and SyncBN needs CUDA
    (SyncBN layers become BN: statistics are per process). GPU runs are untouched.
    """
    cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters',
                                                                    False))
    if retype(cfg.model, 'SyncBN', 'BN'):
        print('swinv2_mm: CPU data parallel: SyncBN layers run as BN (per-process statistics); '
              'SyncBN needs CUDA')
    import torch.distributed as dist
    if not dist.is_initialized() and 'RANK' in os.environ:
        dist.init_process_group('gloo')


def finish_distributed() -> None:
    """Leaves the process group at the end of a tool, so that a torchrun process exits
    cleanly (gloo aborts a process that exits with its group still up)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
