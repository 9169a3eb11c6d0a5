"""Every shipped Kinetics-400 config loads, builds its recognizer and carries the recipe."""
import glob
import os

import pytest
from mmengine.config import Config

from tests.helpers import ROOT, build_in_scope

VIDEO_CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'video_swinv2_*_k400.py')))
OFFICIAL = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'


def test_all_sizes_are_shipped():
    names = [os.path.basename(p) for p in VIDEO_CONFIGS]
    assert names == [f'video_swinv2_{s}_k400.py' for s in 'bglst']


@pytest.mark.parametrize('path', VIDEO_CONFIGS, ids=os.path.basename)
def test_config_builds_with_recipe(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmaction' and 'swinv2_mm' in cfg.custom_imports.imports
    giant = path.endswith('_g_k400.py')
    model = build_in_scope(cfg.model, 'mmaction', 'meta' if giant else 'cpu')
    assert type(model).__name__ == 'Recognizer3D'
    assert type(model.backbone).__name__ == 'VideoSwinTransformerV2'
    assert type(model.cls_head).__name__ == 'AmpI3DHead'
    assert cfg.model.cls_head.in_channels == model.backbone.num_features[-1]
    assert cfg.model.cls_head.num_classes == 400 and cfg.model.cls_head.average_clips == 'prob'
    assert model.backbone.patch_embed.patch_size == (2, 4, 4)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 1e-3
    assert opt.optimizer.weight_decay == 0.02
    assert opt.paramwise_cfg.backbone.lr_mult == 0.1
    assert opt.paramwise_cfg.cpb_mlp.decay_mult == 0.0
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'CosineAnnealingLR']
    assert cfg.train_cfg.max_epochs == 30
    data = cfg.train_dataloader.dataset
    assert data.type == 'VideoDataset' and data.data_root == 'data/kinetics400/'
    sample = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert sample['SampleFrames'].num_clips == 4 and 'ThreeCrop' in sample  # 4x3 views
    train = {t.type: t for t in data.pipeline}['SampleFrames']
    if giant:
        assert (train.clip_len, cfg.crop) == (8, 320)
        assert model.backbone.window_sizes[0] == (8, 20, 20) and model.backbone.stages[0].with_cp
        assert cfg.optim_wrapper.constructor == 'ZeroWhenDistributedConstructor'
        assert model.backbone.stages[0].blocks[0].attn.attn_chunk_size == 4
    else:
        assert (train.clip_len, train.frame_interval, cfg.crop) == (32, 2, 224)
        assert model.backbone.window_sizes[0] == (8, 7, 7)
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(OFFICIAL)


@pytest.mark.parametrize('zero_switch', [False, True])
def test_backbone_parameters_get_a_tenth_of_the_lr_and_no_decay_on_norms_and_cpb(zero_switch):
    """Also through the giant config's ZeRO-1 switch, which wraps mmaction's constructor."""
    from mmengine.optim import build_optim_wrapper
    from mmaction.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'video_swinv2_t_k400.py'))
    cfg.model.backbone.init_cfg = None
    if zero_switch:
        giant = Config.fromfile(os.path.join(ROOT, 'configs', 'video_swinv2_g_k400.py'))
        cfg.optim_wrapper.constructor = giant.optim_wrapper.constructor
        cfg.optim_wrapper.base_constructor = giant.optim_wrapper.base_constructor
    model = build_in_scope(cfg.model, 'mmaction')
    with DefaultScope.overwrite_default_scope('mmaction'):
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    group = {id(g['params'][0]): g for g in optim.optimizer.param_groups}
    named = dict(model.named_parameters())

    def lr_wd(name):
        g = group[id(named[name])]
        return g['lr'], g['weight_decay']
    assert lr_wd('backbone.stages.0.blocks.0.attn.qkv.weight') == pytest.approx((1e-4, 0.02))
    assert lr_wd('backbone.stages.0.blocks.0.attn.cpb_mlp.0.weight') == pytest.approx((1e-4, 0))
    assert lr_wd('backbone.stages.0.blocks.0.attn.logit_scale') == pytest.approx((1e-4, 0))
    assert lr_wd('backbone.stages.0.blocks.0.norm1.weight') == pytest.approx((1e-4, 0))
    assert lr_wd('backbone.stages.0.blocks.0.attn.q_bias') == pytest.approx((1e-4, 0))
    assert lr_wd('cls_head.fc_cls.weight') == pytest.approx((1e-3, 0.02))


def write_video(path, frames):
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 25,
                             (frames.shape[2], frames.shape[1]))
    for frame in frames:
        writer.write(frame[:, :, ::-1].copy())
    writer.release()


def test_kinetics_pipelines_read_videos_as_mmaction_keeps_them(tmp_path):
    """The K400 layout (videos + '<file> <label>' lists, decord) through the shipped pipelines."""
    import numpy as np
    from mmaction.registry import DATASETS
    from mmaction.utils import register_all_modules
    from mmengine.registry import DefaultScope
    from swinv2_mm.datasets.motion import render_clip
    register_all_modules(init_default_scope=False)
    root = tmp_path / 'kinetics400'
    (root / 'videos_val').mkdir(parents=True)
    frames, label = render_clip(np.random.default_rng(0), 40, 96)
    write_video(root / 'videos_val' / 'clip.mp4', frames)
    (root / 'kinetics400_val_list_videos.txt').write_text(f'clip.mp4 {label}\n')
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'video_swinv2_t_k400.py'))
    with DefaultScope.overwrite_default_scope('mmaction'):
        val = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=str(root)))
        test = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(root)))
    assert tuple(val[0]['inputs'].shape) == (1, 3, 32, 224, 224)
    item = test[0]
    assert tuple(item['inputs'].shape) == (12, 3, 32, 224, 224)  # 4 clips x 3 crops
    assert int(item['data_samples'].gt_label) == label
