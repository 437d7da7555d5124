"""Editing an image of any size: the `--fit` square goes through `edit_image` and comes back by the `--paste` rule.

    edit_image_any_size(prior, image, target=…, source=…, fit="crop", paste="blend") → FittedEdit

The rule itself (which square, how it is pasted back) is `nerfedit.image.io.to_square`/`from_square`;
this module runs the edit between them, so `nerfedit edit-image` and any other caller share one path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Union

import numpy as np
import torch
from torch import Tensor

from nerfedit.image import io
from nerfedit.image.edit import EditConfig, EditHistory, StepCallback, edit_image
from nerfedit.losses.base import DistillationConfig, DistillationLoss
from nerfedit.region.pixels import keep_outside


@dataclass
class FittedEdit:
    """The result of `edit_image_any_size`, at the input's width and height."""

    image: np.ndarray
    """The edited image, float32 [H, W, 3] in [0, 1]."""
    history: EditHistory
    """The optimisation's history (its latents are of the prior's square)."""
    frames: List[np.ndarray] = field(default_factory=list)
    """The snapshots of `config.save_progress_every`, each pasted into the input like `image`."""
    region: Optional[np.ndarray] = None
    """The pixel region used, float [H, W, 3] at the input's size (white = edited; outside it the input's own pixels), or None."""


def to_hwc(images: Tensor) -> np.ndarray:
    """First image of a [B, 3, H, W] tensor → float32 numpy [H, W, 3]."""
    return images[0].permute(1, 2, 0).float().cpu().numpy()


def edit_image_any_size(
    prior,
    image: np.ndarray,
    *,
    target: str,
    source: Optional[str] = None,
    loss: Union[DistillationLoss, DistillationConfig, str, None] = None,
    config: Optional[EditConfig] = None,
    fit: io.Fit = "crop",
    paste: io.Paste = "blend",
    progress: bool = True,
    callback: Optional[StepCallback] = None,
    region: Union[None, str, np.ndarray] = None,
) -> FittedEdit:
    """Edit `image` (float [H, W, 3] in [0, 1], any size) from `source` towards `target`.

    Its `fit` square is resized to `prior.resolution`, edited by `edit_image` and put back by `paste`
    (`replace`: the decoded edit; `delta`: the input plus decoded edit − decoded source; `blend`: delta where the
    edit changed little, replace where it changed much — `io.paste_change`). The result
    has the input's size; pixels outside the square (`fit="crop"`) are the input's. `region`: None, "auto", or a
    bool mask [H, W] at the input's size (True = editable), brought to the square by the same `fit` rule;
    with a region, the pixels outside it (the mask itself, or the auto region cut along the image's edges,
    `nerfedit.region.pixels`) are the input's own.
    """
    square, placement = io.to_square(image, prior.resolution, fit)
    x = torch.from_numpy(square).permute(2, 0, 1)[None].contiguous()
    user_mask = region.astype(np.float32) if isinstance(region, np.ndarray) else None
    if isinstance(region, np.ndarray):  # any editable pixel of a resized patch keeps it editable
        mask_square, _ = io.to_square(np.repeat(region[..., None].astype(np.float32), 3, axis=2), prior.resolution, fit)
        region = torch.from_numpy(mask_square[..., 0] > 0)[None]
    edited, history = edit_image(
        prior, x, target=target, source=source, loss=loss, config=config, progress=progress, callback=callback, region=region
    )
    reconstructed = to_hwc(reconstruction(prior, x)) if paste != "replace" else None

    kept = user_mask  # the pixel region at the input's size: the input's own pixels outside it
    if kept is None and history.pixel_region is not None:
        square_region = np.repeat(history.pixel_region[0, ..., None].numpy().astype(np.float32), 3, axis=2)
        kept = io.from_square(np.zeros_like(image), square_region, placement)[..., 0]

    def pasted(images: Tensor) -> np.ndarray:
        out = io.from_square(image, to_hwc(images), placement, paste=paste, reconstructed=reconstructed)
        return out if kept is None else keep_outside(image, out, kept)

    shown = None if kept is None else np.repeat(np.clip(kept, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    return FittedEdit(pasted(edited), history, [pasted(frame) for _, frame in history.snapshot_images], shown)


@torch.no_grad()
def pasted_squares(prior, images: Tensor, edited: Tensor, paste: io.Paste, region: Optional[Tensor] = None) -> Tensor:
    """`--paste` for squares at the prior's resolution [B, 3, R, R] (`io.paste_change`, the square being the whole
    image): `edited` itself for replace, else combined with the inputs `images` and their VAE reconstruction; then,
    with a pixel `region` [B, R, R] (`EditHistory.pixel_region`), the inputs' own pixels outside it."""
    if paste == "replace" and region is None:
        return edited
    decoded = reconstruction(prior, images) if paste != "replace" else edited
    rows = []
    for i in range(len(images)):
        x = to_hwc(images[i : i + 1])
        row = io.paste_change(x, to_hwc(edited[i : i + 1]), to_hwc(decoded[i : i + 1]), paste)
        rows.append(row if region is None else keep_outside(x, row, region[i].numpy()))
    return torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2).to(edited.device)


@torch.no_grad()
def reconstruction(prior, images: Tensor) -> Tensor:
    """The unedited squares [B, 3, R, R] as the prior's VAE gives them back (what the `delta` and `blend` pastes subtract)."""
    return prior.decode_latents(prior.encode_images(images.to(prior.device)))


__all__ = ["FittedEdit", "edit_image_any_size", "to_hwc"]
