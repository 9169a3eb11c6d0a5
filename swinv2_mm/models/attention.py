"""Scaled cosine window attention of SwinV2 with a log-spaced continuous position bias."""
import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp

from .attention_kernels import window_attention
from .cache import TensorCache
from .position_bias import build_cpb_mlp, continuous_position_bias

LOGIT_SCALE_INIT = math.log(10.0)
LOGIT_SCALE_MAX = math.log(100.0)  # tau >= 0.01
NORM_EPS = 1e-12  # as F.normalize
BIAS_CACHE_SIZE = 4  # windows kept per block in inference (e.g. regular and shrunk ones)


def unit_rows(x: torch.Tensor, gain: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x / max(|x|, eps) along the last axis, times ``gain``: one multiply by a per-row factor.
    Computed in at least float32 (a no-op for float32 input): in half precision the squares
    overflow and eps underflows, and the zero rows of padded keys would become 0 * inf = NaN."""
    wide = x.to(torch.promote_types(x.dtype, torch.float32))
    factor = torch.linalg.vector_norm(wide, dim=-1, keepdim=True).clamp_min(NORM_EPS).reciprocal()
    return (wide * (factor if gain is None else factor * gain)).to(x.dtype)


def inference_mode_of(module: nn.Module) -> bool:
    """True for ``eval()`` without autograd: only then may a module overwrite its
    intermediate results in place (no backward needs them, and nothing random is drawn)."""
    return not module.training and not torch.is_grad_enabled()


class WindowAttentionV2(nn.Module):
    """Multi-head attention inside windows: cos(q, k) / tau + B, tau learnable per head.

    The cosine normalisation and the clamped scale 1/tau are folded into q and k; position
    bias and shift/pad mask form one additive 4-D bias. ``fused_attn=None`` lets the static
    rule of :mod:`.attention_kernels` pick the kernel, ``True`` forces a fused one where the
    device has it, ``False`` the explicit matrix products (the reference and export path).
    ``attn_chunk_size`` > 0 attends that many windows at a time (the paper's sequential
    attention), recomputing each chunk in backward: attention memory stays bounded.
    In inference (``eval()`` without autograd) the position bias is cached per window
    until a CPB weight changes.
    """

    def __init__(self, dim: int, num_heads: int, *, num_axes: int = 2,
                 pretrained_window_size: Sequence[int] = (0, 0), qkv_bias: bool = True,
                 attn_drop_rate: float = 0.0, drop_rate: float = 0.0,
                 fused_attn: Optional[bool] = None, attn_chunk_size: int = 0):
        super().__init__()
        self.num_heads = num_heads
        self.pretrained_window_size = tuple(pretrained_window_size)
        self.fused_attn = fused_attn
        self.attn_chunk_size = attn_chunk_size
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), LOGIT_SCALE_INIT))
        self.cpb_mlp = build_cpb_mlp(num_axes, num_heads)
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:  # SwinV2 learns q and v biases; k has none
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.attn_drop_rate = attn_drop_rate
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop_rate)
        self._bias_cache = TensorCache(BIAS_CACHE_SIZE)  # window -> bias, for _bias_state
        self._bias_state: Optional[tuple] = None

    def qkv_bias(self) -> Optional[torch.Tensor]:
        if self.q_bias is None:
            return None
        return torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])

    def _cpb_state(self) -> tuple:
        """Changes whenever a CPB weight does: replaced (``to``, ``half``, swapped ``.data``
        as EMA hooks do) or modified in place (``load_state_dict``, optimizer steps, EMA
        updates), which bumps the tensor's version counter."""
        return tuple((p.data_ptr(), p._version, p.dtype) for p in self.cpb_mlp.parameters())

    def position_bias(self, window_size: Sequence[int]) -> torch.Tensor:
        """Position bias (heads, N, N) for the window this call runs at; in inference taken
        from the cache, which is emptied as soon as the CPB weights change."""
        def compute():
            return continuous_position_bias(self.cpb_mlp, window_size, self.pretrained_window_size)

        if not inference_mode_of(self) or torch.compiler.is_compiling():
            return compute()
        state = self._cpb_state()
        if state != self._bias_state:
            self._bias_cache.clear()
            self._bias_state = state
        return self._bias_cache.get(tuple(window_size), compute)

    def forward(self, x: torch.Tensor, window_size: Sequence[int],
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B * nW, N, C) windows, batch-major; mask: (nW, N, N) additive or None."""
        pos = self.position_bias(window_size).unsqueeze(0)  # (1, h, N, N)
        windows = x.shape[0] if mask is None else mask.shape[0]  # along the chunked axis
        if self.attn_chunk_size and windows > self.attn_chunk_size:
            return self._attend_in_chunks(x, pos, mask)
        return self._attend(x, pos, mask)

    def _attend_in_chunks(self, x: torch.Tensor, pos: torch.Tensor,
                          mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Windows ``attn_chunk_size`` at a time; a chunk's activations (its bias plus mask
        too) exist only while it is computed and are recomputed in backward."""
        bw, n, c = x.shape
        size = self.attn_chunk_size
        if mask is None:  # one bias for all windows: chunk the flat window axis
            return torch.cat([self._attend_chunk(x[i:i + size], pos, None)
                              for i in range(0, bw, size)], 0)
        nw = mask.shape[0]
        x = x.view(bw // nw, nw, n, c)
        outs = [self._attend_chunk(x[:, i:i + size].reshape(-1, n, c), pos, mask[i:i + size])
                .view(bw // nw, -1, n, c) for i in range(0, nw, size)]
        return torch.cat(outs, 1).view(bw, n, c)

    def _attend_chunk(self, x: torch.Tensor, pos: torch.Tensor,
                      mask: Optional[torch.Tensor]) -> torch.Tensor:
        if torch.is_grad_enabled():
            return cp.checkpoint(self._attend, x, pos, mask, use_reentrant=False)
        return self._attend(x, pos, mask)

    def _attend(self, x: torch.Tensor, pos: torch.Tensor,
                mask: Optional[torch.Tensor]) -> torch.Tensor:
        """x: (B * nW, N, C); pos: (1, h, N, N) position bias; mask: (nW, N, N) or None."""
        bw, n, c = x.shape
        bias = pos if mask is None else pos + mask.unsqueeze(1).to(pos.dtype)  # (nW, h, N, N)
        heads, nw = self.num_heads, bias.shape[0]
        qkv = F.linear(x, self.qkv.weight, self.qkv_bias())
        q, k, v = qkv.view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)  # (B*nW, h, N, hd)
        scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()  # (h, 1, 1)
        q, k = unit_rows(q, scale), unit_rows(k)
        if nw > 1:  # (B, nW*h, N, hd): windows and heads share one axis (4-D for SDPA)
            q, k, v = (t.reshape(bw // nw, nw * heads, n, -1) for t in (q, k, v))
        out = window_attention(q, k, v, bias.reshape(1, nw * heads, n, n),
                               dropout_p=self.attn_drop_rate if self.training else 0.0,
                               fused=self.fused_attn, in_place=inference_mode_of(self))
        out = out.view(bw, heads, n, -1).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))
