"""Every backbone option is declared once, keyword-only, and every bad value is refused with
a ConfigError that names the argument."""
import inspect
import re

import pytest

from swinv2_mm.models import ConfigError, SwinTransformerV2, SwinV2Backbone, VideoSwinTransformerV2

SMALL = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(2, 4, 4, 8))


def test_each_option_is_declared_and_documented_once():
    base = inspect.signature(SwinV2Backbone.__init__).parameters
    assert SwinTransformerV2.__init__ is SwinV2Backbone.__init__
    video = inspect.signature(VideoSwinTransformerV2.__init__).parameters
    video_own = [n for n, p in video.items() if n not in ('self', 'kwargs')]
    # the video backbone redeclares only what it changes, and forwards the rest
    assert set(video_own) == {'arch', 'patch_size', 'window_size', 'temporal_window',
                              'pretrained_window_sizes', 'out_indices'}
    assert video['kwargs'].kind is inspect.Parameter.VAR_KEYWORD
    doc = SwinV2Backbone.__doc__
    for name in base:
        if name != 'self':
            assert len(re.findall(rf'^\s+{name}:', doc, re.M)) == 1, name
    # keyword-only except arch
    assert [n for n, p in base.items() if p.kind is p.POSITIONAL_OR_KEYWORD] == ['self', 'arch']
    with pytest.raises(TypeError):
        SwinTransformerV2(SMALL, 3)


@pytest.mark.parametrize('kwargs, name', [
    (dict(drop_path_rate=1.5), 'drop_path_rate'),
    (dict(drop_path_rate=-0.1), 'drop_path_rate'),
    (dict(drop_rate=1.0), 'drop_rate'),
    (dict(attn_drop_rate='0.1'), 'attn_drop_rate'),
    (dict(mlp_ratio=0), 'mlp_ratio'),
    (dict(mlp_ratio=0.01), 'mlp_ratio'),
    (dict(window_size=8.0), 'window_size'),
    (dict(window_size=[8, 8, 8, 8.5]), r'window_size\[3\]'),
    (dict(window_size=True), 'window_size'),
    (dict(pretrained_window_sizes=-1), 'pretrained_window_sizes'),
    (dict(in_channels=0), 'in_channels'),
    (dict(patch_size=(4, 4, 4)), 'patch_size'),
    (dict(patch_size=0), 'patch_size'),
    (dict(qkv_bias='yes'), 'qkv_bias'),
    (dict(norm_eval=1), 'norm_eval'),
    (dict(fused_attn='auto'), 'fused_attn'),
    (dict(with_cp=[True, False, 1, False]), 'with_cp'),
    (dict(attn_chunk_size=[1, 2]), 'attn_chunk_size'),
    (dict(attn_chunk_size=2.5), 'attn_chunk_size'),
    (dict(out_indices=(1, 1)), 'out_indices'),
    (dict(out_indices=(0.5,)), 'out_indices'),
    (dict(frozen_stages=1.5), 'frozen_stages'),
    (dict(frozen_stages=True), 'frozen_stages'),
    (dict(mlp_ratio=float('inf')), 'mlp_ratio'),
    (dict(patch_size={4: 4, 2: 2}), 'patch_size'),
    (dict(init_cfg='Pretrained'), 'init_cfg'),
    (dict(init_cfg=dict(type='Pretrained')), 'init_cfg'),
    (dict(init_cfg=[dict(type='Pretrained', checkpoint='a.pth'), 'b']), 'init_cfg'),
    (dict(arch=dict(SMALL, extra_norm_every_n_blocks=-2)), 'arch.extra_norm_every_n_blocks'),
    (dict(extra_norm_every_n_blocks=-1), 'extra_norm_every_n_blocks'),
    (dict(arch=dict(embed_dims=32.0, depths=(2,) * 4, num_heads=(2,) * 4)), 'arch.embed_dims'),
    (dict(arch=dict(embed_dims=32, depths=(2, 0, 2, 2), num_heads=(2,) * 4)), 'arch.depths'),
])
def test_bad_values_name_the_argument(kwargs, name):
    with pytest.raises(ConfigError, match=f'^{name}'):
        SwinTransformerV2(**{'arch': SMALL, **kwargs})


def test_video_arguments_are_checked_too():
    with pytest.raises(ConfigError, match='^temporal_window'):
        VideoSwinTransformerV2(SMALL, temporal_window=0)
    with pytest.raises(ConfigError, match='^drop_path_rate'):
        VideoSwinTransformerV2(SMALL, drop_path_rate=1.0)


def test_video_windows_per_stage_as_lists_of_lists():
    """What a JSON or YAML dump of (t, h, w) tuples gives back."""
    model = VideoSwinTransformerV2(SMALL, window_size=[[8, 7, 7]] * 4)
    assert model.window_sizes == [(8, 7, 7)] * 4


def test_pretrained_in_an_init_cfg_list_loads_after_the_other_initialisers(tmp_path):
    import torch
    source = SwinTransformerV2(SMALL)
    path = str(tmp_path / 'weights.pth')
    torch.save(source.state_dict(), path)
    model = SwinTransformerV2(SMALL, init_cfg=[
        dict(type='Constant', layer='Linear', val=0.5), dict(type='Pretrained', checkpoint=path)])
    model.init_weights()
    weight = model.stages[0].blocks[0].attn.qkv.weight
    assert torch.equal(weight, source.stages[0].blocks[0].attn.qkv.weight)


def test_good_values_of_every_form_are_accepted():
    model = SwinTransformerV2(SMALL, patch_size=(4, 2), window_size=[(4, 6), 4, 3, (2, 1)],
                              out_indices=3, with_cp=[True, False, False, True],
                              attn_chunk_size=[2, 0, 0, 0], mlp_ratio=2.5, norm_eval=True)
    assert model.out_indices == (3,) and model.window_sizes[0] == (4, 6)
    assert [s.with_cp for s in model.stages] == [True, False, False, True]
