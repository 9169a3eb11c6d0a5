"""Video-SwinV2: the SwinV2 backbone over (time, height, width), for MMAction2."""
from typing import Sequence, Tuple, Union

import torch

from .backbone import SwinV2Backbone
from .options import ConfigError, check_int

WindowArg = Union[int, Sequence[int], Sequence[Union[int, Sequence[int]]]]


class VideoSwinTransformerV2(SwinV2Backbone):
    """Swin Transformer V2 on video clips: 3D patches, 3D (shifted) windows, 3D log-CPB.

    The blocks are those of the 2D backbone with three axes: attention runs in
    (t, h, w) windows and the log-CPB meta network takes (dt, dy, dx), so any temporal
    and spatial window works. Patch merging halves height and width only. A 2D SwinV2
    checkpoint in any known layout given as ``init_cfg=dict(type='Pretrained', ...)`` is
    inflated (see :mod:`swinv2_mm.checkpoint.inflate`).

    Args (those that differ from :class:`SwinV2Backbone`, which describes the rest):
        patch_size: (t, h, w) patch, default (2, 4, 4).
        window_size: an int w, meaning (``temporal_window``, w, w); three ints (t, h, w)
            for every stage; or one entry per stage, each an int or (t, h, w). A list and a
            tuple mean the same; three ints with a three-stage arch are refused where the
            two readings differ. Along an axis where the map is not larger than the window,
            the window shrinks to the map without shift.
        temporal_window: the temporal window of an int ``window_size`` (or entry).
        pretrained_window_sizes: as ``window_size``, where an int p means (0, p, p): 0 on
            an axis normalises the log-CPB by the stage's own window there.
        out_indices: stages returned as NCTHW maps; a single index returns the tensor
            itself, as MMAction2's heads expect.
    """

    num_axes = 3

    def __init__(self, arch: Union[str, dict] = 'tiny', *,
                 patch_size: Union[int, Sequence[int]] = (2, 4, 4),
                 window_size: WindowArg = (8, 7, 7), temporal_window: int = 8,
                 pretrained_window_sizes: WindowArg = 0,
                 out_indices: Union[int, Sequence[int]] = (3,), **kwargs):
        # read by window_of_int while the base class checks the windows
        self.temporal_window = check_int('temporal_window', temporal_window, 1)
        super().__init__(arch, patch_size=patch_size, window_size=window_size,
                         pretrained_window_sizes=pretrained_window_sizes,
                         out_indices=out_indices, **kwargs)

    def window_of_int(self, w: int) -> Tuple[int, int, int]:
        return (self.temporal_window, w, w)

    def pretrained_window_of_int(self, p: int) -> Tuple[int, int, int]:
        return (0, p, p)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """(B, C, T, H, W) -> NCTHW map(s) of ``out_indices`` at (T/2, H/4 * 2^-i, W/4 * 2^-i)."""
        if x.ndim != 5:
            raise ConfigError(f'input: expected a (B, C, T, H, W) clip batch, got shape '
                              f'{tuple(x.shape)}')
        outs = tuple(out.movedim(-1, 1).contiguous() for out in self.stage_outputs(x))
        return outs[0] if len(outs) == 1 else outs
