"""Between pixel masks and latent-resolution regions: what the loss core multiplies, what the user looks at.

A latent cell is editable when ANY pixel of its (downsampling)² patch is: the object's edge is included, as
the VAE mixes a patch's pixels into its cell. The region then multiplies the latent gradient (for the 2D edit
the latent is the variable; for the NeRF its gradient flows back through the encoder into the render).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def pixel_to_latent(masks: Tensor, latent_hw) -> Tensor:
    """Pixel masks [B, H, W] (bool or [0, 1]) → regions [B, 1, h, w] ∈ {0, 1}: a cell is 1 when any of its pixels is > 0."""
    return (F.adaptive_max_pool2d(masks[:, None].float(), tuple(latent_hw)) > 0).float()


def latent_to_pixels(region: Tensor, size: int) -> np.ndarray:
    """The first region [B, 1, h, w] as a float [size, size, 3] image (white = editable), nearest-neighbour."""
    image = F.interpolate(region[:1].float().cpu(), size=(size, size), mode="nearest")[0, 0]
    return image[..., None].expand(size, size, 3).numpy().astype(np.float32)


def region_from_pixels(mask: np.ndarray, latent_hw, device) -> Tensor:
    """One bool [H, W] mask (already at the prior's square) → its region [1, 1, h, w] on `device`."""
    return pixel_to_latent(torch.from_numpy(np.ascontiguousarray(mask))[None], latent_hw).to(device)
