"""Exact resume across epochs and ranks: a two-process epoch-based run of the segmentation demo
(RandomResize, RandomCrop and RandomFlip drawing from numpy in each process, each rank seeded
differently, drop path drawing from torch, a validation after every epoch) resumed from its
checkpoint of epoch 1 logs the losses of the uninterrupted run in epochs 2 and 3 (rank 1
resumed with rank 0's generators shows in rank 0's loss from the second resumed iteration on,
by 7e-6 and then more: measured)."""
import os

import pytest
import torch

from swinv2_mm.checkpoint.files import load_checkpoint_file
from tests.helpers import ROOT, run_tool, scalars
from tests.tools.test_distributed import free_port

UPERNET = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
EPOCHS, PER_EPOCH = 3, 2  # 8 images over 2 ranks, 2 a batch
EPOCH_BASED = f"""_base_ = {UPERNET!r}
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs={EPOCHS}, val_interval=1)
train_dataloader = dict(batch_size=2, sampler=dict(type='DefaultSampler', shuffle=True))
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=-1))
randomness = dict(seed=0, diff_rank_seed=True)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]
model = dict(backbone=dict(drop_path_rate=0.3))
"""
OPTIONS = ['train_dataloader.dataset.generate.num_train=8',
           'train_dataloader.dataset.generate.num_val=2',
           'val_dataloader.dataset.generate.num_train=8',
           'val_dataloader.dataset.generate.num_val=2', 'val_dataloader.dataset.indices=2']


def torchrun(config, work, env, *flags):
    args = ['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
            os.path.join(ROOT, 'tools', 'train.py'), str(config), '--launcher', 'pytorch',
            '--work-dir', str(work), *flags, '--cfg-options'] + OPTIONS
    return run_tool(args, dict(env, OMP_NUM_THREADS='1'), str(work.parent))


def losses(work):
    return {r['step']: r['loss'] for r in scalars(work) if 'loss' in r}


@pytest.fixture(scope='module')
def runs(tmp_path_factory, env):
    """The uninterrupted run, and a run resumed from its checkpoint of epoch 1 in a work dir of
    its own."""
    root = tmp_path_factory.mktemp('exact')
    config = root / 'epoch_based.py'
    config.write_text(EPOCH_BASED)
    reference, resumed = root / 'reference', root / 'resumed'
    return dict(reference=(reference, torchrun(config, reference, env)),
                resumed=(resumed, torchrun(config, resumed, env, '--resume',
                                           str(reference / 'epoch_1.pth'))))


def test_the_checkpoint_holds_each_ranks_own_generators(runs):
    records = load_checkpoint_file(str(runs['reference'][0] / 'epoch_1.pth'))['meta'][
        'random_states']
    assert len(records) == 2
    assert not torch.equal(*(r['now']['numpy']['keys'] for r in records))  # not rank 0's twice
    assert not torch.equal(*(r['now']['cpu'] for r in records))


def test_resumed_run_logs_the_uninterrupted_losses_in_later_epochs(runs):
    expected, (work, out) = losses(runs['reference'][0]), runs['resumed']
    assert f'resumed epoch: 1, iter: {PER_EPOCH}' in out.stdout + out.stderr
    resumed = losses(work)
    assert sorted(resumed) == list(range(PER_EPOCH + 1, EPOCHS * PER_EPOCH + 1))
    for step in resumed:  # the same to 1e-6 (measured: equal to the last bit)
        assert resumed[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7), step
