"""The SwinV2 backbone over any number of spatial axes, where every option is declared."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule, constant_init, initialize

from .blocks import SwinV2Block, SwinV2Stage
from .options import (ConfigError, auto_arch_checkpoint, check_bool, check_chunk_size, check_int,
                      check_out_indices, check_positive, check_rate, is_auto_arch, per_axis,
                      per_stage, per_stage_window, pretrained_init_cfg, resolve_arch)
from .patches import PatchEmbed, PatchMerging
from .windows import effective_window

# The official SwinV2 initialisation, applied when the backbone is built. Its
# trunc_normal_(std=0.02) cuts at +-2, 100 standard deviations out: a plain normal (torch
# 2.14 draws the very same numbers for both; mmengine's TruncNormal samples another way).
OFFICIAL_INIT = [dict(type='Normal', layer='Linear', std=0.02, bias=0.0),
                 dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)]


def read_auto_arch(init_cfg):
    """arch='auto': what the checkpoint of the Pretrained ``init_cfg`` holds (memory-mapped)."""
    from ..checkpoint.inspect import format_arch, inspect_checkpoint
    pretrained = auto_arch_checkpoint(init_cfg)
    info = inspect_checkpoint(pretrained['checkpoint'], prefix=pretrained.get('prefix'))
    print_log(f"swinv2_mm: arch='auto': arch={format_arch(info.arch)} read from the "
              f"{info.layout} checkpoint {pretrained['checkpoint']!r}", logger='current')
    return info


class SwinV2Backbone(BaseModule):
    """Patch embedding and SwinV2 stages; subclasses fix ``num_axes`` and the output layout.

    Args:
        arch: 'tiny', 'small', 'base', 'large', 'huge', 'giant' (or t/s/b/l/h/g), a
            dict with ``embed_dims``, ``depths``, ``num_heads`` (and optionally
            ``extra_norm_every_n_blocks``), or 'auto': read all of these from the checkpoint
            of ``init_cfg`` (see :func:`swinv2_mm.checkpoint.inspect_checkpoint`), and
            ``pretrained_window_sizes`` too where the file keeps its window buffers
            (official and mmpretrain files) and none were given.
        in_channels: input channels.
        patch_size: patch edge, an int or one per axis.
        window_size: an int or one per stage (or per-axis tuples). A stage whose map is not
            larger than its window along an axis uses the map size there, without shift.
        pretrained_window_sizes: windows the weights were pretrained at, as
            ``window_size`` (0: the stage's own window); they set the log-CPB coordinate
            normalisation.
        mlp_ratio: MLP hidden width over the stage width.
        qkv_bias: learn q and v biases.
        drop_rate: dropout after the patch embedding, the attention projection and the MLP.
        attn_drop_rate: dropout of the attention weights.
        drop_path_rate: stochastic depth of the last block, linear from 0 over all blocks.
        out_indices: stages whose features (before downsampling, each through its own
            LayerNorm ``norm{i}``) are returned.
        frozen_stages: -1 nothing; 0 the patch embedding; k >= 1 also stages 0..k-1
            with the patch merging after each and their output norms.
        norm_eval: accepted for configs ported from mmpretrain, where it keeps BatchNorm
            statistics fixed; this backbone has only LayerNorms, which keep no statistics,
            so it changes nothing.
        with_cp: activation checkpointing of every block, for all stages or per stage
            (e.g. ``[True, True, False, False]``: the high-resolution stages only).
        attn_chunk_size: attend this many windows at a time (the paper's sequential
            attention; recomputed in backward), for all stages or per stage; 0: all at once.
        fused_attn: None: the static kernel rule of ``models/attention_kernels.py``
            (fused kernels wherever they measured faster, see docs/benchmarks.md); True:
            a fused kernel; False: explicit matrix products (the reference and export path).
        extra_norm_every_n_blocks: extra LN on the main branch after every n-th block of
            a stage (default: the arch's, 6 for huge and giant, 0 otherwise).
        init_cfg: mmengine's, e.g. ``dict(type='Pretrained', checkpoint=...)``: any SwinV2
            checkpoint layout, loaded through :func:`swinv2_mm.checkpoint.load_pretrained`.
    """

    num_axes: int  # spatial axes: 2 for images, 3 for video

    def __init__(self, arch: Union[str, dict] = 'tiny', *, in_channels: int = 3,
                 patch_size: Union[int, Sequence[int]] = 4,
                 window_size: Union[int, Sequence] = 8,
                 pretrained_window_sizes: Union[int, Sequence] = 0,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: Union[bool, Sequence[bool]] = False,
                 attn_chunk_size: Union[int, Sequence[int]] = 0,
                 fused_attn: Optional[bool] = None,
                 extra_norm_every_n_blocks: Optional[int] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        info = read_auto_arch(init_cfg) if is_auto_arch(arch) else None
        arch = resolve_arch(info.arch if info else arch)
        self.embed_dims = arch['embed_dims']
        depths, heads = list(arch['depths']), list(arch['num_heads'])
        self.num_stages = n = len(depths)
        self.num_features = [self.embed_dims * 2 ** i for i in range(n)]
        for i, (dim, h) in enumerate(zip(self.num_features, heads)):
            if dim % h:
                raise ConfigError(f'num_heads: stage {i} has {dim} channels, which {h} heads do '
                                  f'not divide; use a head count that divides {dim}')
        if extra_norm_every_n_blocks is None:
            extra_norm_every_n_blocks = arch.get('extra_norm_every_n_blocks', 0)
        check_int('extra_norm_every_n_blocks', extra_norm_every_n_blocks, 0)
        self.window_sizes = per_stage_window('window_size', window_size, n, self.num_axes,
                                             int_window=self.window_of_int)
        self.pretrained_window_sizes = per_stage_window(
            'pretrained_window_sizes', pretrained_window_sizes, n, self.num_axes, minimum=0,
            int_window=self.pretrained_window_of_int)
        if info:
            self.pretrained_window_sizes = self._checkpoint_pretrained_windows(info)
        self.out_indices = check_out_indices(out_indices, n)
        self.frozen_stages = check_int('frozen_stages', frozen_stages, -1)
        if frozen_stages > n:
            raise ConfigError(f'frozen_stages: {frozen_stages!r} is out of range -1..{n}')
        pretrained_init_cfg(init_cfg)  # checked now, used by init_weights
        self.norm_eval = check_bool('norm_eval', norm_eval)
        with_cp = per_stage('with_cp', with_cp, n, check_bool, 'a bool')
        chunks = per_stage('attn_chunk_size', attn_chunk_size, n, check_chunk_size, 'an int')
        if fused_attn is not None:
            check_bool('fused_attn', fused_attn)
        check_positive('mlp_ratio', mlp_ratio)
        if int(self.embed_dims * mlp_ratio) < 1:
            raise ConfigError(f'mlp_ratio: {mlp_ratio} gives an MLP of width 0 at '
                              f'{self.embed_dims} channels; use mlp_ratio >= 1 / {self.embed_dims}')
        block_kwargs = dict(mlp_ratio=mlp_ratio, qkv_bias=check_bool('qkv_bias', qkv_bias),
                            drop_rate=check_rate('drop_rate', drop_rate),
                            attn_drop_rate=check_rate('attn_drop_rate', attn_drop_rate),
                            fused_attn=fused_attn)
        check_rate('drop_path_rate', drop_path_rate)

        self.patch_embed = PatchEmbed(check_int('in_channels', in_channels, 1), self.embed_dims,
                                      per_axis('patch_size', patch_size, self.num_axes))
        self.embed_drop = nn.Dropout(drop_rate)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear rule
        self.stages = nn.ModuleList()
        for i, dim in enumerate(self.num_features):
            self.stages.append(SwinV2Stage(
                dim, depths[i], heads[i], window_size=self.window_sizes[i],
                pretrained_window_size=self.pretrained_window_sizes[i],
                drop_path_rates=rates[sum(depths[:i]):sum(depths[:i + 1])],
                extra_norm_every_n_blocks=extra_norm_every_n_blocks,
                downsample=PatchMerging(dim) if i < n - 1 else None,
                with_cp=with_cp[i], attn_chunk_size=chunks[i], **block_kwargs))
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))
        initialize(self, OFFICIAL_INIT)
        for m in self.modules():  # post-norms start at zero: every block starts as identity
            if isinstance(m, SwinV2Block):
                constant_init(m.norm1, 0.0)
                constant_init(m.norm2, 0.0)
        self._freeze_stages()

    def stage_map_sizes(self, input_size: Sequence[int]) -> List[Tuple[int, ...]]:
        """The token map of each stage for inputs of ``input_size`` (the axes after the
        channels): whole patches, then each patch merging halves the last two axes."""
        size = [math.ceil(s / p) for s, p in zip(input_size, self.patch_embed.patch_size)]
        sizes = []
        for _ in self.stages:
            sizes.append(tuple(size))
            size = size[:-2] + [math.ceil(s / 2) for s in size[-2:]]  # patch merging
        return sizes

    def attention_windows(self, input_size: Sequence[int]) -> List[Tuple[int, ...]]:
        """The window each stage attends in for inputs of ``input_size``: its
        ``window_size``, shrunk along an axis to a map that is not larger."""
        return [effective_window(size, stage.window_size, shifted=False)[0]
                for size, stage in zip(self.stage_map_sizes(input_size), self.stages)]

    def window_of_int(self, w: int) -> Tuple[int, ...]:
        """The window an int ``window_size`` (or per-stage entry) means: w along every axis."""
        return (w,) * self.num_axes

    def pretrained_window_of_int(self, p: int) -> Tuple[int, ...]:
        """The normaliser an int ``pretrained_window_sizes`` entry means: p along every axis."""
        return (p,) * self.num_axes

    def _checkpoint_pretrained_windows(self, info) -> List[Tuple[int, ...]]:
        """arch='auto': the windows the checkpoint's log-CPB tables were normalised by (2D
        windows (p, p) become (0, p, p) in 3D), unless non-zero ones were given."""
        from ..checkpoint.inspect import lift_windows, window_config
        given, found = self.pretrained_window_sizes, info.pretrained_window_sizes
        lifted = None if found is None else lift_windows(found, self.num_axes)
        if any(any(w) for w in given):
            if lifted is not None and lifted != given:
                print_log(f"swinv2_mm: arch='auto': keeping the given pretrained_window_sizes "
                          f"{window_config(given)}; the checkpoint's log-CPB tables were "
                          f"normalised by {window_config(found)}", logger='current')
            return given
        if lifted is None:
            print_log("swinv2_mm: arch='auto': could not read pretrained_window_sizes, the "
                      "checkpoint keeps no window buffers; assuming each stage's own window "
                      "(pretrained_window_sizes=0). If it was pretrained at other windows, set "
                      "pretrained_window_sizes=[w0, w1, ...] to them, one per stage",
                      logger='current')
            return given
        print_log(f"swinv2_mm: arch='auto': pretrained_window_sizes={window_config(found)}, "
                  f"the windows the checkpoint's log-CPB tables were normalised by (its stages "
                  f"ran at {window_config(info.window_sizes)})", logger='current')
        return lifted

    def init_weights(self):
        """Loads ``init_cfg=dict(type='Pretrained', checkpoint=...)`` through the converter,
        which reads every SwinV2 layout (mmengine's loader would expect ours), after any
        other initialiser the list names."""
        pretrained = pretrained_init_cfg(self.init_cfg)
        if pretrained is None:
            return super().init_weights()
        others = [c for c in self.init_cfg if c['type'] != 'Pretrained'] \
            if isinstance(self.init_cfg, list) else []
        if others:
            initialize(self, others)
        from ..checkpoint import load_pretrained
        load_pretrained(self, pretrained['checkpoint'], prefix=pretrained.get('prefix'))
        self._is_init = True

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
        if mode and self.norm_eval:  # no effect on LayerNorm (see norm_eval)
            for m in self.modules():
                if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)):
                    m.eval()
        return self

    def stage_outputs(self, x: torch.Tensor) -> List[torch.Tensor]:
        """(B, C_in, *S) -> normed channel-last features (B, *S_i, C_i) of ``out_indices``."""
        return self.encode_tokens(self.patch_embed(x))

    def encode_tokens(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Patch tokens (B, *S/p, C) -> normed channel-last features of ``out_indices``."""
        x = self.embed_drop(x)
        outs = []
        for i, stage in enumerate(self.stages):
            out, x = stage(x)  # out: (B, *S_i, C_i)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(out))
        return outs
