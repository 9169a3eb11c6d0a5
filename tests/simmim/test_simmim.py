"""SimMIM pieces: the mask token, the normalised target and loss, training on a fixed batch,
and the pre-trained weights in the downstream backbones."""
import importlib
import os

import pytest
import torch
from mmengine.config import Config

from swinv2_mm import SwinTransformerV2, VideoSwinTransformerV2, load_pretrained
from swinv2_mm.simmim import (NormalizedTargetL1Loss, SimMIMSwinTransformerV2,
                              local_normalized_target)
from swinv2_mm.simmim.backbone import replace_masked_tokens
from tests.helpers import ROOT, build_in_scope, randomize_

ARCH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
DEMO = os.path.join(ROOT, 'configs', 'demo', 'simmim_swinv2_shapes_demo.py')


def masked_backbone(**kwargs) -> SimMIMSwinTransformerV2:
    return randomize_(SimMIMSwinTransformerV2(ARCH, window_size=4, drop_path_rate=0.0,
                                              **kwargs), seed=3)


def random_mask(batch: int, grid: int, seed: int) -> torch.Tensor:
    return (torch.rand(batch, grid, grid, generator=torch.Generator().manual_seed(seed))
            < 0.6).long()


def test_mask_token_replaces_exactly_the_masked_patches():
    model = masked_backbone()
    x, mask = torch.randn(2, 3, 64, 64), random_mask(2, 16, seed=1)
    tokens = model.patch_embed(x)  # (2, 16, 16, 32)
    replaced = replace_masked_tokens(tokens, mask, model.mask_token)
    masked = mask.bool()
    assert masked.any() and (~masked).any()
    token = model.mask_token.reshape(1, -1).expand(int(masked.sum()), -1)
    assert torch.equal(replaced[masked], token)
    assert torch.equal(replaced[~masked], tokens[~masked])


def test_masked_forward_is_the_backbone_on_replaced_tokens():
    model = masked_backbone().eval()
    x, mask = torch.randn(2, 3, 64, 64), random_mask(2, 16, seed=2)
    out, = model(x, mask)
    expected = model.encode_tokens(replace_masked_tokens(model.patch_embed(x), mask,
                                                         model.mask_token))[0]
    assert torch.equal(out, expected.permute(0, 3, 1, 2))
    # an empty mask changes nothing; the mask does change the output
    assert torch.equal(model(x, torch.zeros_like(mask))[0], model(x)[0])
    assert not torch.allclose(out, model(x)[0])
    # the mask token gets a gradient only through masked patches
    model.train()
    model(x, torch.zeros_like(mask))[0].sum().backward()
    assert model.mask_token.grad is None or not model.mask_token.grad.any()
    model(x, mask)[0].sum().backward()
    assert model.mask_token.grad.abs().sum() > 0


def test_mask_of_the_wrong_grid_names_the_fix():
    model = masked_backbone()
    with pytest.raises(ValueError, match='mask: expected one value per patch.*model_patch_size'):
        model(torch.randn(1, 3, 64, 64), torch.zeros(1, 8, 8))


def hand_normalised(image: torch.Tensor, window: int, c: int, y: int, x: int) -> float:
    """One pixel of the normalised target, from its clipped neighbourhood in float64."""
    r = window // 2
    patch = image[c, max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].double()
    std = (patch.var(unbiased=True) + 1e-6).sqrt()
    return float((image[c, y, x].double() - patch.mean()) / std)


@pytest.mark.parametrize('window', [5, 47])
def test_normalised_target_equals_a_hand_computation(window):
    torch.manual_seed(window)
    images = torch.randn(2, 3, 60, 70) * 2.0 + 0.5
    target = local_normalized_target(images, window)
    for b, c, y, x in [(0, 0, 0, 0), (0, 1, 30, 35), (1, 2, 59, 69), (1, 0, 3, 66),
                       (0, 2, 45, 2)]:
        assert target[b, c, y, x].item() == pytest.approx(
            hand_normalised(images[b], window, c, y, x), abs=2e-5)


def test_loss_is_the_masked_mean_l1_over_channels():
    torch.manual_seed(0)
    pred, images = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    mask = random_mask(2, 8, seed=4).repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None]
    target = local_normalized_target(images, 47)
    expected = sum((pred[b, :, mask[b, 0].bool()] - target[b, :, mask[b, 0].bool()]).abs().sum()
                   for b in range(2)) / mask.sum() / 3
    assert NormalizedTargetL1Loss(47)(pred, images, mask).item() == pytest.approx(
        expected.item(), rel=1e-5)
    raw = NormalizedTargetL1Loss(window=0)(pred, images, mask)
    assert raw.item() == pytest.approx(((pred - images).abs() * mask).sum().item()
                                       / mask.sum().item() / 3, rel=1e-5)
    with pytest.raises(ValueError, match='window: expected an odd'):
        NormalizedTargetL1Loss(window=48)


@pytest.fixture(scope='module')
def simmim_model():
    """The demo's mmpretrain SimMIM model (small SwinV2, window 8, 128 px)."""
    importlib.import_module('swinv2_mm.datasets.shapes_images')  # the config's dataset
    cfg = Config.fromfile(DEMO)
    torch.manual_seed(0)
    return build_in_scope(cfg.model, 'mmpretrain')


def test_simmim_steps_on_a_fixed_batch_lower_the_loss(simmim_model):
    from mmpretrain.structures import DataSample
    model = simmim_model.train()
    torch.manual_seed(1)
    images = torch.rand(4, 3, 64, 64) * 255
    samples = []
    for i in range(4):
        sample = DataSample()
        sample.set_mask(random_mask(1, 4, seed=10 + i)[0].repeat_interleave(4, 0)
                        .repeat_interleave(4, 1))  # 16 px mask patches on the 16x16 grid
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = model(data['inputs'], data['data_samples'], mode='loss')['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert isinstance(model.backbone, SimMIMSwinTransformerV2)
    assert isinstance(model.head.loss_module, NormalizedTargetL1Loss)
    assert losses[-1] < 0.8 * losses[0], losses


def simmim_checkpoint(simmim_model, path) -> dict:
    """The SimMIM model saved as mmengine saves it; returns its backbone tensors."""
    randomize_(simmim_model, seed=5)
    torch.save({'state_dict': simmim_model.state_dict(), 'meta': {}}, path)
    return {k[len('backbone.'):]: v for k, v in simmim_model.state_dict().items()
            if k.startswith('backbone.')}


def test_pretrained_backbone_loads_into_the_detection_backbone(simmim_model, tmp_path):
    path = str(tmp_path / 'simmim.pth')
    pretrained = simmim_checkpoint(simmim_model, path)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py'))
    backbone_cfg = dict(cfg.model.backbone, arch='auto', pretrained_window_sizes=[8, 8, 8, 4],
                        init_cfg=dict(type='Pretrained', checkpoint=path))
    detector = build_in_scope(dict(cfg.model, backbone=backbone_cfg), 'mmdet')
    detector.init_weights()
    loaded = detector.backbone.state_dict()
    for key, value in loaded.items():
        if key.startswith(('norm0.', 'norm1.', 'norm2.')):
            continue  # the detector's extra output norms: SimMIM has only the last stage's
        assert torch.equal(value, pretrained[key]), key
    assert set(pretrained) - set(loaded) == {'mask_token'}


def test_pretrained_backbone_inflates_into_the_video_backbone(simmim_model, tmp_path):
    path = str(tmp_path / 'simmim.pth')
    pretrained = simmim_checkpoint(simmim_model, path)
    video = VideoSwinTransformerV2(ARCH, window_size=(2, 4, 4), out_indices=(3,))
    report = load_pretrained(video, path)
    assert report['missing'] == [] and report['unexpected'] == []
    assert torch.equal(video.stages[2].blocks[1].attn.qkv.weight,
                       pretrained['stages.2.blocks.1.attn.qkv.weight'])
    plain = SwinTransformerV2(ARCH, out_indices=(3,))
    assert load_pretrained(plain, path)['missing'] == []


def test_loss_is_float32_under_bf16_autocast(simmim_model):
    """--amp on a bf16 device: the target and the loss stay float32 (a float32 island)."""
    from mmpretrain.structures import DataSample
    sample = DataSample()
    sample.set_mask(torch.ones(16, 16, dtype=torch.long))
    data = simmim_model.data_preprocessor(
        dict(inputs=torch.rand(1, 3, 64, 64) * 255, data_samples=[sample]), True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        latent = simmim_model.backbone(data['inputs'], torch.ones(1, 16, 16))[0]
        loss = simmim_model(data['inputs'], data['data_samples'], mode='loss')['loss']
    assert latent.dtype == torch.bfloat16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
