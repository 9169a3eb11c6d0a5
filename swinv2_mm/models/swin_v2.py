"""The 2D SwinV2 backbone for MMDetection and MMSegmentation."""
from typing import Tuple

import torch

from .backbone import SwinV2Backbone


class SwinTransformerV2(SwinV2Backbone):
    """Swin Transformer V2 backbone (stages 0..3) with window-size-free log-CPB.

    Returns one NCHW map per ``out_indices`` entry, at strides 4, 8, 16, 32 for the
    default patch size. Every option is described in :class:`SwinV2Backbone`.
    """

    num_axes = 2

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(B, C, H, W) -> tuple of NCHW maps for ``out_indices``."""
        return tuple(out.permute(0, 3, 1, 2).contiguous() for out in self.stage_outputs(x))
