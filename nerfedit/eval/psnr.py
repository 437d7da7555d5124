"""PSNR (dB, peak 1) of images in [0, 1], whole or over the pixels outside an object mask."""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

MSE_FLOOR = 1e-10
"""Smallest MSE used, so identical images score 100 dB rather than infinity."""


def psnr(a: Tensor, b: Tensor) -> float:
    """PSNR over every pixel of images `a`, `b` (clamped to [0, 1])."""
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return to_db(mse)


def to_db(mse: float) -> float:
    """An MSE of images in [0, 1] as PSNR in dB."""
    return 10 * math.log10(1.0 / max(float(mse), MSE_FLOOR))


def squared_error_outside(a: Tensor, b: Tensor, masks: Tensor) -> Tuple[Tensor, Tensor]:
    """Summed squared error and pixel-channel count per image, over pixels where `masks` [B, H, W] is False.

    Images `a`, `b` are [B, C, H, W]; both results are [B].
    """
    outside = (~masks.bool())[:, None].expand_as(a).float()
    return (((a - b) ** 2) * outside).flatten(1).sum(1), outside.flatten(1).sum(1)


def psnr_outside(a: Tensor, b: Tensor, masks: Tensor) -> Tensor:
    """Per-image PSNR [B] in dB over the pixels where `masks` is False."""
    error, count = squared_error_outside(a, b, masks)
    mse = (error / count.clamp_min(1)).clamp_min(MSE_FLOOR)
    return 10 * torch.log10(1.0 / mse)


def psnr_outside_summary(a: Tensor, b: Tensor, masks: Tensor) -> Dict[str, float]:
    """PSNR outside `masks` over a set of views: the mean of the per-view dB, the pooled MSE's dB, the worst view."""
    error, count = squared_error_outside(a, b, masks)
    per_view = [to_db(mse) for mse in (error / count.clamp_min(1)).tolist()]
    pooled = to_db(float(error.sum() / count.sum().clamp_min(1)))
    return {"mean_of_views": sum(per_view) / len(per_view), "pooled": pooled, "worst_view": min(per_view)}
