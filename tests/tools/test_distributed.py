"""Two CPU processes through torchrun and mmengine's DDP, with and without ZeRO-1, stage 0 of the
backbone frozen."""
import os
import re
import socket
import subprocess
import sys

import pytest
import torch

from swinv2_mm.checkpoint.files import load_checkpoint_file
from tests.helpers import ROOT, run_tool, scalars

DEMO = os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py')
ITERS = 3
OPTIONS = [f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
           'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={ITERS}',
           'train_dataloader.batch_size=2', 'train_dataloader.dataset.indices=8',
           'val_dataloader.dataset.indices=2', 'randomness.seed=0',
           'model.test_cfg.rcnn.score_thr=0.0', 'param_scheduler.0.end=2']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun(work, env, *extra):
    args = ['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
            os.path.join(ROOT, 'tools', 'train.py'), DEMO, '--launcher', 'pytorch',
            '--work-dir', str(work), '--cfg-options'] + OPTIONS + list(extra)
    return run_tool(args, dict(env, OMP_NUM_THREADS='1'), str(work.parent))


# frozen parameters get no gradient: DDP must leave them out of its reducer (no "unused
# parameters" error); a checkpoint of every iteration shows which weights moved
FROZEN = ['model.backbone.frozen_stages=1', 'default_hooks.checkpoint.interval=1',
          'default_hooks.checkpoint.max_keep_ckpts=-1']


@pytest.fixture(scope='module')
def runs(tmp_path_factory, env):
    plain, zero = tmp_path_factory.mktemp('ddp'), tmp_path_factory.mktemp('ddp_zero')
    out_plain = torchrun(plain, env, *FROZEN)
    out_zero = torchrun(zero, env, *FROZEN,
                        'optim_wrapper.constructor=ZeroWhenDistributedConstructor')
    return dict(plain=(plain, out_plain), zero=(zero, out_zero))


def test_both_runs_finish_and_agree_at_the_first_iteration(runs):
    first = {}
    for name, (work, out) in runs.items():
        losses = [r['loss'] for r in scalars(work) if 'loss' in r]
        assert len(losses) == ITERS and os.path.exists(work / f'iter_{ITERS}.pth')
        first[name] = losses[0]
    assert first['plain'] == pytest.approx(first['zero'], rel=1e-5)


@pytest.mark.parametrize('name', ['plain', 'zero'])
def test_frozen_stages_stay_as_initialised_and_the_rest_trains(runs, name):
    work = runs[name][0]
    first, last = (load_checkpoint_file(str(work / f'iter_{i}.pth'))['state_dict']
                   for i in (1, ITERS))
    frozen = [k for k in first if k.startswith(('backbone.patch_embed.', 'backbone.stages.0.'))]
    trained = [k for k in first if k.startswith('backbone.stages.1.') and k.endswith('weight')]
    assert frozen and all(torch.equal(first[k], last[k]) for k in frozen)
    assert trained and not any(torch.equal(first[k], last[k]) for k in trained)


def state_mib_per_rank(out):
    found = re.search(r'optimizer state per rank \(MiB\): \[([0-9., ]+)\]', out.stdout)
    return [float(v) for v in found.group(1).split(',')]


def test_zero_shards_the_optimizer_state_only_when_asked(runs):
    assert 'ZeRO-1: AdamW state is sharded across 2 ranks' in runs['zero'][1].stdout
    assert 'ZeRO-1' not in runs['plain'][1].stdout


def test_sync_bn_heads_run_as_bn_on_cpu(runs):
    assert 'SyncBN layers run as BN' in runs['plain'][1].stdout
    plain, zero = state_mib_per_rank(runs['plain'][1]), state_mib_per_rank(runs['zero'][1])
    assert len(plain) == len(zero) == 2 and plain[0] == plain[1]  # DDP: a full copy per rank
    assert sum(zero) == pytest.approx(plain[0], rel=1e-3)  # ZeRO-1: one copy, split
    assert max(zero) < 0.6 * plain[0]


@pytest.mark.parametrize('name', ['plain', 'zero'])
def test_a_single_process_loads_and_evaluates_the_checkpoint(runs, env, name, tmp_path):
    work = runs[name][0]
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, str(work / f'iter_{ITERS}.pth'),
                    '--work-dir', str(tmp_path), '--cfg-options', 'test_dataloader.dataset.indices=2',
                    'model.test_cfg.rcnn.score_thr=0.0'], env, str(tmp_path))
    assert 'coco/bbox_mAP:' in out.stdout + out.stderr


def test_dist_test_evaluates_on_two_processes(runs, env, tmp_path):
    work = runs['zero'][0]
    out = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'dist_test.sh'), DEMO,
                          str(work / f'iter_{ITERS}.pth'), '2', '--work-dir', str(tmp_path),
                          '--cfg-options', 'test_dataloader.dataset.indices=4',
                          'model.test_cfg.rcnn.score_thr=0.0'],
                         env=dict(env, OMP_NUM_THREADS='1', PORT=str(free_port()),
                                  PYTHON=sys.executable),
                         cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'coco/bbox_mAP:' in out.stdout + out.stderr
