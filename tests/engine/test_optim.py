"""ZeroWhenDistributedConstructor: plain optimizer in one process, ZeRO-1 config otherwise;
optimizer-state bytes per rank."""
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from swinv2_mm.engine import ZeroWhenDistributedConstructor
from swinv2_mm.engine.optim import local_optimizer_state_bytes

CFG = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))


def test_single_process_uses_plain_optimizer_and_says_so(capsys):
    MMLogger.get_instance('swinv2_mm_test')
    wrapper = ZeroWhenDistributedConstructor(dict(CFG))(nn.Linear(4, 4))
    assert type(wrapper.optimizer).__name__ == 'AdamW'
    assert 'single process: plain AdamW' in capsys.readouterr().out


def test_several_processes_request_zero_redundancy_optimizer():
    with mock.patch('swinv2_mm.engine.optim.get_world_size', return_value=4):
        constructor = ZeroWhenDistributedConstructor(
            dict(CFG, base_constructor='DefaultOptimWrapperConstructor'))
    built = constructor.base.optimizer_cfg
    assert built['type'] == 'ZeroRedundancyOptimizer' and built['optimizer_type'] == 'AdamW'
    assert built['lr'] == 1e-3
    assert CFG['optimizer']['type'] == 'AdamW'  # the config itself is not modified


def test_param_wise_rules_of_the_base_constructor_apply():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    wrapper = ZeroWhenDistributedConstructor(
        dict(CFG), dict(custom_keys={'1.': dict(decay_mult=0.0)}))(model)
    decay = {id(g['params'][0]): g['weight_decay'] for g in wrapper.optimizer.param_groups}
    assert decay[id(model[0].weight)] == pytest.approx(0.05)
    assert decay[id(model[1].weight)] == 0.0


def test_state_bytes_count_adamw_moments():
    model = nn.Linear(10, 3)  # 33 parameters
    optimizer = torch.optim.AdamW(model.parameters())
    assert local_optimizer_state_bytes(optimizer) == 0
    model(torch.randn(2, 10)).sum().backward()
    optimizer.step()
    # exp_avg and exp_avg_sq in fp32 per parameter, plus a scalar fp32 step per tensor
    assert local_optimizer_state_bytes(optimizer) == 33 * 2 * 4 + 2 * 4
