"""Converts SwinV2 weights of every public layout into swinv2_mm's layout.

Recognised: the official microsoft release (also under ``{'model': ...}``, and SimMIM's
``encoder.`` prefix with its ``rpe_mlp`` meta networks), timm, mmpretrain (backbone alone
or under ``backbone.``), HF transformers ``Swinv2Model`` / ``Swinv2ForImageClassification``,
and swinv2_mm itself (also under ``backbone.``, as in a detector or SimMIM checkpoint).
Window-dependent buffers, heads, necks, decoders and mask tokens are dropped.
"""
import re
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import torch
from mmengine.logging import print_log

# Keys never carried over: window-dependent buffers (recomputed for any window).
_BUFFER_SUFFIXES = ('relative_coords_table', 'relative_position_index', 'attn_mask', 'k_bias')
# Wrappers around a state dict in training checkpoints.
_WRAPPERS = ('state_dict', 'model', 'module', 'ema_state_dict')
# Prefixes of the backbone's keys inside a bigger model: mmengine's, HF's and SimMIM's.
_PREFIXES = ('backbone.', 'swinv2.', 'encoder.')
# The order in which mmpretrain's nn.Unfold lays out a 2x2 neighbourhood, in terms of
# the official concatenation order [(0,0), (1,0), (0,1), (1,1)]; a self-inverse permutation.
_UNFOLD_ORDER = [0, 2, 1, 3]


class Renamed(NamedTuple):
    """One tensor of a checkpoint under its swinv2_mm name.

    ``key`` is None for tensors outside the backbone (heads, necks, decoders, mask
    tokens); window buffers keep a name (``stages.{i}.blocks.{j}.attn.relative_...``) so
    that they can be inspected, though conversion drops them.
    """
    key: Optional[str]
    value: torch.Tensor
    original: str  # the key in the checkpoint


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


def detect_layout(sd: Mapping[str, torch.Tensor], source: str = 'checkpoint') -> str:
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
    raise ValueError(f'{source}: no SwinV2 layout recognised (expected official, timm, '
                     f'mmpretrain, HF transformers or swinv2_mm keys); first keys: {keys[:5]}')


def _split_backbone(sd: Mapping[str, torch.Tensor]
                    ) -> Tuple[Dict[str, Tuple[torch.Tensor, str]], Dict[str, torch.Tensor]]:
    """Removes wrapper prefixes: ({backbone key: (tensor, original key)}, {original key:
    tensor} of everything outside the backbone prefix)."""
    inside = {(k[len('module.'):] if k.startswith('module.') else k): (v, k) for k, v in sd.items()}
    outside: Dict[str, torch.Tensor] = {}
    for prefix in _PREFIXES:
        if prefix == 'encoder.' and any(k.startswith('embeddings.') for k in inside):
            continue  # HF Swinv2Model's own encoder.* keys
        if any(k.startswith(prefix) for k in inside):
            outside.update({orig: v for k, (v, orig) in inside.items() if not k.startswith(prefix)})
            inside = {k[len(prefix):]: e for k, e in inside.items() if k.startswith(prefix)}
    return inside, outside


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
    (r'\.attn\.rpe_mlp\.', '.attn.cpb_mlp.'),  # SimMIM's name of the CPB meta network
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
_RULES = {'official': _OFFICIAL_RULES, 'timm': _OFFICIAL_RULES, 'hf': _HF_RULES,
          'mmpretrain': _MMPRETRAIN_RULES, 'swinv2_mm': []}
_HF_QKV = re.compile(r'^(.*)\.attention\.self\.(query|key|value)\.(weight|bias)$')
_LEAF = re.compile(r'^\w+$')  # a single tensor named in the report as it is (mask_token)


def is_window_buffer(key: str) -> bool:
    """Whether ``key`` names a buffer that depends on the window (recomputed, never loaded)."""
    return key.endswith(_BUFFER_SUFFIXES)


def _is_backbone_key(key: str) -> bool:
    return (key.startswith(('patch_embed.', 'stages.', 'norm_final.'))
            or re.match(r'^norm\d+\.', key) is not None)


def _shift_downsample_back(key: str) -> str:
    """timm / mmpretrain keep patch merging at the start of stage i; ours ends stage i - 1."""
    m = re.match(r'^stages\.(\d+)\.downsample\.(.*)$', key)
    if m:
        return f'stages.{int(m.group(1)) - 1}.downsample.{m.group(2)}'
    return key


def _hf_qkv(key: str, inside: Mapping[str, Tuple[torch.Tensor, str]]
            ) -> Iterator[Tuple[str, torch.Tensor]]:
    """HF splits qkv into query/key/value Linears with q and v biases: yields our
    (key, tensor) pairs for the query entry, nothing for the key and value entries."""
    base, part, kind = _HF_QKV.match(key).groups()
    if part != 'query':
        return
    if kind == 'weight':
        parts = [inside[f'{base}.attention.self.{p}.weight'][0] for p in ('query', 'key', 'value')]
        yield f'{base}.attn.qkv.weight', torch.cat(parts)
    else:
        yield f'{base}.attn.q_bias', inside[key][0]
        yield f'{base}.attn.v_bias', inside[f'{base}.attention.self.value.bias'][0]


def _renamed_backbone(inside: Mapping[str, Tuple[torch.Tensor, str]],
                      layout: str) -> Iterator[Renamed]:
    """Every tensor inside the backbone prefix under our name (None outside the backbone)."""
    rules = _RULES[layout]
    for key, (value, original) in inside.items():
        if layout == 'hf' and _HF_QKV.match(key):
            pairs = list(_hf_qkv(key, inside))
        else:
            pairs = [(key, value)]
        for name, tensor in pairs:
            new = _rename(name, rules)
            if layout in ('timm', 'mmpretrain'):
                new = _shift_downsample_back(new)
            if layout == 'mmpretrain' and new.endswith('downsample.reduction.weight'):
                tensor = _merge_weight_from_mmpretrain(tensor)
            yield Renamed(new if _is_backbone_key(new) else None, tensor, original)


def renamed_tensors(checkpoint: Mapping, source: str = 'checkpoint'
                    ) -> Tuple[str, List[Renamed]]:
    """(layout, every tensor of ``checkpoint`` under its swinv2_mm name): the one renaming
    that conversion and inspection share. The final norm becomes the last stage's output
    norm ``norm{i}``."""
    inside, outside = _split_backbone(unwrap_state_dict(checkpoint))
    layout = detect_layout({k: v for k, (v, _) in inside.items()}, source)
    items = [Renamed(None, v, k) for k, v in outside.items()]
    items += _renamed_backbone(inside, layout)
    stages = [int(r.key.split('.')[1]) for r in items if r.key and r.key.startswith('stages.')]
    final = f'norm{max(stages, default=3)}.'
    return layout, [r._replace(key=final + r.key[len('norm_final.'):])
                    if r.key and r.key.startswith('norm_final.') else r for r in items]


def _dropped_group(item: Renamed) -> str:
    """Report name of a dropped tensor: window buffers and mask tokens by kind, anything
    else by its top-level module (``head.*``), wrapper prefixes left out."""
    if item.key is not None and is_window_buffer(item.key):
        return 'window buffers'
    name = item.original
    while name.startswith(('module.',) + _PREFIXES):
        name = name.split('.', 1)[1]
    if name.rsplit('.', 1)[-1] == 'mask_token':
        return 'mask_token'
    return name.split('.', 1)[0] + '.*' if '.' in name else name


def summarize_dropped(items: List[Renamed]) -> str:
    """'decoder.* (2 tensors), mask_token, window buffers (48 tensors)', or 'nothing'."""
    counts: Dict[str, int] = {}
    for item in items:
        group = _dropped_group(item)
        counts[group] = counts.get(group, 0) + 1
    parts = [name if n == 1 and _LEAF.match(name) else f'{name} ({n} tensor{"s" * (n > 1)})'
             for name, n in counts.items()]
    return ', '.join(parts) or 'nothing'


def is_dropped(item: Renamed) -> bool:
    """Outside the backbone, or a window buffer."""
    return item.key is None or is_window_buffer(item.key)


def convert_state_dict(checkpoint: Mapping, verbose: bool = True,
                       source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """Any known SwinV2 layout -> swinv2_mm backbone state dict.

    Logs, in one line, the layout found and what it dropped, grouped (heads, necks,
    decoders, mask tokens, window-dependent buffers).
    """
    layout, items = renamed_tensors(checkpoint, source)
    dropped = [r for r in items if is_dropped(r)]
    out = {r.key: r.value for r in items if not is_dropped(r)}
    if verbose:
        print_log(f'swinv2_mm: converted {source} ({layout} layout, {len(out)} tensors); '
                  f'dropped: {summarize_dropped(dropped)}', logger='current')
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
