"""Shared test helpers: random non-trivial weights."""
import math

import torch
import torch.nn as nn


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere, post-norms and biases included (nothing zero-init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('logit_scale'):
                p.copy_(math.log(10) + torch.randn(p.shape, generator=g))
            elif p.ndim == 1 and ('norm' in name or 'layernorm' in name) and name.endswith('weight'):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                std = 0.5 / math.sqrt(p.shape[-1]) if p.ndim > 1 else 0.1
                p.copy_(std * torch.randn(p.shape, generator=g))
    return model


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()
