"""FSDP (ZeRO-3, torch's fully_shard) on two CPU processes against mmengine's DDP, its gathered
checkpoint evaluated by one process, and a resume of its sharded optimizer state; a DDP
checkpoint resumed sharded (read memory-mapped) and an FSDP one resumed by one process."""
import json
import os
import re

import pytest
import torch
from mmengine.config import Config

from swinv2_mm.engine.fsdp import (is_gathered_optimizer_state, optimizer_state_by_name,
                                   use_fsdp_runner)
from tests.helpers import ROOT, run_tool, scalars
from tests.tools.test_distributed import free_port

DEMO = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
ITERS = 2
OPTIONS = [f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
           'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={ITERS}',
           'train_dataloader.batch_size=2', 'train_dataloader.dataset.indices=8',
           'val_dataloader.dataset.indices=2', 'randomness.seed=0', 'param_scheduler.0.end=2']
# as the giant configs: their ZeRO-1 constructor (the FSDP switch replaces it), activation
# checkpointing and sequential attention (the DDP run has neither: the losses still agree)
FSDP = ['model_wrapper_cfg.type=MMFullyShard',
        'optim_wrapper.constructor=ZeroWhenDistributedConstructor',
        'model.backbone.with_cp=True', 'model.backbone.attn_chunk_size=2']


def torchrun(work, env, *extra, flags=()):
    args = ['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
            os.path.join(ROOT, 'tools', 'train.py'), DEMO, '--launcher', 'pytorch',
            '--work-dir', str(work), *flags, '--cfg-options'] + OPTIONS + list(extra)
    return run_tool(args, dict(env, OMP_NUM_THREADS='1'), str(work.parent))


@pytest.fixture(scope='module')
def runs(tmp_path_factory, env):
    ddp, fsdp = tmp_path_factory.mktemp('ddp'), tmp_path_factory.mktemp('fsdp')
    return dict(ddp=(ddp, torchrun(ddp, env)), fsdp=(fsdp, torchrun(fsdp, env, *FSDP)))


def losses(work):
    return [r['loss'] for r in scalars(work) if 'loss' in r]


def test_first_iteration_loss_equals_ddp(runs):
    ddp, fsdp = losses(runs['ddp'][0]), losses(runs['fsdp'][0])
    assert len(ddp) == len(fsdp) == ITERS
    assert fsdp[0] == pytest.approx(ddp[0], rel=1e-5)
    assert fsdp[1] == pytest.approx(ddp[1], rel=1e-3)  # after one sharded AdamW step


def test_each_rank_holds_half_the_parameters(runs):
    out = runs['fsdp'][1].stdout
    found = re.search(r'parameters per rank: \[(\d+), (\d+)\] of (\d+)', out)
    first, second, full = map(int, found.groups())
    assert first + second == full and max(first, second) < 0.51 * full
    assert 'ZeroWhenDistributedConstructor replaced by DefaultOptimWrapperConstructor' in out
    assert 'parameters per rank' not in runs['ddp'][1].stdout


def test_checkpoint_is_gathered_and_one_process_evaluates_it(runs, env, tmp_path):
    path = runs['fsdp'][0] / f'iter_{ITERS}.pth'
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    reference = torch.load(runs['ddp'][0] / f'iter_{ITERS}.pth', map_location='cpu',
                           weights_only=False)['state_dict']
    state = checkpoint['state_dict']
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in reference.items()}
    assert all(type(v) is torch.Tensor for v in state.values())  # no DTensor shards
    assert is_gathered_optimizer_state(checkpoint['optimizer'])
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, str(path),
                    '--work-dir', str(tmp_path), '--cfg-options',
                    'test_dataloader.dataset.indices=2'], env, str(tmp_path))
    assert 'mIoU:' in out.stdout + out.stderr


def test_resume_restores_the_sharded_optimizer_state(runs, env):
    work = runs['fsdp'][0]
    out = torchrun(work, env, *FSDP, f'train_cfg.max_iters={ITERS + 1}', flags=['--resume'])
    assert f'resumed epoch: 0, iter: {ITERS}' in out.stdout + out.stderr
    assert len(losses(work)) == ITERS + 1
    state = torch.load(work / f'iter_{ITERS + 1}.pth', map_location='cpu',
                       weights_only=False)['optimizer']['state']
    steps = {float(s['step']) for s in state.values()}
    assert steps == {ITERS + 1.0}  # AdamW went on counting: its moments were restored


# torch.load as every process of a run calls it, and where the tensors it returned lie: inside a
# memory mapping of the file (/proc/self/maps) or in the process's own memory
LOAD_SPY = """
import inspect, json, os
import torch

_load = torch.load


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


def _spied(f, *args, **kwargs):
    out = _load(f, *args, **kwargs)
    if isinstance(f, (str, os.PathLike)):
        path = os.path.realpath(str(f))
        with open('/proc/self/maps') as maps:
            spans = [[int(a, 16) for a in line.split()[0].split('-')] for line in maps
                     if line.rstrip().endswith(path)]
        tensors = [t for t in _tensors(out) if t.numel()]
        mapped = sum(any(lo <= t.data_ptr() < hi for lo, hi in spans) for t in tensors)
        record = dict(path=path, rank=os.environ.get('RANK'), mmap=kwargs.get('mmap', False),
                      tensors=len(tensors), mapped=mapped,
                      callers=[frame.function for frame in inspect.stack(0)[1:]])
        with open(os.path.join(os.environ['LOAD_SPY'], f'{os.getpid()}.jsonl'), 'a') as log:
            log.write(json.dumps(record) + '\\n')
    return out


torch.load = _spied
"""


def test_a_ddp_checkpoint_resumes_sharded_and_every_rank_maps_it(runs, env, tmp_path):
    spy, work = tmp_path / 'spy', tmp_path / 'work'
    spy.mkdir()
    (spy / 'sitecustomize.py').write_text(LOAD_SPY)
    checkpoint = runs['ddp'][0] / f'iter_{ITERS}.pth'
    spied = dict(env, LOAD_SPY=str(spy),
                 PYTHONPATH=os.pathsep.join(filter(None, [str(spy), env.get('PYTHONPATH')])))
    out = torchrun(work, spied, *FSDP, f'train_cfg.max_iters={ITERS + 1}',
                   'train_cfg.val_begin=100', flags=['--resume', str(checkpoint)])
    assert f'resumed epoch: 0, iter: {ITERS}' in out.stdout + out.stderr
    state = torch.load(work / f'iter_{ITERS + 1}.pth', map_location='cpu',
                       weights_only=False)['optimizer']['state']
    assert {float(s['step']) for s in state.values()} == {ITERS + 1.0}  # DDP's AdamW moments
    loads = [json.loads(line) for log in spy.glob('*.jsonl') for line in open(log)]
    sharded = [r for r in loads if '_load_sharded' in r['callers']]
    assert sorted(r['rank'] for r in sharded) == ['0', '1']
    for record in sharded:  # every tensor of the checkpoint lies in a mapping of the file
        assert record['path'] == os.path.realpath(checkpoint) and record['mmap']
        assert record['tensors'] > 200 and record['mapped'] == record['tensors'], record


def two_group_adamw(model):
    return torch.optim.AdamW([dict(params=[model[0].weight, model[0].bias]),
                              dict(params=[model[1].weight], weight_decay=0.0)])


def test_a_positional_optimizer_state_is_keyed_by_name_in_the_optimizer_order():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1, bias=False))
    optimizer = two_group_adamw(model)
    model(torch.randn(4, 2)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()  # what DDP's rank 0 writes: parameters 0, 1, 2
    by_name = optimizer_state_by_name(saved, two_group_adamw(model), model, 'ddp.pth')
    assert [g['params'] for g in by_name['param_groups']] == [['0.weight', '0.bias'],
                                                              ['1.weight']]
    assert by_name['param_groups'][1]['weight_decay'] == 0.0
    assert by_name['state']['1.weight']['exp_avg'] is saved['state'][2]['exp_avg']
    assert is_gathered_optimizer_state(by_name)


def test_an_optimizer_state_of_other_groups_is_refused_naming_the_file():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1, bias=False))
    saved = torch.optim.AdamW(model.parameters()).state_dict()  # one group of 3
    with pytest.raises(ValueError, match=r"--resume ddp.pth: .* groups of \[3\] parameters, "
                                         r"this FSDP run's optimizer \[2, 1\]"):
        optimizer_state_by_name(saved, two_group_adamw(model), model, 'ddp.pth')


def test_switch_sets_runner_and_plain_constructor():
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMFullyShard'),
                      optim_wrapper=dict(constructor='ZeroWhenDistributedConstructor',
                                         base_constructor='SwinV2LayerDecayConstructor')))
    use_fsdp_runner(cfg)
    assert cfg.runner_type == 'FSDPRunner'
    assert cfg.optim_wrapper.constructor == 'SwinV2LayerDecayConstructor'
    assert 'base_constructor' not in cfg.optim_wrapper
    plain = Config(dict(optim_wrapper=dict(constructor='ZeroWhenDistributedConstructor')))
    use_fsdp_runner(plain)
    assert 'runner_type' not in plain


def test_base_config_turns_fsdp_on():
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', '_base_', 'fsdp.py'))
    assert cfg.model_wrapper_cfg.type == 'MMFullyShard' and cfg.runner_type == 'FSDPRunner'
