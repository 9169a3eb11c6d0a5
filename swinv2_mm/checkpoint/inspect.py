"""Reads a SwinV2 checkpoint's architecture and pretraining windows from its tensors' shapes.

Everything but the pretraining windows comes from shapes alone, so shape-only checkpoints
(tensors on the ``meta`` device) inspect too. The windows come from the window-dependent
buffers that official and mmpretrain checkpoints keep: ``relative_coords_table``
(1, 2Wh-1, 2Ww-1, 2) gives the window W a stage ran at, and its largest value the window
p its log-CPB coordinates were normalised by, which is what ``pretrained_window_sizes``
must be set to for fine-tuning.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch

from .convert import is_dropped, renamed_tensors, summarize_dropped
from .loading import read_checkpoint, select_prefix, source_name

Window = Tuple[int, ...]

_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$')
PATCH_KERNEL = 'patch_embed.proj.weight'
# log-CPB coordinates: x / (p - 1) * 8, then sign(x) * log2(|x| + 1) / log2(8)
CPB_SCALE = 8.0


@dataclass(frozen=True)
class CheckpointInfo:
    """What a SwinV2 checkpoint holds, as backbone arguments.

    ``window_sizes`` are the windows each stage ran at and ``pretrained_window_sizes`` the
    windows its log-CPB coordinates were normalised by; both are None when the file keeps
    no window buffers (as HF and swinv2_mm files).
    """
    layout: str
    arch: dict  # embed_dims, depths, num_heads, extra_norm_every_n_blocks
    in_channels: int
    patch_size: Window
    num_axes: int  # 2: images, 3: video
    num_params: int  # backbone tensors in the file
    window_sizes: Optional[List[Window]]
    pretrained_window_sizes: Optional[List[Window]]
    dropped: str  # what conversion leaves out, e.g. 'decoder.* (2 tensors), mask_token'


Blocks = Dict[int, Dict[str, torch.Tensor]]  # block -> name within the block -> tensor


def stage_blocks(sd: Mapping[str, torch.Tensor]) -> Dict[int, Blocks]:
    """Tensors of the blocks by stage, in stage order: ``{stage: {block: {name: tensor}}}``."""
    stages: Dict[int, Blocks] = {}
    for key, value in sd.items():
        m = _BLOCK.match(key)
        if m:
            i, j, name = int(m.group(1)), int(m.group(2)), m.group(3)
            stages.setdefault(i, {}).setdefault(j, {})[name] = value
    return {i: stages[i] for i in sorted(stages)}


def _check_numbering(indices, what: str, source: str) -> int:
    """The count of ``indices``, which must be 0..n-1."""
    if sorted(indices) != list(range(len(indices))):
        raise ValueError(f'{source}: {what} are numbered {sorted(indices)}, not 0..'
                         f'{len(indices) - 1}; the file is incomplete or not a SwinV2 backbone')
    return len(indices)


def block_heads(block: Mapping[str, torch.Tensor]) -> Optional[int]:
    """Heads of a block: outputs of the CPB network's last Linear, else logit_scale's size."""
    for name in ('attn.cpb_mlp.2.weight', 'attn.logit_scale'):
        if name in block:
            return block[name].shape[0]
    return None


def stage_heads(blocks: Blocks, stage: int, source: str) -> int:
    """The one head count of every block of a stage."""
    heads = {block_heads(b) for b in blocks.values()}
    if len(heads) != 1 or None in heads:
        raise ValueError(f'{source}: the blocks of stage {stage} have head counts {heads} (read '
                         f'from attn.cpb_mlp.2.weight or attn.logit_scale); expected one per stage')
    return heads.pop()


def extra_norm_period(stages: List[Blocks], source: str) -> int:
    """n such that blocks n-1, 2n-1, ... of every stage carry the extra norm ``norm3``; 0: none."""
    marked = [sorted(j for j, b in blocks.items() if 'norm3.weight' in b) for blocks in stages]
    firsts = [m[0] + 1 for m in marked if m]
    if not firsts:
        return 0
    n = min(firsts)
    for i, (blocks, m) in enumerate(zip(stages, marked)):
        if m != list(range(n - 1, len(blocks), n)):
            raise ValueError(f'{source}: stage {i} has extra norms (norm3) after blocks {m}, which '
                             f'is not every {n}th block as in the other stages; swinv2_mm puts '
                             f'one after every n-th block of each stage')
    return n


def table_window(table: torch.Tensor) -> Window:
    """Window of a coordinate table (1, 2W0-1, ..., d)."""
    return tuple((s + 1) // 2 for s in table.shape[1:-1])


def index_window(index: torch.Tensor, num_axes: int) -> Optional[Window]:
    """Window of a square index (N, N), N = w ** num_axes; None when N is no such power."""
    w = round(index.shape[0] ** (1 / num_axes))
    return (w,) * num_axes if w ** num_axes == index.shape[0] else None


def normaliser_window(table: Optional[torch.Tensor], window: Window) -> Window:
    """Window p the log-CPB table of ``window`` was normalised by, per axis.

    The largest coordinate along an axis is log2(x + 1) / log2(8) with x = 8 (W - 1) / (p - 1),
    so p = 8 (W - 1) / x + 1. Without values (no table, a meta tensor, a window of 1 or an
    all-zero table) the window itself is taken, as when pretraining used no other one.
    """
    if table is None or table.is_meta:
        return window
    out = []
    for axis, w in enumerate(window):
        x = CPB_SCALE ** table[..., axis].max().item() - 1
        out.append(round(CPB_SCALE * (w - 1) / x + 1) if w > 1 and x > 1e-6 else w)
    return tuple(out)


def stage_windows(blocks: Blocks, num_axes: int) -> Optional[Tuple[Window, Window]]:
    """(window, normaliser window) of a stage from its first block's buffers; None without."""
    block = blocks[0]
    table = block.get('attn.relative_coords_table')
    index = block.get('attn.relative_position_index')
    if table is not None and table.ndim >= 3:
        window = table_window(table)
    elif index is not None and index.ndim == 2:
        window, table = index_window(index, num_axes), None
    else:
        return None
    return None if window is None else (window, normaliser_window(table, window))


def read_arch(embed_dims: int, stages: Dict[int, Blocks], source: str) -> dict:
    """embed_dims, depths, num_heads and extra_norm_every_n_blocks, checked for consistency."""
    _check_numbering(list(stages), 'stages', source)
    depths = [_check_numbering(list(blocks), f'blocks of stage {i}', source)
              for i, blocks in stages.items()]
    return dict(embed_dims=embed_dims, depths=depths,
                num_heads=[stage_heads(blocks, i, source) for i, blocks in stages.items()],
                extra_norm_every_n_blocks=extra_norm_period(list(stages.values()), source))


def inspect_checkpoint(checkpoint: Union[str, Mapping],
                       prefix: Optional[str] = None) -> CheckpointInfo:
    """Architecture, input, size and pretraining windows of a SwinV2 checkpoint in any layout.

    ``checkpoint`` is a path or URL (read memory-mapped where torch can) or a loaded
    checkpoint; ``prefix`` selects a sub-module's keys, as init_cfg's ``prefix``. Raises
    ValueError for a file that holds no SwinV2 backbone.
    """
    source = source_name(checkpoint)
    ckpt = read_checkpoint(checkpoint, mmap=True) if isinstance(checkpoint, str) else checkpoint
    layout, items = renamed_tensors(select_prefix(ckpt, prefix, source), source)
    named = {r.key: r.value for r in items if r.key is not None}  # window buffers included
    kernel = named.get(PATCH_KERNEL)  # (C, C_in, *patch)
    stages = stage_blocks(named)
    if kernel is None or not stages:
        raise ValueError(f'{source}: a SwinV2 backbone was expected (a patch embedding and '
                         f'stages of blocks), but this {layout}-like file has '
                         f'{"no patch embedding" if kernel is None else "no blocks"}')
    arch = read_arch(kernel.shape[0], stages, source)
    num_axes = kernel.ndim - 2
    windows = [stage_windows(blocks, num_axes) for blocks in stages.values()]
    known = None not in windows  # every stage keeps window buffers
    return CheckpointInfo(
        layout=layout, arch=arch,
        in_channels=kernel.shape[1], patch_size=tuple(kernel.shape[2:]), num_axes=num_axes,
        num_params=sum(r.value.numel() for r in items if not is_dropped(r)),
        window_sizes=[w for w, _ in windows] if known else None,
        pretrained_window_sizes=[p for _, p in windows] if known else None,
        dropped=summarize_dropped([r for r in items if is_dropped(r)]))


def window_config(windows: List[Window]) -> list:
    """Per-stage windows as a config writes them: an int for a square 2D window, else a tuple
    (a video int means (temporal_window, w, w) or (0, p, p), not w along every axis)."""
    return [w[0] if len(w) == 2 and w[0] == w[1] else w for w in windows]


def lift_windows(windows: List[Window], num_axes: int) -> Optional[List[Window]]:
    """Per-stage windows of a checkpoint for a backbone of ``num_axes`` axes: a 2D (p, p)
    becomes (0, p, p) in 3D (0: that axis is normalised by the stage's own window); None
    where the windows have more axes than the backbone."""
    if any(len(w) > num_axes for w in windows):
        return None
    return [(0,) * (num_axes - len(w)) + tuple(w) for w in windows]


def format_arch(arch: dict) -> str:
    """The arch as a config writes it, ``dict(embed_dims=..., ...)``; the extra norm only
    where there is one."""
    items = {k: v for k, v in arch.items() if k != 'extra_norm_every_n_blocks' or v}
    return 'dict(' + ', '.join(f'{k}={v}' for k, v in items.items()) + ')'
