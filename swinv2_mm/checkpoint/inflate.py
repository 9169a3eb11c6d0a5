"""2D -> 3D inflation: a 2D SwinV2 checkpoint initialises a Video-SwinV2.

Two tensors change shape; every other one is shared as is:
- the patch-embedding kernel (C, 3, p, p) is repeated over the temporal kernel t and
  divided by t, so a clip of identical frames embeds like one frame;
- every first CPB layer (512, 2) gains a zero column for dt in front of (dy, dx), so
  each temporal offset starts with the 2D bias of its spatial offset.
"""
from typing import Dict, Mapping

import torch

PATCH_KERNEL = 'patch_embed.proj.weight'
CPB_FIRST_LAYER = 'attn.cpb_mlp.0.weight'


def needs_inflation(sd: Mapping[str, torch.Tensor], model_sd: Mapping[str, torch.Tensor]) -> bool:
    """True when ``sd`` is a 2D checkpoint and the model is 3D."""
    a, b = sd.get(PATCH_KERNEL), model_sd.get(PATCH_KERNEL)
    return a is not None and b is not None and a.ndim == 4 and b.ndim == 5


def inflate_2d_to_3d(sd: Mapping[str, torch.Tensor],
                     model_sd: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The 2D state dict ``sd`` (swinv2_mm layout) in the shapes of the 3D ``model_sd``."""
    out = dict(sd)
    kernel = sd[PATCH_KERNEL]
    t = model_sd[PATCH_KERNEL].shape[2]
    out[PATCH_KERNEL] = kernel.unsqueeze(2).repeat(1, 1, t, 1, 1) / t  # (C, 3, t, p, p)
    for key, w in sd.items():
        target = model_sd.get(key)
        if key.endswith(CPB_FIRST_LAYER) and target is not None and w.shape[1] == 2 \
                and target.shape[1] == 3:
            out[key] = torch.cat([w.new_zeros(w.shape[0], 1), w], dim=1)  # (512, [dt, dy, dx])
    return out
