"""Checkpoint inspection and arch='auto': architectures and pretraining windows read from files."""
import os
import re
import subprocess
import sys

import pytest
import torch

from swinv2_mm import SwinTransformerV2, VideoSwinTransformerV2
from swinv2_mm.checkpoint import inspect_checkpoint
from swinv2_mm.checkpoint.inspect import lift_windows, window_config
from swinv2_mm.models.options import ConfigError
from swinv2_mm.models.position_bias import relative_coords_table, relative_position_index
from tests.checkpoint.layouts import (LAYOUTS, TINY_ISH, converted_keys, official_layout, ours,
                                      simmim_layout)
from tests.helpers import ROOT, load_tool

# SimMIM's 1.06B SwinV2, pretrained at 192 px with window 12: stage 3 (6 x 6) ran at window 6
SWINV2_1B = dict(embed_dims=448, depths=[2, 2, 18, 2], num_heads=[14, 28, 56, 112])
SWINV2_1B_WINDOWS = (12, 12, 12, 6)
# the giant's shape with 42 blocks in stage 2 and an extra norm after every 6th block
GIANT_42 = dict(embed_dims=512, depths=[2, 2, 42, 2], num_heads=[16, 32, 64, 128],
                extra_norm_every_n_blocks=6)


def expected_arch(arch):
    return dict(embed_dims=arch['embed_dims'], depths=list(arch['depths']),
                num_heads=list(arch['num_heads']),
                extra_norm_every_n_blocks=arch.get('extra_norm_every_n_blocks', 0))


def meta_state_dict(arch):
    """A backbone's state dict as shapes only (meta tensors): big archs cost no memory."""
    with torch.device('meta'):
        return SwinTransformerV2(arch=arch).state_dict()


def with_tables(ckpt, tables):
    """The official checkpoint ``ckpt`` with real log-CPB tables and indices: ``tables[i]``
    is stage i's (window, pretrained window)."""
    model = ckpt['model']
    for key in list(model):
        m = re.match(r'^layers\.(\d+)\.blocks\.\d+\.attn\.relative_coords_table$', key)
        if m:
            w, p = tables[int(m.group(1))]
            table = relative_coords_table((w, w), (p, p), torch.device('cpu'))  # ((2w-1)^2, 2)
            model[key] = table.reshape(1, 2 * w - 1, 2 * w - 1, 2)
            model[key.replace('coords_table', 'position_index')] = \
                relative_position_index((w, w), torch.device('cpu'))
    return ckpt


@pytest.mark.parametrize('case', LAYOUTS)
def test_every_layout_inspects_to_its_arch(reference_sd, case):
    make, layout, keeps_buffers = LAYOUTS[case]
    info = inspect_checkpoint(make(reference_sd))
    assert info.layout == layout
    assert info.arch == expected_arch(TINY_ISH)
    assert (info.in_channels, info.patch_size, info.num_axes) == (3, (4, 4), 2)
    assert info.num_params == sum(reference_sd[k].numel()
                                  for k in converted_keys(reference_sd, layout))
    if keeps_buffers:  # window-12 buffers with zero tables: the window itself is assumed
        assert info.window_sizes == info.pretrained_window_sizes == [(12, 12)] * 4
    else:
        assert info.window_sizes is None and info.pretrained_window_sizes is None


def test_normaliser_window_recovered_from_table(reference_sd):
    """Tables of window 16 normalised by 12 give 12; a stage at its own window 8 gives 8."""
    tables = [(16, 12), (16, 12), (16, 12), (8, 8)]
    info = inspect_checkpoint(with_tables(official_layout(reference_sd), tables))
    assert info.window_sizes == [(16, 16)] * 3 + [(8, 8)]
    assert info.pretrained_window_sizes == [(12, 12)] * 3 + [(8, 8)]


def test_auto_arch_rebuilds_1b_simmim_checkpoint_shape_only(tmp_path, log_messages):
    """The official SimMIM 1.06B checkpoint, built and saved as meta tensors, gives its arch
    and the windows of its buffers (stage 3 at 6) as pretrained_window_sizes."""
    path = str(tmp_path / 'swinv2_1b_simmim_meta.pth')
    ckpt = simmim_layout(meta_state_dict(SWINV2_1B), windows=SWINV2_1B_WINDOWS)
    assert all(v.is_meta for v in ckpt['model'].values())
    assert 'encoder.layers.2.blocks.17.attn.rpe_mlp.2.weight' in ckpt['model']
    torch.save(ckpt, path)
    with torch.device('meta'):
        model = SwinTransformerV2(arch='auto', init_cfg=dict(type='Pretrained', checkpoint=path))
    assert model.embed_dims == 448
    assert [len(s.blocks) for s in model.stages] == [2, 2, 18, 2]
    assert [s.blocks[0].attn.num_heads for s in model.stages] == [14, 28, 56, 112]
    assert model.pretrained_window_sizes == [(12, 12), (12, 12), (12, 12), (6, 6)]
    assert model.stages[3].blocks[1].attn.pretrained_window_size == (6, 6)
    assert 1.05e9 < sum(p.numel() for p in model.parameters()) < 1.07e9
    info = inspect_checkpoint(path)
    assert 1.05e9 < info.num_params < 1.07e9
    assert info.dropped == 'decoder.* (2 tensors), window buffers (48 tensors), mask_token'
    log = '\n'.join(log_messages)
    assert ("arch='auto': arch=dict(embed_dims=448, depths=[2, 2, 18, 2], num_heads=[14, 28, "
            f"56, 112]) read from the official checkpoint {path!r}") in log
    assert "pretrained_window_sizes=[12, 12, 12, 6]" in log


def test_auto_arch_reads_giant_extra_norms_and_logs_unknown_windows(tmp_path, log_messages):
    path = str(tmp_path / 'giant_meta.pth')
    torch.save({'state_dict': meta_state_dict(GIANT_42)}, path)
    with torch.device('meta'):
        model = SwinTransformerV2(arch='auto', init_cfg=dict(type='Pretrained', checkpoint=path))
    assert inspect_checkpoint(path).arch == GIANT_42
    assert [len(s.blocks) for s in model.stages] == [2, 2, 42, 2]
    assert [i for i, b in enumerate(model.stages[2].blocks) if b.norm3 is not None] == \
        [5, 11, 17, 23, 29, 35, 41]
    assert model.pretrained_window_sizes == [(0, 0)] * 4
    assert any('could not read pretrained_window_sizes' in m and 'keeps no window buffers' in m
               for m in log_messages)


def test_auto_arch_loads_weights_and_keeps_given_windows(tmp_path, reference_sd, log_messages):
    """An official file at window 16 normalised by 12: 'auto' sets 12 and loads every
    weight; a non-zero pretrained_window_sizes given by the user is kept, and the
    difference logged."""
    path = str(tmp_path / 'official.pth')
    torch.save(with_tables(official_layout(reference_sd), [(16, 12)] * 4), path)
    model = ours(arch='auto', window_size=16, init_cfg=dict(type='Pretrained', checkpoint=path))
    assert model.pretrained_window_sizes == [(12, 12)] * 4
    model.init_weights()
    state = model.state_dict()
    assert all(torch.equal(state[k], reference_sd[k])
               for k in converted_keys(reference_sd, 'official'))
    given = ours(arch='auto', pretrained_window_sizes=8,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    assert given.pretrained_window_sizes == [(8, 8)] * 4
    assert any('keeping the given pretrained_window_sizes [8, 8, 8, 8]' in m
               and 'normalised by [12, 12, 12, 12]' in m for m in log_messages)


def test_auto_arch_video_backbone_lifts_2d_windows(tmp_path, reference_sd):
    """A 2D official file's pretraining window p is (0, p, p) in the video backbone."""
    path = str(tmp_path / 'official.pth')
    torch.save(with_tables(official_layout(reference_sd), [(16, 12)] * 4), path)
    model = VideoSwinTransformerV2(arch='auto', drop_path_rate=0.0,
                                   init_cfg=dict(type='Pretrained', checkpoint=path))
    assert model.embed_dims == TINY_ISH['embed_dims']
    assert model.pretrained_window_sizes == [(0, 12, 12)] * 4


def test_auto_arch_reads_the_prefixed_part(tmp_path, reference_sd):
    path = str(tmp_path / 'detector.pth')
    torch.save({'state_dict': {f'model.backbone.{k}': v for k, v in reference_sd.items()}}, path)
    model = ours(arch='auto', init_cfg=dict(type='Pretrained', checkpoint=path,
                                            prefix='model.'))
    assert [s.blocks[0].attn.num_heads for s in model.stages] == list(TINY_ISH['num_heads'])


def test_auto_arch_needs_a_pretrained_init_cfg():
    with pytest.raises(ConfigError, match=r"arch: 'auto' reads the architecture from the "
                                          r"checkpoint of init_cfg.*type='Pretrained'"):
        SwinTransformerV2(arch='auto')
    with pytest.raises(ConfigError, match='arch'):
        SwinTransformerV2(arch='auto', init_cfg=dict(type='Normal', layer='Linear'))


def test_non_swinv2_checkpoints_are_refused(tmp_path, reference_sd):
    resnet = {'conv1.weight': torch.zeros(64, 3, 7, 7), 'bn1.weight': torch.zeros(64),
              'layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1), 'fc.weight': torch.zeros(10, 64)}
    path = str(tmp_path / 'resnet50.pth')
    torch.save({'state_dict': resnet}, path)
    with pytest.raises(ValueError, match=r"checkpoint '.*resnet50\.pth': no SwinV2 layout "
                                         r"recognised \(expected official, timm, mmpretrain"):
        inspect_checkpoint(path)
    with pytest.raises(ValueError, match='no SwinV2 layout'):
        SwinTransformerV2(arch='auto', init_cfg=dict(type='Pretrained', checkpoint=path))
    partial = {k: v for k, v in reference_sd.items() if not k.startswith('stages.1.blocks.0.')}
    with pytest.raises(ValueError, match=r'blocks of stage 1 are numbered \[1\], not 0\.\.0'):
        inspect_checkpoint(partial)


def test_inconsistent_extra_norms_are_refused():
    sd = {k: v for k, v in meta_state_dict(GIANT_42).items()
          if not k.startswith('stages.2.blocks.11.norm3.')}
    with pytest.raises(ValueError, match=r'stage 2 has extra norms \(norm3\) after blocks '
                                         r'\[5, 17, 23, 29, 35, 41\], which is not every 6th'):
        inspect_checkpoint(sd)


def test_inspect_command_line(tmp_path, reference_sd):
    src = tmp_path / 'official.pth'
    torch.save(with_tables(official_layout(reference_sd), [(16, 12)] * 3 + [(8, 8)]), src)
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'convert_checkpoint.py'),
                          str(src), '--inspect'], check=True, cwd=ROOT, capture_output=True,
                         text=True).stdout
    arch = 'dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[2, 4, 4, 8])'
    assert 'layout: official' in out
    assert f'arch: {arch}' in out
    assert 'windows per stage: [16, 16, 16, 8]' in out
    assert 'pretrained windows per stage (log-CPB normaliser): [12, 12, 12, 8]' in out
    assert 'in_channels=3, patch_size=(4, 4), 2D weights' in out
    count = sum(reference_sd[k].numel() for k in converted_keys(reference_sd, 'official'))
    assert f'parameters: {count / 1e6:.1f}M (backbone, {count:,})' in out
    assert f'    arch={arch},\n    pretrained_window_sizes=[12, 12, 12, 8],' in out


def test_convert_command_line_needs_dst_without_inspect(monkeypatch, capsys, tmp_path):
    tool = load_tool('convert_checkpoint')
    monkeypatch.setattr(sys, 'argv', ['convert_checkpoint.py', str(tmp_path / 'src.pth')])
    with pytest.raises(SystemExit):
        tool.main()
    assert 'DST is required to convert; give it, or --inspect' in capsys.readouterr().err


def test_printed_windows_read_back_as_the_same_windows():
    """window_config's output, given back to a backbone, means the windows it printed: a 3D
    window stays a tuple, since a video int means (temporal_window, w, w) or (0, p, p)."""
    arch = dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    windows = [(8, 8, 8), (0, 12, 12), (8, 8, 8), (4, 6, 6)]
    model = VideoSwinTransformerV2(arch, pretrained_window_sizes=window_config(windows))
    assert model.pretrained_window_sizes == windows
    assert window_config([(12, 12), (12, 12), (12, 12), (6, 6)]) == [12, 12, 12, 6]


def test_2d_normalisers_lift_to_3d_with_the_stage_window_in_time():
    assert lift_windows([(12, 12), (6, 6)], 3) == [(0, 12, 12), (0, 6, 6)]
    assert lift_windows([(8, 7, 7)], 3) == [(8, 7, 7)]
    assert lift_windows([(8, 7, 7)], 2) is None  # a video checkpoint for a 2D backbone
