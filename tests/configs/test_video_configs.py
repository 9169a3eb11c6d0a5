"""Every shipped Kinetics-400 config loads, builds its recognizer and carries the recipe."""
import glob
import importlib
import os

import pytest
import torch
from mmengine.config import Config

from swinv2_mm.registry import MODELS  # importing registers the backbones
from tests.helpers import ROOT, build_in_scope

VIDEO_CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'video_swinv2_*_k400.py')))
OFFICIAL = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'


GIANT_STAGES = ['video_swinv2_g_k400_256.py', 'video_swinv2_g_k400.py',
                'video_swinv2_g_k400_384_test.py']
# mmaction2's Video Swin K400 recipes per size: weight decay and drop path
MMACTION_RECIPE = {'t': (0.02, 0.1), 's': (0.02, 0.2), 'b': (0.05, 0.3), 'l': (0.05, 0.4)}


def test_all_sizes_are_shipped():
    names = [os.path.basename(p) for p in VIDEO_CONFIGS]
    assert names == [f'video_swinv2_{s}_k400.py' for s in 'bglst']
    assert all(os.path.exists(os.path.join(ROOT, 'configs', n)) for n in GIANT_STAGES)


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
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert opt.paramwise_cfg.cpb_mlp.decay_mult == 0.0
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'CosineAnnealingLR']
    data = cfg.train_dataloader.dataset
    assert data.type == 'VideoDataset' and data.data_root == 'data/kinetics400/'
    train = {t.type: t for t in data.pipeline}['SampleFrames']
    if giant:  # stage 2 of the paper's two (the stages are checked below)
        assert (train.clip_len, cfg.crop) == (8, 320)
        assert model.backbone.patch_embed.patch_size == (1, 4, 4)
        assert model.backbone.window_sizes[0] == (8, 20, 20) and model.backbone.stages[0].with_cp
        assert cfg.optim_wrapper.constructor == 'ZeroWhenDistributedConstructor'
        assert model.backbone.stages[0].blocks[0].attn.attn_chunk_size == 4
        return
    size = os.path.basename(path).split('_')[2]
    assert (opt.optimizer.weight_decay, cfg.model.backbone.drop_path_rate) == MMACTION_RECIPE[size]
    assert opt.optimizer.lr == 1e-3 and opt.paramwise_cfg.backbone.lr_mult == 0.1
    assert cfg.train_cfg.max_epochs == 30
    assert model.backbone.patch_embed.patch_size == (2, 4, 4)
    sample = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert sample['SampleFrames'].num_clips == 4 and 'ThreeCrop' in sample  # 4x3 views
    assert (train.clip_len, train.frame_interval, cfg.crop) == (32, 2, 224)
    assert model.backbone.window_sizes[0] == (8, 7, 7)
    assert cfg.model.backbone.init_cfg.checkpoint.startswith(OFFICIAL)


def test_giant_fine_tunes_in_the_papers_two_stages_and_tests_at_384():
    """256 px / (8, 16, 16) for 20 epochs, then 320 px / (8, 20, 20) for 5 from stage 1's
    checkpoint, tested at 384 px / (8, 24, 24) with 4 clips x 5 crops; the log-CPB keeps
    stage 1's normalisation throughout."""
    one, two, test = (Config.fromfile(os.path.join(ROOT, 'configs', n)) for n in GIANT_STAGES)
    stage1_windows = [(8, 16, 16)] * 3 + [(8, 8, 8)]  # stage 3's 8x8 map at 256 px
    for cfg, crop, window, lr, batch, epochs, warmup in (
            (one, 256, (8, 16, 16), 3.6e-4, 80, 20, 2.5), (two, 320, (8, 20, 20), 5e-5, 64, 5, 1)):
        assert (cfg.crop, cfg.model.backbone.window_size) == (crop, window)
        assert cfg.model.backbone.patch_size == (1, 4, 4)
        opt = cfg.optim_wrapper
        assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (lr, 0.1)
        assert opt.paramwise_cfg.backbone.lr_mult == 1.0 and opt.paramwise_cfg.norm.decay_mult == 0
        assert cfg.auto_scale_lr.base_batch_size == batch == 16 * cfg.train_dataloader.batch_size
        assert cfg.train_cfg.max_epochs == epochs == cfg.param_scheduler[1].end
        assert cfg.param_scheduler[0].end == warmup
        train = cfg.train_dataloader.dataset.pipeline
        val = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
        assert [t.scale for t in train if t.type == 'Resize'][-1] == (crop, crop)
        assert val['CenterCrop'].crop_size == crop
        assert train[1].clip_len == val['SampleFrames'].clip_len == 8
    with torch.device('meta'):
        built = [MODELS.build(dict(c.model.backbone, init_cfg=None)) for c in (one, two, test)]
    assert built[0].attention_windows((8, 256, 256)) == stage1_windows
    assert built[0].pretrained_window_sizes == [(0, 0, 0)] * 4
    assert built[1].pretrained_window_sizes == stage1_windows
    assert built[2].pretrained_window_sizes == stage1_windows
    assert two.load_from == 'work_dirs/video_swinv2_g_k400_256/epoch_20.pth'
    assert test.model.backbone.window_size == (8, 24, 24)
    steps = {t.type: t for t in test.test_dataloader.dataset.pipeline}
    assert steps['SampleFrames'].num_clips == 4 and steps['FiveCrop'].crop_size == 384
    assert 'swinv2_mm.datasets.video_transforms' in test.custom_imports.imports


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
    giant = Config.fromfile(os.path.join(ROOT, 'configs', 'video_swinv2_g_k400_384_test.py'))
    importlib.import_module('swinv2_mm.datasets.video_transforms')  # its custom_imports
    with DefaultScope.overwrite_default_scope('mmaction'):
        test = DATASETS.build(dict(giant.test_dataloader.dataset, data_root=str(root)))
    assert tuple(test[0]['inputs'].shape) == (20, 3, 8, 384, 384)  # 4 clips x 5 crops
