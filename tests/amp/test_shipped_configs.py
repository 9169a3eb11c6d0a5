"""The shipped configs' models (one block per stage) train a step and predict under bfloat16
autocast on a CPU: no operator the configs reach lacks a kernel for the low-precision dtype
outside a float32 island. Per task the tiny config stands for all sizes, whose heads and
operators are the same; what only the giants use (activation checkpointing, sequential
attention, the extra norms) runs in a small backbone here too. (Run once by hand with the
giants' full widths: all three passed.)"""
import glob
import os

import pytest
import torch
from mmengine.config import Config

from swinv2_mm.models.options import resolve_arch
from tests.helpers import ROOT, demo_model_and_batches

SHIPPED = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))
TESTED = [p for p in SHIPPED if '_swinv2_t_' in p]
DEMO_OF_SCOPE = {'mmdet': 'cascade_swinv2_shapes_demo.py', 'mmseg': 'upernet_swinv2_shapes_demo.py',
                 'mmaction': 'video_swinv2_shapes_demo.py'}


def shallow_model_cfg(path: str):
    """The config's model with one block per stage, fewer proposals, on the demo data's input
    size, built without its pretrained weights."""
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    arch = resolve_arch(backbone.arch)
    arch['depths'] = [1] * len(arch['depths'])
    backbone.arch, backbone.init_cfg = arch, None
    if cfg.default_scope == 'mmseg':  # the demo data's crop
        demo = Config.fromfile(os.path.join(ROOT, 'configs', 'demo', DEMO_OF_SCOPE['mmseg']))
        cfg.model.data_preprocessor.size = demo.model.data_preprocessor.size
    if cfg.default_scope == 'mmdet':  # fewer proposals and sampled RoIs, the same operators
        cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
        for stage in cfg.model.train_cfg.rcnn:
            stage.sampler.num = 64
    return cfg.default_scope, cfg.model


def test_each_task_has_its_tiny_config_tested():
    assert len(SHIPPED) == 26 and len(TESTED) == 3


@pytest.mark.parametrize('path', TESTED, ids=os.path.basename)
def test_train_step_and_predict_under_bf16_autocast(path, tmp_path):
    scope, model_cfg = shallow_model_cfg(path)
    n = 2  # UperNet's pooling module needs two images for its batch norm
    model, train, val = demo_model_and_batches(DEMO_OF_SCOPE[scope], tmp_path, n=n,
                                               model_cfg=model_cfg)
    model.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss, _ = model.parse_losses(model(**model.data_preprocessor(train, True), mode='loss'))
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    one = {key: value[:1] for key, value in val.items()}  # mmseg tests one size per batch
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert len(model(**model.data_preprocessor(one, False), mode='predict')) == 1


@pytest.mark.parametrize('video', [False, True])
def test_giant_features_under_bf16_autocast(video):
    from swinv2_mm.models import SwinTransformerV2, VideoSwinTransformerV2
    arch = dict(embed_dims=32, depths=(2, 2), num_heads=(2, 4), extra_norm_every_n_blocks=1)
    if video:
        model = VideoSwinTransformerV2(arch=arch, window_size=(2, 4, 4), with_cp=True,
                                       attn_chunk_size=2, out_indices=(0, 1))
        x = torch.randn(1, 3, 4, 32, 32)
    else:
        model = SwinTransformerV2(arch=arch, window_size=4, with_cp=True, attn_chunk_size=2,
                                  out_indices=(0, 1))
        x = torch.randn(1, 3, 32, 32)
    model.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
    sum(out.float().square().mean() for out in outs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
