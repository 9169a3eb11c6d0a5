"""Log-spaced continuous position bias (log-CPB) of SwinV2, for any number of axes.

A small meta network maps log-spaced relative coordinates to one bias per head.
Because it is continuous, the bias for any window size is obtained by evaluating it
on that window's coordinate grid; nothing window-dependent is stored in weights.
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from .cache import cached

CPB_HIDDEN = 512
CPB_MAX_BIAS = 16.0


@cached(maxsize=64)
def relative_coords_table(window_size: Tuple[int, ...], pretrained_window_size: Tuple[int, ...],
                          device: torch.device) -> torch.Tensor:
    """Log-spaced coordinates (prod(2w-1), d) of every offset in a window of ``window_size``."""
    axes = [torch.arange(-(w - 1), w, dtype=torch.float32) for w in window_size]
    table = torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1)  # (2w0-1, ..., d)
    # Offsets are normalised by the pretraining window (or this window), scaled to
    # [-8, 8] and log-spaced. A window of 1 has only offset 0: the divisor is kept >= 1.
    divisor = torch.tensor([max((p if p > 0 else w) - 1, 1)
                            for w, p in zip(window_size, pretrained_window_size)],
                           dtype=torch.float32)
    table = table / divisor * 8
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
    return table.reshape(-1, len(window_size)).to(device)  # (prod(2w-1), d)


@cached(maxsize=64)
def relative_position_index(window_size: Tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Index (N, N) of every query/key pair of a window into the coordinate table."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window_size], indexing='ij'))
    coords = coords.flatten(1)  # (d, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (d, N, N)
    index = torch.zeros(rel.shape[1:], dtype=torch.long)
    for axis, w in enumerate(window_size):  # row-major index into the (2w0-1, 2w1-1, ...) table
        index = index * (2 * w - 1) + rel[axis] + (w - 1)
    return index.to(device)  # (N, N)


def build_cpb_mlp(num_axes: int, num_heads: int) -> nn.Sequential:
    """Meta network G: d log-spaced coordinates -> one raw bias per head."""
    return nn.Sequential(
        nn.Linear(num_axes, CPB_HIDDEN, bias=True),
        nn.ReLU(inplace=True),
        nn.Linear(CPB_HIDDEN, num_heads, bias=False))


def continuous_position_bias(cpb_mlp: nn.Sequential, window_size: Sequence[int],
                             pretrained_window_size: Sequence[int]) -> torch.Tensor:
    """Bias (heads, N, N) = 16 * sigmoid(G(coords)) for a window of the given size."""
    weight = cpb_mlp[0].weight
    table = relative_coords_table(tuple(window_size), tuple(pretrained_window_size), weight.device)
    index = relative_position_index(tuple(window_size), weight.device)
    bias = cpb_mlp(table.to(weight.dtype))  # (T, heads)
    n = index.shape[0]
    bias = bias[index.view(-1)].view(n, n, -1).permute(2, 0, 1)  # (heads, N, N)
    return CPB_MAX_BIAS * torch.sigmoid(bias)
