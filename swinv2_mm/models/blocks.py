"""SwinV2 transformer block and stage, written for any number of spatial axes."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from .attention import WindowAttentionV2
from .windows import (crop_to, effective_window, pad_to, padded_size, window_attention_mask,
                      window_partition, window_reverse)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, prob: float = 0.0):
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.prob == 0.0:
            return x
        keep = 1.0 - self.prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f'prob={self.prob}'


class Mlp(nn.Module):
    """Two-layer feed-forward network with GELU."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(x)
        if torch.is_grad_enabled():
            hidden = self.drop(self.act(hidden))
        else:  # inference: GELU in place, no second hidden-sized allocation
            hidden = torch.ops.aten.gelu_(hidden)
        return self.drop(self.fc2(hidden))


class SwinV2Block(nn.Module):
    """Residual post-norm block: x + DropPath(LN(WAttn(x))), then x + DropPath(LN(MLP(x)))."""

    def __init__(self, dim: int, num_heads: int, num_axes: int = 2,
                 pretrained_window: Sequence[int] = (0, 0), mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, extra_norm: bool = False,
                 fused_attn: Optional[bool] = None, attn_chunk_size: int = 0):
        super().__init__()
        self.attn = WindowAttentionV2(dim, num_heads, num_axes, pretrained_window, qkv_bias,
                                      attn_drop, drop, fused_attn, attn_chunk_size)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.norm2 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path)
        # huge / giant: an extra LN on the main branch stabilises very deep stages
        self.norm3 = nn.LayerNorm(dim) if extra_norm else None

    def window_attention(self, x: torch.Tensor, window: Tuple[int, ...], shift: Tuple[int, ...],
                         mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Pad to whole windows, shift, attend within windows, undo: (B, *S, C) -> same."""
        size = x.shape[1:-1]
        padded = padded_size(size, window)
        axes = tuple(range(1, len(size) + 1))
        x = pad_to(x, padded)
        if any(shift):
            x = torch.roll(x, [-s for s in shift], axes)
        windows = self.attn(window_partition(x, window), window, mask)  # (B*nW, N, C)
        x = window_reverse(windows, window, padded)
        if any(shift):
            x = torch.roll(x, list(shift), axes)
        return crop_to(x, size)

    def forward(self, x: torch.Tensor, window: Tuple[int, ...], shift: Tuple[int, ...],
                mask: Optional[torch.Tensor]) -> torch.Tensor:
        if torch.is_grad_enabled():
            x = x + self.drop_path(self.norm1(self.window_attention(x, window, shift, mask)))
            x = x + self.drop_path(self.norm2(self.mlp(x)))
        else:  # inference: each residual is added into the branch's fresh output
            x = self.norm1(self.window_attention(x, window, shift, mask)).add_(x)
            x = self.norm2(self.mlp(x)).add_(x)
        if self.norm3 is not None:
            x = self.norm3(x)
        return x


class SwinV2Stage(nn.Module):
    """A stage of blocks alternating regular and shifted windows, then an optional downsample.

    The window is configured per stage and adapted per input: see
    :func:`~swinv2_mm.models.windows.effective_window`.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window: Sequence[int],
                 pretrained_window: Sequence[int], drop_path: Sequence[float],
                 extra_norm_every_n_blocks: int = 0, downsample: Optional[nn.Module] = None,
                 with_cp: bool = False, **block_kwargs):
        super().__init__()
        self.window = tuple(window)
        self.with_cp = with_cp
        n = extra_norm_every_n_blocks
        self.blocks = nn.ModuleList([
            SwinV2Block(dim, num_heads, len(self.window), pretrained_window,
                        drop_path=drop_path[i], extra_norm=bool(n) and (i + 1) % n == 0,
                        **block_kwargs)
            for i in range(depth)])
        self.downsample = downsample

    def window_plan(self, size: Sequence[int], device: torch.device) -> List[tuple]:
        """(window, shift, mask) for the unshifted and the shifted blocks at this map size."""
        plans = []
        for shifted in (False, True):
            window, shift = effective_window(size, self.window, shifted)
            plans.append((window, shift, window_attention_mask(size, window, shift, device)))
        return plans

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, *S, C) -> (features before downsampling, input of the next stage)."""
        plans = self.window_plan(x.shape[1:-1], x.device)
        for i, block in enumerate(self.blocks):
            window, shift, mask = plans[i % 2]
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(block, x, window, shift, mask, use_reentrant=False)
            else:
                x = block(x, window, shift, mask)
        out = x
        if self.downsample is not None:
            x = self.downsample(x)
        return out, x
