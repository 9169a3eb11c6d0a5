"""Converts SwinV2 weights of every public layout into swinv2_mm's layout.

Recognised: the official microsoft release (also under ``{'model': ...}`` and SimMIM's
``encoder.`` prefix), timm, mmpretrain (backbone alone or under ``backbone.``), HF
transformers ``Swinv2Model`` / ``Swinv2ForImageClassification``, and swinv2_mm itself
(also under ``backbone.``, as in a detector checkpoint). Window-dependent buffers,
heads, necks and mask tokens are dropped.
"""
import re
from typing import Dict, List, Mapping, Tuple

import torch
from mmengine.logging import print_log

# Keys never carried over: window-dependent buffers (recomputed for any window).
_BUFFER_SUFFIXES = ('relative_coords_table', 'relative_position_index', 'attn_mask', 'k_bias')
# Wrappers around a state dict in training checkpoints.
_WRAPPERS = ('state_dict', 'model', 'module', 'ema_state_dict')
# The order in which mmpretrain's nn.Unfold lays out a 2x2 neighbourhood, in terms of
# the official concatenation order [(0,0), (1,0), (0,1), (1,1)]; a self-inverse permutation.
_UNFOLD_ORDER = [0, 2, 1, 3]


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """Returns the tensor dict inside a training checkpoint (``model`` / ``state_dict``)."""
    sd = checkpoint
    while True:
        for key in _WRAPPERS:
            inner = sd.get(key) if isinstance(sd, Mapping) else None
            if isinstance(inner, Mapping) and inner and not torch.is_tensor(inner):
                sd = inner
                break
        else:
            break
    if not isinstance(sd, Mapping):
        raise ValueError(f'checkpoint: expected a dict of tensors, got {type(sd).__name__}')
    return {k: v for k, v in sd.items() if torch.is_tensor(v)}


def detect_layout(sd: Mapping[str, torch.Tensor]) -> str:
    """One of 'hf', 'mmpretrain', 'swinv2_mm', 'official', 'timm' (keys already unprefixed)."""
    keys = list(sd)
    if any(k.startswith('embeddings.patch_embeddings.') for k in keys):
        return 'hf'
    if any('.attn.w_msa.' in k or k.startswith('patch_embed.projection.') for k in keys):
        return 'mmpretrain'
    if any(k.startswith('stages.') for k in keys):
        return 'swinv2_mm'
    if any(k.startswith('layers.') for k in keys):
        # official keeps patch merging at the end of stage i (layers.0.downsample exists);
        # timm at the start of stage i + 1 (never in layers.0)
        if any(re.match(r'layers\.0\.downsample\.', k) for k in keys):
            return 'official'
        return 'timm'
    raise ValueError('checkpoint: no SwinV2 layout recognised (expected official, timm, '
                     f'mmpretrain, HF transformers or swinv2_mm keys); first keys: {keys[:5]}')


def _strip_prefix(sd: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Removes wrapper prefixes and keeps the backbone; returns (dict, dropped keys)."""
    dropped: List[str] = []
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    for prefix in ('backbone.', 'swinv2.', 'encoder.'):
        if prefix == 'encoder.' and any(k.startswith('embeddings.') for k in sd):
            continue  # HF Swinv2Model's own encoder.* keys
        if any(k.startswith(prefix) for k in sd):
            dropped += [k for k in sd if not k.startswith(prefix)]
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd, dropped


def _merge_weight_from_mmpretrain(w: torch.Tensor) -> torch.Tensor:
    """mmpretrain's patch-merging reduction weight (nn.Unfold order) -> official order."""
    out_dim, in_dim = w.shape
    c = in_dim // 4
    return w.reshape(out_dim, c, 4)[:, :, _UNFOLD_ORDER].transpose(1, 2).reshape(out_dim, in_dim)


def _merge_weight_to_mmpretrain(w: torch.Tensor) -> torch.Tensor:
    """Official patch-merging reduction weight -> mmpretrain's nn.Unfold order."""
    out_dim, in_dim = w.shape
    c = in_dim // 4
    return w.reshape(out_dim, 4, c)[:, _UNFOLD_ORDER].transpose(1, 2).reshape(out_dim, in_dim)


def _rename(key: str, rules: List[Tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


_OFFICIAL_RULES = [
    (r'^layers\.(\d+)\.', r'stages.\1.'),
    (r'^norm\.', 'norm_final.'),
]
_MMPRETRAIN_RULES = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'\.attn\.w_msa\.', '.attn.'),
    (r'\.ffn\.layers\.0\.0\.', '.mlp.fc1.'),
    (r'\.ffn\.layers\.1\.', '.mlp.fc2.'),
]
_HF_RULES = [
    (r'^embeddings\.patch_embeddings\.projection\.', 'patch_embed.proj.'),
    (r'^embeddings\.norm\.', 'patch_embed.norm.'),
    (r'^encoder\.layers\.(\d+)\.', r'stages.\1.'),
    (r'\.attention\.self\.continuous_position_bias_mlp\.', '.attn.cpb_mlp.'),
    (r'\.attention\.self\.logit_scale$', '.attn.logit_scale'),
    (r'\.attention\.output\.dense\.', '.attn.proj.'),
    (r'\.layernorm_before\.', '.norm1.'),
    (r'\.layernorm_after\.', '.norm2.'),
    (r'\.intermediate\.dense\.', '.mlp.fc1.'),
    (r'\.output\.dense\.', '.mlp.fc2.'),
    (r'^layernorm\.', 'norm_final.'),
]


def _is_backbone_key(key: str) -> bool:
    return (key.startswith(('patch_embed.', 'stages.', 'norm_final.'))
            or re.match(r'^norm\d+\.', key) is not None)


def _shift_downsample_back(key: str) -> str:
    """timm / mmpretrain keep patch merging at the start of stage i; ours ends stage i - 1."""
    m = re.match(r'^stages\.(\d+)\.downsample\.(.*)$', key)
    if m:
        return f'stages.{int(m.group(1)) - 1}.downsample.{m.group(2)}'
    return key


def _merge_hf_qkv(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """HF splits qkv into query/key/value Linears with q and v biases."""
    out = {}
    for key, value in sd.items():
        m = re.match(r'^(.*)\.attention\.self\.(query|key|value)\.(weight|bias)$', key)
        if not m:
            out[key] = value
            continue
        base, part, kind = m.groups()
        if part != 'query':
            continue
        if kind == 'weight':
            out[f'{base}.attn.qkv.weight'] = torch.cat(
                [sd[f'{base}.attention.self.{p}.weight'] for p in ('query', 'key', 'value')])
        else:
            out[f'{base}.attn.q_bias'] = value
            out[f'{base}.attn.v_bias'] = sd[f'{base}.attention.self.value.bias']
    return out


def convert_state_dict(checkpoint: Mapping, verbose: bool = True) -> Dict[str, torch.Tensor]:
    """Any known SwinV2 layout -> swinv2_mm backbone state dict.

    Logs, in one line, the layout found and the keys it dropped (heads, necks,
    mask tokens, window-dependent buffers).
    """
    sd, dropped = _strip_prefix(unwrap_state_dict(checkpoint))
    layout = detect_layout(sd)
    if layout == 'hf':
        sd = _merge_hf_qkv(sd)
    rules = {'official': _OFFICIAL_RULES, 'timm': _OFFICIAL_RULES, 'hf': _HF_RULES,
             'mmpretrain': _MMPRETRAIN_RULES, 'swinv2_mm': []}[layout]
    out: Dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(_BUFFER_SUFFIXES):
            dropped.append(key)
            continue
        new = _rename(key, rules)
        if layout in ('timm', 'mmpretrain'):
            new = _shift_downsample_back(new)
        if layout == 'mmpretrain' and new.endswith('downsample.reduction.weight'):
            value = _merge_weight_from_mmpretrain(value)
        if not _is_backbone_key(new):
            dropped.append(key)
            continue
        out[new] = value
    # the final norm is the output norm of the last stage
    last = max((int(k.split('.')[1]) for k in out if k.startswith('stages.')), default=3)
    out = {(f'norm{last}.' + k[len('norm_final.'):] if k.startswith('norm_final.') else k): v
           for k, v in out.items()}
    if verbose:
        summary = ', '.join(dropped[:6]) + (f', ... ({len(dropped)} in all)' if len(dropped) > 6 else '')
        print_log(f'swinv2_mm: converted a {layout} SwinV2 checkpoint ({len(out)} tensors); '
                  f'dropped: {summary or "nothing"}', logger='current')
    return out


def to_mmpretrain(sd: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """swinv2_mm layout -> mmpretrain backbone layout (used for interop tests and export)."""
    out = {}
    for key, value in sd.items():
        m = re.match(r'^stages\.(\d+)\.downsample\.(.*)$', key)
        if m:
            key = f'stages.{int(m.group(1)) + 1}.downsample.{m.group(2)}'
            if key.endswith('reduction.weight'):
                value = _merge_weight_to_mmpretrain(value)
        key = key.replace('patch_embed.proj.', 'patch_embed.projection.')
        key = re.sub(r'\.attn\.(?!w_msa)', '.attn.w_msa.', key)
        key = key.replace('.mlp.fc1.', '.ffn.layers.0.0.').replace('.mlp.fc2.', '.ffn.layers.1.')
        out[key] = value
    return out
