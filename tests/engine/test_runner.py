"""Checkpoints are written atomically; the protecting hooks are added once."""
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from swinv2_mm.engine import SafeCheckpointRunner, add_protecting_hooks


def test_a_crash_while_saving_keeps_the_previous_checkpoint_and_no_partial_file(tmp_path,
                                                                                 monkeypatch):
    (tmp_path / 'iter_8.pth').write_bytes(b'good')

    def crash_midway(self, out_dir, filename, *args, **kwargs):
        (tmp_path / filename).write_bytes(b'partial')
        raise KeyboardInterrupt
    monkeypatch.setattr(Runner, 'save_checkpoint', crash_midway)
    runner = object.__new__(SafeCheckpointRunner)
    with pytest.raises(KeyboardInterrupt):
        runner.save_checkpoint(str(tmp_path), 'iter_16.pth')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_8.pth']
    assert (tmp_path / 'iter_8.pth').read_bytes() == b'good'


def test_a_finished_save_appears_under_its_name_only(tmp_path, monkeypatch):
    def save(self, out_dir, filename, *args, **kwargs):
        (tmp_path / filename).write_bytes(b'weights')
    monkeypatch.setattr(Runner, 'save_checkpoint', save)
    object.__new__(SafeCheckpointRunner).save_checkpoint(str(tmp_path), 'iter_16.pth')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_16.pth']


def test_protecting_hooks_are_added_once():
    cfg = Config(dict(custom_hooks=[dict(type='RandomStateHook'), dict(type='EMAHook')]))
    add_protecting_hooks(cfg)
    add_protecting_hooks(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'RandomStateHook', 'EMAHook', 'TrimSupersededLogsHook', 'StopOnNonFiniteLossHook',
        'OptimizerStateSizeHook', 'PreemptionCheckpointHook']


def test_other_ranks_leave_saving_to_rank_0(tmp_path, monkeypatch):
    """mmengine saves on rank 0 only; another rank must not look for a file to rename."""
    import swinv2_mm.engine.runner as runner_module
    calls = []
    monkeypatch.setattr(Runner, 'save_checkpoint',
                        lambda self, out_dir, filename, *a, **k: calls.append(filename))
    monkeypatch.setattr(runner_module, 'is_main_process', lambda: False)
    object.__new__(SafeCheckpointRunner).save_checkpoint(str(tmp_path), 'iter_16.pth')
    assert calls == ['iter_16.pth'] and not any(tmp_path.iterdir())


def test_zero_state_is_gathered_by_every_rank_before_rank_0_saves(tmp_path, monkeypatch):
    """mmengine saves on rank 0 only, but gathering ZeRO shards is a collective: every rank
    gathers first, and the gather inside rank 0's save is skipped (else it deadlocks)."""
    from types import SimpleNamespace

    from torch.distributed.optim import ZeroRedundancyOptimizer

    import swinv2_mm.engine.runner as runner_module
    calls = []

    class FakeZero(ZeroRedundancyOptimizer):
        def __init__(self):
            pass

        def consolidate_state_dict(self, to=0):
            calls.append(('gather', to))

    optimizer = FakeZero()

    def save(self, out_dir, filename, *args, **kwargs):  # runs on rank 0 only in mmengine
        calls.append('rank 0 saves')
        self.optim_wrapper.optimizer.consolidate_state_dict()  # as mmengine's state_dict does
        (tmp_path / filename).write_bytes(b'weights')
    monkeypatch.setattr(Runner, 'save_checkpoint', save)
    monkeypatch.setattr(runner_module, 'get_world_size', lambda: 2)
    runner = object.__new__(SafeCheckpointRunner)
    runner.optim_wrapper = SimpleNamespace(optimizer=optimizer)
    runner.save_checkpoint(str(tmp_path), 'iter_4.pth')
    assert calls == [('gather', 0), 'rank 0 saves']  # gathered by all ranks, not inside
    assert 'consolidate_state_dict' not in vars(optimizer)  # the class's method is back
    assert (tmp_path / 'iter_4.pth').exists()


def test_a_bad_checkpoint_is_named_when_the_runner_loads_it(tmp_path):
    """Without the tools' preflight (library use), mmengine's failure becomes a clear error."""
    import torch
    from swinv2_mm.checkpoint.files import CheckpointFileError
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointFileError, match='is truncated or not a checkpoint'):
        SafeCheckpointRunner.load_checkpoint(object.__new__(SafeCheckpointRunner), str(path))
