"""The backbones build by type= from every toolbox scope, without shadowing mmpretrain."""
import importlib

import pytest
import torch

import swinv2_mm
from swinv2_mm import SwinTransformerV2

CFG = dict(type='SwinTransformerV2', arch=dict(embed_dims=32, depths=(2, 2, 2, 2),
                                                num_heads=(2, 4, 4, 8)),
           window_size=[8, 8, 8, 4], out_indices=(1, 2, 3))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmaction'])
def test_builds_in_toolbox_scope(scope):
    pytest.importorskip(f'{scope}.registry')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(CFG)
    assert type(model) is SwinTransformerV2
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 8, 12), (1, 128, 4, 6), (1, 256, 2, 3)]


def test_builds_from_a_full_detector_config():
    pytest.importorskip('mmdet.models')
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg = dict(type='RetinaNet',
               data_preprocessor=dict(type='DetDataPreprocessor'),
               backbone=CFG,
               neck=dict(type='FPN', in_channels=[64, 128, 256], out_channels=32, num_outs=3),
               bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=32, feat_channels=32,
                              anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                                    scales_per_octave=1, ratios=[1.0],
                                                    strides=[8, 16, 32]),
                              bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                              loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                              loss_bbox=dict(type='L1Loss')))
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg)
    assert isinstance(detector.backbone, SwinTransformerV2)
    with torch.no_grad():
        feats = detector.extract_feat(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [32, 32, 32]


def test_mmpretrain_keeps_its_own_class():
    pytest.importorskip('mmpretrain.models')
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cls = MODELS.get('SwinTransformerV2')
    assert cls is not SwinTransformerV2 and cls.__module__.startswith('mmpretrain.')
    swinv2_mm.register_all()  # idempotent, still not shadowing
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        assert MODELS.get('SwinTransformerV2') is cls


def test_video_backbone_builds_in_the_mmaction_scope():
    from mmaction.registry import MODELS
    from mmengine.registry import DefaultScope
    cfg = dict(CFG, type='VideoSwinTransformerV2', window_size=(4, 8, 8))
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg)
    assert type(model) is swinv2_mm.VideoSwinTransformerV2
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 4, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 2, 8, 12), (1, 128, 2, 4, 6),
                                              (1, 256, 2, 2, 3)]


def test_import_does_what_the_readme_lists_and_nothing_more():
    """In a fresh interpreter: registration, the checkpoint allow-list, no toolbox and no
    harness (swinv2_mm.cli) imported."""
    import subprocess
    import sys
    code = ('import sys, torch, swinv2_mm\n'
            'from mmengine.registry import MODELS\n'
            'from mmengine.logging.history_buffer import HistoryBuffer\n'
            'assert MODELS.get("SwinTransformerV2") is swinv2_mm.SwinTransformerV2\n'
            'assert HistoryBuffer in torch.serialization.get_safe_globals()\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("mmdet", "mmseg", "mmaction", "mmcv", "mmpretrain") or m.startswith("swinv2_mm.cli")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == '[]'
