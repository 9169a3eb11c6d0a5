"""The HTC++ configs build and carry the paper's recipe; InstaBoost is optional."""
import os
import sys
import types

import numpy as np
import pytest
from mmengine.config import Config

from tests.helpers import ROOT, build_in_scope

OFFICIAL = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'


def config(size):
    return Config.fromfile(os.path.join(ROOT, 'configs', f'htc_swinv2_{size}_coco.py'))


def no_decay(name, param):
    """SwinV2's rule: norms and biases (the 1-D parameters), the CPB meta network and the
    attention temperature take no weight decay."""
    return param.ndim == 1 or 'cpb_mlp' in name or 'logit_scale' in name


@pytest.mark.parametrize('size', ['l', 'g'])
def test_config_builds_with_recipe_and_optimizer_rules(size):
    """Built on the meta device: every backbone parameter at lr 4e-5 and everything else at
    4e-4, no decay exactly on norms, biases, cpb_mlp and logit_scale (the backbone's too)."""
    from mmengine.optim import build_optim_wrapper
    cfg = config(size)
    assert cfg.default_scope == 'mmdet' and 'swinv2_mm' in cfg.custom_imports.imports
    model = build_in_scope(cfg.model, 'mmdet', 'meta')
    assert type(model).__name__ == 'HybridTaskCascade'
    assert type(model.backbone).__name__ == 'SwinTransformerV2'
    assert cfg.model.neck.in_channels == model.backbone.num_features
    assert model.backbone.window_sizes == [(32, 32)] * 4
    assert type(model.roi_head.semantic_head).__name__ == 'FusedSemanticHead'
    assert cfg.model.test_cfg.rcnn.nms.type == 'soft_nms'
    loader = cfg.train_dataloader
    assert loader.dataset.data_prefix.seg == 'stuffthingmaps/train2017/'
    steps = {t.type: t for t in loader.dataset.pipeline}
    assert steps['LoadAnnotations'].with_seg and 'OptionalInstaBoost' in steps
    assert steps['RandomResize'].ratio_range == (0.1, 2.0)
    assert steps['RandomCrop'].crop_size == (1536, 1536)
    assert cfg.model.data_preprocessor.batch_augments[0].size == (1536, 1536)
    assert cfg.train_cfg.max_epochs == 36
    assert [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0].milestones == [27, 33]
    assert cfg.auto_scale_lr.base_batch_size == 64

    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {names[id(p)]: (g['lr'], g['weight_decay'])
              for g in wrapper.optimizer.param_groups for p in g['params']}
    params = dict(model.named_parameters())
    assert set(groups) == set(params)
    expected = {name: (4e-5 if name.startswith('backbone.') else 4e-4,
                       0.0 if no_decay(name, param) else 0.05)
                for name, param in params.items()}
    wrong = [(name, groups[name]) for name in params
             if groups[name] != pytest.approx(expected[name], rel=1e-9)]
    assert not wrong, wrong[:5]
    if size == 'g':
        assert any('norm3' in name for name in params)  # the giant's extra norms are covered
        assert model.backbone.stages[0].with_cp
        assert model.backbone.stages[0].blocks[0].attn.attn_chunk_size == 16
        assert cfg.optim_wrapper.constructor == 'ZeroWhenDistributedConstructor'
    else:
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(OFFICIAL)
        assert cfg.model.backbone.pretrained_window_sizes == [12, 12, 12, 6]


def instance(x0):
    return dict(bbox=[x0, 2.0, x0 + 4.0, 6.0], bbox_label=1, ignore_flag=0,
                mask=[[x0, 2.0, x0 + 4.0, 2.0, x0 + 4.0, 6.0]])


@pytest.fixture
def instaboost():
    """The module with its availability re-checked in this test."""
    from swinv2_mm.datasets import instaboost
    instaboost.instaboost_available.cache_clear()
    yield instaboost
    instaboost.instaboost_available.cache_clear()


def test_instaboost_passes_through_and_says_so_once_without_its_package(instaboost,
                                                                        monkeypatch):
    monkeypatch.setitem(sys.modules, 'instaboostfast', None)  # import fails
    messages = []
    monkeypatch.setattr(instaboost, 'print_log', lambda msg, **kwargs: messages.append(msg))
    results = dict(img=np.zeros((8, 8, 3), np.uint8), instances=[instance(1.0)])
    transforms = [instaboost.OptionalInstaBoost(aug_ratio=1.0) for _ in range(2)]
    assert all(t(dict(results)) == results for t in transforms)
    assert len(messages) == 1 and 'pip install instaboostfast' in messages[0]


def test_instaboost_applies_mmdet_instaboost_with_its_package(instaboost, monkeypatch):
    def get_new_data(anns, img, cfg, background=None):
        moved = [dict(ann, bbox=[ann['bbox'][0] + 1] + ann['bbox'][1:]) for ann in anns]
        return moved, img + 1

    fake = types.SimpleNamespace(InstaBoostConfig=lambda *args: args, get_new_data=get_new_data)
    monkeypatch.setitem(sys.modules, 'instaboostfast', fake)
    out = instaboost.OptionalInstaBoost(aug_ratio=1.0)(
        dict(img=np.zeros((8, 8, 3), np.uint8), instances=[instance(1.0)]))
    assert out['img'].max() == 1 and out['instances'][0]['bbox'] == [2.0, 2.0, 6.0, 6.0]
