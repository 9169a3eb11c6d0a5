"""Hooks that keep a run from being lost: exact resume, superseded-log trimming, NaN stops."""
import glob
import itertools
import json
import logging
import math
import os
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from .random_state import (gather_ranks, process_states, rank_record, restore_all,
                           restore_torch)
from .work_dir import read_last_checkpoint, write_atomically, write_last_checkpoint

RNG_KEY = 'random_states'  # per rank: the generators at the checkpoint and at its epoch's start
LEGACY_RNG_KEY = 'torch_rng_state'  # earlier checkpoints: torch's generators of rank 0 only


class RandomStateHook(Hook):
    """Saves every rank's random generators (torch's CPU and CUDA ones, numpy's, Python's
    ``random``) in each checkpoint and puts them back on resume, so that a resumed run draws
    what an uninterrupted one would.

    mmengine saves only the seed and replays, on resume, the batches of an iteration-based
    run. What the data pipeline draws (numpy, ``random``; in the main process when
    ``num_workers=0``) is replayed from the generators as they were when the checkpoint's
    epoch began; what the model draws from torch (drop path, dropout, RoI sampling) is not
    replayed, so torch's generators are put back as they were at the checkpoint, before the
    first resumed iteration. A checkpoint written at the end of an epoch starts the next epoch
    from the generators it holds. Validation leaves the generators as it found them, so it
    changes no training draw. Each rank gets its own generators back; a checkpoint of another
    number of ranks leaves every rank's generators as seeded (logged).
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._epoch_start: Optional[dict] = None  # this process's generators at the epoch's start
        self._gathered: Optional[list] = None  # every rank's record, for the checkpoint being saved
        self._pending: Optional[dict] = None  # this rank's record from the resumed checkpoint
        self._torch_at_checkpoint: Optional[dict] = None  # put back before the first iteration
        self._before_val: Optional[dict] = None

    def _record(self) -> dict:
        return dict(now=process_states(), epoch_start=self._epoch_start)

    def before_checkpoint_gather(self, runner) -> None:
        """Called on every rank before rank 0 writes a checkpoint (mmengine's
        ``before_save_checkpoint`` runs on rank 0 only): gathers each rank's generators."""
        records = gather_ranks(self._record())
        self._gathered = records if runner.rank == 0 else None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        records, self._gathered = self._gathered, None
        if records is None:
            records = [self._record()]
            if runner.world_size > 1:
                print_log('RandomStateHook: this runner did not gather the ranks\' random '
                          'generators, only rank 0\'s are saved: a resume leaves them as seeded',
                          logger='current', level=logging.WARNING)
        checkpoint.setdefault('meta', {})[RNG_KEY] = records

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:  # load_from and tools/test.py take the weights only
            return
        meta = checkpoint.get('meta', {})
        saved = meta.get(RNG_KEY)
        if saved is None and LEGACY_RNG_KEY in meta:
            saved = [dict(now=meta[LEGACY_RNG_KEY])]
        self._pending = rank_record(saved, runner.rank, runner.world_size)
        if self._pending is None:
            held = 'no random generators' if saved is None else \
                f'the random generators of {len(saved)} rank(s)'
            print_log(f'resume: the checkpoint holds {held} and this run has '
                      f'{runner.world_size} rank(s): every rank keeps its generators as seeded '
                      f'(randomness), so the random draws after iteration {meta.get("iter")} '
                      f'differ from an uninterrupted run\'s', logger='current',
                      level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None:
            self._restore_for_epoch(runner)
        self._epoch_start = process_states()

    def _restore_for_epoch(self, runner) -> None:
        record, self._pending = self._pending, None
        loop = runner.train_loop
        if runner.iter % (loop.max_iters // loop.max_epochs) == 0:
            restore_all(record['now'])  # written at an epoch's end: the next epoch starts here
            return
        if record.get('epoch_start') is not None:  # replaying the epoch's batches redraws them
            restore_all(record['epoch_start'])
        self._torch_at_checkpoint = record['now']

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._torch_at_checkpoint is not None:
            restore_torch(self._torch_at_checkpoint)
            self._torch_at_checkpoint = None

    def before_val(self, runner) -> None:
        self._before_val = process_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_all(self._before_val)
            self._before_val = None


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
    """Rewrites the json-lines log ``path`` without its entries past ``last_step`` and without
    lines that are not a json record (a line cut short when its run was killed)."""
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.readlines()
    records = [_json_record(line) for line in lines]
    kept = [line if line.endswith('\n') else line + '\n'
            for line, record in zip(lines, records)
            if record is not None and record.get('step', 0) <= last_step]
    undecodable = sum(record is None for record in records)
    if len(kept) == len(lines) and undecodable == 0:
        return
    write_atomically(path, ''.join(kept))
    print_log(f'resume: dropped {len(lines) - len(kept) - undecodable} log entries after '
              f'iteration {last_step} (they are trained again) and {undecodable} line(s) that '
              f'are not a json record from {path}', logger='current')


def _json_record(line: str) -> Optional[dict]:
    """The json object on ``line``, or None when it holds none (cut short, garbage)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class StopOnNonFiniteLossHook(Hook):
    """Stops training at the first loss that is NaN or infinite, naming the iteration.

    It runs before the checkpoint hook, so no checkpoint with the damaged weights is
    written; the last good checkpoint stays the run's latest. Weights that a finite loss
    stepped to NaN (a NaN gradient) are caught before each save instead
    (:func:`refuse_non_finite_weights`).
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        value = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
        if not math.isfinite(value):
            raise FloatingPointError(
                f'loss is {value} at iteration {runner.iter + 1}: training stopped before any '
                f'checkpoint of these weights is written. Lower the learning rate, enable '
                f'gradient clipping (optim_wrapper.clip_grad) or check the data; then resume '
                f'from the last checkpoint with --resume')


def non_finite_weights(model: torch.nn.Module) -> List[str]:
    """The names of ``model``'s parameters and floating-point buffers that hold a NaN or an
    infinity, in the model's order; of a sharded tensor (FSDP) this rank's shard is read."""
    by_device = {}
    for name, tensor in itertools.chain(model.named_parameters(), model.named_buffers()):
        local = tensor.to_local() if hasattr(tensor, 'to_local') else tensor
        if local.is_floating_point() and local.numel() > 0:
            by_device.setdefault(local.device, []).append((name, local))
    bad = set()
    with torch.no_grad():
        for tensors in by_device.values():  # one transfer per device
            finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).tolist()
            bad.update(name for (name, _), ok in zip(tensors, finite) if not ok)
    return [name for name, _ in itertools.chain(model.named_parameters(),
                                                model.named_buffers()) if name in bad]


def refuse_non_finite_weights(runner, filename: str) -> None:
    """Raises FloatingPointError on every rank, naming the tensors, when the weights of any
    rank hold a NaN or an infinity: checked before ``filename`` is written, so that no
    checkpoint of such weights exists and the last good one stays ``last_checkpoint``. Every
    rank checks its own tensors (its shards under FSDP) and all agree on the verdict."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    bad = non_finite_weights(model)
    flag = torch.tensor([int(bool(bad))])
    all_reduce(flag, op='max')
    if not flag.item():
        return
    found = [(rank, names) for rank, names in all_gather_object((get_rank(), bad)) if names]
    named = '; '.join(f'rank {rank}: {", ".join(names[:3])}' +
                      (f' and {len(names) - 3} more' if len(names) > 3 else '')
                      for rank, names in found)
    last = read_last_checkpoint(runner.work_dir)
    kept = f'{last} stays the last checkpoint' if last else 'no checkpoint was written yet'
    raise FloatingPointError(
        f'weights hold NaN or infinite values after iteration {runner.iter + 1} ({named}): '
        f'training stopped and {filename} is not written; {kept}. Lower the learning rate, '
        f'enable gradient clipping (optim_wrapper.clip_grad) or check the data; then resume '
        f'from the last checkpoint with --resume')


class SafeCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook with two orders reversed: a new checkpoint is written before
    the oldest one is removed (``max_keep_ckpts``), and ``last_checkpoint`` is written
    atomically once the checkpoint it names exists. mmengine removes first and truncates
    ``last_checkpoint`` in place, so a stop while saving could leave no checkpoint (with
    ``max_keep_ckpts=1``) or an empty ``last_checkpoint``."""

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        dropped = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():  # rank 0 writes the files
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        if dropped is not None:
            self._remove(self.filename_tmpl.format(dropped))

    def _keep(self, runner, step: int) -> Optional[int]:
        """Counts ``step`` among the kept checkpoints; returns the step whose checkpoint then
        falls out of ``max_keep_ckpts``, or None."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return None
        full = len(self.keep_ckpt_ids) == self.max_keep_ckpts
        dropped = self.keep_ckpt_ids.popleft() if full else None
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return dropped

    def _remove(self, filename: str) -> None:
        path = self.file_backend.join_path(self.out_dir, filename)
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed's checkpoints are folders
            self.file_backend.rmtree(path)


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
