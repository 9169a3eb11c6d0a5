"""SwinV2 transformer block and stage, written for any number of spatial axes."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from .attention import WindowAttentionV2, inference_mode_of
from .windows import (WindowPlan, crop_to, pad_to, padded_size, window_partition, window_plan,
                      window_reverse)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training.
    (Our own: mmcv's and timm's are not dependencies of the model package.)"""

    def __init__(self, drop_path_rate: float = 0.0):
        super().__init__()
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path_rate == 0.0:
            return x
        keep = 1.0 - self.drop_path_rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f'drop_path_rate={self.drop_path_rate}'


class Mlp(nn.Module):
    """Two-layer feed-forward network with GELU."""

    def __init__(self, dim: int, hidden: int, drop_rate: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(x)
        if inference_mode_of(self):  # GELU in place: no second hidden-sized tensor
            hidden = torch.ops.aten.gelu_(hidden)
        else:
            hidden = self.drop(self.act(hidden))
        return self.drop(self.fc2(hidden))


class SwinV2Block(nn.Module):
    """Residual post-norm block: x + DropPath(LN(WAttn(x))), then x + DropPath(LN(MLP(x))).

    Keyword arguments other than ``drop_path_rate`` and ``extra_norm`` are the attention's
    (see :class:`WindowAttentionV2`), plus ``mlp_ratio`` and ``drop_rate`` for the MLP.
    """

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, extra_norm: bool = False,
                 **attn_kwargs):
        super().__init__()
        self.attn = WindowAttentionV2(dim, num_heads, drop_rate=drop_rate, **attn_kwargs)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path_rate)
        # huge / giant: an extra LN on the main branch stabilises very deep stages
        self.norm3 = nn.LayerNorm(dim) if extra_norm else None

    def window_attention(self, x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        """Pad to whole windows, shift, attend within windows, undo: (B, *S, C) -> same."""
        size = x.shape[1:-1]
        padded = padded_size(size, plan.window_size)
        axes = tuple(range(1, len(size) + 1))
        shifted = any(plan.shift_size)
        x = pad_to(x, padded)
        if shifted:
            x = torch.roll(x, [-s for s in plan.shift_size], axes)
        windows = self.attn(window_partition(x, plan.window_size), plan.window_size,
                            plan.mask)  # (B*nW, N, C)
        x = window_reverse(windows, plan.window_size, padded)
        if shifted:
            x = torch.roll(x, list(plan.shift_size), axes)
        return crop_to(x, size)

    def forward(self, x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        if inference_mode_of(self):  # each residual is added into the branch's fresh output
            x = self.norm1(self.window_attention(x, plan)).add_(x)
            x = self.norm2(self.mlp(x)).add_(x)
        else:
            x = x + self.drop_path(self.norm1(self.window_attention(x, plan)))
            x = x + self.drop_path(self.norm2(self.mlp(x)))
        if self.norm3 is not None:
            x = self.norm3(x)
        return x


class SwinV2Stage(nn.Module):
    """A stage of blocks alternating regular and shifted windows, then an optional downsample.

    The window is configured per stage and adapted per input (see
    :func:`~swinv2_mm.models.windows.effective_window`); ``block_kwargs`` go to every
    :class:`SwinV2Block`.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, *, window_size: Sequence[int],
                 drop_path_rates: Sequence[float], extra_norm_every_n_blocks: int = 0,
                 downsample: Optional[nn.Module] = None, with_cp: bool = False, **block_kwargs):
        super().__init__()
        self.window_size = tuple(window_size)
        self.with_cp = with_cp
        n = extra_norm_every_n_blocks
        self.blocks = nn.ModuleList([
            SwinV2Block(dim, num_heads, num_axes=len(self.window_size),
                        drop_path_rate=drop_path_rates[i],
                        extra_norm=bool(n) and (i + 1) % n == 0, **block_kwargs)
            for i in range(depth)])
        self.downsample = downsample

    def window_plans(self, size: Sequence[int], device: torch.device
                     ) -> Tuple[WindowPlan, WindowPlan]:
        """(regular, shifted) plans for a map of ``size``: even blocks use the first."""
        return (window_plan(size, self.window_size, False, device),
                window_plan(size, self.window_size, True, device))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, *S, C) -> (features before downsampling, input of the next stage)."""
        plans = self.window_plans(x.shape[1:-1], x.device)
        for i, block in enumerate(self.blocks):
            plan = plans[i % 2]
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(block, x, plan, use_reentrant=False)
            else:
                x = block(x, plan)
        out = x
        if self.downsample is not None:
            x = self.downsample(x)
        return out, x
