"""Patch embedding and patch merging, for any number of spatial axes."""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .options import ConfigError


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
