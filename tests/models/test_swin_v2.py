"""Backbone behaviour: shapes, padding with masked keys, window rules, options, bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

from swinv2_mm import SwinTransformerV2
from swinv2_mm.models.windows import WindowPlan, effective_window
from tests.helpers import max_abs_diff, randomize_

SMALL = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(2, 4, 4, 8))


def small_model(**kwargs):
    kwargs.setdefault('drop_path_rate', 0.0)
    return randomize_(SwinTransformerV2(arch=SMALL, **kwargs)).eval()


# ---------------------------------------------------------------- hand-made reference
def ref_window_attention(attn, x, window, shift):
    """Windowed cosine attention computed window by window; padded keys are left out of
    the softmax entirely (not masked additively); shifted regions get -100 as in the paper."""
    b, h, w, c = x.shape
    (wh, ww), (sh, sw) = window, shift
    hp, wp = math.ceil(h / wh) * wh, math.ceil(w / ww) * ww
    xp = F.pad(x, [0, 0, 0, wp - w, 0, hp - h])
    real = torch.zeros(hp, wp, dtype=torch.bool)
    real[:h, :w] = True
    xr = torch.roll(xp, (-sh, -sw), (1, 2))
    realr = torch.roll(real, (-sh, -sw), (0, 1))
    rows = torch.arange(hp)[:, None].expand(hp, wp)
    cols = torch.arange(wp)[None, :].expand(hp, wp)
    # tokens of the rolled map that came from the other side of the map form their own region
    region = ((rows >= hp - sh) & (sh > 0)).long() * 2 + ((cols >= wp - sw) & (sw > 0)).long()
    heads = attn.num_heads
    hd = c // heads
    wq, wk, wv = attn.qkv.weight.split(c)
    bias = attn.position_bias((wh, ww))  # (heads, N, N)
    scale = torch.clamp(attn.logit_scale, max=math.log(100)).exp().view(heads, 1, 1)
    out = torch.zeros_like(xr)
    for i in range(0, hp, wh):
        for j in range(0, wp, ww):
            tok = xr[:, i:i + wh, j:j + ww].reshape(b, -1, c)
            keep = realr[i:i + wh, j:j + ww].reshape(-1)
            reg = region[i:i + wh, j:j + ww].reshape(-1)
            q = (tok @ wq.T + attn.q_bias).view(b, -1, heads, hd).transpose(1, 2)
            k = (tok @ wk.T).view(b, -1, heads, hd).transpose(1, 2)
            v = (tok @ wv.T + attn.v_bias).view(b, -1, heads, hd).transpose(1, 2)
            logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2) * scale
            logits = logits + bias + (reg[:, None] != reg[None, :]).float() * -100.0
            if keep.any():
                logits = logits[..., keep]
                v = v[:, :, keep]
            o = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, wh, ww, c)
            out[:, i:i + wh, j:j + ww] = o @ attn.proj.weight.T + attn.proj.bias
    out = torch.roll(out, (sh, sw), (1, 2))
    return out[:, :h, :w]


def ref_backbone(model, x):
    """The whole backbone with ref_window_attention in every block."""
    x = model.patch_embed(x)
    outs = []
    for i, stage in enumerate(model.stages):
        for n, blk in enumerate(stage.blocks):
            size = x.shape[1:3]
            window = tuple(s if s <= w else w for s, w in zip(size, stage.window_size))
            shift = tuple(w // 2 if n % 2 and s > w else 0 for s, w in zip(size, stage.window_size))
            x = x + blk.norm1(ref_window_attention(blk.attn, x, window, shift))
            x = x + blk.norm2(blk.mlp(x))
        outs.append(getattr(model, f'norm{i}')(x).permute(0, 3, 1, 2))
        if stage.downsample is not None:
            x = stage.downsample(x)
    return outs


@pytest.mark.parametrize('size', [(64, 64), (61, 75), (37, 100), (20, 12)])
@pytest.mark.parametrize('fused', [True, False])
def test_padding_matches_hand_masked_reference(size, fused):
    # float64 so that the comparison sees masking errors, not rounding
    model = small_model(window_size=[5, 4, 3, 2], fused_attn=fused).double()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        outs, refs = model(x), ref_backbone(model, x)
    for out, ref in zip(outs, refs):
        assert out.shape == ref.shape
        assert max_abs_diff(out, ref) < 1e-9


def test_padded_keys_get_no_weight():
    """Changing what would sit in the padded area cannot change any output."""
    model = small_model(window_size=7)
    x = torch.randn(1, 3, 60, 44)
    with torch.no_grad():
        a = model(x)
        b = model(torch.cat([x, torch.randn(1, 3, 60, 20)], dim=3)[..., :44])
    assert all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize('size,expected', [
    ((256, 256), [(64, 64), (32, 32), (16, 16), (8, 8)]),
    ((224, 320), [(56, 80), (28, 40), (14, 20), (7, 10)]),
    ((97, 131), [(25, 33), (13, 17), (7, 9), (4, 5)]),
    ((4, 4), [(1, 1)] * 4),
    ((5, 9), [(2, 3), (1, 2), (1, 1), (1, 1)]),
])
def test_output_shapes(size, expected):
    model = small_model(window_size=8)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert [tuple(o.shape[2:]) for o in outs] == expected
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]
    assert all(torch.isfinite(o).all() for o in outs)


def test_window_rule_per_axis():
    assert effective_window((64, 64), (8, 8), True) == ((8, 8), (4, 4))
    assert effective_window((8, 8), (8, 8), True) == ((8, 8), (0, 0))  # official: not larger
    assert effective_window((6, 40), (8, 8), True) == ((6, 8), (0, 4))  # per axis
    assert effective_window((40, 6), (8, 8), False) == ((8, 6), (0, 0))


def test_official_rule_256_window16():
    """A 256 px model with window 16 runs windows [16, 16, 16, 8] (REFERENCE.md)."""
    model = SwinTransformerV2('tiny', window_size=16)
    sizes = [(64, 64), (32, 32), (16, 16), (8, 8)]
    windows = [stage.window_plans(s, torch.device('cpu'))[1].window_size
               for stage, s in zip(model.stages, sizes)]
    assert windows == [(16, 16), (16, 16), (16, 16), (8, 8)]


def test_out_indices_and_norms():
    model = small_model(out_indices=(1, 3))
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 256]
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')


def test_frozen_stages():
    model = small_model(frozen_stages=2, drop_path_rate=0.2)
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.norm0, model.norm1]
    for m in frozen:
        assert not m.training and all(not p.requires_grad for p in m.parameters())
    assert model.stages[2].training and all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[0].downsample is not None and not model.stages[0].downsample.training
    sum(o.sum() for o in model(torch.randn(1, 3, 64, 64))).backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert model.stages[2].blocks[0].attn.qkv.weight.grad is not None


def test_frozen_stage_zero_freezes_only_patch_embed():
    model = small_model(frozen_stages=0).train()
    assert not model.patch_embed.training
    assert all(not p.requires_grad for p in model.patch_embed.parameters())
    assert all(p.requires_grad for p in model.stages.parameters())


def test_norm_eval():
    model = small_model(norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.stages[0].blocks[0].attn.training


def test_training_semantics_follow_train_mode_not_gradient_mode():
    """A model in train() drops paths and attention weights also without autograd (a teacher
    or EMA model relies on it); eval() without autograd takes the in-place path and gives
    what eval() with autograd gives."""
    x = torch.randn(2, 3, 32, 40)
    for kwargs in (dict(drop_path_rate=0.5), dict(attn_drop_rate=0.5), dict(drop_rate=0.5)):
        model = small_model(**kwargs).train()
        with torch.no_grad():
            first, second = model(x), model(x)
        assert any(max_abs_diff(a, b) > 1e-3 for a, b in zip(first, second)), kwargs
        model.eval()
        with torch.no_grad():
            inplace = model(x)
        graded = model(x)
        assert all(max_abs_diff(a, b) < 1e-5 for a, b in zip(inplace, graded)), kwargs


def test_with_cp_same_outputs_and_gradients():
    x = torch.randn(2, 3, 48, 40)
    grads, outs = [], []
    for with_cp in (False, True):
        model = small_model(with_cp=with_cp).train()
        out = model(x)
        sum((o ** 2).mean() for o in out).backward()
        outs.append(out)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-6)
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5), name


def test_fused_equals_plain():
    """One attention call with shift and pad masks in fp32, and the whole model in fp64."""
    model = small_model(window_size=[6, 5, 4, 3], fused_attn=True)
    stage = model.stages[0]
    x = torch.randn(2, 15, 19, 32)  # a stage-0 map that needs padding
    plan = stage.window_plans(x.shape[1:3], x.device)[1]
    assert plan.mask is not None and any(plan.shift_size)
    blk = stage.blocks[1]
    with torch.no_grad():
        fused = blk.window_attention(x, plan)
        blk.attn.fused_attn = False
        plain = blk.window_attention(x, plan)
    assert max_abs_diff(fused, plain) < 1e-5

    x = torch.randn(2, 3, 61, 75, dtype=torch.float64)
    fused = small_model(window_size=[6, 5, 4, 3], fused_attn=True).double()
    plain = small_model(window_size=[6, 5, 4, 3], fused_attn=False).double()
    plain.load_state_dict(fused.state_dict())
    with torch.no_grad():
        for a, b in zip(fused(x), plain(x)):
            assert max_abs_diff(a, b) < 1e-9


def test_official_initialisation():
    model = SwinTransformerV2('tiny')
    blk = model.stages[2].blocks[1]
    for norm in (blk.norm1, blk.norm2):
        assert torch.count_nonzero(norm.weight) == 0 and torch.count_nonzero(norm.bias) == 0
    assert torch.allclose(blk.attn.logit_scale, torch.full_like(blk.attn.logit_scale, math.log(10)))
    assert torch.count_nonzero(blk.attn.q_bias) == 0 and torch.count_nonzero(blk.attn.v_bias) == 0
    assert 0.019 < blk.mlp.fc1.weight.std() < 0.021  # trunc_normal(std=0.02), as the official code
    assert torch.equal(model.norm3.weight, torch.ones(768))
    x = torch.randn(1, 384, 8, 8).permute(0, 2, 3, 1)  # post-norms at zero: every block is identity
    assert torch.equal(blk(x, WindowPlan((8, 8), (0, 0), None)), x)


def test_extra_norm_every_n_blocks():
    with torch.device('meta'):
        giant = SwinTransformerV2('giant')
        large = SwinTransformerV2('large')
    blocks = giant.stages[2].blocks
    assert [i for i, b in enumerate(blocks) if b.norm3 is not None] == [5, 11, 17, 23, 29, 35, 41]
    assert all(b.norm3 is None for s in large.stages for b in s.blocks)
    custom = SwinTransformerV2(arch=SMALL, extra_norm_every_n_blocks=1)
    assert all(b.norm3 is not None for s in custom.stages for b in s.blocks)


@pytest.mark.parametrize('arch,millions', [('tiny', 27.6), ('small', 49.0), ('base', 86.9),
                                           ('large', 195.2), ('huge', 655.1), ('giant', 2998)])
def test_parameter_counts(arch, millions):
    with torch.device('meta'):
        model = SwinTransformerV2(arch, out_indices=(3,))
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - millions) / millions < 0.01


@pytest.mark.parametrize('kwargs,name', [
    (dict(arch='enormous'), 'arch'),
    (dict(arch=dict(embed_dims=96, depths=(2, 2)), ), 'arch'),
    (dict(arch=dict(embed_dims=96, depths=(2, 2, 2, 2), num_heads=(5, 6, 12, 24))), 'num_heads'),
    (dict(window_size=[8, 8, 8]), 'window_size'),
    (dict(window_size=0), 'window_size'),
    (dict(pretrained_window_sizes=[8, 8, 8]), 'pretrained_window_sizes'),
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SwinTransformerV2(**kwargs)


def test_input_smaller_than_a_patch():
    model = small_model()
    with pytest.raises(ValueError, match='smaller than one patch'):
        model(torch.randn(1, 3, 3, 64))
