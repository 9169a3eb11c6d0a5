"""Video-SwinV2: shapes, window options, errors, and 2D -> 3D inflation."""
import pytest
import torch

from swinv2_mm import SwinTransformerV2, VideoSwinTransformerV2, load_pretrained
from swinv2_mm.models.position_bias import relative_coords_table
from tests.helpers import max_abs_diff, randomize_

SMALL = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
ALL = (0, 1, 2, 3)


def inflated_pair(windows_2d, windows_3d, fused=True, dtype=torch.float32):
    """A random 2D model and a 3D model initialised from its state dict by inflation."""
    m2 = randomize_(SwinTransformerV2(SMALL, window_size=windows_2d, out_indices=ALL,
                                      fused_attn=fused)).to(dtype).eval()
    m3 = VideoSwinTransformerV2(SMALL, window_size=windows_3d, out_indices=ALL,
                                fused_attn=fused).to(dtype).eval()
    report = load_pretrained(m3, m2.state_dict())
    assert report == dict(missing=[], unexpected=[])
    return m2, m3


def frames_of(image, num_frames):
    return image[:, :, None].expand(-1, -1, num_frames, -1, -1).contiguous()


@pytest.mark.parametrize('fused', [True, False])
def test_inflated_model_sees_a_still_clip_as_its_frame(fused):
    """The defining property of inflation: identical frames give the 2D features per frame.

    Exact (to float64 rounding) for any window: every temporal copy of a key has the same
    logit (the dt input of the CPB starts at zero) and value, so softmax weights split
    evenly over copies. Shown with temporal padding (5 token frames, window 3), temporal
    and spatial shift, spatial padding (61x75 px) and a window larger than the map.
    """
    m2, m3 = inflated_pair([5, 4, 3, 2], [(3, 5, 5), (3, 4, 4), (2, 3, 3), (8, 2, 2)], fused,
                           torch.float64)
    image = torch.randn(2, 3, 61, 75, dtype=torch.float64)
    with torch.no_grad():
        outs2, outs3 = m2(image), m3(frames_of(image, 10))
    for a, b in zip(outs2, outs3):
        assert b.shape == (a.shape[0], a.shape[1], 5) + a.shape[2:]
        assert max_abs_diff(b, a[:, :, None].expand_as(b)) < 1e-10


def test_inflation_in_float32_default_windows():
    """The default video window (8, 7, 7) against a 2D model at window 7 (equal spatial windows
    are the condition), 8 frames (4 token frames: the temporal window shrinks to 4)."""
    m2, m3 = inflated_pair(7, (8, 7, 7))
    image = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        a, b = m2(image)[3], m3(frames_of(image, 8))[3]
    assert max_abs_diff(b, a[:, :, None].expand_as(b)) < 1e-4


def test_timm_checkpoint_inflates_through_init_cfg(tmp_path):
    """A timm-layout 2D file in init_cfg: the video model reproduces timm's own 2D features."""
    timm = pytest.importorskip('timm')
    peer = randomize_(timm.create_model('swinv2_tiny_window8_256', pretrained=False, img_size=128,
                                        embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                                        num_classes=5), seed=3).eval()
    path = tmp_path / 'timm_swinv2.pth'
    torch.save(peer.state_dict(), path)
    model = VideoSwinTransformerV2(SMALL, window_size=(4, 8, 8), out_indices=(3,),
                                   init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    image = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        expected = peer.forward_features(image).permute(0, 3, 1, 2)  # (B, C, 4, 4)
        out = model.eval()(frames_of(image, 6))  # single out index: a tensor, (B, C, 3, 4, 4)
    assert out.shape == (2, 256, 3, 4, 4)
    assert max_abs_diff(out, expected[:, :, None].expand_as(out)) < 1e-4


def test_inflation_changes_only_the_patch_kernel_and_cpb_input():
    m2, m3 = inflated_pair(8, (8, 7, 7))
    sd2, sd3 = m2.state_dict(), m3.state_dict()
    kernel2, kernel3 = sd2['patch_embed.proj.weight'], sd3['patch_embed.proj.weight']
    assert kernel3.shape == kernel2.shape[:2] + (2,) + kernel2.shape[2:]
    assert torch.equal(kernel3.sum(2), kernel2)
    cpb = 'stages.2.blocks.1.attn.cpb_mlp.0.weight'
    assert torch.equal(sd3[cpb][:, 0], torch.zeros(512)) and torch.equal(sd3[cpb][:, 1:], sd2[cpb])
    for key in sd2:
        if key not in ('patch_embed.proj.weight',) and not key.endswith('cpb_mlp.0.weight'):
            assert torch.equal(sd2[key], sd3[key]), key


def test_inflated_model_learns_time():
    """After inflation the dt input gets gradient, so temporal offsets can differ."""
    _, m3 = inflated_pair(8, (4, 8, 8))
    m3.train()
    clip = torch.randn(1, 3, 8, 32, 32)
    m3(clip)[3].square().mean().backward()
    grad = m3.stages[0].blocks[0].attn.cpb_mlp[0].weight.grad
    assert grad[:, 0].abs().sum() > 0


def test_output_layout_and_single_index_is_a_tensor():
    model = VideoSwinTransformerV2(SMALL, out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 8, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 4, 8, 8), (2, 256, 4, 2, 2)]
    single = VideoSwinTransformerV2(SMALL).eval()
    with torch.no_grad():
        assert single(torch.randn(1, 3, 8, 64, 64)).shape == (1, 256, 4, 2, 2)


def test_window_size_forms():
    assert VideoSwinTransformerV2(SMALL).window_sizes == [(8, 7, 7)] * 4
    assert VideoSwinTransformerV2(SMALL, window_size=12).window_sizes == [(8, 12, 12)] * 4
    model = VideoSwinTransformerV2(SMALL, window_size=6, temporal_window=2)
    assert model.window_sizes == [(2, 6, 6)] * 4
    model = VideoSwinTransformerV2(SMALL, window_size=[7, (4, 7, 7), 7, (2, 3, 3)],
                                   pretrained_window_sizes=[16, 16, 16, 8])
    assert model.window_sizes == [(8, 7, 7), (4, 7, 7), (8, 7, 7), (2, 3, 3)]
    assert model.pretrained_window_sizes == [(0, 16, 16)] * 3 + [(0, 8, 8)]


@pytest.mark.parametrize('seq', [list, tuple])
def test_a_list_and_a_tuple_of_windows_mean_the_same(seq):
    """Four ints are per-stage spatial windows, three ints one (t, h, w) window for every
    stage, whether written as a list or a tuple."""
    per_stage = VideoSwinTransformerV2(SMALL, window_size=seq([7, 6, 5, 4]), temporal_window=4,
                                       pretrained_window_sizes=seq([12, 12, 12, 6]))
    assert per_stage.window_sizes == [(4, 7, 7), (4, 6, 6), (4, 5, 5), (4, 4, 4)]
    assert per_stage.pretrained_window_sizes == [(0, 12, 12)] * 3 + [(0, 6, 6)]
    shared = VideoSwinTransformerV2(SMALL, window_size=seq([2, 7, 5]),
                                    pretrained_window_sizes=seq([0, 12, 10]))
    assert shared.window_sizes == [(2, 7, 5)] * 4
    assert shared.pretrained_window_sizes == [(0, 12, 10)] * 4


def test_three_ints_with_three_stages_are_refused_where_the_readings_differ():
    three = dict(arch=dict(embed_dims=16, depths=(1, 1, 1), num_heads=(1, 1, 1)),
                 out_indices=(2,))
    with pytest.raises(ValueError, match=r'window_size: \[8, 7, 7\] is ambiguous .* write '
                                         r'\[\[8, 7, 7\], \[8, 7, 7\], \[8, 7, 7\]\]'):
        VideoSwinTransformerV2(**three, window_size=[8, 7, 7])
    model = VideoSwinTransformerV2(**three, window_size=[[8, 7, 7]] * 3)
    assert model.window_sizes == [(8, 7, 7)] * 3
    # where both readings give the same windows nothing is ambiguous
    model = VideoSwinTransformerV2(**three, window_size=(8, 8, 8), temporal_window=8)
    assert model.window_sizes == [(8, 8, 8)] * 3
    two = dict(arch=dict(embed_dims=16, depths=(1, 1), num_heads=(1, 1)), out_indices=(1,))
    with pytest.raises(ValueError, match=r'window_size: \(8, 4\) is ambiguous'):
        SwinTransformerV2(**two, window_size=(8, 4))
    assert SwinTransformerV2(**two, window_size=(8, 8)).window_sizes == [(8, 8)] * 2


def test_temporal_window_of_one_has_finite_zero_dt():
    table = relative_coords_table((1, 7, 7), (0, 16, 16), torch.device('cpu'))
    assert torch.isfinite(table).all() and torch.equal(table[:, 0], torch.zeros(len(table)))
    model = randomize_(VideoSwinTransformerV2(SMALL, window_size=(1, 4, 4))).eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 4, 32, 32))).all()


def test_frozen_stages_and_with_cp():
    model = VideoSwinTransformerV2(SMALL, frozen_stages=2, with_cp=True).train()
    assert not any(p.requires_grad for p in model.stages[1].parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[0].training is False and model.stages[2].training
    model(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert model.stages[3].blocks[0].attn.qkv.weight.grad is not None


@pytest.mark.parametrize('kwargs, message', [
    (dict(window_size=[7, 7]), 'window_size: expected an int, 3 ints'),
    (dict(window_size=(8, 7)), 'window_size'),
    (dict(window_size=(0, 7, 7)), 'window_size: every window must be >= 1'),
    (dict(patch_size=(4, 4)), 'patch_size: expected \\(t, h, w\\)'),
    (dict(arch=dict(embed_dims=30, depths=(2,) * 4, num_heads=(4,) * 4)), 'num_heads: stage 0'),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoSwinTransformerV2(**{'arch': SMALL, **kwargs})


@pytest.mark.parametrize('shape, message', [
    ((1, 3, 0, 64, 64), r"\{'frames': 0, 'height': 64, 'width': 64\} is smaller than one patch"),
    ((1, 3, 1, 64, 64), 'smaller than one patch'),
    ((1, 3, 64, 64), r'expected a \(B, C, T, H, W\) clip batch'),
])
def test_bad_input_is_refused_clearly(shape, message):
    model = VideoSwinTransformerV2(SMALL)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(shape))


def test_2d_checkpoint_of_another_arch_does_not_fit():
    m2 = SwinTransformerV2(dict(SMALL, embed_dims=64))
    with pytest.raises(ValueError, match='does not fit this architecture'):
        load_pretrained(VideoSwinTransformerV2(SMALL), m2.state_dict())
