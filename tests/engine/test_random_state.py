"""RandomStateHook: every generator a run draws from (torch, numpy, Python's random) saved per
rank in a weights-only checkpoint and put back where an uninterrupted run would be; other
numbers of ranks, load_from and validation leave them alone."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from swinv2_mm.checkpoint.files import load_checkpoint_file
from swinv2_mm.engine import hooks
from swinv2_mm.engine.hooks import LEGACY_RNG_KEY, RNG_KEY, RandomStateHook
from swinv2_mm.engine.random_state import process_states

PER_EPOCH = 4


def draws() -> tuple:
    """One draw from each generator (numpy's normal twice: the second comes from its cache)."""
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.normal(),
            np.random.normal(), random.random(), random.gauss(0, 1), random.gauss(0, 1))


def runner(rank=0, world_size=1, resume=True, iteration=0, epoch=0):
    loop = SimpleNamespace(max_iters=3 * PER_EPOCH, max_epochs=3)
    return SimpleNamespace(rank=rank, world_size=world_size, _resume=resume, iter=iteration,
                           epoch=epoch, train_loop=loop)


def seeded(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def saved_checkpoint(hook, run, tmp_path) -> dict:
    """What ``hook`` puts in a checkpoint, written and read back as the runner does (the
    project's weights-only loader)."""
    checkpoint = dict(meta={})
    hook.before_checkpoint_gather(run)
    hook.before_save_checkpoint(run, checkpoint)
    torch.save(checkpoint, tmp_path / 'ckpt.pth')
    return load_checkpoint_file(str(tmp_path / 'ckpt.pth'))


@pytest.fixture
def logged(monkeypatch):
    messages = []
    monkeypatch.setattr(hooks, 'print_log', lambda msg, **kwargs: messages.append(msg))
    return messages


# an epoch's last iteration saved by an epoch checkpoint (meta epoch 1) or by an iteration
# one (meta epoch 0: mmengine's epoch loop then runs an empty epoch 0 first)
@pytest.mark.parametrize('epoch', [1, 0], ids=['epoch_checkpoint', 'iteration_checkpoint'])
def test_every_generator_comes_back_at_the_next_epoch(tmp_path, epoch):
    seeded(1)
    np.random.normal(), random.gauss(0, 1)  # a cached gaussian in each
    hook = RandomStateHook()
    checkpoint = saved_checkpoint(hook, runner(), tmp_path)
    expected = draws()
    seeded(2)
    resumed = RandomStateHook()
    run = runner(iteration=PER_EPOCH, epoch=epoch)
    resumed.after_load_checkpoint(run, checkpoint)
    resumed.before_train_epoch(run)
    assert draws() == expected


def test_mid_epoch_the_pipeline_generators_restart_at_the_epoch_and_torch_at_the_checkpoint(
        tmp_path):
    seeded(1)
    hook = RandomStateHook()
    hook.before_train_epoch(runner(iteration=PER_EPOCH, epoch=1))  # epoch 2 begins
    epoch_pipeline = (np.random.rand(2).tolist(), random.random())  # batch 5's transforms
    torch.rand(5)  # the model's drop path
    checkpoint = saved_checkpoint(hook, runner(), tmp_path)  # after iteration 5
    model_draw = torch.rand(3).tolist()
    seeded(2)
    resumed = RandomStateHook()
    run = runner(iteration=PER_EPOCH + 1, epoch=1)
    resumed.after_load_checkpoint(run, checkpoint)
    resumed.before_train_epoch(run)
    # the skipped batch 5 is loaded again and draws what it drew ...
    assert (np.random.rand(2).tolist(), random.random()) == epoch_pipeline
    resumed.before_train_iter(run, 0)
    assert torch.rand(3).tolist() == model_draw  # ... and iteration 6 draws what it would have


def test_each_rank_gets_its_own_generators_back(tmp_path):
    records = []
    for rank in (0, 1):
        seeded(10 + rank)  # diff_rank_seed, or ranks whose pipelines drew differently
        records.append(dict(now=process_states(), epoch_start=None))
    checkpoint = {'meta': {RNG_KEY: records}}
    for rank in (0, 1):
        seeded(10 + rank)
        expected = draws()
        seeded(99)
        hook = RandomStateHook()
        run = runner(rank=rank, world_size=2, iteration=PER_EPOCH, epoch=1)
        hook.after_load_checkpoint(run, checkpoint)
        hook.before_train_epoch(run)
        assert draws() == expected, rank


def test_another_number_of_ranks_keeps_the_seeded_generators_and_says_so(logged):
    seeded(1)
    checkpoint = {'meta': {'iter': 8, RNG_KEY: [dict(now=process_states(), epoch_start=None)]
                           * 2}}
    seeded(5)
    expected = draws()
    seeded(5)
    hook = RandomStateHook()
    run = runner(rank=1, world_size=4, iteration=PER_EPOCH * 2, epoch=2)
    hook.after_load_checkpoint(run, checkpoint)
    hook.before_train_epoch(run)
    hook.before_train_iter(run, 0)
    assert draws() == expected
    assert logged == ['resume: the checkpoint holds the random generators of 2 rank(s) and this '
                      'run has 4 rank(s): every rank keeps its generators as seeded '
                      '(randomness), so the random draws after iteration 8 differ from an '
                      "uninterrupted run's"]


def test_an_earlier_checkpoint_restores_torch_on_one_process():
    seeded(1)
    legacy = {'meta': {LEGACY_RNG_KEY: dict(cpu=torch.get_rng_state())}}
    expected = torch.rand(3).tolist()
    seeded(2)
    hook = RandomStateHook()
    run = runner(iteration=2)
    hook.after_load_checkpoint(run, legacy)
    hook.before_train_epoch(run)
    hook.before_train_iter(run, 0)
    assert torch.rand(3).tolist() == expected


def test_load_from_and_validation_leave_the_generators_alone(tmp_path):
    seeded(1)
    checkpoint = saved_checkpoint(RandomStateHook(), runner(), tmp_path)
    seeded(3)
    expected = draws()
    seeded(3)
    hook = RandomStateHook()
    run = runner(resume=False, iteration=PER_EPOCH, epoch=1)
    hook.after_load_checkpoint(run, checkpoint)  # load_from: weights only
    hook.before_train_epoch(run)
    hook.before_val(run)
    draws()  # what a validation draws (its loader's seed, its pipeline)
    hook.after_val(run)
    assert draws() == expected
