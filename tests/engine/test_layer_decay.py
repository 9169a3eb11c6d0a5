"""SwinV2LayerDecayConstructor: the official SwinV2/SimMIM layer ids and rates, on top of
mmengine's parameter-wise rules, in mmdet, mmseg and mmaction2 models."""
import importlib
import os
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor, LinearLR
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from swinv2_mm import SwinTransformerV2
from swinv2_mm.engine import SwinV2LayerDecayConstructor
from swinv2_mm.models import ConfigError
from tests.helpers import ROOT, build_in_scope

ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
LR, WD, RATE = 1e-3, 0.05, 0.9
OPTIM = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=LR, weight_decay=WD))
NUM_LAYERS = sum(ARCH['depths']) + 2  # 10
SWINV2_NO_DECAY = Config.fromfile(
    os.path.join(ROOT, 'configs', '_base_', 'swinv2_optim.py')).swinv2_paramwise_cfg.to_dict()


class Classifier(nn.Module):
    """A SwinV2 backbone under ``backbone`` and a head with a norm, as in a toolbox model."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.LayerNorm(256), nn.Linear(256, 3))


def small_model() -> Classifier:
    return Classifier(SwinTransformerV2(arch=ARCH, extra_norm_every_n_blocks=2))


def groups_by_name(model: nn.Module, wrapper) -> dict:
    """Parameter name -> its (single-parameter) group in the built optimizer."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(g['params'][0])]: g for g in wrapper.optimizer.param_groups}


def build(model, **paramwise):
    return SwinV2LayerDecayConstructor(OPTIM, dict(layer_decay_rate=RATE, **paramwise))(model)


def test_layer_ids_and_rates_follow_the_official_numbering():
    model = small_model()
    with mock.patch('swinv2_mm.engine.layer_decay.print_log') as log:
        groups = groups_by_name(model, build(model))
    expected_ids = {  # depths (2, 2, 2, 2): blocks are layers 1..8, L = 10
        'backbone.patch_embed.proj.weight': 0,
        'backbone.stages.0.blocks.0.attn.qkv.weight': 1,
        'backbone.stages.1.blocks.1.mlp.fc1.weight': 2 + 1 + 1,  # last block of stage 1
        'backbone.stages.1.downsample.reduction.weight': 2 + 2,  # merging after stage 1
        'backbone.stages.3.blocks.1.norm3.weight': 6 + 1 + 1,  # extra norm inside a block
        'backbone.norm3.weight': 9,  # the output norm of stage 3
        'head.1.weight': 9,
    }
    for name, layer in expected_ids.items():
        assert groups[name]['layer_id'] == layer, name
        assert groups[name]['lr_scale'] == pytest.approx(RATE ** (9 - layer)), name
        assert groups[name]['lr'] == pytest.approx(LR * RATE ** (9 - layer)), name
    assert {g['layer_id'] for g in groups.values()} == set(range(NUM_LAYERS))
    assert len(groups) == len(list(model.parameters()))
    log.assert_called_once()
    assert log.call_args.args[0].startswith(
        'SwinV2LayerDecayConstructor: 10 layers, layer_decay_rate=0.9: lr 0.000387 at layer 0 '
        '(patch embedding) to 0.001 at layer 9')


def test_mask_token_of_a_pretraining_backbone_is_in_the_first_layer():
    class MaskedBackbone(SwinTransformerV2):
        def __init__(self):
            super().__init__(arch=ARCH)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, 32))

    backbone = MaskedBackbone()
    groups = groups_by_name(backbone, build(backbone))  # the bare backbone as the model
    assert groups['mask_token']['layer_id'] == 0
    assert groups['stages.0.blocks.0.attn.qkv.weight']['layer_id'] == 1
    assert groups['norm0.weight']['layer_id'] == NUM_LAYERS - 1


def test_model_wrapper_is_unwrapped():
    class Wrapper(nn.Module):  # as mmengine's MMDistributedDataParallel: the model in .module
        def __init__(self, module):
            super().__init__()
            self.module = module

    model = small_model()
    groups = groups_by_name(model, build(Wrapper(model)))
    assert groups['backbone.patch_embed.proj.weight']['lr_scale'] == pytest.approx(RATE ** 9)


@pytest.mark.parametrize('paramwise', [
    SWINV2_NO_DECAY,
    dict(SWINV2_NO_DECAY, custom_keys=dict(SWINV2_NO_DECAY['custom_keys'],
                                           backbone=dict(lr_mult=0.1))),
    dict(bias_lr_mult=2.0, flat_decay_mult=0.5, bypass_duplicate=True),
], ids=['swinv2-no-decay', 'no-decay-and-backbone-lr-mult', 'bias-lr-and-flat-decay'])
def test_groups_are_mmengine_defaults_with_lr_times_layer_factor(paramwise):
    model = small_model()
    ours = groups_by_name(model, build(model, **paramwise))
    default = groups_by_name(model, DefaultOptimWrapperConstructor(OPTIM, paramwise)(model))
    assert ours.keys() == default.keys()
    for name, group in ours.items():
        assert group['lr'] == pytest.approx(default[name]['lr'] * group['lr_scale']), name
        assert group['weight_decay'] == default[name]['weight_decay'], name


def test_swinv2_no_decay_rules_survive():
    model = small_model()
    groups = groups_by_name(model, build(model, **SWINV2_NO_DECAY))
    block = 'backbone.stages.0.blocks.0.'
    for name in (block + 'attn.cpb_mlp.0.weight', block + 'attn.logit_scale',
                 block + 'attn.q_bias', block + 'norm1.weight', block + 'mlp.fc1.bias',
                 'backbone.norm3.weight', 'head.0.weight', 'head.1.bias'):
        assert groups[name]['weight_decay'] == 0.0, name
    for name in (block + 'attn.qkv.weight', 'head.1.weight'):
        assert groups[name]['weight_decay'] == WD, name
    assert groups[block + 'attn.cpb_mlp.0.weight']['lr'] == pytest.approx(LR * RATE ** 8)


def test_backbone_lr_mult_multiplies_with_layer_decay():
    model = small_model()
    groups = groups_by_name(model, build(model, norm_decay_mult=0.0, bias_decay_mult=0.0,
                                         custom_keys={'backbone': dict(lr_mult=0.1)}))
    assert groups['backbone.patch_embed.proj.weight']['lr'] == pytest.approx(LR * 0.1 * RATE ** 9)
    assert groups['backbone.stages.3.blocks.1.attn.qkv.weight']['lr'] == \
        pytest.approx(LR * 0.1 * RATE)
    assert groups['backbone.norm3.weight']['lr'] == pytest.approx(LR * 0.1)
    assert groups['head.1.weight']['lr'] == pytest.approx(LR)
    assert groups['head.0.weight']['weight_decay'] == 0.0  # norm rule outside the keyed names
    assert groups['head.1.bias']['weight_decay'] == 0.0


def demo_model(config: str, scope: str) -> nn.Module:
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'demo', config))
    for module in cfg.custom_imports.imports:
        importlib.import_module(module)
    return build_in_scope(cfg.model, scope)


@pytest.mark.parametrize('config,scope,model_type,backbone_type', [
    ('upernet_swinv2_shapes_demo.py', 'mmseg', 'EncoderDecoder', 'SwinTransformerV2'),
    ('cascade_swinv2_shapes_demo.py', 'mmdet', 'CascadeRCNN', 'SwinTransformerV2'),
    ('video_swinv2_shapes_demo.py', 'mmaction', 'Recognizer3D', 'VideoSwinTransformerV2'),
])
def test_toolbox_models_by_registry_name(config, scope, model_type, backbone_type):
    pytest.importorskip(f'{scope}.registry')
    model = demo_model(config, scope)
    assert (type(model).__name__, type(model.backbone).__name__) == (model_type, backbone_type)
    registry = importlib.import_module(f'{scope}.registry').OPTIM_WRAPPER_CONSTRUCTORS
    constructor = registry.build(dict(
        type='SwinV2LayerDecayConstructor', optim_wrapper_cfg=OPTIM,
        paramwise_cfg=dict(SWINV2_NO_DECAY, layer_decay_rate=RATE)))
    groups = groups_by_name(model, constructor(model))
    backbone = [n for n in groups if n.startswith('backbone.')]
    others = [n for n in groups if not n.startswith('backbone.')]
    assert groups['backbone.patch_embed.proj.weight']['lr'] == pytest.approx(LR * RATE ** 9)
    assert groups['backbone.stages.3.blocks.1.attn.qkv.weight']['lr'] == \
        pytest.approx(LR * RATE)
    assert groups['backbone.stages.0.blocks.0.attn.logit_scale']['weight_decay'] == 0.0
    assert {groups[n]['layer_id'] for n in backbone} == set(range(NUM_LAYERS))
    assert others and all(groups[n]['lr'] == pytest.approx(LR) for n in others)


def test_nested_in_zero_when_distributed_gives_the_same_groups():
    model = small_model()
    paramwise = dict(SWINV2_NO_DECAY, layer_decay_rate=RATE)
    nested = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='ZeroWhenDistributedConstructor', paramwise_cfg=paramwise,
        optim_wrapper_cfg=dict(OPTIM, base_constructor='SwinV2LayerDecayConstructor')))
    assert isinstance(nested.base, SwinV2LayerDecayConstructor)
    direct = groups_by_name(model, SwinV2LayerDecayConstructor(OPTIM, paramwise)(model))
    for name, group in groups_by_name(model, nested(model)).items():
        assert (group['lr'], group['weight_decay'], group['layer_id']) == \
            (direct[name]['lr'], direct[name]['weight_decay'], direct[name]['layer_id']), name


def test_linear_warmup_keeps_the_layer_ratios():
    model = small_model()
    wrapper = build(model)
    scheduler = LinearLR(wrapper, start_factor=0.01, by_epoch=False, begin=0, end=4)
    groups = wrapper.optimizer.param_groups
    for _ in range(5):
        factors = [g['lr'] / g['initial_lr'] for g in groups]
        assert factors == pytest.approx([factors[0]] * len(groups))
        assert [g['lr'] / (LR * g['lr_scale']) for g in groups] == pytest.approx(factors)
        wrapper.step()
        scheduler.step()
    assert factors[0] == pytest.approx(1.0)  # the warm-up reached the layer-wise lrs
    assert [g['initial_lr'] for g in groups] == pytest.approx([LR * g['lr_scale']
                                                               for g in groups])


@pytest.mark.parametrize('model', [nn.Sequential(nn.Linear(4, 4)),
                                   Classifier(nn.Linear(4, 256))],
                         ids=['no-backbone', 'other-backbone'])
def test_model_without_swinv2_backbone_is_refused(model):
    with pytest.raises(ConfigError, match=r'SwinV2LayerDecayConstructor: \w+ has no swinv2_mm '
                                          r'SwinV2 backbone.*`backbone` is a SwinTransformerV2'):
        build(model)


@pytest.mark.parametrize('rate', [0, 1.5, -0.1, True, '0.9', None])
def test_bad_layer_decay_rate_is_refused(rate):
    paramwise = {} if rate is None else dict(layer_decay_rate=rate)
    with pytest.raises(ConfigError, match=r'paramwise_cfg.layer_decay_rate must be a number in '
                                          r'\(0, 1\], got ' + repr(rate).replace('.', r'\.')):
        SwinV2LayerDecayConstructor(OPTIM, paramwise)


def test_rules_outside_custom_keys_are_refused():
    with pytest.raises(ConfigError, match=r"unknown keys \['backbone'\].*custom_keys="
                                          r"\{'backbone': \{'lr_mult': 0.1\}\}"):
        SwinV2LayerDecayConstructor(OPTIM, dict(layer_decay_rate=RATE,
                                                backbone=dict(lr_mult=0.1)))


def test_optimizer_without_lr_is_refused():
    with pytest.raises(ConfigError, match='optimizer.lr must be set'):
        SwinV2LayerDecayConstructor(dict(optimizer=dict(type='AdamW')),
                                    dict(layer_decay_rate=RATE))
