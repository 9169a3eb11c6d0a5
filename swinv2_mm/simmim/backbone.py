"""The SwinV2 encoder of SimMIM: masked patches are replaced by a learnt token."""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..models.swin_v2 import SwinTransformerV2


class SimMIMSwinTransformerV2(SwinTransformerV2):
    """SwinV2 whose patch tokens under a SimMIM mask become a learnt ``mask_token`` before
    stage 0; without a mask it is the plain backbone.

    Registered as ``SimMIMSwinTransformerV2`` because in mmpretrain's scope the name
    ``SwinTransformerV2`` builds mmpretrain's own class. Its weights (``mask_token`` aside)
    load into every downstream config through ``init_cfg=dict(type='Pretrained', ...)``.
    Arguments are :class:`~swinv2_mm.models.SwinV2Backbone`'s; ``out_indices`` defaults to
    the last stage, the input of SimMIM's linear decoder.
    """

    def __init__(self, arch='base', *, out_indices=(3,), **kwargs):
        super().__init__(arch, out_indices=out_indices, **kwargs)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, ...]:
        """(B, C, H, W) images and a (B, H/p, W/p) patch mask (1 = masked) -> NCHW maps."""
        if mask is None:
            return super().forward(x)
        tokens = self.patch_embed(x)  # (B, H/p, W/p, C)
        tokens = replace_masked_tokens(tokens, mask, self.mask_token)
        return tuple(out.permute(0, 3, 1, 2).contiguous() for out in self.encode_tokens(tokens))


def replace_masked_tokens(tokens: torch.Tensor, mask: torch.Tensor,
                          mask_token: torch.Tensor) -> torch.Tensor:
    """Tokens (B, *grid, C) with every position where ``mask`` (B, *grid) is non-zero set to
    ``mask_token`` (C values); the others untouched."""
    if mask.shape != tokens.shape[:-1]:
        raise ValueError(
            f'mask: expected one value per patch, {tuple(tokens.shape[:-1])} for this input, '
            f'got {tuple(mask.shape)}; set SimMIMMaskGenerator input_size to the crop size '
            f'and model_patch_size to the backbone patch_size')
    return torch.where(mask.unsqueeze(-1).bool(), mask_token.reshape(-1).to(tokens.dtype),
                       tokens)
