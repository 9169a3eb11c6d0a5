"""SwinV2 backbone for MMDetection, MMSegmentation and MMAction2."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from .blocks import SwinV2Block, SwinV2Stage
from .errors import ConfigError

ARCH_ZOO: Dict[str, dict] = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
    'huge': dict(embed_dims=352, depths=(2, 2, 18, 2), num_heads=(8, 16, 32, 64),
                 extra_norm_every_n_blocks=6),
    'giant': dict(embed_dims=512, depths=(2, 2, 42, 4), num_heads=(16, 32, 64, 128),
                  extra_norm_every_n_blocks=6),
}
ARCH_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large', 'h': 'huge', 'g': 'giant'}
ARCH_KEYS = ('embed_dims', 'depths', 'num_heads')


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Arch name (or alias) or dict -> dict with embed_dims, depths, num_heads, extra norm."""
    if isinstance(arch, str):
        name = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if name not in ARCH_ZOO:
            raise ConfigError(f'arch: unknown name {arch!r}; choose one of {sorted(ARCH_ZOO)} '
                             f'or pass a dict with keys {ARCH_KEYS}')
        return dict(ARCH_ZOO[name])
    if not isinstance(arch, dict) or not set(ARCH_KEYS) <= set(arch):
        raise ConfigError(f'arch: a custom arch must be a dict with keys {ARCH_KEYS}, got {arch!r}')
    extra = set(arch) - set(ARCH_KEYS) - {'extra_norm_every_n_blocks'}
    if extra:
        raise ConfigError(f'arch: unknown keys {sorted(extra)}; allowed {ARCH_KEYS}')
    arch = dict(arch)
    if len(arch['depths']) != len(arch['num_heads']):
        raise ConfigError(f'arch: depths {arch["depths"]} and num_heads {arch["num_heads"]} '
                         f'must have one value per stage')
    return arch


def per_stage(value, num_stages: int, name: str, num_axes: int = 2) -> List[Tuple[int, ...]]:
    """An int, a per-axis tuple or a per-stage list -> one per-axis tuple per stage."""
    def axes(v):
        t = (v,) * num_axes if isinstance(v, int) else tuple(v)
        if len(t) != num_axes or not all(isinstance(i, int) for i in t):
            raise ConfigError(f'{name}: expected an int or {num_axes} ints per stage, got {v!r}')
        return t

    if isinstance(value, int):
        return [axes(value)] * num_stages
    if (isinstance(value, tuple) and len(value) == num_axes != num_stages
            and all(isinstance(v, int) for v in value)):
        return [axes(value)] * num_stages  # a tuple: one per-axis window for every stage
    value = list(value)  # a list: one entry per stage
    if len(value) != num_stages:
        raise ConfigError(f'{name}: expected an int or a list of {num_stages} values (one per '
                         f'stage 0..{num_stages - 1}), got {len(value)}: {value!r}')
    return [axes(v) for v in value]


def per_stage_option(value, num_stages: int, name: str, kind: type) -> list:
    """A bool/int for every stage, or a list of one per stage (e.g. ``with_cp``)."""
    values = [value] * num_stages if isinstance(value, kind) else list(value)
    if len(values) != num_stages or not all(isinstance(v, kind) for v in values):
        raise ConfigError(f'{name}: expected a {kind.__name__} or a list of {num_stages} '
                          f'(one per stage 0..{num_stages - 1}), got {value!r}')
    return values


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens: Conv(p, stride p) + LN; pads to whole patches."""

    def __init__(self, in_channels: int, dim: int, patch_size: Sequence[int]):
        super().__init__()
        self.patch_size = tuple(patch_size)
        conv = nn.Conv2d if len(self.patch_size) == 2 else nn.Conv3d
        self.proj = conv(in_channels, dim, self.patch_size, stride=self.patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, *S) -> (B, *S / p, C), channel-last."""
        size = x.shape[2:]
        if any(s < p for s, p in zip(size, self.patch_size)):
            axes = ('frames', 'height', 'width')[-len(size):]
            raise ConfigError(f'input: {dict(zip(axes, size))} is smaller than one patch '
                             f'{dict(zip(axes, self.patch_size))}; inputs must be at least one '
                             f'patch along every axis')
        pads = []
        for s, p in zip(reversed(size), reversed(self.patch_size)):
            pads += [0, -s % p]
        if any(pads):
            x = F.pad(x, pads)
        x = self.proj(x)
        return self.norm(x.movedim(1, -1))


class PatchMerging(nn.Module):
    """V2 patch merging over the last two spatial axes (H, W): concat 2x2 neighbours
    [(0,0),(1,0),(0,1),(1,1)] -> Linear(4C, 2C) -> LN. Leading axes (time) are kept."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *L, H, W, C) -> (B, *L, ceil(H/2), ceil(W/2), 2C); odd sizes are zero-padded."""
        *lead, h, w, c = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, [0, 0, 0, w % 2, 0, h % 2])
            h, w = h + h % 2, w + w % 2
        # (..., H/2, dh, W/2, dw, C) -> (..., H/2, W/2, dw, dh, C): neighbour index dw * 2 + dh
        x = x.reshape(-1, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5)
        x = x.reshape(*lead, h // 2, w // 2, 4 * c)
        return self.norm(self.reduction(x))


class SwinV2Backbone(BaseModule):
    """Patch embedding and SwinV2 stages over any number of spatial axes (2D and 3D share it).

    Subclasses fix the number of axes through ``patch_size`` and turn the channel-last
    stage outputs into the layout their toolbox expects.
    """

    def __init__(self, arch: Union[str, dict], in_channels: int, patch_size: Sequence[int],
                 window_size, pretrained_window_sizes, mlp_ratio: float, qkv_bias: bool,
                 drop_rate: float, attn_drop_rate: float, drop_path_rate: float,
                 out_indices: Sequence[int], frozen_stages: int, norm_eval: bool,
                 with_cp: Union[bool, Sequence[bool]], attn_chunk_size: Union[int, Sequence[int]],
                 fused_attn: Optional[bool], extra_norm_every_n_blocks: Optional[int],
                 init_cfg: Optional[dict]):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch)
        self.embed_dims = arch['embed_dims']
        depths, heads = list(arch['depths']), list(arch['num_heads'])
        self.num_stages = len(depths)
        num_axes = len(patch_size)
        if extra_norm_every_n_blocks is None:
            extra_norm_every_n_blocks = arch.get('extra_norm_every_n_blocks', 0)
        self.window_sizes = per_stage(window_size, self.num_stages, 'window_size', num_axes)
        self.pretrained_window_sizes = per_stage(pretrained_window_sizes, self.num_stages,
                                                 'pretrained_window_sizes', num_axes)
        with_cp = per_stage_option(with_cp, self.num_stages, 'with_cp', bool)
        chunks = per_stage_option(attn_chunk_size, self.num_stages, 'attn_chunk_size', int)
        if any(w < 1 for ws in self.window_sizes for w in ws):
            raise ConfigError(f'window_size: every window must be >= 1, got {window_size!r}')
        if any(p < 1 for p in patch_size):
            raise ConfigError(f'patch_size: every entry must be >= 1, got {tuple(patch_size)}')
        self.out_indices = tuple(out_indices)
        for i in self.out_indices:
            if not 0 <= i < self.num_stages:
                raise ConfigError(f'out_indices: {i} is out of range; stages are numbered '
                                 f'0..{self.num_stages - 1}')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ConfigError(f'frozen_stages: {frozen_stages} is out of range '
                             f'-1..{self.num_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.num_features = [self.embed_dims * 2 ** i for i in range(self.num_stages)]
        for i, (dim, h) in enumerate(zip(self.num_features, heads)):
            if h < 1 or dim % h:
                raise ConfigError(f'num_heads: stage {i} has {dim} channels, which {h} heads do '
                                 f'not divide; use a head count that divides {dim}')

        self.patch_embed = PatchEmbed(in_channels, self.embed_dims, patch_size)
        self.drop_after_pos = nn.Dropout(drop_rate)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear decay rule
        self.stages = nn.ModuleList()
        for i, dim in enumerate(self.num_features):
            self.stages.append(SwinV2Stage(
                dim, depths[i], heads[i], self.window_sizes[i], self.pretrained_window_sizes[i],
                drop_path=rates[sum(depths[:i]):sum(depths[:i + 1])],
                extra_norm_every_n_blocks=extra_norm_every_n_blocks,
                downsample=PatchMerging(dim) if i < self.num_stages - 1 else None,
                with_cp=with_cp[i], mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate,
                attn_drop=attn_drop_rate, fused_attn=fused_attn, attn_chunk_size=chunks[i]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))
        self.apply(_init_official)
        for m in self.modules():
            if isinstance(m, SwinV2Block):  # post-norms start at zero: every block is identity
                for norm in (m.norm1, m.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)
        self._freeze_stages()

    def init_weights(self):
        """Loads ``init_cfg=dict(type='Pretrained', checkpoint=...)`` through the converter."""
        if self.init_cfg and self.init_cfg.get('type') == 'Pretrained':
            from ..checkpoint import load_pretrained
            load_pretrained(self, self.init_cfg['checkpoint'], prefix=self.init_cfg.get('prefix'))
            self._is_init = True
        else:
            super().init_weights()

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed]
        for i in range(self.frozen_stages):
            frozen.append(self.stages[i])
            if hasattr(self, f'norm{i}'):
                frozen.append(getattr(self, f'norm{i}'))
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)):
                    m.eval()
        return self

    def stage_outputs(self, x: torch.Tensor) -> List[torch.Tensor]:
        """(B, C_in, *S) -> normed channel-last features (B, *S_i, C_i) of ``out_indices``."""
        x = self.drop_after_pos(self.patch_embed(x))  # (B, *S/p, C)
        outs = []
        for i, stage in enumerate(self.stages):
            out, x = stage(x)  # out: (B, *S_i, C_i)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(out))
        return outs


class SwinTransformerV2(SwinV2Backbone):
    """Swin Transformer V2 backbone (stages 0..3) with window-size-free log-CPB.

    Args:
        arch: 'tiny', 'small', 'base', 'large', 'huge', 'giant' (or t/s/b/l/h/g), or a
            dict with ``embed_dims``, ``depths``, ``num_heads`` (and optionally
            ``extra_norm_every_n_blocks``).
        window_size: an int or one int per stage. A stage whose map is not larger than
            its window along an axis uses the map size there, without shift.
        pretrained_window_sizes: windows the weights were pretrained at, per stage
            (0: the stage's own window); they set the log-CPB coordinate normalisation.
        out_indices: stages whose features (before downsampling, each through its own
            LN) are returned as NCHW maps at strides 4, 8, 16, 32.
        frozen_stages: -1 nothing; 0 the patch embedding; k >= 1 also stages 0..k-1
            with the patch merging after each and their output norms.
        norm_eval: keep every normalisation layer in eval mode while training.
        with_cp: activation checkpointing of every block, for all stages or per stage
            (e.g. ``[True, True, False, False]``: the high-resolution stages only).
        attn_chunk_size: attend this many windows at a time (the paper's sequential
            attention; recomputed in backward), for all stages or per stage; 0: all at once.
        fused_attn: scaled_dot_product_attention (True), explicit matrix products (False,
            the reference and export path), or None: SDPA on GPUs, explicit products on
            CPU (as fast or faster there, see docs/benchmarks.md).
        extra_norm_every_n_blocks: extra LN on the main branch after every n-th block of
            a stage (default 6 for huge and giant, 0 otherwise).
    """

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3, patch_size: int = 4,
                 window_size: Union[int, Sequence[int]] = 8,
                 pretrained_window_sizes: Union[int, Sequence[int]] = 0,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: Union[bool, Sequence[bool]] = False,
                 attn_chunk_size: Union[int, Sequence[int]] = 0,
                 fused_attn: Optional[bool] = None,
                 extra_norm_every_n_blocks: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(arch, in_channels, (patch_size, patch_size), window_size,
                         pretrained_window_sizes, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate,
                         drop_path_rate, out_indices, frozen_stages, norm_eval, with_cp,
                         attn_chunk_size, fused_attn, extra_norm_every_n_blocks, init_cfg)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(B, C, H, W) -> tuple of NCHW maps for ``out_indices``."""
        return tuple(out.permute(0, 3, 1, 2).contiguous() for out in self.stage_outputs(x))


def _init_official(m: nn.Module):
    """Official SwinV2 init: trunc-normal(0.02) Linear weights, zero biases, LN 1 / 0."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
