"""Preemption in-process: one signal saves and stops (also mid-validation), a forwarded
duplicate is not a second signal, a later second one aborts, data-loader workers ignore
SIGTERM and SIGINT from their start."""
import json
import os
import signal
import subprocess
import time

import pytest
import torch
from mmengine.hooks import EMAHook
from torch.utils.data import DataLoader

from swinv2_mm.engine import PreemptionCheckpointHook, SafeCheckpointRunner
from swinv2_mm.engine import preemption
from swinv2_mm.engine.preemption import (PREEMPTED_MARKER, STOP_SIGNALS, _WorkerProcess,
                                         protect_data_loader_workers)
from tests.engine.toy import CallAt, ToyData, metric_of, toy_config, toy_runner


class WorkDir:
    def __init__(self, path):
        self.work_dir = str(path)


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """A preemption hook with its handlers installed, as during training (grace 0.3 s)."""
    monkeypatch.setattr(preemption, 'SECOND_SIGNAL_GRACE_S', 0.3)
    before = [signal.getsignal(sig) for sig in STOP_SIGNALS]
    hook = PreemptionCheckpointHook()
    hook.before_train(WorkDir(tmp_path))
    yield hook
    hook.after_train(None)
    assert [signal.getsignal(sig) for sig in STOP_SIGNALS] == before


def test_a_signal_only_records_the_request(hook):
    os.kill(os.getpid(), signal.SIGTERM)
    assert hook.requested


def test_a_duplicate_within_the_grace_time_is_the_same_request(hook):
    """torchrun forwards the SIGINT a terminal sent it to its workers, which may have got it
    too: the second copy, milliseconds later, must not abort the checkpoint."""
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    assert hook.requested


def test_a_second_ctrl_c_after_the_grace_time_aborts_at_once(hook):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.4)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs before this ends


def test_a_second_sigterm_goes_to_the_handler_in_place_before_training(tmp_path, monkeypatch):
    """Without our handler SIGTERM ends the process; here a recorder stands in for that."""
    monkeypatch.setattr(preemption, 'SECOND_SIGNAL_GRACE_S', 0.3)
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        hook = PreemptionCheckpointHook()
        hook.before_train(WorkDir(tmp_path))
        os.kill(os.getpid(), signal.SIGTERM)
        assert received == [] and hook.requested
        time.sleep(0.4)
        os.kill(os.getpid(), signal.SIGTERM)
        assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_ignored_signal_stays_ignored(tmp_path):
    """A background job's SIGINT is ignored by its shell: training does not take it over."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        hook = PreemptionCheckpointHook()
        hook.before_train(WorkDir(tmp_path))
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        hook.after_train(None)
    finally:
        signal.signal(signal.SIGINT, previous)


def _send_to_workers(iterator, *signals):
    """Sends ``signals`` to each worker from another process (as a scheduler, torchrun or a
    terminal does; a SIGTERM from the loader's own process is its way to end a worker)."""
    for worker in iterator._workers:
        for sig in signals:
            subprocess.run(['kill', f'-{sig.name[3:]}', str(worker.pid)], check=True)


@pytest.mark.parametrize('persistent', [True, False])
def test_data_loader_workers_ignore_stop_signals_but_not_their_loader(persistent):
    loader = SafeCheckpointRunner.build_dataloader(
        DataLoader(ToyData(12), batch_size=1, num_workers=2, persistent_workers=persistent))
    for _ in range(2):  # a persistent loader's second epoch reuses its workers
        iterator = iter(loader)
        first = next(iterator)
        _send_to_workers(iterator, signal.SIGTERM, signal.SIGINT)
        time.sleep(0.3)
        rest = list(iterator)  # a killed worker would raise "DataLoader worker ... killed"
        assert len(rest) == 11 and torch.equal(first['inputs'][0], ToyData(12)[0]['inputs'])
        assert all(w.is_alive() for w in iterator._workers) == persistent
    worker = iterator._workers[0]
    if worker.is_alive():  # what torch does to a worker that does not exit by itself
        worker.terminate()
        worker.join(5)
        assert worker.exitcode == 0


def test_workers_start_with_the_stop_signals_blocked():
    """A signal between a worker's start and its init function waits and is dropped."""
    import multiprocessing
    queue = multiprocessing.SimpleQueue()
    process = _WorkerProcess(target=_report_mask, args=(queue,))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    process.start()
    assert set(STOP_SIGNALS) <= queue.get()
    process.join(10)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the parent's is back


def _report_mask(queue):
    queue.put(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_protection_keeps_the_loaders_own_init_function():
    def seed_worker(worker_id):
        pass
    loader = DataLoader(ToyData(4), num_workers=1, worker_init_fn=seed_worker)
    protect_data_loader_workers(loader)
    protect_data_loader_workers(loader)  # once
    assert loader.worker_init_fn.keywords['init_fn'] is seed_worker
    assert loader.worker_init_fn.func.__name__ == '_ignore_stop_signals'


def sigterm(runner):
    os.kill(os.getpid(), signal.SIGTERM)


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_a_stop_during_validation_ends_it_after_the_batch_and_saves(tmp_path):
    """Iterations 1-2, validation at 2 (6 batches) stopped after its second batch: the
    checkpoint holds the trained weights (not the EMA ones swapped in for validation), no
    metric is computed, the work dir is marked; resume trains 3-4 and validates in full."""
    cfg = toy_config(tmp_path, custom_hooks=[dict(type='EMAHook', momentum=0.5)])
    runner = toy_runner(cfg, CallAt('after_val_iter', 1, sigterm))
    runner.train()
    metric = metric_of(runner)
    assert runner.iter == 2 and metric.batches == 2 and metric.computed == 0
    assert open(tmp_path / 'last_checkpoint').read() == str(tmp_path / 'iter_2.pth')
    checkpoint = load(tmp_path / 'iter_2.pth')
    assert checkpoint['meta']['iter'] == 2
    ema = next(h for h in runner._hooks if isinstance(h, EMAHook))
    # EMAHook saves the averaged weights as the model's and the trained ones aside
    torch.testing.assert_close(checkpoint['ema_state_dict']['module.linear.weight'],
                               runner.model.linear.weight.detach())
    torch.testing.assert_close(checkpoint['state_dict']['linear.weight'],
                               ema.ema_model.module.linear.weight.detach())
    marker = json.loads((tmp_path / PREEMPTED_MARKER).read_text())
    assert marker['iteration'] == 2 and marker['signal'] == 'SIGTERM'
    assert marker['checkpoint'] == str(tmp_path / 'iter_2.pth')

    resumed = toy_runner(toy_config(tmp_path, resume=True,
                                    custom_hooks=[dict(type='EMAHook', momentum=0.5)]))
    resumed.train()
    assert resumed.iter == 4 and metric_of(resumed).batches == 6
    assert metric_of(resumed).computed == 1
    assert not (tmp_path / PREEMPTED_MARKER).exists()


def test_no_validation_starts_after_a_preemption_save(tmp_path):
    runner = toy_runner(toy_config(tmp_path), CallAt('after_train_iter', 1, sigterm))
    runner.train()  # validation was due at iteration 2
    assert metric_of(runner).batches == 0
    assert load(tmp_path / 'iter_2.pth')['meta']['iter'] == 2


def test_an_epoch_loop_stopped_in_its_validation_resumes_at_the_next_epoch(tmp_path):
    cfg = toy_config(tmp_path, iters=2, val_interval=1, loop='epoch')
    runner = toy_runner(cfg, CallAt('after_val_iter', 0, sigterm))
    runner.train()
    checkpoint = load(tmp_path / 'iter_2.pth')
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (1, 2)
    assert metric_of(runner).batches == 1
    resumed = toy_runner(toy_config(tmp_path, iters=2, val_interval=1, loop='epoch',
                                    resume=True))
    resumed.train()
    assert (resumed.epoch, resumed.iter) == (2, 4) and metric_of(resumed).batches == 6
