"""Layout detection, conversion, window transfer and loading errors."""
import os
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from swinv2_mm import convert_state_dict, load_pretrained
from swinv2_mm.checkpoint import read_checkpoint, renamed_tensors
from tests.checkpoint.layouts import (LAYOUTS, SIMMIM_STRIDE, converted_keys, hf_layout,
                                      mmengine_simmim_layout, mmengine_simmim_mmpretrain_layout,
                                      official_layout, ours, simmim_layout, timm_layout)
from tests.helpers import ROOT, max_abs_diff


@pytest.mark.parametrize('case', LAYOUTS)
def test_every_layout_round_trips(reference_sd, case):
    make, layout, _ = LAYOUTS[case]
    converted = convert_state_dict(make(reference_sd))
    assert renamed_tensors(make(reference_sd))[0] == layout
    expected = converted_keys(reference_sd, layout)
    assert set(converted) == expected
    for key in expected:
        assert torch.equal(converted[key], reference_sd[key]), key


def test_official_simmim_checkpoint(reference_sd, log_messages):
    """The SimMIM zoo's encoder loads (rpe_mlp read as cpb_mlp); its decoder and mask token
    are reported as dropped, with the window buffers, in groups."""
    ckpt = simmim_layout(reference_sd)
    assert any('.attn.rpe_mlp.2.weight' in k for k in ckpt['model'])
    converted = convert_state_dict(ckpt)
    assert set(converted) == converted_keys(reference_sd, 'official')
    for key, value in converted.items():
        assert torch.equal(value, reference_sd[key]), key
    assert converted['stages.0.blocks.0.attn.cpb_mlp.2.weight'].abs().min() > 0  # not zeros
    report = [m for m in log_messages if 'swinv2_mm: converted' in m][-1]
    assert 'official layout' in report
    assert 'dropped: decoder.* (2 tensors), window buffers (16 tensors), mask_token' in report


@pytest.mark.parametrize('make', [mmengine_simmim_layout, mmengine_simmim_mmpretrain_layout])
def test_mmengine_simmim_checkpoint(reference_sd, make, log_messages):
    """A SimMIM run's checkpoint (ours or mmpretrain's) loads into a backbone: mask token and
    neck dropped and reported."""
    ckpt = make(reference_sd)
    assert ckpt['state_dict']['neck.decoder.0.weight'].shape[0] == SIMMIM_STRIDE ** 2 * 3
    model = ours()
    report = load_pretrained(model, ckpt)
    assert not report['missing'] and not report['unexpected']
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference_sd.items())
    converted = [m for m in log_messages if 'swinv2_mm: converted' in m][-1]
    assert converted.endswith('dropped: neck.* (2 tensors), mask_token')


@pytest.mark.parametrize('window', [12, 16, 24])
def test_window_transfer(reference_sd, window):
    """Weights saved at window 8 load at other windows with nothing missing."""
    model = ours(window_size=window, pretrained_window_sizes=8)
    report = load_pretrained(model, official_layout(reference_sd))
    assert set(report['missing']) == {k for k in model.state_dict() if re.match(r'norm[012]\.', k)}
    assert not any(k.startswith(('stages', 'patch_embed')) for k in report['missing'])
    attn = model.stages[0].blocks[0].attn
    small, large = attn.position_bias((8, 8)), attn.position_bias((window, window))
    assert large.shape[-1] == window * window
    # log-CPB is continuous: offsets within the pretrained window keep their bias ...
    index = [r * window + c for r in range(8) for c in range(8)]
    assert torch.allclose(large[:, index][:, :, index], small, atol=1e-6)
    # ... and normalised by the running window instead, the bias changes with it
    attn.pretrained_window_size = (0, 0)
    unnormalised = attn.position_bias((window, window))
    assert not torch.allclose(unnormalised[:, index][:, :, index], small, atol=1e-3)


def test_window_changes_output(reference_sd):
    x = torch.randn(1, 3, 128, 128)
    outs = []
    for window in (8, 16):
        model = ours(window_size=window, pretrained_window_sizes=8).eval()
        load_pretrained(model, reference_sd)
        with torch.no_grad():
            outs.append(model(x)[0])
    assert max_abs_diff(*outs) > 1e-3


def test_architecture_mismatch_names_key_and_shapes(reference_sd):
    wider = ours(arch=dict(embed_dims=64, depths=(2, 2, 2, 2), num_heads=(2, 4, 4, 8)))
    with pytest.raises(ValueError, match=r'patch_embed\.proj\.weight is \(32, 3, 4, 4\) in the '
                                         r'checkpoint but \(64, 3, 4, 4\) in the model'):
        load_pretrained(wider, reference_sd)
    deeper = ours(arch=dict(embed_dims=32, depths=(2, 2, 4, 2), num_heads=(2, 4, 4, 8)))
    with pytest.raises(ValueError, match=r'stages\.2\.blocks\.2\.\S+ is absent in the checkpoint'):
        load_pretrained(deeper, reference_sd)


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_init_cfg_pretrained_from_files(tmp_path, reference_sd, suffix):
    path = str(tmp_path / f'weights{suffix}')
    if suffix == '.safetensors':
        save_file({k: v.contiguous() for k, v in timm_layout(reference_sd).items()}, path)
    else:
        torch.save(official_layout(reference_sd), path)
    model = ours(window_size=16, pretrained_window_sizes=8,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    sd = model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in reference_sd.items()
               if not re.match(r'norm[012]\.', k))


def test_unreadable_checkpoints(tmp_path, reference_sd):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_checkpoint(str(tmp_path / 'missing.pth'))
    path = tmp_path / 'truncated.pth'
    torch.save(official_layout(reference_sd), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match='truncated or not a checkpoint'):
        read_checkpoint(str(path))
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='truncated or not a checkpoint'):
        read_checkpoint(str(text))
    safetensors = tmp_path / 'cut.safetensors'
    save_file({'w': torch.ones(100)}, str(safetensors))
    safetensors.write_bytes(safetensors.read_bytes()[:60])
    with pytest.raises(ValueError, match='truncated or not a safetensors file'):
        read_checkpoint(str(safetensors))
    with pytest.raises(ValueError, match='no SwinV2 layout'):
        convert_state_dict({'conv1.weight': torch.zeros(1)})


def test_convert_checkpoint_tool(tmp_path, reference_sd):
    src, dst = tmp_path / 'hf.pth', tmp_path / 'out' / 'ours.safetensors'
    torch.save(hf_layout(reference_sd), src)
    subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'convert_checkpoint.py'),
                    str(src), str(dst)], check=True, cwd=ROOT)
    converted = read_checkpoint(str(dst))
    assert all(torch.equal(converted[k], reference_sd[k]) for k in converted)
    assert set(converted) == {k for k in reference_sd if not re.match(r'norm[012]\.', k)}
