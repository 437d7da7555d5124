"""Degradations the judge is trained under, so that it reads NeRF renders and diffusion samples too.

NeRF renders are blurry and slightly misaligned; VAE-decoded diffusion samples are soft, noisy and
a little off in brightness. None of these change what the image shows, so the labels stay. Hue is
never jittered: it *is* the colour label.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor


def _gaussian_blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Per-image separable Gaussian blur; sigma [B] in pixels (0 leaves the image unchanged)."""
    radius = 3
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (x[None, :] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [B, K]
    b, c, h, w = images.shape
    # Grouped convolution: one kernel per image, shared by its three channels.
    weight = kernel.repeat_interleave(c, dim=0)[:, None]  # [B*C, 1, K]
    flat = images.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), weight[:, :, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), weight[:, :, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


def _down_up(images: Tensor, factor: float) -> Tensor:
    """Downsample by `factor` and back: the softness of a low-resolution NeRF or a VAE decoder."""
    size = images.shape[-1]
    small = max(8, int(round(size / factor)))
    low = F.interpolate(images, size=(small, small), mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def augment(images: Tensor, generator: torch.Generator, strength: float = 1.0) -> Tensor:
    """Randomly degrade a batch [B,3,H,W] in [0,1]; each degradation is applied to about half the images.

    Order: geometry (shift, zoom, flip) → resolution loss (down-up) → blur → brightness → noise.
    """
    b, _, h, w = images.shape
    g = generator

    def uniform(lo: float, hi: float, n: int = b) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g)

    def coin(p: float) -> Tensor:
        return torch.rand(b, generator=g) < p * strength

    # Small shifts and zooms (a crop that still keeps the object in view), and mirror images.
    scale = torch.where(coin(0.7), uniform(0.88, 1.08), torch.ones(b))
    shift = torch.where(coin(0.7)[:, None], (torch.rand(b, 2, generator=g) - 0.5) * 0.2, torch.zeros(b, 2))
    flip = torch.where(coin(0.5), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # Resolution loss, grouped by factor so each group is one interpolate call.
    factors = torch.tensor([1.0, 1.5, 2.0, 3.0])
    which = torch.where(coin(0.5), torch.randint(1, len(factors), (b,), generator=g), torch.zeros(b, dtype=torch.long))
    for k in range(1, len(factors)):
        sel = which == k
        if sel.any():
            out[sel] = _down_up(out[sel], float(factors[k]))

    sigma = torch.where(coin(0.5), uniform(0.3, 1.3), torch.zeros(b))
    blurred = sigma > 0
    if blurred.any():
        out[blurred] = _gaussian_blur(out[blurred], sigma[blurred])

    brightness = torch.where(coin(0.6), uniform(0.8, 1.2), torch.ones(b))
    out = out * brightness[:, None, None, None]

    noise_std = torch.where(coin(0.5), uniform(0.0, 0.07), torch.zeros(b))
    out = out + noise_std[:, None, None, None] * torch.randn(out.shape, generator=g)
    return out.clamp(0.0, 1.0)
