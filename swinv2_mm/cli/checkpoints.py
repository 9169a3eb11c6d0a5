"""Which checkpoint a run starts from, checked before any model is built."""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..checkpoint.files import check_checkpoint_file
from ..models.options import pretrained_init_cfg
from .config import typed_dicts
from .distributed import restart_count


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` alone resumes from the work dir's last checkpoint, or from the path given;
    a worker that torchrun restarted resumes from the work dir's last checkpoint."""
    if restart_count() > 0:
        resume = resume_after_restart(cfg.work_dir, resume)
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume


def resume_after_restart(work_dir: str, resume: Optional[str]) -> Optional[str]:
    """A restarted worker continues from the work dir's last checkpoint, written by the
    failed attempt; while there is none yet it starts as the first attempt did."""
    from mmengine.runner import find_latest_checkpoint
    if osp.isdir(work_dir) and find_latest_checkpoint(work_dir) is not None:
        print(f'swinv2_mm: restart {restart_count()} by torchrun: '
              f'resuming from the last checkpoint in {work_dir}')
        return 'auto'
    return resume


def check_checkpoint_paths(cfg: Config, training: bool = True) -> None:
    """Opens the checkpoint a run will load (``load_from``, or the work dir's latest for
    ``--resume``) before any model is built, so a missing, truncated, foreign or untrusted
    file is reported at once, by name."""
    from mmengine.runner import find_latest_checkpoint
    path = cfg.get('load_from')
    if path is None and cfg.get('resume'):
        path = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
        if path is None:
            print(f'swinv2_mm: --resume: no checkpoint in {cfg.work_dir} yet, training starts '
                  f'from the beginning')
    if path is not None and '://' not in path:
        check_checkpoint_file(path)
    check_pretrained_paths(cfg, training)


def check_pretrained_paths(cfg: Config, training: bool = True) -> None:
    """Raises FileNotFoundError, naming the config entry, for an ``init_cfg`` of type
    'Pretrained' whose local checkpoint does not exist: in training, where it is loaded; in
    testing only under an ``arch='auto'`` backbone, which reads it while the model is built."""
    for where, node in typed_dicts(cfg.get('model', {}), 'model'):
        pretrained = pretrained_init_cfg(node.get('init_cfg'))
        if pretrained is None or not (training or node.get('arch') == 'auto'):
            continue
        where, path = f'{where}.init_cfg', pretrained['checkpoint']
        if '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(f'{where}.checkpoint: {path!r} does not exist; run what '
                                    f'writes it first or point the config elsewhere: '
                                    f'--cfg-options {where}.checkpoint=PATH')
