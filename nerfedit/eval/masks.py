"""Object masks for scoring: the pixels a PSNR "outside the object" leaves out."""

from __future__ import annotations

import torch
from torch import Tensor


def dilate(masks: Tensor, pixels: int) -> Tensor:
    """Boolean masks [B, H, W] grown by `pixels` in every direction (a square neighbourhood); 0 leaves them as they are.

    Edits bleed a pixel or two past an object's silhouette (the VAE's and the field's resolution), so
    scoring outside a dilated mask separates that from changes to the background itself.
    """
    if pixels <= 0:
        return masks
    kernel = 2 * pixels + 1
    return torch.nn.functional.max_pool2d(masks[:, None].float(), kernel, stride=1, padding=pixels)[:, 0] > 0
