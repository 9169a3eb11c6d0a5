"""Layout detection, conversion, window transfer and loading errors."""
import os
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from swinv2_mm import SwinTransformerV2, convert_state_dict, load_pretrained
from swinv2_mm.checkpoint import detect_layout, read_checkpoint, to_mmpretrain
from tests.helpers import ROOT, max_abs_diff, randomize_

TINY_ISH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(2, 4, 4, 8))


def ours(**kwargs):
    kwargs.setdefault('drop_path_rate', 0.0)
    kwargs.setdefault('arch', TINY_ISH)
    return SwinTransformerV2(**kwargs)


def official_layout(sd):
    """swinv2_mm -> the official microsoft layout, with its window-dependent buffers."""
    out = {}
    for key, value in sd.items():
        if re.match(r'norm[012]\.', key):
            continue
        key = re.sub(r'^stages\.', 'layers.', key).replace('norm3.', 'norm.')
        out[key] = value
        m = re.match(r'^(layers\.\d+\.blocks\.\d+\.attn)\.logit_scale$', key)
        if m:  # buffers of a window-12 model: they must be ignored at any window
            out[m.group(1) + '.relative_coords_table'] = torch.zeros(1, 23, 23, 2)
            out[m.group(1) + '.relative_position_index'] = torch.zeros(144, 144, dtype=torch.long)
    out['head.weight'] = torch.zeros(1000, 256)
    return {'model': out}


def timm_layout(sd):
    out = {}
    for key, value in official_layout(sd)['model'].items():
        m = re.match(r'^layers\.(\d+)\.downsample\.(.*)$', key)
        if m:
            key = f'layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}'
        out[key.replace('head.weight', 'head.fc.weight')] = value
    return out


def hf_layout(sd):
    """swinv2_mm -> HF Swinv2ForImageClassification keys."""
    out = {}
    for key, value in sd.items():
        if re.match(r'norm[012]\.', key):
            continue
        m = re.match(r'^stages\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
        if m:
            i, j, rest = m.groups()
            base = f'swinv2.encoder.layers.{i}.blocks.{j}.'
            if rest == 'attn.qkv.weight':
                for part, w in zip(('query', 'key', 'value'), value.chunk(3)):
                    out[base + f'attention.self.{part}.weight'] = w
                continue
            rest = (rest.replace('attn.q_bias', 'attention.self.query.bias')
                    .replace('attn.v_bias', 'attention.self.value.bias')
                    .replace('attn.logit_scale', 'attention.self.logit_scale')
                    .replace('attn.cpb_mlp.', 'attention.self.continuous_position_bias_mlp.')
                    .replace('attn.proj.', 'attention.output.dense.')
                    .replace('norm1.', 'layernorm_before.').replace('norm2.', 'layernorm_after.')
                    .replace('mlp.fc1.', 'intermediate.dense.').replace('mlp.fc2.', 'output.dense.'))
            out[base + rest] = value
            continue
        key = (re.sub(r'^stages\.', 'swinv2.encoder.layers.', key)
               .replace('patch_embed.proj.', 'swinv2.embeddings.patch_embeddings.projection.')
               .replace('patch_embed.norm.', 'swinv2.embeddings.norm.')
               .replace('norm3.', 'swinv2.layernorm.'))
        out[key] = value
    out['classifier.weight'] = torch.zeros(10, 256)
    out['swinv2.embeddings.mask_token'] = torch.zeros(1, 1, 32)
    return out


@pytest.fixture(scope='module')
def reference_sd():
    torch.manual_seed(0)
    return randomize_(ours(), seed=7).state_dict()


@pytest.mark.parametrize('make,layout', [
    (official_layout, 'official'), (timm_layout, 'timm'), (hf_layout, 'hf'),
    (lambda sd: {k[len('swinv2.'):]: v for k, v in hf_layout(sd).items()  # HF Swinv2Model
                 if k.startswith('swinv2.')}, 'hf'),
    (to_mmpretrain, 'mmpretrain'), (lambda sd: sd, 'swinv2_mm'),
    (lambda sd: {'state_dict': {f'backbone.{k}': v for k, v in sd.items()},
                 'meta': {}}, 'swinv2_mm'),
    (lambda sd: {'state_dict': {f'backbone.{k}': v for k, v in to_mmpretrain(sd).items()}},
     'mmpretrain'),
    (lambda sd: {'model': {f'encoder.{k}': v for k, v in official_layout(sd)['model'].items()}},
     'official'),
])
def test_every_layout_round_trips(reference_sd, make, layout):
    converted = convert_state_dict(make(reference_sd))
    from swinv2_mm.checkpoint.convert import _strip_prefix, unwrap_state_dict
    assert detect_layout(_strip_prefix(unwrap_state_dict(make(reference_sd)))[0]) == layout
    expected = {k: v for k, v in reference_sd.items()
                if layout in ('swinv2_mm', 'mmpretrain') or not re.match(r'norm[012]\.', k)}
    assert set(converted) == set(expected)
    for key, value in expected.items():
        assert torch.equal(converted[key], value), key


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
