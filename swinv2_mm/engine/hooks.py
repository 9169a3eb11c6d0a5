"""Hooks that keep a run from being lost: exact resume, superseded-log trimming, NaN stops."""
import glob
import json
import math
import os
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

RNG_KEY = 'torch_rng_state'


class RandomStateHook(Hook):
    """Saves torch's CPU and CUDA random states in every checkpoint and restores them on resume.

    mmengine saves only the seed. On resume it re-seeds and replays the data loader up to
    the checkpoint's iteration, which reproduces what the data pipeline drew (numpy,
    random); what the model drew from torch's generator (drop path, dropout, RoI sampling)
    is not replayed, so that state is restored before the first resumed iteration.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(cpu=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})[RNG_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('meta', {}).get(RNG_KEY)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending['cpu'])
        if 'cuda' in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending['cuda'])
        self._pending = None


class TrimSupersededLogsHook(Hook):
    """On resume, drops the entries of earlier runs' scalar logs (``scalars.json`` and the
    json log mmdet's ``analyze_logs.py`` reads) past the resumed iteration.

    Those iterations ran after the last checkpoint of an interrupted, preempted or failed
    run and are trained again, so the logs of all runs in a work dir together hold each
    iteration once. Each file is rewritten atomically.
    """

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return
        resumed = checkpoint.get('meta', {}).get('iter', 0)
        current = os.path.abspath(os.path.join(runner.log_dir, 'vis_data'))
        for path in glob.glob(os.path.join(runner.work_dir, '*', 'vis_data', '*.json')):
            if os.path.dirname(os.path.abspath(path)) != current:
                _drop_steps_after(path, resumed)


def _drop_steps_after(path: str, last_step: int) -> None:
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if json.loads(line).get('step', 0) <= last_step]
    if len(kept) == len(lines):
        return
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        f.writelines(kept)
    os.replace(tmp, path)
    print_log(f'resume: dropped {len(lines) - len(kept)} log entries after iteration '
              f'{last_step} from {path} (they are trained again)', logger='current')


class StopOnNonFiniteLossHook(Hook):
    """Stops training at the first loss that is NaN or infinite, naming the iteration.

    It runs before the checkpoint hook, so no checkpoint with the damaged weights is
    written; the last good checkpoint stays the run's latest.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        value = float(loss)
        if not math.isfinite(value):
            raise FloatingPointError(
                f'loss is {value} at iteration {runner.iter + 1}: training stopped before any '
                f'checkpoint of these weights is written. Lower the learning rate, enable '
                f'gradient clipping (optim_wrapper.clip_grad) or check the data; then resume '
                f'from the last checkpoint with --resume')


class OptimizerStateSizeHook(Hook):
    """Logs, after the first training iteration, how many bytes of optimizer state each
    rank holds: what ZeRO-1 saves is read off the log of any distributed run."""

    def __init__(self):
        self._done = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._done:
            return
        self._done = True
        from .optim import optimizer_state_bytes_per_rank
        per_rank = optimizer_state_bytes_per_rank(runner.optim_wrapper.optimizer)
        mib = ', '.join(f'{b / 2**20:.2f}' for b in per_rank)
        print_log(f'optimizer state per rank (MiB): [{mib}]; total {sum(per_rank) / 2**20:.2f} '
                  f'MiB over {len(per_rank)} rank(s)', logger='current')


class SkippedImagesHook(Hook):
    """Reports, after each validation and at the end of training, how many corrupt training
    images were skipped (``tools/train.py --skip-corrupt-images``) and where they are listed."""

    def __init__(self, skipped_log: str):
        self.skipped_log = skipped_log

    def count(self) -> int:
        if not os.path.isfile(self.skipped_log):
            return 0
        with open(self.skipped_log) as f:
            return sum(1 for line in f if line.strip())

    def _report(self) -> None:
        print_log(f'corrupt training images skipped so far: {self.count()} (listed in '
                  f'{self.skipped_log})', logger='current')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report()

    def after_train(self, runner) -> None:
        self._report()
