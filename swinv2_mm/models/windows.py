"""Window geometry shared by the 2D and 3D backbones.

Every function works on channel-last maps of any number of spatial axes,
``(B, *S, C)``, with ``window_size`` and ``shift_size`` given per axis.
"""
import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .cache import cached

SHIFT_MASK_VALUE = -100.0
# Padded keys get this logit offset. Real logits are within [-216, 116] (cosine times a
# scale of at most 100, a bias in [0, 16], the -100 shift mask), so exp() of a padded
# key's logit relative to any real key underflows to exactly 0 in fp32, bf16 and fp16,
# while a window holding only padding stays finite (no NaN in backward).
PAD_MASK_VALUE = -1e4


def effective_window(size: Sequence[int], window_size: Sequence[int],
                     shifted: bool) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(window size, shift size) a block actually uses for a map of ``size``.

    Along an axis where the map is not larger than the window, the window shrinks
    to the map and that axis is not shifted; elsewhere shifted blocks shift by w // 2.
    """
    window = tuple(s if s <= w else w for s, w in zip(size, window_size))
    shift = tuple(w // 2 if shifted and s > w else 0 for s, w in zip(size, window_size))
    return window, shift


def padded_size(size: Sequence[int], window_size: Sequence[int]) -> Tuple[int, ...]:
    """Smallest size >= ``size`` that is a multiple of ``window_size`` on every axis."""
    return tuple(math.ceil(s / w) * w for s, w in zip(size, window_size))


def pad_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Zero-pads ``x`` (B, *S, C) at the end of each spatial axis up to ``size``."""
    pads = []
    for s, target in zip(reversed(x.shape[1:-1]), reversed(size)):
        pads += [0, target - s]
    if not any(pads):
        return x
    return F.pad(x, [0, 0] + pads)


def crop_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`pad_to`."""
    if tuple(x.shape[1:-1]) == tuple(size):
        return x
    return x[(slice(None),) + tuple(slice(0, s) for s in size)]


def window_partition(x: torch.Tensor, window_size: Sequence[int]) -> torch.Tensor:
    """(B, *S, C) -> (B * num_windows, prod(window_size), C); S must be multiples of it."""
    b, *size, c = x.shape
    d = len(size)
    shape = [b]
    for s, w in zip(size, window_size):
        shape += [s // w, w]
    x = x.view(shape + [c])
    # (B, n0, w0, n1, w1, ..., C) -> (B, n0, n1, ..., w0, w1, ..., C)
    order = [0] + [1 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)] + [2 * d + 1]
    return x.permute(order).reshape(-1, math.prod(window_size), c)


def window_reverse(windows: torch.Tensor, window_size: Sequence[int],
                   size: Sequence[int]) -> torch.Tensor:
    """(B * num_windows, prod(window_size), C) -> (B, *S, C); inverse of window_partition."""
    d = len(size)
    counts = [s // w for s, w in zip(size, window_size)]
    c = windows.shape[-1]
    x = windows.view([-1] + counts + list(window_size) + [c])
    # (B, n0, n1, ..., w0, w1, ..., C) -> (B, n0, w0, n1, w1, ..., C)
    order = [0]
    for i in range(d):
        order += [1 + i, 1 + d + i]
    order.append(2 * d + 1)
    return x.permute(order).reshape([-1] + list(size) + [c])


@cached(maxsize=64)
def window_attention_mask(size: Tuple[int, ...], window_size: Tuple[int, ...],
                          shift_size: Tuple[int, ...],
                          device: torch.device) -> Optional[torch.Tensor]:
    """Additive mask (num_windows, N, N) combining shift regions and padded keys.

    ``size`` is the real (unpadded) map size; ``window_size`` and ``shift_size`` come from
    :func:`effective_window`. Returns None when no mask is needed.
    """
    padded = padded_size(size, window_size)
    has_pad = padded != tuple(size)
    if not has_pad and not any(shift_size):
        return None
    # Region label of every token of the rolled, padded map: tokens that were not
    # neighbours before the cyclic shift fall into different regions.
    region = torch.zeros(padded, dtype=torch.long)
    for axis, (p, w, s) in enumerate(zip(padded, window_size, shift_size)):
        if not s:
            continue
        ids = torch.zeros(p, dtype=torch.long)
        ids[p - w:p - s] = 1
        ids[p - s:] = 2
        region = region * 3 + ids.view([-1 if a == axis else 1 for a in range(len(padded))])
    region = window_partition(region[None, ..., None], window_size).squeeze(-1)  # (nW, N)
    mask = torch.zeros(region.shape[0], region.shape[1], region.shape[1])
    mask.masked_fill_(region[:, None, :] != region[:, :, None], SHIFT_MASK_VALUE)
    if has_pad:
        is_pad = torch.zeros(padded, dtype=torch.bool)
        for axis, s in enumerate(size):
            index = [slice(None)] * len(padded)
            index[axis] = slice(s, None)
            is_pad[tuple(index)] = True
        # the map is rolled by -shift before partitioning, so roll the pad flags too
        is_pad = torch.roll(is_pad, [-s for s in shift_size], tuple(range(len(padded))))
        is_pad = window_partition(is_pad[None, ..., None], window_size).squeeze(-1)  # (nW, N)
        mask = mask + is_pad[:, None, :].float() * PAD_MASK_VALUE  # mask padded keys
    return mask.to(device)


class WindowPlan(NamedTuple):
    """How the blocks of a stage attend at one map size: window, cyclic shift and mask."""
    window_size: Tuple[int, ...]
    shift_size: Tuple[int, ...]
    mask: Optional[torch.Tensor]  # (num_windows, N, N) additive, or None


def window_plan(size: Sequence[int], window_size: Sequence[int], shifted: bool,
                device: torch.device) -> WindowPlan:
    """The plan of a regular (``shifted=False``) or shifted block for a map of ``size``."""
    window, shift = effective_window(size, window_size, shifted)
    return WindowPlan(window, shift, window_attention_mask(tuple(size), window, shift, device))
