"""Which checkpoint a run starts from, checked before any model is built."""
import json
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..checkpoint.files import check_checkpoint_file
from ..engine.work_dir import newest_readable_checkpoint, write_atomically
from ..models.options import pretrained_init_cfg
from .config import typed_dicts
from .distributed import launched_by_torchrun, restart_count


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` alone resumes from the work dir's newest checkpoint that opens
    (:func:`checkpoint_to_resume`), ``--resume PATH`` from that file; a worker that torchrun
    restarted resumes from the work dir's newest checkpoint (:func:`resume_after_restart`).
    Under torchrun, which checkpoint each attempt starts from is recorded in the work dir."""
    if restart_count() > 0:
        resume = resume_after_restart(cfg.work_dir, resume)
    elif resume == 'auto':
        resume = checkpoint_to_resume(cfg.work_dir)
    record_attempt(cfg.work_dir, resume)
    if resume is not None:
        cfg.resume, cfg.load_from = True, resume


def checkpoint_to_resume(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: the one ``last_checkpoint`` names, or, when
    that is empty, missing or names a file that does not open (truncated), the newest
    checkpoint in the work dir that opens (logged, naming both). None, said, when the work dir
    holds no checkpoint yet: the run starts as it would without ``--resume``. Raises
    NoReadableCheckpointError when it holds checkpoints and none opens."""
    path = newest_readable_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if path is None:
        print(f'swinv2_mm: --resume: no checkpoint in {work_dir} yet, training starts from '
              f'the beginning')
    return path


def resume_after_restart(work_dir: str, resume: Optional[str]) -> Optional[str]:
    """Where a worker that torchrun restarted starts: the work dir's newest checkpoint that
    opens, written by a failed attempt; while there is none, where the first attempt started
    (``resume``: a path, or 'auto' or None for the beginning).

    Raises RuntimeError instead when the previous attempt started from that same checkpoint
    (the record :func:`record_attempt` keeps): it failed before writing a newer one, so this
    attempt would repeat the same failure at the same iteration. The stop is recorded too, so
    each remaining restart stops at once rather than training up to that failure again."""
    latest = newest_readable_checkpoint(work_dir) if osp.isdir(work_dir) else None
    start = latest if latest is not None else (None if resume == 'auto' else resume)
    attempt = restart_count()
    previous = attempt_records(work_dir).get(str(attempt - 1))
    if previous is not None and _same_start(previous.get('start'), start):
        record_attempt(work_dir, start)
        where = start or 'the beginning (no checkpoint yet)'
        before = 'the first attempt' if attempt == 1 else f'restart {attempt - 1}'
        raise RuntimeError(
            f'restart {attempt} by torchrun would start from {where}, as {before} did, which '
            f'failed before writing a newer checkpoint: it would repeat the same failure at the '
            f'same iteration, so it stops instead (and so does each remaining restart). Read the '
            f'first failed attempt\'s error above and fix its cause, then run again with '
            f'--resume; {osp.join(work_dir, ATTEMPTS_RECORD)} records where each attempt '
            f'started')
    if latest is not None:
        print(f'swinv2_mm: restart {attempt} by torchrun: resuming from the last checkpoint in '
              f'{work_dir}: {latest}')
    else:
        print(f'swinv2_mm: restart {attempt} by torchrun: no checkpoint in {work_dir} yet, '
              f'starting where the first attempt did')
    return start


ATTEMPTS_RECORD = 'torchrun_attempts.json'  # in the work dir: where each attempt started


def attempt_records(work_dir: str) -> dict:
    """The work dir's record of the current torchrun launch's attempts: attempt number (a
    string) -> ``{'start': checkpoint or None}``; empty when absent or unreadable."""
    try:
        with open(osp.join(work_dir, ATTEMPTS_RECORD)) as f:
            records = json.load(f)
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def record_attempt(work_dir: str, start: Optional[str]) -> None:
    """Under torchrun, rank 0 records which checkpoint this attempt starts from (None: the
    beginning) in the work dir, for the next restart to compare; the first attempt of a
    torchrun launch starts a new record."""
    if not launched_by_torchrun() or os.environ.get('RANK', '0') != '0':
        return
    attempt = restart_count()
    records = attempt_records(work_dir) if attempt > 0 else {}
    records[str(attempt)] = dict(start=_normalized(start))
    os.makedirs(work_dir, exist_ok=True)
    write_atomically(osp.join(work_dir, ATTEMPTS_RECORD), json.dumps(records, indent=1) + '\n')


def _normalized(path: Optional[str]) -> Optional[str]:
    return path if path is None or '://' in path else osp.abspath(path)


def _same_start(recorded: Optional[str], start: Optional[str]) -> bool:
    return recorded == _normalized(start)


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
