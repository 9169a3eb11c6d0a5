"""softmax(q k^T + bias) v over windows, and the static rule that picks its kernel.

The rule depends only on the device, the dtype, whether the bias needs a gradient, dropout
and the window's token count, never on timings: runs stay reproducible and resume exactly.
It follows ``python tools/benchmark.py --kernels`` on a 2-core x86 CPU, torch 2.14.1
(docs/benchmarks.md, "Attention kernels"):

- CUDA: ``scaled_dot_product_attention``; its fused kernels take an additive 4-D mask and
  return its gradient.
- CPU, bias without gradient (inference, frozen CPB), no dropout: SDPA with the 4-D mask,
  which runs its fused (flash) CPU kernel, 1.4-4.6x faster than explicit products at
  windows 7-32. A 3-D mask or a mask that needs a gradient sends SDPA to its math path instead.
- CPU training with a learnable bias, no dropout: ``flash_with_bias``, the fused CPU kernel
  forward and a backward that recomputes the probabilities from the saved log-sum-exp (no
  attention-sized tensor kept for backward): 1.2-1.6x faster than explicit in float32; in
  bfloat16 from 144 tokens per window on (window 12), below which explicit products win.
- Otherwise (dropout, small half-precision windows in training): explicit matrix products,
  in place where autograd allows.
"""
from typing import Optional

import torch
import torch.nn.functional as F

HALF_FLASH_MIN_TOKENS = 144  # bf16 training: explicit products measured faster below
# The backward recomputes probabilities below exp(-46) ~ 1e-20 (masked keys: -100 plus
# scores) as zero. Otherwise exp below about -88 and the products of tiny probabilities with
# small gradients land in float32's denormal range, whose exp and matrix products take paths
# 10-40x slower on x86 (measured: a whole train step 1.3x slower). The dropped mass, under
# N * 1e-20, is far below float32 rounding.
LOG_PROB_MIN = -46.0
PROB_MIN = 1.1e-20  # just above exp(LOG_PROB_MIN): every clamped entry becomes zero


def choose_kernel(q: torch.Tensor, bias: torch.Tensor, dropout_p: float,
                  fused: Optional[bool]) -> str:
    """'sdpa', 'flash_with_bias' or 'explicit' for these inputs; ``fused`` True or False
    forces a fused kernel or the explicit products, None applies the rule above."""
    if fused is False or (dropout_p > 0.0 and not q.is_cuda):
        return 'explicit'
    if q.is_cuda or not (bias.requires_grad and torch.is_grad_enabled()):
        return 'sdpa'
    half = q.dtype in (torch.bfloat16, torch.float16)
    if half and not fused and q.shape[-2] < HALF_FLASH_MIN_TOKENS:
        return 'explicit'
    return 'flash_with_bias'


class _FlashWithBias(torch.autograd.Function):
    """The fused CPU attention kernel with an additive bias that receives a gradient."""

    @staticmethod
    def forward(ctx, q, k, v, bias):
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=bias, scale=1.0)
        ctx.save_for_backward(q, k, v, bias, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, bias, out, lse = ctx.saved_tensors
        probs = q @ k.transpose(-2, -1)  # (B, H, N, N), recomputed
        probs.add_(bias).sub_(lse.unsqueeze(-1).to(probs.dtype)).clamp_(min=LOG_PROB_MIN).exp_()
        F.threshold_(probs, PROB_MIN, 0.0)
        grad_v = probs.transpose(-2, -1) @ grad_out
        grad_scores = grad_out @ v.transpose(-2, -1)
        grad_scores.sub_((grad_out * out).sum(-1, keepdim=True)).mul_(probs)
        del probs
        grad_q = grad_scores @ k
        grad_k = grad_scores.transpose(-2, -1) @ q
        return grad_q, grad_k, grad_v, grad_scores.sum_to_size(bias.shape)


def flash_with_bias(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    bias: torch.Tensor) -> torch.Tensor:
    """q, k, v: (B, H, N, d); bias: (1 or B, H, N, N) -> (B, H, N, d), scale 1."""
    return _FlashWithBias.apply(q, k, v, bias.to(q.dtype))


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                       dropout_p: float, in_place: bool) -> torch.Tensor:
    """Matrix products; ``in_place`` (inference only) reuses the score tensor for softmax."""
    attn = q @ k.transpose(-2, -1)
    attn.add_(bias.to(q.dtype))  # in place: backward does not need the product
    if in_place:
        torch.softmax(attn, -1, out=attn)
    else:
        attn = F.dropout(attn.softmax(-1), dropout_p, dropout_p > 0)
    return attn @ v


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                   dropout_p: float, in_place: bool) -> torch.Tensor:
    """``scaled_dot_product_attention``, the bias as a 4-D additive mask."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                          dropout_p=dropout_p, scale=1.0)


KERNELS = {
    'sdpa': sdpa_attention,
    'flash_with_bias': lambda q, k, v, bias, dropout_p, in_place: flash_with_bias(q, k, v, bias),
    'explicit': explicit_attention,
}


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, *,
                     dropout_p: float = 0.0, fused: Optional[bool] = None,
                     in_place: bool = False) -> torch.Tensor:
    """q, k, v: (B, H, N, d) with q already scaled; bias: (1 or B, H, N, N) -> (B, H, N, d).

    Callers fold windows and heads into H so that every kernel sees 4-D tensors;
    ``in_place`` (inference only) lets the explicit kernel reuse its score tensor."""
    kernel = KERNELS[choose_kernel(q, bias, dropout_p, fused)]
    return kernel(q, k, v, bias, dropout_p, in_place)
