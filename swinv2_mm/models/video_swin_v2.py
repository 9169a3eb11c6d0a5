"""Video-SwinV2: the SwinV2 backbone over (time, height, width), for MMAction2."""
from typing import Optional, Sequence, Tuple, Union

import torch

from .errors import ConfigError
from .swin_v2 import SwinV2Backbone

WindowArg = Union[int, Sequence[int], Sequence[Union[int, Sequence[int]]]]


def spatial_int_to_3d(value, temporal: int):
    """An int (or per-stage ints) means a spatial size: w -> (temporal, w, w)."""
    if isinstance(value, int):
        return (temporal, value, value)
    if isinstance(value, list):
        return [spatial_int_to_3d(v, temporal) for v in value]
    return value


class VideoSwinTransformerV2(SwinV2Backbone):
    """Swin Transformer V2 on video clips: 3D patches, 3D (shifted) windows, 3D log-CPB.

    The blocks are those of the 2D backbone with three axes: attention runs in
    (t, h, w) windows and the log-CPB meta network takes (dt, dy, dx), so any temporal
    and spatial window works. Patch merging halves height and width only. A 2D SwinV2
    checkpoint in any known layout given as ``init_cfg=dict(type='Pretrained', ...)`` is
    inflated (see :mod:`swinv2_mm.checkpoint.inflate`).

    Args:
        arch: as for :class:`SwinTransformerV2`.
        patch_size: (t, h, w) patch, default (2, 4, 4).
        window_size: an int w (spatial; the temporal window is ``temporal_window``), a
            (t, h, w) tuple, or a per-stage list of either. Along an axis where the map is
            not larger than the window, the window shrinks to the map without shift.
        temporal_window: temporal window used where ``window_size`` gives only an int.
        pretrained_window_sizes: as ``window_size``, where an int p means (0, p, p): 0 on
            an axis normalises the log-CPB by the stage's own window there.
        out_indices: stages returned as NCTHW maps; a single index returns the tensor
            itself, as MMAction2's heads expect.
        Others as for :class:`SwinTransformerV2`.
    """

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 patch_size: Sequence[int] = (2, 4, 4), window_size: WindowArg = (8, 7, 7),
                 temporal_window: int = 8, pretrained_window_sizes: WindowArg = 0,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (3,), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: Union[bool, Sequence[bool]] = False,
                 attn_chunk_size: Union[int, Sequence[int]] = 0,
                 fused_attn: Optional[bool] = None,
                 extra_norm_every_n_blocks: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        patch_size = tuple(patch_size)
        if len(patch_size) != 3:
            raise ConfigError(f'patch_size: expected (t, h, w), got {patch_size!r}')
        super().__init__(arch, in_channels, patch_size,
                         spatial_int_to_3d(window_size, temporal_window),
                         spatial_int_to_3d(pretrained_window_sizes, 0), mlp_ratio, qkv_bias,
                         drop_rate, attn_drop_rate, drop_path_rate, out_indices, frozen_stages,
                         norm_eval, with_cp, attn_chunk_size, fused_attn,
                         extra_norm_every_n_blocks, init_cfg)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """(B, C, T, H, W) -> NCTHW map(s) of ``out_indices`` at (T/2, H/4 * 2^-i, W/4 * 2^-i)."""
        if x.ndim != 5:
            raise ConfigError(f'input: expected a (B, C, T, H, W) clip batch, got shape '
                             f'{tuple(x.shape)}')
        outs = tuple(out.movedim(-1, 1).contiguous() for out in self.stage_outputs(x))
        return outs[0] if len(outs) == 1 else outs
