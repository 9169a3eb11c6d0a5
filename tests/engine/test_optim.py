"""ZeroWhenDistributedConstructor: plain optimizer in one process, ZeRO-1 config otherwise."""
from unittest import mock

import torch.nn as nn
from mmengine.logging import MMLogger

from swinv2_mm.engine import ZeroWhenDistributedConstructor

CFG = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))


def test_single_process_uses_plain_optimizer_and_says_so(capsys):
    MMLogger.get_instance('swinv2_mm_test')
    wrapper = ZeroWhenDistributedConstructor(dict(CFG))(nn.Linear(4, 4))
    assert type(wrapper.optimizer).__name__ == 'AdamW'
    assert 'single process: plain AdamW' in capsys.readouterr().out


def test_several_processes_request_zero_redundancy_optimizer():
    constructor = ZeroWhenDistributedConstructor(dict(CFG))
    built = {}

    def fake_build(self, model):
        built.update(self.optimizer_cfg)
        return None

    with mock.patch('swinv2_mm.engine.optim.get_world_size', return_value=4), \
            mock.patch('mmengine.optim.DefaultOptimWrapperConstructor.__call__', fake_build):
        constructor(nn.Linear(4, 4))
    assert built['type'] == 'ZeroRedundancyOptimizer' and built['optimizer_type'] == 'AdamW'
    assert built['lr'] == 1e-3
