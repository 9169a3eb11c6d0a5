"""Preemption: on SIGTERM or SIGINT a run finishes its iteration (or ends the validation in
progress), saves it, marks its work dir as preempted and stops; a second signal aborts at
once; data-loader workers ignore both signals, the main process decides.

The contract is torchrun's (and that of most schedulers): SIGTERM to the process group, then
SIGKILL 30 s later. What must fit in those 30 s is the rest of the iteration in progress, one
validation batch when the signal comes during a validation, and the checkpoint.
"""
import functools
import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_rank, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from .work_dir import write_atomically, write_last_checkpoint

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A stop signal this soon after the first is the same request delivered twice (torchrun
# forwards what it receives to its workers, a scheduler may signal both), not a second one.
SECOND_SIGNAL_GRACE_S = 2.0
PREEMPTED_MARKER = 'preempted.json'  # in the work dir while its last run was preempted


class TrainingPreempted(Exception):
    """Ends a run once its preemption checkpoint is written; :class:`SafeCheckpointRunner`
    turns it into a normal return (mmengine's loops read ``stop_training`` only between
    epochs, and an iteration loop would still run a validation due at that iteration)."""


class PreemptionCheckpointHook(Hook):
    """Turns SIGTERM and SIGINT into a checkpoint of the iteration in progress and a clean stop.

    The signal handler only records the request. After every iteration, and after every
    validation batch, the ranks all-reduce that record (one int), so all of them stop at the
    same point, the first one that any rank saw the signal in: every rank takes part in the
    save and none is left waiting in a collective. A validation in progress ends after its
    current batch without computing metrics (a resumed run validates at the next interval),
    and no validation starts after a preemption save. The run then raises
    :class:`TrainingPreempted`: no ``after_train`` hooks run (nothing is published as a
    finished model), ``after_run`` does. ``preempted.json`` in the work dir says the run was
    preempted, where and which checkpoint to resume from; the next run in that work dir
    removes it. Resuming an epoch-based run mid-epoch skips the batches of that epoch already
    trained.

    A second stop signal, :data:`SECOND_SIGNAL_GRACE_S` or more after the first, goes to the
    handler that was in place before training (KeyboardInterrupt for SIGINT, termination for
    SIGTERM): abort at once, without that checkpoint. The handlers are restored when the run
    ends. A signal ignored when training starts (SIG_IGN, e.g. SIGINT of a background job)
    stays ignored.
    """

    priority = 'LOWEST'  # after the scheduler step, the logger and the checkpoint hook

    def __init__(self):
        self._requested_at: Optional[float] = None
        self._signal: Optional[int] = None
        self._previous = {}
        self._training = False
        self._cut_after: Optional[int] = None  # validation batches run before a stop

    @property
    def requested(self) -> bool:
        """Whether this process received a stop signal during training."""
        return self._requested_at is not None

    def before_train(self, runner) -> None:
        self._requested_at, self._signal, self._training = None, None, True
        if is_main_process():
            remove_preemption_marker(runner.work_dir)
        if threading.current_thread() is not threading.main_thread():
            return  # Python installs signal handlers from the main thread only
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous = signal.signal(sig, self._on_stop_signal)
                self._previous[sig] = signal.SIG_DFL if previous is None else previous

    def _on_stop_signal(self, signum, frame) -> None:
        """Records the first stop signal; one at least the grace time later aborts."""
        name = signal.Signals(signum).name
        if self._requested_at is None:
            self._requested_at, self._signal = time.monotonic(), signum
            _say(f'{name}: stopping after this iteration (or validation batch) and saving '
                 f'it; a second signal, {SECOND_SIGNAL_GRACE_S:g} s or more from now, aborts '
                 f'at once')
            return
        if time.monotonic() - self._requested_at < SECOND_SIGNAL_GRACE_S:
            return  # the first request, delivered again
        _say(f'second {name}: aborting at once, without a checkpoint of this iteration')
        previous = self._previous.get(signum, signal.SIG_DFL)
        self.restore_signal_handlers()
        if callable(previous):
            previous(signum, frame)
        else:
            signal.raise_signal(signum)

    def after_train(self, runner) -> None:
        self._training = False
        self.restore_signal_handlers()

    def after_run(self, runner) -> None:
        self._training = False
        self.restore_signal_handlers()  # a preempted run ends here, not in after_train

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
        if stop_requested_anywhere(self.requested):
            self._stop(runner, runner.iter + 1)

    def before_val_epoch(self, runner) -> None:
        """Lets a stop end this validation after any batch (see :meth:`after_val_iter`)."""
        self._cut_after = None
        if not self._training:
            return
        loop = runner.val_loop
        loop.dataloader = BatchesWhile(loop.dataloader, lambda: self._cut_after is None)
        if hasattr(loop, 'evaluator'):
            loop.evaluator.evaluate = functools.partial(self._evaluate_unless_cut,
                                                        loop.evaluator)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._training and self._cut_after is None and \
                stop_requested_anywhere(self.requested):
            self._cut_after = batch_idx + 1

    def _evaluate_unless_cut(self, evaluator, size: int) -> dict:
        """The evaluator's metrics, or none (results dropped) for a validation cut short:
        metrics of a part of the data would be logged and compared as the whole's."""
        if self._cut_after is None:
            return type(evaluator).evaluate(evaluator, size)
        for metric in evaluator.metrics:
            metric.results.clear()
        return {}

    def after_val_epoch(self, runner, metrics=None) -> None:
        loop = runner.val_loop
        if isinstance(loop.dataloader, BatchesWhile):
            loop.dataloader = loop.dataloader.loader
        if hasattr(loop, 'evaluator'):
            vars(loop.evaluator).pop('evaluate', None)

    def after_val(self, runner) -> None:
        if not self._training:
            return
        if self._cut_after is not None:
            total = len(runner.val_loop.dataloader)
            print(f'swinv2_mm: rank {get_rank()}: stop requested during the validation at '
                  f'iteration {runner.iter}: it ended after {self._cut_after} of {total} '
                  f'batches, without metrics', flush=True)
            self._stop(runner, runner.iter)
        elif stop_requested_anywhere(self.requested):  # during the metrics' computation
            self._stop(runner, runner.iter)

    def _stop(self, runner, trained: int) -> None:
        """Saves the state after ``trained`` iterations, marks the work dir, and ends the run."""
        path = save_preemption_checkpoint(runner, trained)
        if is_main_process():
            write_preemption_marker(runner.work_dir, trained, path, self._signal)
        print(f'swinv2_mm: rank {get_rank()}: preempted: stopped after iteration {trained}; '
              f'checkpoint {path}; continue with --resume', flush=True)
        raise TrainingPreempted(path)


def _say(text: str) -> None:
    """Writes a line to stderr from a signal handler (print may be inside a write already)."""
    os.write(2, f'swinv2_mm: rank {get_rank()}: {text}\n'.encode())


def stop_requested_anywhere(requested: bool) -> bool:
    """Whether any rank recorded a stop signal: the same answer on every rank."""
    flag = torch.tensor([int(requested)])
    all_reduce(flag, op='max')
    return bool(flag.item())


def save_preemption_checkpoint(runner, trained: int) -> str:
    """Saves the state after ``trained`` iterations as ``iter_N.pth`` in the work dir, unless
    the checkpoint just written holds it (the checkpoint hook's at this iteration, or at the
    epoch's end before a validation), and points ``last_checkpoint`` at it."""
    saved = getattr(runner, 'last_saved_checkpoint', None)  # SafeCheckpointRunner's record
    filename = f'iter_{trained}.pth'
    path = os.path.join(runner.work_dir, filename)
    if saved is not None and saved[1] == trained:
        path = saved[0]
    elif runner.message_hub.get_info('last_ckpt') != path:
        runner.message_hub.update_info('last_ckpt', path)
        runner.save_checkpoint(runner.work_dir, filename, meta=dict(epoch=runner.epoch,
                                                                    iter=trained),
                               by_epoch=False)
    if is_main_process():
        write_last_checkpoint(runner.work_dir, path)
    return path


def write_preemption_marker(work_dir: str, trained: int, checkpoint: str,
                            signum: Optional[int]) -> None:
    """Writes ``preempted.json``: the run stopped early, after ``trained`` iterations, and
    ``checkpoint`` continues it (``--resume``)."""
    record = dict(preempted=True, iteration=trained, checkpoint=checkpoint,
                  signal=signal.Signals(signum).name if signum else None,
                  time=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                  resume='run the same command with --resume')
    write_atomically(os.path.join(work_dir, PREEMPTED_MARKER), json.dumps(record) + '\n')


def remove_preemption_marker(work_dir: str) -> None:
    """Removes ``preempted.json`` (a new run in the work dir starts or resumes)."""
    try:
        os.remove(os.path.join(work_dir, PREEMPTED_MARKER))
    except FileNotFoundError:
        pass


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


class BatchesWhile(BatchesAfter):
    """A data loader that stops yielding batches once ``go_on()`` is false (checked before
    each batch is taken); its length is the wrapped loader's."""

    def __init__(self, loader, go_on):
        super().__init__(loader, 0)
        self.go_on = go_on

    def __iter__(self):
        batches = iter(self.loader)
        while self.go_on():
            try:
                yield next(batches)
            except StopIteration:
                return

    def __len__(self) -> int:
        return len(self.loader)


def protect_data_loader_workers(loader) -> None:
    """Makes the workers of ``loader`` ignore SIGTERM and SIGINT from their start, so that a
    signal to the process group (a scheduler, torchrun, Ctrl-C in a terminal) reaches the
    main process only, which decides what happens (:class:`PreemptionCheckpointHook`).

    Each worker runs :func:`_ignore_stop_signals` before the loader's own ``worker_init_fn``
    (mmengine's seeding, kept as it was built); the workers are started with both signals
    blocked, so one that comes between the start and that function waits and is dropped.
    A SIGTERM from the loader's own process still ends a worker, as torch's does (its way to
    shut down a worker that does not exit by itself)."""
    if not isinstance(loader, DataLoader) or loader.num_workers == 0:
        return
    init_fn = loader.worker_init_fn
    if isinstance(init_fn, functools.partial) and init_fn.func is _ignore_stop_signals:
        return
    loader.worker_init_fn = functools.partial(_ignore_stop_signals, init_fn=init_fn)
    if loader.multiprocessing_context is None:
        loader.multiprocessing_context = StopSignalsBlockedAtStart()


def _ignore_stop_signals(worker_id: int, init_fn=None) -> None:
    """A data-loader worker's first step: SIGTERM and SIGINT stay blocked in every thread and
    one thread takes them off the queue (:func:`_drop_stop_signals`); then ``init_fn``."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    threading.Thread(target=_drop_stop_signals, name='swinv2_mm-ignore-stop-signals',
                     daemon=True).start()
    if init_fn is not None:
        init_fn(worker_id)


def _drop_stop_signals() -> None:
    """Waits for SIGTERM and SIGINT and drops them, except a SIGTERM sent by the process that
    started this worker (the data loader shutting it down), which ends the worker as torch's
    own handler does."""
    parent = multiprocessing.parent_process()
    loader_pid = parent.pid if parent is not None else os.getppid()
    while True:
        info = signal.sigwaitinfo(STOP_SIGNALS)
        if info.si_signo == signal.SIGTERM and info.si_pid == loader_pid:
            os._exit(0)


class _WorkerProcess(multiprocessing.Process):
    """A process of the default start method that starts with SIGTERM and SIGINT blocked
    (the parent's mask is inherited; its own is restored once the child exists)."""

    def start(self) -> None:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class StopSignalsBlockedAtStart(multiprocessing.context.BaseContext):
    """The default multiprocessing context, with :class:`_WorkerProcess` as its processes."""

    Process = _WorkerProcess

    def get_context(self, method=None):
        return multiprocessing.get_context(method)
