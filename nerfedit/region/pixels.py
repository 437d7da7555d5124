"""The edit region at pixel resolution, and the composite that keeps every pixel outside it.

A latent cell covers (downsampling)² pixels (4×4 on the toy prior, 8×8 on Stable Diffusion), so a region of
latent cells edits a ring of background around the object's edge, and the decoder spreads each edited cell
into its neighbours. The pixel region mends both at the end of an edit:

    auto   P = C_src ∪ C_edit
           C = GrabCut(image; seeds from M̃)                                       (Rother et al. 2004, OpenCV)
           seeds: M̃ ≥ `OBJECT_SEED` probable object, M̃ < `BACKGROUND_SEED` sure background, else probable background,
           M̃ the auto region's cross-attention map (`auto.attention_map`) resized bilinearly to the pixels;
           C_src on the source image gives the edges of what is replaced, C_edit on the edited image those of
           its replacement (a shape swap draws a new outline)
    PATH   P = the user's mask itself
    out    = where(P, edited, x_src)                                                  (`keep_outside`)

GrabCut fits a colour model to the seeds and cuts along the image's own edges, so the region hugs the object
(a torus keeps its hole) where the attention map is a blob of cells. A cut that keeps less than
`MIN_SEED_KEPT` of the probable-object seed is not trusted (its colour model lost the object, e.g. to a
checkered floor): on the source, C_src is then the latent region itself (the gradient's own region, so nothing
the edit changed is dropped); on the edit, C_edit is empty (a blurred edit whose outline GrabCut cannot find
adds nothing beyond C_src; taking its seed instead spread the region into the halo around the object).

Measured (`scripts/eval_edit.py --edit-region auto`, the README's "Local edits"): the thresholds are the auto
region's own τ = 0.6 for the object and half of it for sure background.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nerfedit.region.auto import AUTO_THRESHOLD

OBJECT_SEED = AUTO_THRESHOLD
"""M̃ ≥ this seeds GrabCut as probable object (the auto region's τ, before its dilation)."""
BACKGROUND_SEED = 0.3
"""M̃ below this seeds GrabCut as sure background."""
MIN_SEED_KEPT = 0.5
"""A cut that keeps less than this share of the probable-object seed is not trusted (module docstring: what stands instead)."""
GRABCUT_ITERATIONS = 5
"""OpenCV's iterations of GrabCut's colour-model / graph-cut alternation."""


def attention_at_pixels(attention: Tensor, size) -> Tensor:
    """M̃ [B, h, w] resized bilinearly to `size` = (H, W) → [B, H, W]."""
    return F.interpolate(attention[:, None].float().cpu(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def grabcut(image: Tensor, attention: Tensor) -> Tuple[Tensor, bool]:
    """(C [H, W] bool, trusted) of one image: `image` [3, H, W] in [0, 1], `attention` M̃ [H, W] in [0, 1];
    trusted when C keeps at least `MIN_SEED_KEPT` of the probable-object seed (module docstring)."""
    import cv2

    seed = attention.numpy() >= OBJECT_SEED
    if not seed.any():
        return torch.from_numpy(seed), False
    labels = np.where(seed, cv2.GC_PR_FGD, np.where(attention.numpy() < BACKGROUND_SEED, cv2.GC_BGD, cv2.GC_PR_BGD)).astype(np.uint8)
    pixels = np.ascontiguousarray((image.permute(1, 2, 0).float().numpy() * 255).round().clip(0, 255).astype(np.uint8))
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # its colour models start from k-means: seeded, so the cut is reproducible
    cv2.grabCut(pixels, labels, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    cut = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return torch.from_numpy(cut), bool((cut & seed).sum() >= MIN_SEED_KEPT * seed.sum())


def auto_pixel_region(source: Tensor, edited: Tensor, attention: Tensor, latent_region: Tensor) -> Tensor:
    """P [B, H, W] (bool) of the `auto` region for the sources and their edits [B, 3, H, W], from the attention maps
    M̃ [B, h, w] and the latent region [B, 1, h, w] made from them: C_src ∪ C_edit (module docstring)."""
    size = source.shape[-2:]
    maps = attention_at_pixels(attention, size)
    cells = F.interpolate(latent_region.float().cpu(), size=tuple(size), mode="nearest")[:, 0] > 0
    source, edited = source.detach().float().cpu().clamp(0, 1), edited.detach().float().cpu().clamp(0, 1)
    regions = []
    for b in range(len(maps)):
        from_source, trusted = grabcut(source[b], maps[b])
        from_edit, edit_trusted = grabcut(edited[b], maps[b])
        regions.append((from_source if trusted else cells[b]) | (from_edit & edit_trusted))
    return torch.stack(regions)


def keep_outside(source: np.ndarray, edited: np.ndarray, region: np.ndarray) -> np.ndarray:
    """where(P, edited, source) for float [H, W, 3] images and P [H, W] (bool or [0, 1]): the input's own pixels
    everywhere outside the region."""
    weight = np.clip(np.asarray(region, dtype=np.float32), 0.0, 1.0)[..., None]
    return (edited * weight + source * (1 - weight)).astype(np.float32)
