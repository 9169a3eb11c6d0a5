"""Preemption and worker failure: SIGTERM saves the iteration and stops every rank at it;
--resume, or a torchrun restart, continues with every iteration trained and logged once."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from swinv2_mm.engine.preemption import STOP_SIGNALS, PreemptionCheckpointHook
from tests.helpers import ROOT, run_tool, scalars
from tests.tools.test_distributed import DEMO as CASCADE
from tests.tools.test_distributed import OPTIONS as CASCADE_OPTIONS
from tests.tools.test_distributed import free_port

UPERNET = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
ITERS = 8
GENERATED = ('train_dataloader.dataset', 'val_dataloader.dataset', 'val_evaluator')
SMALL = [f'{key}.generate.{count}' for key in GENERATED for count in ('num_train=8', 'num_val=2')]
# 4 iterations an epoch for the epoch-based variant, the drop path drawing from torch
OPTIONS = ['train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=2',
           'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={ITERS}',
           'param_scheduler.0.end=2', 'randomness.seed=0', 'model.backbone.drop_path_rate=0.3'
           ] + SMALL[:4]
EPOCH_BASED = f"""_base_ = {UPERNET!r}
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2, val_interval=2)
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=2))
"""


def config(loop, tmp_path):
    if loop == 'iter':
        return UPERNET, [f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}']
    path = tmp_path / 'epoch_based.py'
    path.write_text(EPOCH_BASED)
    return str(path), []


def train_cmd(cfg, work, options):
    return [os.path.join(ROOT, 'tools', 'train.py'), cfg[0], '--work-dir', str(work),
            '--cfg-options'] + cfg[1] + options


def losses(work):
    return {r['step']: r['loss'] for r in scalars(work) if 'loss' in r}


def last_logged(work) -> int:
    try:
        return max(losses(work), default=0)
    except ValueError:  # a line being written
        return 0


def wait_for_step(work, step, proc, timeout=240):
    """Waits until the scalar log of ``work`` holds iteration ``step`` (the process alive)."""
    deadline = time.time() + timeout
    while last_logged(work) < step:
        assert proc.poll() is None and time.time() < deadline, f'no iteration {step}'
        time.sleep(0.1)


def start(args, env, cwd):
    """Starts ``args`` in the background, its output to ``cwd/output.txt`` (a pipe nobody
    reads while the test waits would fill up and stop the run)."""
    with open(os.path.join(str(cwd), 'output.txt'), 'w') as out:
        proc = subprocess.Popen(args, cwd=str(cwd), env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    proc.args_cwd = str(cwd)
    return proc


def finish(proc, timeout=300):
    """The exit code and output of a run started with :func:`start`."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    with open(os.path.join(proc.args_cwd, 'output.txt')) as f:
        return proc.returncode, f.read()


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def test_the_signal_only_sets_a_flag_and_the_handlers_are_restored():
    before = [signal.getsignal(sig) for sig in STOP_SIGNALS]
    hook = PreemptionCheckpointHook()
    hook.before_train(None)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert hook._requested
    finally:
        hook.after_train(None)
    assert [signal.getsignal(sig) for sig in STOP_SIGNALS] == before


@pytest.mark.parametrize('loop', ['iter', 'epoch'])
def test_sigterm_saves_the_iteration_and_resume_matches_an_uninterrupted_run(
        loop, env, tmp_path):
    cfg, env = config(loop, tmp_path), dict(env, OMP_NUM_THREADS='1')
    reference = tmp_path / 'reference'
    run_tool(train_cmd(cfg, reference, OPTIONS), env, str(tmp_path))
    work = tmp_path / 'work'
    proc = start([sys.executable, '-W', 'ignore'] + train_cmd(cfg, work, OPTIONS), env, tmp_path)
    wait_for_step(work, 2, proc)
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc)
    assert code == 0, out[-3000:]
    stopped = max(losses(work))
    assert 2 <= stopped < ITERS and f'stopped after iteration {stopped};' in out
    assert open(work / 'last_checkpoint').read().strip() == str(work / f'iter_{stopped}.pth')
    run_tool(train_cmd(cfg, work, OPTIONS) + ['--resume'], env, str(tmp_path))
    assert sorted(r['step'] for r in scalars(work) if 'loss' in r) == list(range(1, ITERS + 1))
    expected, resumed = losses(reference), losses(work)
    for step in range(1, ITERS + 1):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    final = 'epoch_2.pth' if loop == 'epoch' else f'iter_{ITERS}.pth'
    for key, value in weights(reference / final).items():
        torch.testing.assert_close(weights(work / final)[key], value, rtol=1e-5, atol=1e-6)


def dist_train(work, env, *options, restarts=0):
    """tools/dist_train.sh on the cascade demo with two CPU processes, started in the
    background."""
    return start(['bash', os.path.join(ROOT, 'tools', 'dist_train.sh'), CASCADE, '2',
                  '--work-dir', str(work), '--cfg-options'] + CASCADE_OPTIONS + list(options),
                 dict(env, OMP_NUM_THREADS='1', PORT=str(free_port()), PYTHON=sys.executable,
                      MAX_RESTARTS=str(restarts)), work.parent)


def worker_pid(torchrun_pid, rank):
    """The process id of the torchrun worker of ``rank``."""
    children = []
    for path in glob.glob(f'/proc/{torchrun_pid}/task/*/children'):
        with open(path) as f:
            children += f.read().split()
    for pid in children:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            if f'RANK={rank}'.encode() in f.read().split(b'\0'):
                return int(pid)
    raise AssertionError(f'no worker of rank {rank} among {children}')


DIST_ITERS = 6
DIST_OPTIONS = [f'train_cfg.max_iters={DIST_ITERS}', f'train_cfg.val_interval={DIST_ITERS}'
                ] + SMALL


def test_sigterm_to_one_rank_stops_both_at_the_same_iteration(env, tmp_path):
    work = tmp_path / 'work'
    proc = dist_train(work, env, *DIST_OPTIONS, 'default_hooks.checkpoint.interval=100')
    wait_for_step(work, 1, proc)
    os.kill(worker_pid(proc.pid, 1), signal.SIGTERM)
    code, out = finish(proc)
    assert code == 0, out[-3000:]
    stopped = max(losses(work))
    assert stopped < DIST_ITERS
    said = sorted(line.split('swinv2_mm: ')[1].split(';')[0] for line in out.splitlines()
                  if 'preempted: stopped' in line)
    assert said == [f'rank {r}: preempted: stopped after iteration {stopped}' for r in (0, 1)]
    assert [os.path.basename(p) for p in glob.glob(str(work / 'iter_*.pth'))] == \
        [f'iter_{stopped}.pth']


def test_a_killed_worker_is_restarted_and_resumes_from_the_last_checkpoint(env, tmp_path):
    work = tmp_path / 'work'
    proc = dist_train(work, env, *DIST_OPTIONS, 'default_hooks.checkpoint.interval=2',
                      restarts=1)
    wait_for_step(work, 3, proc)  # a checkpoint of iteration 2, iteration 3 trained after it
    os.kill(worker_pid(proc.pid, 1), signal.SIGKILL)
    code, out = finish(proc)
    assert code == 0, out[-3000:]
    assert out.count('restart 1 by torchrun: resuming from the last checkpoint') == 2, out[-3000:]
    assert 'Auto resumed from the latest checkpoint' in out and 'iter_2.pth' in out
    for log in ('scalars.json', '2*.json'):  # the visualizer's and the json log mmdet reads
        steps = [json.loads(line)['step'] for path in glob.glob(str(work / '*/vis_data' / log))
                 for line in open(path) if '"loss"' in line]
        assert sorted(steps) == list(range(1, DIST_ITERS + 1)), (log, steps)
    # iteration 3, trained by both attempts from the same state, logs the same loss
    third = [line.split('loss: ')[1].split()[0] for line in out.splitlines()
             if 'Iter(train) [3/' in line]
    assert len(third) == 2 and third[0] == third[1], third
    assert os.path.exists(work / f'iter_{DIST_ITERS}.pth')
