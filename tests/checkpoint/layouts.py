"""Checkpoint layouts built from a swinv2_mm state dict, as each public release stores them."""
import re

import torch

from swinv2_mm import SwinTransformerV2
from swinv2_mm.checkpoint import to_mmpretrain

TINY_ISH = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(2, 4, 4, 8))
SIMMIM_STRIDE = 32  # SimMIM's decoder predicts 32 x 32 RGB pixels per stage-3 token


def ours(**kwargs):
    kwargs.setdefault('drop_path_rate', 0.0)
    kwargs.setdefault('arch', TINY_ISH)
    return SwinTransformerV2(**kwargs)


def official_layout(sd, windows=(12, 12, 12, 12)):
    """swinv2_mm -> the official microsoft layout, with its window-dependent buffers: zero
    coordinate tables (1, 2W-1, 2W-1, 2) and indices (W*W, W*W) for stage i's window W, on
    the device of the weights (meta tensors stay shape-only)."""
    out = {}
    for key, value in sd.items():
        if re.match(r'norm[012]\.', key):
            continue
        key = re.sub(r'^stages\.', 'layers.', re.sub(r'^norm3\.', 'norm.', key))
        out[key] = value
        m = re.match(r'^(layers\.(\d+)\.blocks\.\d+\.attn)\.logit_scale$', key)
        if m:  # buffers of the window the stage ran at: ignored at any window
            w = windows[int(m.group(2))]
            out[m.group(1) + '.relative_coords_table'] = torch.zeros(
                1, 2 * w - 1, 2 * w - 1, 2, device=value.device)
            out[m.group(1) + '.relative_position_index'] = torch.zeros(
                w * w, w * w, dtype=torch.long, device=value.device)
    out['head.weight'] = torch.zeros(1000, sd['norm3.weight'].shape[0],
                                     device=sd['norm3.weight'].device)
    return {'model': out}


def simmim_layout(sd, windows=(12, 12, 12, 12)):
    """swinv2_mm -> the official SimMIM zoo: the official keys under ``encoder.`` with
    ``rpe_mlp`` for the CPB network, a mask token and the 1x1-conv pixel decoder."""
    g = torch.Generator().manual_seed(1)
    device, width = sd['norm3.weight'].device, sd['norm3.weight'].shape[0]

    def random(*shape):
        return torch.empty(shape, device='meta') if device.type == 'meta' \
            else torch.randn(shape, generator=g)
    out = {'encoder.' + k.replace('.attn.cpb_mlp.', '.attn.rpe_mlp.'): v
           for k, v in official_layout(sd, windows)['model'].items() if not k.startswith('head.')}
    out['encoder.mask_token'] = random(1, 1, sd['patch_embed.proj.weight'].shape[0])
    out['decoder.0.weight'] = random(SIMMIM_STRIDE ** 2 * 3, width, 1, 1)
    out['decoder.0.bias'] = random(SIMMIM_STRIDE ** 2 * 3)
    return {'model': out}


def mmengine_simmim_layout(sd, backbone_layout=lambda sd: sd):
    """A swinv2_mm (or, with ``to_mmpretrain``, mmpretrain) SimMIM training checkpoint:
    backbone, mask token and the neck's pixel decoder."""
    g = torch.Generator().manual_seed(2)
    width = sd['norm3.weight'].shape[0]
    out = {f'backbone.{k}': v for k, v in backbone_layout(sd).items()}
    out['backbone.mask_token'] = torch.randn(1, 1, sd['patch_embed.proj.weight'].shape[0],
                                             generator=g)
    out['neck.decoder.0.weight'] = torch.randn(SIMMIM_STRIDE ** 2 * 3, width, 1, 1, generator=g)
    out['neck.decoder.0.bias'] = torch.randn(SIMMIM_STRIDE ** 2 * 3, generator=g)
    return {'state_dict': out, 'meta': {'epoch': 100}}


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
                    .replace('mlp.fc1.', 'intermediate.dense.')
                    .replace('mlp.fc2.', 'output.dense.'))
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


def hf_model_layout(sd):
    """HF Swinv2Model: the classifier's ``swinv2.`` part alone."""
    return {k[len('swinv2.'):]: v for k, v in hf_layout(sd).items() if k.startswith('swinv2.')}


def mmengine_layout(sd):
    return {'state_dict': {f'backbone.{k}': v for k, v in sd.items()}, 'meta': {}}


def mmengine_mmpretrain_layout(sd):
    return {'state_dict': {f'backbone.{k}': v for k, v in to_mmpretrain(sd).items()}}


def encoder_prefixed_layout(sd):
    """The official layout under SimMIM's ``encoder.`` prefix, the CPB named cpb_mlp."""
    return {'model': {f'encoder.{k}': v for k, v in official_layout(sd)['model'].items()}}


def mmengine_simmim_mmpretrain_layout(sd):
    return mmengine_simmim_layout(sd, to_mmpretrain)


# case -> (make, layout, keeps window buffers): every layout the converter reads
LAYOUTS = {
    'official': (official_layout, 'official', True),
    'timm': (timm_layout, 'timm', True),
    'hf_classifier': (hf_layout, 'hf', False),
    'hf_model': (hf_model_layout, 'hf', False),
    'mmpretrain': (to_mmpretrain, 'mmpretrain', False),
    'swinv2_mm': (dict, 'swinv2_mm', False),
    'mmengine': (mmengine_layout, 'swinv2_mm', False),
    'mmengine_mmpretrain': (mmengine_mmpretrain_layout, 'mmpretrain', False),
    'official_encoder': (encoder_prefixed_layout, 'official', True),
    'official_simmim': (simmim_layout, 'official', True),
    'mmengine_simmim': (mmengine_simmim_layout, 'swinv2_mm', False),
    'mmengine_simmim_mmpretrain': (mmengine_simmim_mmpretrain_layout, 'mmpretrain', False),
}


def converted_keys(sd, layout):
    """The keys a conversion of ``sd`` in ``layout`` gives: all but the output norms of
    stages 0..2, which only mmpretrain and swinv2_mm files keep."""
    keeps_all = layout in ('swinv2_mm', 'mmpretrain')
    return {k for k in sd if keeps_all or not re.match(r'norm[012]\.', k)}
