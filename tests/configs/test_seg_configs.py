"""Every shipped segmentation config loads, builds its model and carries the recipe."""
import glob
import os

import pytest
import torch
from mmengine.config import Config

from swinv2_mm.registry import MODELS  # importing registers the backbones
from tests.helpers import ROOT, build_in_scope

SEG_CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'upernet_swinv2_*_ade20k.py')))
OFFICIAL = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'


def build_segmentor(cfg, device='cpu'):
    return build_in_scope(cfg.model, 'mmseg', device)


def test_all_sizes_are_shipped():
    names = [os.path.basename(p) for p in SEG_CONFIGS]
    assert names == [f'upernet_swinv2_{s}_ade20k.py' for s in 'bglst']


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=os.path.basename)
def test_config_builds_with_recipe(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg' and 'swinv2_mm' in cfg.custom_imports.imports
    assert cfg.train_dataloader.dataset.data_root == 'data/ade/ADEChallengeData2016'
    giant = path.endswith('_g_ade20k.py')
    model = build_segmentor(cfg, 'meta' if giant else 'cpu')
    assert type(model.backbone).__name__ == 'SwinTransformerV2'
    assert type(model.decode_head).__name__ == 'UPerHead'
    assert cfg.model.decode_head.in_channels == model.backbone.num_features
    aux = cfg.model.auxiliary_head
    assert aux.in_index == 2 and aux.in_channels == model.backbone.num_features[2]
    assert aux.loss_decode.loss_weight == 0.4
    opt = cfg.optim_wrapper
    # the 512 px recipe; the paper's G setting: lr 4e-5, wd 0.05, 80k iterations at batch 32,
    # drop path 0.4
    lr, wd, iters, batch = (4e-5, 0.05, 80000, 32) if giant else (6e-5, 0.01, 160000, 16)
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == lr
    assert opt.optimizer.weight_decay == wd
    assert opt.paramwise_cfg.custom_keys.cpb_mlp.decay_mult == 0.0
    assert opt.paramwise_cfg.custom_keys.logit_scale.decay_mult == 0.0
    assert cfg.train_cfg.max_iters == iters == cfg.param_scheduler[1].end
    assert cfg.auto_scale_lr.base_batch_size == batch
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    assert cfg.param_scheduler[0].end == 1500
    if giant:
        assert cfg.crop_size == (640, 640) and model.backbone.window_sizes[0] == (40, 40)
        assert cfg.model.backbone.drop_path_rate == 0.4
        assert model.backbone.stages[0].with_cp
        assert model.backbone.stages[0].blocks[0].attn.attn_chunk_size == 16
        assert opt.constructor == 'ZeroWhenDistributedConstructor'
    else:
        assert 'constructor' not in opt
        assert cfg.crop_size == (512, 512)
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(OFFICIAL)


def test_giant_test_setting_is_896_px_at_window_56_normalised_as_trained():
    """The paper's +0.2 mIoU: test at 896 px / window 56 with the log-CPB normalised by the
    windows training ran at (640 px / window 40, stage 3 shrunk to its 20x20 map)."""
    train = Config.fromfile(os.path.join(ROOT, 'configs', 'upernet_swinv2_g_ade20k.py'))
    test = Config.fromfile(os.path.join(ROOT, 'configs', 'upernet_swinv2_g_ade20k_896_test.py'))
    with torch.device('meta'):
        trained = MODELS.build(dict(train.model.backbone, init_cfg=None))
        tested = MODELS.build(dict(test.model.backbone, init_cfg=None))
    assert tested.pretrained_window_sizes == trained.attention_windows((640, 640))
    assert tested.window_sizes == [(56, 56)] * 4
    resize = [t for t in test.test_dataloader.dataset.pipeline if t.type == 'Resize'][0]
    assert min(resize.scale) == 896
