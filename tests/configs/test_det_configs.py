"""Every shipped detection config loads, builds its model and carries the recipe."""
import glob
import os

import pytest
from mmengine.config import Config

from tests.helpers import ROOT, build_in_scope

DET_CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'cascade_swinv2_*_coco.py')))
OFFICIAL = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'


def build_detector(cfg, device='cpu'):
    return build_in_scope(cfg.model, 'mmdet', device)


def test_all_sizes_are_shipped():
    names = [os.path.basename(p) for p in DET_CONFIGS]
    assert names == [f'cascade_swinv2_{s}_coco.py' for s in 'bglst']


@pytest.mark.parametrize('path', DET_CONFIGS, ids=os.path.basename)
def test_config_builds_with_recipe(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet' and 'swinv2_mm' in cfg.custom_imports.imports
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    giant = path.endswith('_g_coco.py')
    model = build_detector(cfg, 'meta' if giant else 'cpu')
    backbone = model.backbone
    assert type(backbone).__name__ == 'SwinTransformerV2'
    assert cfg.model.neck.in_channels == backbone.num_features
    assert type(model).__name__ == 'CascadeRCNN' and len(model.roi_head.bbox_head) == 3
    heads = cfg.model.roi_head.bbox_head
    assert all(h.type == 'AmpConvFCBBoxHead' and h.num_shared_convs == 4 and h.num_shared_fcs == 1
               and h.loss_bbox.type == 'GIoULoss' and h.reg_decoded_bbox for h in heads)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 1e-4
    assert opt.optimizer.weight_decay == 0.05
    assert cfg.train_cfg.max_epochs == 36
    assert [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0].milestones == [27, 33]
    assert any(t.type == 'RandomChoice' for t in cfg.train_pipeline)
    assert cfg.auto_scale_lr.base_batch_size == 16
    if giant:
        assert backbone.window_sizes[0] == (32, 32) and backbone.stages[0].with_cp
        assert backbone.stages[0].blocks[0].attn.attn_chunk_size == 16
        assert opt.constructor == 'ZeroWhenDistributedConstructor'
        assert 1536 in [s[0] for s in cfg.train_scales]
    else:
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(OFFICIAL)
        assert len(cfg.model.backbone.pretrained_window_sizes) == 4
        assert 'constructor' not in opt


def test_no_weight_decay_on_norms_biases_cpb_and_logit_scale():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'cascade_swinv2_t_coco.py'))
    model = build_detector(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    block = 'backbone.stages.2.blocks.1.'
    for suffix in ('attn.cpb_mlp.0.weight', 'attn.cpb_mlp.2.weight', 'attn.logit_scale',
                   'attn.q_bias', 'attn.v_bias', 'norm1.weight', 'attn.proj.bias'):
        assert decay[block + suffix] == 0.0, suffix
    assert decay[block + 'attn.qkv.weight'] == 0.05
    assert decay['backbone.patch_embed.proj.weight'] == 0.05
