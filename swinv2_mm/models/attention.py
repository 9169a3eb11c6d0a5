"""Scaled cosine window attention of SwinV2 with a log-spaced continuous position bias."""
import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError
from .position_bias import build_cpb_mlp, continuous_position_bias

LOGIT_SCALE_INIT = math.log(10.0)
LOGIT_SCALE_MAX = math.log(100.0)  # tau >= 0.01


class WindowAttentionV2(nn.Module):
    """Multi-head attention inside windows: cos(q, k) / tau + B, tau learnable per head.

    ``fused=True`` folds the cosine normalisation and the clamped scale into q and k
    and calls ``scaled_dot_product_attention`` with bias and mask as one additive
    mask; ``fused=False`` is the explicit reference computation (and export path).
    """

    def __init__(self, dim: int, num_heads: int, num_axes: int = 2,
                 pretrained_window: Sequence[int] = (0, 0), qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, fused: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f'num_heads: {num_heads} heads do not divide {dim} channels; '
                             f'choose a head count that divides the stage width')
        self.num_heads = num_heads
        self.pretrained_window = tuple(pretrained_window)
        self.fused = fused
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), LOGIT_SCALE_INIT))
        self.cpb_mlp = build_cpb_mlp(num_axes, num_heads)
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:  # SwinV2 learns q and v biases; k has none
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def qkv_bias(self) -> Optional[torch.Tensor]:
        if self.q_bias is None:
            return None
        return torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])

    def position_bias(self, window: Sequence[int]) -> torch.Tensor:
        """Position bias (heads, N, N) for the window this call runs at."""
        return continuous_position_bias(self.cpb_mlp, window, self.pretrained_window)

    def forward(self, x: torch.Tensor, window: Sequence[int],
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B * nW, N, C) windows; mask: (nW, N, N) additive or None."""
        bw, n, c = x.shape
        heads = self.num_heads
        nw = 1 if mask is None else mask.shape[0]
        qkv = F.linear(x, self.qkv.weight, self.qkv_bias())
        # (B*nW, N, 3, h, hd) -> (3, B, nW*h, N, hd): windows and heads share one batch axis
        qkv = qkv.view(bw // nw, nw, n, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.reshape(3, bw // nw, nw * heads, n, c // heads).unbind(0)
        scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()  # (h, 1, 1)
        bias = self.position_bias(window).unsqueeze(0)  # (1, h, N, N)
        if mask is not None:
            bias = bias + mask.unsqueeze(1).to(bias.dtype)  # (nW, h, N, N)
        bias = bias.reshape(nw * heads, n, n)
        scale = scale.repeat(nw, 1, 1)  # (nW*h, 1, 1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        drop = self.attn_drop if self.training else 0.0
        if self.fused:
            out = F.scaled_dot_product_attention(q * scale.to(q.dtype), k, v,
                                                 attn_mask=bias.to(q.dtype), dropout_p=drop, scale=1.0)
        else:
            attn = torch.softmax((q @ k.transpose(-2, -1)) * scale + bias, dim=-1)
            out = F.dropout(attn, drop, self.training).to(v.dtype) @ v
        # (B, nW*h, N, hd) -> (B*nW, N, C)
        out = out.view(bw // nw, nw, heads, n, c // heads).permute(0, 1, 3, 2, 4).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))
