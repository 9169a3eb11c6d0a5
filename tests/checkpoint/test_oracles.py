"""swinv2_mm equals independent SwinV2 implementations given the same (converted) weights."""
import pytest
import torch

from swinv2_mm import SwinTransformerV2, convert_state_dict, load_pretrained
from tests.helpers import max_abs_diff, randomize_

TOL = 1e-5


def ours_stage3(sd, x, **kwargs):
    """Our stage-3 features (final norm applied) as (B, H, W, C) after loading ``sd``."""
    model = SwinTransformerV2('tiny', window_size=8, drop_path_rate=0.0, out_indices=(3,), **kwargs)
    load_pretrained(model, sd)
    with torch.no_grad():
        return model.eval()(x)[0].permute(0, 2, 3, 1)


@pytest.mark.parametrize('fused', [True, False])
def test_timm_equivalence(fused):
    timm = pytest.importorskip('timm')
    peer = randomize_(timm.create_model('swinv2_tiny_window8_256', pretrained=False,
                                        num_classes=10), seed=1).eval()
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        expected = peer.forward_features(x)  # (B, 8, 8, 768), final norm applied
    assert max_abs_diff(ours_stage3(peer.state_dict(), x, fused_attn=fused), expected) < TOL


def test_hf_transformers_equivalence():
    transformers = pytest.importorskip('transformers')
    config = transformers.Swinv2Config(image_size=256, patch_size=4, embed_dim=96,
                                       depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                       window_size=8, num_labels=10)
    peer = randomize_(transformers.Swinv2ForImageClassification(config), seed=2).eval()
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        expected = peer.swinv2(pixel_values=x).last_hidden_state.view(2, 8, 8, 768)
    assert max_abs_diff(ours_stage3(peer.state_dict(), x), expected) < TOL


def test_mmpretrain_equivalence():
    mmpretrain_models = pytest.importorskip('mmpretrain.models')
    peer = randomize_(mmpretrain_models.SwinTransformerV2(
        arch='tiny', img_size=256, window_size=8, drop_path_rate=0.0), seed=3)
    peer.eval()  # mmpretrain's train() returns None, so no chaining
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        expected = peer(x)[-1].permute(0, 2, 3, 1)  # norm3 output, NCHW -> NHWC
    # whole-classifier layout: backbone under 'backbone.', a head beside it
    ckpt = {'state_dict': {**{f'backbone.{k}': v for k, v in peer.state_dict().items()},
                           'head.fc.weight': torch.zeros(10, 768)}}
    assert max_abs_diff(ours_stage3(ckpt, x), expected) < TOL


def test_mmpretrain_merge_order_matters():
    """Loading mmpretrain weights without the reduction permutation changes the output."""
    mmpretrain_models = pytest.importorskip('mmpretrain.models')
    peer = randomize_(mmpretrain_models.SwinTransformerV2(arch='tiny', img_size=256,
                                                          drop_path_rate=0.0), seed=4)
    sd = convert_state_dict(peer.state_dict())
    raw = peer.state_dict()['stages.1.downsample.reduction.weight']
    assert sd['stages.0.downsample.reduction.weight'].shape == raw.shape
    assert not torch.equal(sd['stages.0.downsample.reduction.weight'], raw)
