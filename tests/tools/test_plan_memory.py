"""tools/plan_memory.py: the activation model against measured saved tensors, exact parameter
bytes, sharding, the printed plan with a suggestion, and refused arguments."""
import contextlib
import io
import os

import pytest
from mmengine.config import Config

from swinv2_mm.cli import memory_plan as mp
from tests.helpers import ROOT, load_tool

SEG_DEMO = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
SMALL_ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))


@pytest.fixture(scope='module')
def tool():
    return load_tool('plan_memory')


@pytest.fixture(scope='module')
def info():
    return mp.model_info(Config.fromfile(SEG_DEMO))


@pytest.fixture(scope='module')
def runs(tool):
    """The demo planned three ways: over budget, as configured, with overrides."""
    return dict(over=run(tool, SEG_DEMO, '--gpus', '2', '--gpu-mem', '0.1'),
                plain=run(tool, SEG_DEMO, '--gpus', '2', '--gpu-mem', '8'),
                lean=run(tool, SEG_DEMO, '--gpus', '2', '--gpu-mem', '8', '--with-cp', '1',
                         '--precision', 'bf16', '--batch', '2', '--size', '128'))


def run(tool, *argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = tool.main(list(argv))
    return out.getvalue(), result


@pytest.mark.parametrize('with_cp', [False, True])
def test_activation_model_within_15_percent_of_measured(with_cp):
    measured = mp.measured_activation_bytes(SMALL_ARCH, 128, 8, with_cp, bf16=False)
    predicted = mp.predicted_activation_bytes(SMALL_ARCH, 128, 8, with_cp, bf16=False)
    assert abs(predicted / measured - 1) < 0.15, (measured, predicted)


def test_parameter_bytes_are_the_meta_models_count(info):
    import torch
    from tests.helpers import build_in_scope
    model = build_in_scope(Config.fromfile(SEG_DEMO).model, 'mmseg', device='meta')
    count = sum(p.numel() for p in model.parameters())
    assert info.params == count
    setup = mp.Setup(1, 80, 'bf16', 'none', [False] * 4, [0] * 4, 1, (64, 64))
    parts = mp.state_bytes(info, setup)
    assert parts['parameters'] == count * torch.float32.itemsize  # fp32 masters under AMP
    assert parts['optimizer'] == 2 * count * 4 and 'ddp_buckets' not in parts


def test_sharding_divides_as_stated(info):
    def parts(sharding, gpus=8):
        setup = mp.Setup(gpus, 80, 'fp32', sharding, [False] * 4, [0] * 4, 1, (64, 64))
        return mp.state_bytes(info, setup)
    none, zero1, fsdp = parts('none'), parts('zero1'), parts('fsdp')
    assert zero1['optimizer'] == none['optimizer'] // 8
    assert zero1['parameters'] == none['parameters'] and zero1['gradients'] == none['gradients']
    for key in ('parameters', 'gradients', 'optimizer'):
        assert fsdp[key] == none[key] // 8
    assert fsdp['fsdp_gathered'] == 4 * (info.root_params + 3 * info.largest_block)
    assert parts('zero1', gpus=1)['optimizer'] == none['optimizer']  # one process: no ZeRO


def test_cli_prints_the_table_and_a_suggestion(runs):
    text, result = runs['over']
    for row in ('parameters', 'gradients', 'optimizer state', 'backbone activations',
                'ROUGH allowance', 'total'):
        assert row in text
    assert 'DOES NOT FIT' in text and not result['fits']
    assert 'suggest: ' in text and result['suggestion']['flags'] in text
    text, result = runs['plain']
    assert ': FITS' in text and result['fits'] and 'suggest' not in text


def test_cli_overrides_reach_the_plan(runs):
    plain, lean = runs['plain'][1], runs['lean'][1]
    assert lean['setup']['with_cp'] == [True] * 4 and lean['setup']['size'] == (128, 128)
    assert lean['parts']['activations_kept'] < plain['parts']['activations_kept'] / 4


@pytest.mark.parametrize('argv, named', [
    (['--gpus', '0', '--gpu-mem', '40'], '--gpus'),
    (['--gpus', '8', '--gpu-mem', '-1'], '--gpu-mem'),
    (['--gpus', '8', '--gpu-mem', '40', '--sharding', 'zero3'], '--sharding'),
    (['--gpus', '8', '--gpu-mem', '40', '--with-cp', '1', '0'], '--with-cp')])
def test_bad_arguments_are_refused_by_name(tool, argv, named):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        run(tool, SEG_DEMO, *argv)
    assert named in err.getvalue() + str(exc.value.code)
