"""The window every stage of every shipped config really attends in, at the config's input
size: a window larger than a stage's map shrinks to it, so a config can promise more than
its model computes (the giant video config once ran 4-frame windows it said were 8)."""
import glob
import os

import mmcv
import pytest
import torch
from mmengine.config import Config

from swinv2_mm.models import SwinTransformerV2, VideoSwinTransformerV2
from swinv2_mm.models.blocks import SwinV2Stage
from swinv2_mm.registry import MODELS  # importing registers the backbones
from tests.helpers import ROOT

SHIPPED = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py'))
                 + glob.glob(os.path.join(ROOT, 'configs', 'demo', '*.py')))

# config: (input size the windows are counted at, tokens per window in stages 0..3), by hand
# from the config's numbers. Detection: a 640 x 480 COCO image through the test resize
# (demos: their square images); segmentation: the crop (test configs: the test resize's short
# side, as a square); clips: frames x crop x crop.
EXPECTED = {
    # 800 x 1067: maps 200x267, 100x134, 50x67, 25x34; window 16
    'cascade_swinv2_t_coco.py': ((800, 1067), [256, 256, 256, 256]),
    'cascade_swinv2_s_coco.py': ((800, 1067), [256, 256, 256, 256]),
    'cascade_swinv2_b_coco.py': ((800, 1067), [256, 256, 256, 256]),
    'cascade_swinv2_b_coco_simmim.py': ((800, 1067), [256, 256, 256, 256]),
    'cascade_swinv2_l_coco.py': ((800, 1067), [256, 256, 256, 256]),
    'cascade_swinv2_g_coco.py': ((1536, 2048), [1024] * 4),  # 384x512 ... 48x64, window 32
    # 825 x 1100: stage 3's 26x35 map is shorter than 32: its windows are 26 x 32
    'htc_swinv2_l_coco.py': ((825, 1100), [1024, 1024, 1024, 832]),
    'htc_swinv2_g_coco.py': ((825, 1100), [1024, 1024, 1024, 832]),
    'simmim_swinv2_s_in1k_192.py': ((192, 192), [144, 144, 144, 36]),  # 48/24/12/6, w12
    'simmim_swinv2_b_in1k_192.py': ((192, 192), [144, 144, 144, 36]),
    'simmim_swinv2_l_in1k_192.py': ((192, 192), [144, 144, 144, 36]),
    'upernet_swinv2_t_ade20k.py': ((512, 512), [256] * 4),  # 128/64/32/16, w16
    'upernet_swinv2_s_ade20k.py': ((512, 512), [256] * 4),
    'upernet_swinv2_b_ade20k.py': ((512, 512), [256] * 4),
    'upernet_swinv2_b_ade20k_simmim.py': ((512, 512), [256] * 4),
    'upernet_swinv2_l_ade20k.py': ((512, 512), [256] * 4),
    'upernet_swinv2_g_ade20k.py': ((640, 640), [1600, 1600, 1600, 400]),  # 160/80/40/20, w40
    'upernet_swinv2_g_ade20k_896_test.py': ((896, 896), [3136, 3136, 3136, 784]),  # w56
    # 32 frames / patch 2 = 16 temporal tokens; 56/28/14/7 at 224; (8, 7, 7) windows
    'video_swinv2_t_k400.py': ((32, 224, 224), [392] * 4),
    'video_swinv2_s_k400.py': ((32, 224, 224), [392] * 4),
    'video_swinv2_b_k400.py': ((32, 224, 224), [392] * 4),
    'video_swinv2_b_k400_simmim.py': ((32, 224, 224), [392] * 4),
    'video_swinv2_l_k400.py': ((32, 224, 224), [392] * 4),
    # 8 frames / patch 1 = 8 temporal tokens: the temporal window is all 8
    'video_swinv2_g_k400_256.py': ((8, 256, 256), [2048, 2048, 2048, 512]),  # 64/32/16/8
    'video_swinv2_g_k400.py': ((8, 320, 320), [3200, 3200, 3200, 800]),  # 80/40/20/10
    'video_swinv2_g_k400_384_test.py': ((8, 384, 384), [4608, 4608, 4608, 1152]),  # 96/../12
    'cascade_swinv2_shapes_demo.py': ((192, 192), [64, 64, 64, 36]),  # 48/24/12/6, w8
    'htc_swinv2_shapes_demo.py': ((192, 192), [64, 64, 64, 36]),
    'upernet_swinv2_shapes_demo.py': ((192, 192), [64, 64, 64, 36]),
    'upernet_swinv2_shapes_simmim_ft.py': ((192, 192), [64, 64, 64, 36]),
    'simmim_swinv2_shapes_demo.py': ((128, 128), [64, 64, 64, 16]),  # 32/16/8/4, w8
    'video_swinv2_shapes_demo.py': ((8, 64, 64), [256, 256, 64, 16]),  # 4x16/8/4/2, (4, 8, 8)
}


def configured_input_size(cfg):
    """The input size a config trains or tests at, read from its own numbers (see EXPECTED)."""
    test = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    frames = [t.clip_len for t in test if t.type == 'SampleFrames']
    if frames:
        return (frames[0],) + (cfg.get('image_size') or cfg.crop,) * 2
    if cfg.default_scope == 'mmpretrain':
        return (cfg.image_size,) * 2
    scale = [t.scale for t in test if t.type == 'Resize'][0]
    if cfg.default_scope == 'mmdet' and cfg.test_dataloader.dataset.type != 'ShapesCocoDataset':
        width, height = mmcv.rescale_size((640, 480), scale)  # as mmdet's Resize(keep_ratio)
        return height, width
    return (min(scale),) * 2


def backbone_cfg(cfg):
    backbone = dict(cfg.model.backbone, init_cfg=None)
    if backbone['arch'] == 'auto':  # reads the pre-training demo's checkpoint: its arch
        demo = os.path.join(ROOT, 'configs', 'demo', 'simmim_swinv2_shapes_demo.py')
        backbone['arch'] = Config.fromfile(demo).model.backbone.arch
    return backbone


def test_every_shipped_config_is_listed():
    assert sorted(os.path.basename(p) for p in SHIPPED) == sorted(EXPECTED)


@pytest.mark.parametrize('path', SHIPPED, ids=os.path.basename)
def test_tokens_per_window_at_the_configured_input_size(path):
    cfg = Config.fromfile(path)
    size, tokens = EXPECTED[os.path.basename(path)]
    assert configured_input_size(cfg) == size
    with torch.device('meta'):
        backbone = MODELS.build(backbone_cfg(cfg))
    windows = backbone.attention_windows(size)
    assert [int(torch.tensor(w).prod()) for w in windows] == tokens, windows


TINY = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 1, 1))


@pytest.mark.parametrize('build, size', [
    (lambda: SwinTransformerV2(TINY, window_size=[12, 6, 5, 4]), (1, 3, 100, 72)),
    (lambda: VideoSwinTransformerV2(TINY, patch_size=(1, 4, 4), window_size=(8, 6, 6)),
     (1, 3, 5, 52, 40)),
], ids=['2d', 'video'])
def test_attention_windows_are_those_the_forward_pass_uses(build, size, monkeypatch):
    model, used = build().eval(), []
    plans = SwinV2Stage.window_plans

    def record(stage, map_size, device):
        regular, shifted = plans(stage, map_size, device)
        used.append(regular.window_size)
        return regular, shifted
    monkeypatch.setattr(SwinV2Stage, 'window_plans', record)
    with torch.no_grad():
        model(torch.randn(size))
    assert used == model.attention_windows(size[2:])
    assert len(set(used)) > 1  # some stage shrank its window
