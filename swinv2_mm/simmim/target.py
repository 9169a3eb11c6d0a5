"""SimMIM's normalised pixel target and its masked L1 loss.

The official SwinV2 SimMIM recipe regresses each pixel normalised by the mean and the
(unbiased) standard deviation of the 47x47 neighbourhood around it, clipped at the image
border; SimMIM reports it helps over raw pixels. mmpretrain 1.2.0 has only the raw target.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANCE_EPS = 1e-6


def window_sums(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, C, H, W) -> the sum over each pixel's ``window`` x ``window`` neighbourhood (zeros
    outside the image), from running sums along each axis: O(1) per pixel, where a 47x47
    pooling kernel costs 2209 additions per pixel."""
    radius = window // 2
    for dim in (2, 3):
        n = x.shape[dim]
        pad = (radius + 1, radius) if dim == 3 else (0, 0, radius + 1, radius)
        running = F.pad(x, pad).cumsum(dim)  # (..., n + window, ...), a zero first
        x = running.narrow(dim, window, n) - running.narrow(dim, 0, n)
    return x


def local_mean_std(images: torch.Tensor, window: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) -> mean and unbiased standard deviation (float32, same shape) of each
    pixel's ``window`` x ``window`` neighbourhood, per channel, clipped at the border."""
    if window < 3 or window % 2 == 0:
        raise ValueError(f'window: expected an odd neighbourhood size >= 3, got {window}')
    x = images.float()
    count = window_sums(torch.ones_like(x[:1, :1]), window)  # (1, 1, H, W) in-image pixels
    mean = window_sums(x, window) / count
    variance = (window_sums(x * x, window) - count * mean * mean) / (count - 1)
    return mean, (variance.clamp(min=0) + VARIANCE_EPS).sqrt()


def local_normalized_target(images: torch.Tensor, window: int) -> torch.Tensor:
    """(B, C, H, W) -> every pixel minus its neighbourhood mean, over its neighbourhood
    standard deviation (:func:`local_mean_std`), in float32."""
    mean, std = local_mean_std(images, window)
    return (images.float() - mean) / std


class NormalizedTargetL1Loss(nn.Module):
    """L1 distance between the reconstruction and the locally normalised image over the
    masked pixels, averaged per masked pixel and channel (SimMIM's loss), in float32.

    Use it as ``SimMIMHead``'s ``loss`` (the head expands the patch mask to pixels).

    Args:
        window: neighbourhood edge of the target normalisation (47 in the official
            recipe); 0 regresses raw (preprocessed) pixels.
        channels: image channels, the loss's divisor per pixel.
    """

    def __init__(self, window: int = 47, channels: int = 3):
        super().__init__()
        if window:
            local_mean_std(torch.zeros(1, 1, 3, 3), window)  # checks window now
        self.window = window
        self.channels = channels

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """pred, target (B, C, H, W); mask (B, 1, H, W), 1 where the pixel was masked."""
        if self.window:
            target = local_normalized_target(target, self.window)
        error = (pred.float() - target.float()).abs() * mask
        return error.sum() / (mask.sum() + 1e-5) / self.channels
