"""Checkpoints are written atomically; the protecting hooks are added once."""
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from swinv2_mm.engine import SafeCheckpointRunner, add_protecting_hooks


def bare_runner(tmp_path):
    """A SafeCheckpointRunner holding only what saving reads: a model, hooks, a work dir."""
    import torch
    runner = object.__new__(SafeCheckpointRunner)
    runner.model, runner._hooks, runner._work_dir = torch.nn.Linear(2, 2), [], str(tmp_path)
    return runner


def test_a_crash_while_saving_keeps_the_previous_checkpoint_and_no_partial_file(tmp_path,
                                                                                 monkeypatch):
    (tmp_path / 'iter_8.pth').write_bytes(b'good')

    def crash_midway(self, out_dir, filename, *args, **kwargs):
        (tmp_path / filename).write_bytes(b'partial')
        raise KeyboardInterrupt
    monkeypatch.setattr(Runner, 'save_checkpoint', crash_midway)
    with pytest.raises(KeyboardInterrupt):
        bare_runner(tmp_path).save_checkpoint(str(tmp_path), 'iter_16.pth', meta=dict(iter=16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_8.pth']
    assert (tmp_path / 'iter_8.pth').read_bytes() == b'good'


def test_a_finished_save_appears_under_its_name_only(tmp_path, monkeypatch):
    def save(self, out_dir, filename, *args, **kwargs):
        (tmp_path / filename).write_bytes(b'weights')
    monkeypatch.setattr(Runner, 'save_checkpoint', save)
    bare_runner(tmp_path).save_checkpoint(str(tmp_path), 'iter_16.pth', meta=dict(iter=16))
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
    bare_runner(tmp_path).save_checkpoint(str(tmp_path), 'iter_16.pth', meta=dict(iter=16))
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
    runner = bare_runner(tmp_path)
    runner.optim_wrapper = SimpleNamespace(optimizer=optimizer)
    runner.save_checkpoint(str(tmp_path), 'iter_4.pth', meta=dict(iter=4))
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


def test_the_checkpoint_hook_becomes_the_safe_one_with_its_arguments():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=5,
                                                         max_keep_ckpts=1))))
    add_protecting_hooks(cfg)
    assert cfg.default_hooks.checkpoint == dict(type='SafeCheckpointHook', interval=5,
                                                max_keep_ckpts=1)
    cfg = Config(dict())  # mmengine's default: every epoch
    add_protecting_hooks(cfg)
    assert cfg.default_hooks.checkpoint == dict(type='SafeCheckpointHook', interval=1)
    cfg = Config(dict(default_hooks=dict(checkpoint=None)))  # switched off: stays off
    add_protecting_hooks(cfg)
    assert cfg.default_hooks.checkpoint is None


def test_weights_stepped_to_nan_are_never_saved_and_the_last_good_checkpoint_stays(tmp_path):
    """A NaN gradient under a finite loss: the checkpoint due after that step is refused,
    naming the tensor, and iter_2.pth stays the run's last checkpoint, also with
    max_keep_ckpts=1 (mmengine removes the old checkpoint before writing the new one)."""
    from mmengine.hooks import Hook

    from tests.engine.toy import toy_config, toy_runner

    class PoisonIteration4(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if batch_idx == 3:
                runner.model.linear.weight.register_hook(lambda grad: grad * float('nan'))

    cfg = toy_config(tmp_path, iters=6, val_interval=100, checkpoint_interval=2)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    runner = toy_runner(cfg, PoisonIteration4())
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    message = str(err.value)
    assert 'rank 0: linear.weight' in message and 'iter_4.pth is not written' in message
    assert f'{tmp_path / "iter_2.pth"} stays the last checkpoint' in message
    assert sorted(p.name for p in tmp_path.glob('iter_*')) == ['iter_2.pth']
    assert open(tmp_path / 'last_checkpoint').read() == str(tmp_path / 'iter_2.pth')
    import torch
    state = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert all(torch.isfinite(v).all() for v in state['state_dict'].values())


def test_every_rank_refuses_when_another_ranks_shard_is_not_finite(monkeypatch, tmp_path):
    """Under FSDP each rank holds its own shards: a rank whose shards are finite stops too,
    naming the tensor another rank found, so no rank waits for the others in the save."""
    from types import SimpleNamespace

    import torch

    import swinv2_mm.engine.hooks as hooks_module

    model = torch.nn.Linear(2, 2)  # finite here
    monkeypatch.setattr(hooks_module, 'all_reduce', lambda flag, op: flag.fill_(1))
    monkeypatch.setattr(hooks_module, 'all_gather_object',
                        lambda record: [record, (1, ['backbone.stages.0.norm.weight'])])
    runner = SimpleNamespace(model=model, iter=15, work_dir=str(tmp_path))
    with pytest.raises(FloatingPointError, match=r'after iteration 16 \(rank 1: '
                                                 r'backbone.stages.0.norm.weight\)'):
        hooks_module.refuse_non_finite_weights(runner, 'iter_16.pth')
    monkeypatch.setattr(hooks_module, 'all_reduce', lambda flag, op: flag)
    hooks_module.refuse_non_finite_weights(runner, 'iter_16.pth')  # all finite: nothing


def test_non_finite_buffers_and_sharded_tensors_are_found():
    import torch

    from swinv2_mm.engine.hooks import non_finite_weights
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert non_finite_weights(model) == []
    with torch.no_grad():
        model[1].running_var[0] = float('inf')
        model[0].bias[1] = float('nan')
    assert non_finite_weights(model) == ['0.bias', '1.running_var']
