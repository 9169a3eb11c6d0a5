"""tools/benchmark_compile.py compiles the backbone and a demo's train_step (as mmengine's
compile=True does) and reports both against eager; dynamo's eager backend keeps it fast."""
import functools
from unittest import mock

import torch

from tests.helpers import load_tool


def test_backbone_and_demo_train_step_are_compared():
    tool = load_tool('benchmark_compile')
    with mock.patch.object(torch, 'compile', functools.partial(torch.compile, backend='eager')):
        results = tool.main(['--case', 'tiny-64-w4', '--demo', 'video_swinv2_shapes_demo',
                             '--repeats', '1'])
    assert set(results['backbone']) >= {'eval', 'train'} and set(results['demo']) >= {'train'}
    assert results['backbone']['graph_breaks'] == 0 and results['backbone']['graphs'] >= 1
    for entry in (results['backbone']['eval'], results['backbone']['train'],
                  results['demo']['train']):
        assert entry['eager_s'] > 0 and entry['compiled_s'] > 0 and entry['speed_up'] > 0
