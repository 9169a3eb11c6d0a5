"""Data-parallel runs without GPUs through mmengine's own code paths, restarted torchrun
workers, and a clean exit."""
import datetime
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
    launcher = cfg.get('launcher', 'none')
    if launcher != 'none' and not torch.cuda.is_available():
        prepare_cpu_distributed(cfg)
    if launcher == 'pytorch' and (not torch.cuda.is_available() or restart_count() > 0):
        init_attempt_process_group(cfg)


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


def restart_count() -> int:
    """How often torchrun (``--max-restarts``) has restarted this worker's group."""
    return int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))


def launched_by_torchrun() -> bool:
    """Whether this process is a worker that torchrun started (and may restart)."""
    return 'TORCHELASTIC_RESTART_COUNT' in os.environ


def init_attempt_process_group(cfg: Config) -> None:
    """Creates the default process group of a torchrun worker as mmengine's pytorch launcher
    would, but under a store prefix of its own attempt (so mmengine, finding the group,
    skips its own).

    torchrun 2.14 keeps one store for every attempt of a run: a worker it restarts after a
    failure reads the failed attempt's addresses there and connects to dead processes
    ("Connection refused", pytorch/pytorch#167288). CPU runs always come here (the gloo group
    is created before mmengine's CUDA-only launcher code); GPU runs only when restarted.
    """
    import torch.distributed as dist
    if dist.is_initialized() or 'RANK' not in os.environ:
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    timeout = dist_cfg.get('timeout')
    timeout = dist.constants.default_pg_timeout if timeout is None else \
        datetime.timedelta(seconds=timeout)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    store, rank, world_size = next(dist.rendezvous('env://', timeout=timeout))
    dist.init_process_group(dist_cfg.get('backend', 'nccl'), timeout=timeout, rank=rank,
                            world_size=world_size,
                            store=dist.PrefixStore(f'attempt_{restart_count()}', store))


def finish_distributed() -> None:
    """Leaves the process group at the end of a tool, so that a torchrun process exits
    cleanly (gloo aborts a process that exits with its group still up)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
