"""Preemption and worker failure: SIGTERM to the process group (data-loader workers
included) saves the iteration and stops every rank at it, within torchrun's 30 s also during
a validation; --resume, or a torchrun restart, continues with every iteration trained and
logged once; a restart that would repeat the previous attempt stops."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from swinv2_mm.engine.preemption import PREEMPTED_MARKER
from swinv2_mm.engine.work_dir import newest_readable_checkpoint
from tests.helpers import ROOT, run_tool, scalars
from tests.tools.test_distributed import DEMO as CASCADE
from tests.tools.test_distributed import OPTIONS as CASCADE_OPTIONS
from tests.tools.test_distributed import free_port

UPERNET = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
ITERS = 8
GENERATED = ('train_dataloader.dataset', 'val_dataloader.dataset', 'val_evaluator')
SMALL = [f'{key}.generate.{count}' for key in GENERATED for count in ('num_train=8', 'num_val=2')]
# two workers for each data loader, kept across epochs: what a signal to the group reaches
WORKERS = [f'{loader}.{option}' for loader in ('train_dataloader', 'val_dataloader')
           for option in ('num_workers=2', 'persistent_workers=True')]
# 4 iterations an epoch for the epoch-based variant, the drop path drawing from torch
OPTIONS = ['train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=2',
           'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={ITERS}',
           'param_scheduler.0.end=2', 'randomness.seed=0', 'model.backbone.drop_path_rate=0.3'
           ] + SMALL[:4] + WORKERS
TORCHRUN_GRACE_S = 30  # torchrun's SIGTERM-to-SIGKILL time (TORCH_ELASTIC_SHUTDOWN_TIMEOUT)
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


def terminate_like_torchrun(proc, grace=TORCHRUN_GRACE_S):
    """SIGTERM to the process group, SIGKILL ``grace`` seconds later if it has not exited;
    returns the seconds it took to exit and whether the group was killed. Any process of the
    group left after its leader exited (an orphaned data-loader worker) is an error."""
    started = time.time()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        killed = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = True
    took = time.time() - started
    time.sleep(0.5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        left = True
    except ProcessLookupError:
        left = False
    assert not left, 'processes of the run outlived it'
    return took, killed


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


@pytest.mark.parametrize('loop', ['iter', 'epoch'])
def test_sigterm_saves_the_iteration_and_resume_matches_an_uninterrupted_run(
        loop, env, tmp_path):
    cfg, env = config(loop, tmp_path), dict(env, OMP_NUM_THREADS='1')
    reference = tmp_path / 'reference'
    run_tool(train_cmd(cfg, reference, OPTIONS), env, str(tmp_path))
    work = tmp_path / 'work'
    proc = start([sys.executable, '-W', 'ignore'] + train_cmd(cfg, work, OPTIONS), env, tmp_path)
    wait_for_step(work, 2, proc)
    took, killed = terminate_like_torchrun(proc)  # the workers get it too
    code, out = finish(proc)
    assert code == 0 and not killed and 'killed by signal' not in out, out[-3000:]
    stopped = max(losses(work))
    assert 2 <= stopped < ITERS and f'stopped after iteration {stopped};' in out
    assert open(work / 'last_checkpoint').read().strip() == str(work / f'iter_{stopped}.pth')
    assert json.loads((work / PREEMPTED_MARKER).read_text())['iteration'] == stopped
    run_tool(train_cmd(cfg, work, OPTIONS) + ['--resume'], env, str(tmp_path))
    assert not (work / PREEMPTED_MARKER).exists()  # the resumed run finished
    assert sorted(r['step'] for r in scalars(work) if 'loss' in r) == list(range(1, ITERS + 1))
    expected, resumed = losses(reference), losses(work)
    for step in range(1, ITERS + 1):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    final = 'epoch_2.pth' if loop == 'epoch' else f'iter_{ITERS}.pth'
    for key, value in weights(reference / final).items():
        torch.testing.assert_close(weights(work / final)[key], value, rtol=1e-5, atol=1e-6)


def test_sigterm_during_validation_then_sigkill_30s_later_leaves_a_resumable_run(env, tmp_path):
    """torchrun's contract with a validation in progress (8 batches of 1 image at iteration 2
    of 4): the validation ends after its current batch, iteration 2 is saved and the run exits
    with 0 before the SIGKILL, its data-loader workers with it; that checkpoint is the one a
    resume starts from (resuming after a cut validation: tests/engine/test_preemption.py)."""
    cfg = config('iter', tmp_path)
    cfg = (cfg[0], ['train_cfg.max_iters=4', 'train_cfg.val_interval=2'])
    options = OPTIONS + ['val_dataloader.batch_size=1', 'val_dataloader.dataset.indices=8'] + [
        f'{loader}.dataset.generate.num_val=8' for loader in ('train_dataloader', 'val_dataloader')]
    work = tmp_path / 'work'
    proc = start([sys.executable, '-W', 'ignore'] + train_cmd(cfg, work, options),
                 dict(env, OMP_NUM_THREADS='1'), tmp_path)
    deadline = time.time() + 240
    while 'Iter(val) [1/8]' not in (tmp_path / 'output.txt').read_text():
        assert proc.poll() is None and time.time() < deadline, 'no validation'
        time.sleep(0.05)
    took, killed = terminate_like_torchrun(proc)
    code, out = finish(proc)
    assert code == 0 and not killed, out[-3000:]
    cut = [line for line in out.splitlines() if 'stop requested during the validation' in line]
    assert len(cut) == 1 and 'at iteration 2: it ended after' in cut[0], out[-3000:]
    assert int(cut[0].split('ended after ')[1].split()[0]) < 8
    assert open(work / 'last_checkpoint').read() == str(work / 'iter_2.pth')
    assert json.loads((work / PREEMPTED_MARKER).read_text())['iteration'] == 2
    print(f'validation stopped and saved {took:.1f} s after SIGTERM')
    assert newest_readable_checkpoint(str(work)) == str(work / 'iter_2.pth')
    assert torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=False
                      )['meta']['iter'] == 2


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
    assert 'resumed epoch: 0, iter: 2' in out and 'iter_2.pth' in out
    for log in ('scalars.json', '2*.json'):  # the visualizer's and the json log mmdet reads
        steps = [json.loads(line)['step'] for path in glob.glob(str(work / '*/vis_data' / log))
                 for line in open(path) if '"loss"' in line]
        assert sorted(steps) == list(range(1, DIST_ITERS + 1)), (log, steps)
    # iteration 3, trained by both attempts from the same state, logs the same loss
    third = [line.split('loss: ')[1].split()[0] for line in out.splitlines()
             if 'Iter(train) [3/' in line]
    assert len(third) == 2 and third[0] == third[1], third
    assert os.path.exists(work / f'iter_{DIST_ITERS}.pth')


def torchrun_attempt(monkeypatch, attempt, rank=0):
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', str(attempt))
    monkeypatch.setenv('RANK', str(rank))


def start_of(work, resume, monkeypatch, attempt):
    """Where attempt ``attempt`` of a torchrun launch starts (set_resume, as tools/train.py
    calls it), or the error that stops it."""
    from mmengine.config import Config

    from swinv2_mm.cli.checkpoints import set_resume
    torchrun_attempt(monkeypatch, attempt)
    cfg = Config(dict(work_dir=str(work)))
    set_resume(cfg, resume)
    return cfg.get('load_from') if cfg.get('resume') else None


def save(path):
    torch.save(dict(meta=dict(iter=1), state_dict=dict(w=torch.ones(4))), path)
    (path.parent / 'last_checkpoint').write_text(str(path))


def test_a_restart_that_would_repeat_the_previous_attempt_stops(tmp_path, monkeypatch):
    """Attempt 0 starts fresh and writes iter_2.pth; attempt 1 resumes from it; attempt 1
    fails before writing iter_4.pth, so attempt 2 would resume from iter_2.pth again and
    repeat the failure at the same iteration: it stops, and so does attempt 3."""
    work = tmp_path / 'work'
    assert start_of(work, None, monkeypatch, 0) is None
    save(work / 'iter_2.pth')
    assert start_of(work, None, monkeypatch, 1) == str(work / 'iter_2.pth')
    for attempt in (2, 3):
        with pytest.raises(RuntimeError, match=rf'restart {attempt} by torchrun would start '
                                               rf'from .*iter_2.pth, as restart {attempt - 1} '
                                               rf'did, which failed before writing a newer'):
            start_of(work, None, monkeypatch, attempt)
    save(work / 'iter_4.pth')  # had attempt 2 got further, attempt 3 would go on from there
    records = json.loads((work / 'torchrun_attempts.json').read_text())
    records.pop('3')
    (work / 'torchrun_attempts.json').write_text(json.dumps(records))
    assert start_of(work, None, monkeypatch, 3) == str(work / 'iter_4.pth')


def test_two_attempts_failing_before_the_first_checkpoint_stop(tmp_path, monkeypatch):
    work = tmp_path / 'work'
    assert start_of(work, 'auto', monkeypatch, 0) is None
    with pytest.raises(RuntimeError, match='from the beginning .no checkpoint yet., as the '
                                           'first attempt did'):
        start_of(work, 'auto', monkeypatch, 1)


def test_a_new_torchrun_launch_starts_a_new_record(tmp_path, monkeypatch):
    """The first attempt of a launch replaces an earlier launch's record, which must not
    decide this launch's restarts; only rank 0 writes it."""
    work = tmp_path / 'work'
    work.mkdir()
    save(work / 'iter_2.pth')
    (work / 'torchrun_attempts.json').write_text(json.dumps(
        {'0': dict(start=None), '1': dict(start=None), '2': dict(start=None)}))
    assert start_of(work, 'auto', monkeypatch, 0) == str(work / 'iter_2.pth')
    records = json.loads((work / 'torchrun_attempts.json').read_text())
    assert records == {'0': dict(start=str(work / 'iter_2.pth'))}
    save(work / 'iter_4.pth')
    assert start_of(work, 'auto', monkeypatch, 1) == str(work / 'iter_4.pth')
    torchrun_attempt(monkeypatch, 2, rank=1)
    from swinv2_mm.cli.checkpoints import record_attempt
    record_attempt(str(work), None)
    assert sorted(json.loads((work / 'torchrun_attempts.json').read_text())) == ['0', '1']
