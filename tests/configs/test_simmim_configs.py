"""The SimMIM configs: pre-training follows the official SwinV2 recipe; the fine-tuning ones
start from the zoo checkpoint with layer-wise lr decay, groups built in each toolbox's scope."""
import glob
import importlib
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from swinv2_mm.simmim import NormalizedTargetL1Loss, SimMIMSwinTransformerV2
from tests.helpers import ROOT, build_in_scope

PRETRAIN = sorted(glob.glob(os.path.join(ROOT, 'configs', 'simmim_swinv2_*_in1k_192.py')))
FINETUNE = sorted(glob.glob(os.path.join(ROOT, 'configs', '*_swinv2_b_*_simmim.py')))
ZOO = 'https://msravcghub.blob.core.windows.net/simmim-release/swinv2/pretrain/'


def test_sizes_are_shipped():
    assert [os.path.basename(p) for p in PRETRAIN] == [
        f'simmim_swinv2_{s}_in1k_192.py' for s in 'bls']
    assert [os.path.basename(p) for p in FINETUNE] == [
        'cascade_swinv2_b_coco_simmim.py', 'upernet_swinv2_b_ade20k_simmim.py',
        'video_swinv2_b_k400_simmim.py']


@pytest.mark.parametrize('path', PRETRAIN, ids=os.path.basename)
def test_pretraining_config_follows_the_official_recipe(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    model = build_in_scope(cfg.model, 'mmpretrain', 'meta')
    assert type(model).__name__ == 'SimMIM'
    assert isinstance(model.backbone, SimMIMSwinTransformerV2)
    assert model.backbone.window_sizes == [(12, 12)] * 4  # stage 3 runs its 6x6 map at 192 px
    assert model.neck.decoder[0].in_channels == model.backbone.num_features[-1]
    assert isinstance(model.head.loss_module, NormalizedTargetL1Loss)
    assert model.head.loss_module.window == 47 and model.head.patch_size == 4
    mask = next(t for t in cfg.train_dataloader.dataset.pipeline
                if t.type == 'SimMIMMaskGenerator')
    assert (mask.input_size, mask.mask_patch_size, mask.mask_ratio) == (192, 32, 0.6)
    opt = cfg.optim_wrapper
    assert opt.optimizer.lr * 512 / cfg.auto_scale_lr.base_batch_size == pytest.approx(1e-4)
    assert cfg.auto_scale_lr.enable
    assert (opt.optimizer.weight_decay, opt.clip_grad.max_norm) == (0.05, 5.0)
    assert opt.paramwise_cfg.custom_keys.mask_token.decay_mult == 0.0
    warmup, steps = cfg.param_scheduler
    assert warmup.start_factor * 1e-4 == pytest.approx(5e-7) and warmup.end == 10
    assert steps.milestones == [700] and steps.gamma == 0.1
    assert cfg.train_cfg.max_epochs == 800 and cfg.model.backbone.drop_path_rate == 0.1


@pytest.mark.parametrize('path', FINETUNE, ids=os.path.basename)
def test_finetuning_config_starts_from_the_zoo_with_layer_decay(path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    assert backbone.init_cfg.checkpoint.startswith(ZOO + 'swinv2_base_22k_500k.pth')
    assert backbone.pretrained_window_sizes == [12, 12, 12, 6]
    opt = cfg.optim_wrapper
    assert opt.constructor == 'SwinV2LayerDecayConstructor'
    rate = opt.paramwise_cfg.layer_decay_rate
    assert rate == (0.95 if 'ade20k' in path else 0.9)
    scope = cfg.default_scope
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    cfg.model.backbone.init_cfg = None
    model = build_in_scope(cfg.model, scope, 'meta')
    with DefaultScope.overwrite_default_scope(scope):  # as the runner builds it
        wrapper = build_optim_wrapper(model, opt.to_dict())
    groups = {id(g['params'][0]): g for g in wrapper.optimizer.param_groups}
    names = dict(model.named_parameters())
    lr, wd = opt.optimizer.lr, opt.optimizer.weight_decay
    backbone_mult = 0.1 if scope == 'mmaction' else 1.0  # mmaction2's rule, kept
    embed = groups[id(names['backbone.patch_embed.proj.weight'])]
    assert embed['lr'] == pytest.approx(lr * backbone_mult * rate ** 25)  # 24 blocks + 2 layers
    assert embed['weight_decay'] == pytest.approx(wd)
    cpb = groups[id(names['backbone.stages.2.blocks.5.attn.cpb_mlp.0.weight'])]
    assert cpb['lr'] == pytest.approx(lr * backbone_mult * rate ** (25 - 10))
    assert cpb['weight_decay'] == 0.0
    assert torch.device('meta') == embed['params'][0].device
