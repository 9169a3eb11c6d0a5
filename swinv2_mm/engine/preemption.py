"""Preemption: on SIGTERM or SIGINT a run finishes its iteration, saves it and stops."""
import itertools
import os
import signal
import threading

import torch
from mmengine.dist import all_reduce, get_rank, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingPreempted(Exception):
    """Ends an epoch-based run mid-epoch once its preemption checkpoint is written
    (mmengine's epoch loop reads ``stop_training`` only between epochs)."""


class PreemptionCheckpointHook(Hook):
    """Turns SIGTERM and SIGINT into a checkpoint of the iteration in progress and a clean stop.

    The signal handler only records the request. After every iteration the ranks all-reduce
    that record (one int), so all of them stop after the same iteration, the first one that
    any rank saw the signal in: every rank takes part in the save and none is left waiting in
    a collective. An iteration-based run then leaves its loop through ``stop_training`` (the
    rest of the run ends as a finished one does); an epoch-based one raises
    :class:`TrainingPreempted`, which :class:`SafeCheckpointRunner` turns into a normal return.
    Resuming an epoch-based run mid-epoch skips the batches of that epoch already trained.
    The previous signal handlers are restored when training ends.
    """

    priority = 'LOWEST'  # after the scheduler step, the logger and the checkpoint hook

    def __init__(self):
        self._requested = False
        self._previous = {}

    def before_train(self, runner) -> None:
        self._requested = False
        if threading.current_thread() is not threading.main_thread():
            return  # Python installs signal handlers from the main thread only
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._request_stop)

    def _request_stop(self, signum, frame) -> None:
        self._requested = True

    def after_train(self, runner) -> None:
        self.restore_signal_handlers()

    def restore_signal_handlers(self) -> None:
        """Puts back the handlers that were in place before training."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            return
        done = runner.iter - runner.epoch * len(loop.dataloader)
        if done > 0:  # resumed from a checkpoint written mid-epoch
            print_log(f'resume: skipping the {done} batches of epoch {runner.epoch + 1} '
                      f'trained before the checkpoint', logger='current')
            loop.dataloader = BatchesAfter(loop.dataloader, done)

    def after_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop.dataloader, BatchesAfter):
            loop.dataloader = loop.dataloader.loader

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not stop_requested_anywhere(self._requested):
            return
        path = save_preemption_checkpoint(runner)
        print(f'swinv2_mm: rank {get_rank()}: preempted: stopped after iteration '
              f'{runner.iter + 1}; checkpoint {path}; continue with --resume', flush=True)
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            runner.train_loop.stop_training = True
            return
        self.restore_signal_handlers()
        raise TrainingPreempted(path)


def stop_requested_anywhere(requested: bool) -> bool:
    """Whether any rank recorded a stop signal: the same answer on every rank."""
    flag = torch.tensor([int(requested)])
    all_reduce(flag, op='max')
    return bool(flag.item())


def save_preemption_checkpoint(runner) -> str:
    """Saves the iteration just finished as ``iter_N.pth`` in the work dir (unless the
    checkpoint hook has just saved it) and points ``last_checkpoint`` at it."""
    filename = f'iter_{runner.iter + 1}.pth'
    path = os.path.join(runner.work_dir, filename)
    if runner.message_hub.get_info('last_ckpt') != path:
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False)
        runner.message_hub.update_info('last_ckpt', path)
    if is_main_process():
        with open(os.path.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(path)
    return path


class BatchesAfter:
    """A data loader that yields its batches from number ``skip`` on: the rest of an epoch.

    The skipped batches are still loaded, as mmengine's iteration-based loop replays them on
    resume, so a pipeline's random draws match an uninterrupted run's."""

    def __init__(self, loader, skip: int):
        self.loader, self.skip = loader, skip

    def __iter__(self):
        if self.skip >= len(self.loader):  # all trained: only the epoch's end remains
            return iter(())
        return itertools.islice(iter(self.loader), self.skip, None)

    def __len__(self) -> int:
        return len(self.loader) - self.skip

    def __getattr__(self, name):  # sampler, dataset, batch_size: the wrapped loader's
        if name == 'loader':
            raise AttributeError(name)
        return getattr(self.loader, name)
