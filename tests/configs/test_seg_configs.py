"""Every shipped segmentation config loads, builds its model and carries the recipe."""
import glob
import os

import pytest
from mmengine.config import Config

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
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 6e-5
    assert opt.optimizer.weight_decay == 0.01
    assert opt.paramwise_cfg.custom_keys.cpb_mlp.decay_mult == 0.0
    assert opt.paramwise_cfg.custom_keys.logit_scale.decay_mult == 0.0
    assert cfg.train_cfg.max_iters == 160000
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    assert cfg.param_scheduler[0].end == 1500
    if giant:
        assert cfg.crop_size == (640, 640) and model.backbone.window_sizes[0] == (40, 40)
        assert model.backbone.stages[0].with_cp
        assert model.backbone.stages[0].blocks[0].attn.attn_chunk_size == 16
        assert opt.constructor == 'ZeroWhenDistributedConstructor'
    else:
        assert 'constructor' not in opt
        assert cfg.crop_size == (512, 512)
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(OFFICIAL)
