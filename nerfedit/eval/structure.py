"""Structure preservation of an edit: SSIM between the source image and the edited one.

SSIM (Wang et al. 2004; Gaussian window 11, σ 1.5, on each RGB channel, averaged) from `pytorch_msssim`, which
nerfstudio already depends on; it gives the same values as torchmetrics' SSIM and imports in milliseconds
rather than seconds. MS-SSIM needs images larger than 160 px, so at the toy prior's 64 px it is plain SSIM.

Not measured: the IoU of the edit's object mask with the source's. The judge reads words, not pixels,
and a mask taken from where the edit differs from the source would measure the edit by itself, so there
is no honest object mask of an edited image; structure is SSIM alone.
"""

from __future__ import annotations

from torch import Tensor

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window (the usual 11; fits images of 11 px and more)."""


def ssim_per_image(a: Tensor, b: Tensor) -> Tensor:
    """SSIM [B] of images `a`, `b` [B, 3, H, W] in [0, 1] (clamped), one value per image; 1 = identical."""
    from pytorch_msssim import ssim

    window = min(SSIM_WINDOW, a.shape[-1], a.shape[-2])
    window -= 1 - window % 2  # the window must have an odd side
    return ssim(a.float().clamp(0, 1), b.float().clamp(0, 1), data_range=1.0, size_average=False, win_size=window)
