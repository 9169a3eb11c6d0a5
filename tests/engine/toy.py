"""A toy training run through the project's runner (build_runner: SafeCheckpointRunner with
the protecting hooks), small enough to train in-process in about a second."""
import itertools

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

import swinv2_mm  # noqa: F401  (registers the hooks and runners)
from swinv2_mm.engine import SafeCheckpointRunner, add_protecting_hooks

_names = itertools.count()


class ToyModel(BaseModel):
    """y = linear(x); the loss is the mean of y squared."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        y = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=(y ** 2).mean())
        if mode == 'predict':
            return [dict(pred=v) for v in y]
        return y


class ToyData(Dataset):
    def __init__(self, size: int):
        self.data = torch.linspace(-1, 1, size * 4).reshape(size, 4)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return dict(inputs=self.data[i])


class CountingMetric(BaseMetric):
    """Counts the validation batches it was given and the evaluations it computed."""

    def __init__(self):
        super().__init__()
        self.batches = self.computed = 0

    def process(self, data_batch, data_samples):
        self.batches += 1
        self.results.append(float(sum(s['pred'].sum() for s in data_samples)))

    def compute_metrics(self, results):
        self.computed += 1
        return dict(total=sum(results))


class CallAt(Hook):
    """Calls ``action(runner)`` at hook point ``point`` (``after_train_iter``,
    ``after_val_iter``) when its ``batch_idx`` is ``index``."""

    priority = 'NORMAL'  # before the project's preemption hook (LOWEST)

    def __init__(self, point: str, index: int, action):
        def call(runner, batch_idx, **kwargs):
            if batch_idx == index:
                action(runner)
        setattr(self, point, call)


def toy_config(work_dir, iters: int = 4, val_interval: int = 2, val_size: int = 6,
               checkpoint_interval: int = 100, loop: str = 'iter', **extra) -> ConfigDict:
    """The toy run's config: 4 training samples of batch 2 (2 iterations an epoch for the
    epoch loop), ``val_size`` validation batches of 1."""
    metric = CountingMetric()
    train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=val_interval) \
        if loop == 'iter' else dict(type='EpochBasedTrainLoop', max_epochs=iters,
                                    val_interval=val_interval)
    cfg = dict(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=f'toy_{next(_names)}',
        train_dataloader=dict(dataset=ToyData(4), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        val_dataloader=dict(dataset=ToyData(val_size), batch_size=1, num_workers=0,
                            sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=[metric], val_cfg=dict(type='ValLoop'), train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=checkpoint_interval,
                                           by_epoch=loop != 'iter'),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), log_level='WARNING')
    cfg.update(extra)
    return ConfigDict(cfg)


def toy_runner(cfg: ConfigDict, *hooks: Hook):
    """The project's runner for ``cfg``, built as build_runner builds it (its objects keep
    mmengine's Config from printing it, so the runner gets the entries), with the protecting
    hooks and ``hooks`` besides."""
    add_protecting_hooks(cfg)
    runner = SafeCheckpointRunner(**cfg)
    for hook in hooks:
        runner.register_hook(hook)
    return runner


def metric_of(runner) -> CountingMetric:
    return runner.val_evaluator.metrics[0]
