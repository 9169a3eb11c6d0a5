"""Nothing lost: a run killed with SIGKILL resumes exactly, also from a damaged work dir; a
non-finite loss stops training."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import ROOT, run_tool, scalars

DEMO = os.path.join(ROOT, 'configs', 'demo', 'video_swinv2_shapes_demo.py')
ITERS, EVERY = 24, 8
# a small data set, drop path on (the model draws from torch's generator), seeded
OPTIONS = ['--cfg-options', f'train_cfg.max_iters={ITERS}', 'train_cfg.val_interval=1000',
           'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={EVERY}',
           'train_dataloader.dataset.generate.num_train=32',
           'val_dataloader.dataset.generate.num_train=32', 'val_dataloader.dataset.indices=2',
           'model.backbone.drop_path_rate=0.3', 'randomness.seed=3']


def train_cmd(work):
    return [os.path.join(ROOT, 'tools', 'train.py'), DEMO, '--work-dir', str(work)] + OPTIONS


def losses_by_step(records):
    return {r['step']: r['loss'] for r in records if 'loss' in r}


@pytest.fixture(scope='module')
def reference_run(tmp_path_factory, env):
    """An uninterrupted run's work dir (iter_16.pth and iter_24.pth kept) and its losses."""
    work = tmp_path_factory.mktemp('reference')
    run_tool(train_cmd(work), env, str(work))
    return work, losses_by_step(scalars(work))


@pytest.fixture
def reference(reference_run):
    return reference_run[1]


def test_sigkill_then_resume_continues_exactly(reference, env, tmp_path):
    work = tmp_path / 'work'
    proc = subprocess.Popen([sys.executable, '-W', 'ignore'] + train_cmd(work), cwd=str(tmp_path),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (work / 'last_checkpoint').exists():
            assert proc.poll() is None and time.time() < deadline, 'no first checkpoint'
            time.sleep(0.2)
        time.sleep(1.0)  # let it run a few iterations past the checkpoint
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = max(losses_by_step(scalars(work)))
    assert EVERY <= killed_at < ITERS, killed_at
    for path in glob.glob(str(work / 'iter_*.pth')):  # no truncated file under a checkpoint name
        torch.load(path, map_location='cpu', weights_only=True)
    run_tool(train_cmd(work) + ['--resume'], env, str(tmp_path))
    assert (work / f'iter_{ITERS}.pth').exists()
    steps = [r['step'] for r in scalars(work) if 'loss' in r]
    assert sorted(steps) == list(range(1, ITERS + 1))  # every iteration logged exactly once
    resumed = losses_by_step(scalars(work))
    for step in range(1, ITERS + 1):  # the same losses as the uninterrupted run
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step


def test_non_finite_loss_stops_training_with_the_iteration(env, tmp_path):
    out = run_tool(train_cmd(tmp_path / 'work') + ['optim_wrapper.optimizer.lr=1e30',
                                                   'optim_wrapper.clip_grad=None',
                                                   'param_scheduler=[]'],
                   env, str(tmp_path), check=False)
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert 'FloatingPointError: loss is' in message and 'at iteration' in message
    stopped = int(message.split('at iteration ')[1].split(':')[0])
    saved = [int(p.split('_')[-1][:-4]) for p in glob.glob(str(tmp_path / 'work' / 'iter_*.pth'))]
    assert all(s < stopped for s in saved)  # nothing written after the loss went bad


def test_resume_from_a_damaged_work_dir_falls_back_and_continues_exactly(reference_run, env,
                                                                          tmp_path):
    """The newest checkpoint truncated (a copy cut short), last_checkpoint empty (written in
    place when the run died), the last line of the earlier run's scalars.json cut, and a
    dead writer's temporary file: --resume falls back to iter_16.pth, saying so, and trains
    iteration 17 (max_iters=17, the schedule unchanged) as the uninterrupted run did, each
    iteration logged once."""
    source, reference = reference_run
    work = tmp_path / 'work'
    shutil.copytree(source, work)
    newest = work / f'iter_{ITERS}.pth'
    newest.write_bytes(newest.read_bytes()[:newest.stat().st_size // 2])
    (work / 'last_checkpoint').write_text('')
    log, = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    text = open(log).read()
    open(log, 'w').write(text[:-20])  # the last line cut short
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = work / f'iter_{ITERS}.pth.tmp-{dead.pid}'
    stale.write_bytes(b'half a checkpoint')
    fallback, until = work / f'iter_{ITERS - EVERY}.pth', ITERS - EVERY + 1
    out = run_tool(train_cmd(work) + [f'train_cfg.max_iters={until}', '--resume'], env,
                   str(tmp_path))
    said = out.stdout + out.stderr
    assert f'{newest} cannot be resumed from' in said, said[-3000:]
    assert f'resuming from {fallback} instead' in said
    assert not stale.exists()
    steps = [r['step'] for r in scalars(work) if 'loss' in r]
    assert sorted(steps) == list(range(1, until + 1))
    assert losses_by_step(scalars(work))[until] == pytest.approx(reference[until], rel=1e-5,
                                                                  abs=1e-6)
    assert open(work / 'last_checkpoint').read() == str(work / f'iter_{until}.pth')
