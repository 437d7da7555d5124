"""The `--edit-region` option and PNG region masks (numpy only: checked before torch or the prior is loaded).

    parse_region("none" | "auto" | PATH) → RegionOption
    mask_path(option, image_name)        → the PNG of one image: the file itself, or PATH/<image's name>(.png)
    load_mask(path, (height, width))     → bool [H, W], True = editable (white); wrong size → UserError
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence, Tuple

import numpy as np

from nerfedit.errors import UserError

RegionKind = Literal["none", "auto", "path"]

REGION_HELP = (
    "where the edit may change the image: 'none' (default) everywhere; 'auto' where the prior's cross-attention "
    "puts the words that differ between --source and --target; or PATH, a PNG mask (white = editable) or a folder "
    "of PNG masks named like the images. The mask multiplies the gradient of the loss at latent resolution, and "
    "the input's own pixels are kept outside it (for 'auto' the region is first cut along the image's edges)."
)


@dataclass(frozen=True)
class RegionOption:
    """What `--edit-region` asked for."""

    kind: RegionKind
    """none | auto | path."""
    path: Optional[Path] = None
    """The mask file or folder (kind "path")."""

    @property
    def active(self) -> bool:
        return self.kind != "none"


def parse_region(text: Optional[str]) -> RegionOption:
    """`none` / `auto` / an existing PNG file or folder; anything else is a one-line `UserError`."""
    text = (text or "none").strip()
    if text.lower() in ("none", "auto"):
        return RegionOption(text.lower())  # type: ignore[arg-type]
    path = Path(text).expanduser()
    if not path.exists():
        raise UserError(f"--edit-region '{text}': use none, auto, or an existing PNG mask or folder of masks")
    if path.is_file() and path.suffix.lower() != ".png":
        raise UserError(f"--edit-region '{text}': a mask must be a .png file (white = editable)")
    return RegionOption("path", path)


def mask_path(option: RegionOption, image_name: str) -> Path:
    """The mask of the image `image_name`: the option's file, or in its folder the PNG of the same name (or stem)."""
    assert option.path is not None
    if option.path.is_file():
        return option.path
    name = Path(image_name).name
    for candidate in (option.path / name, option.path / (Path(name).stem + ".png")):
        if candidate.is_file():
            return candidate
    raise UserError(f"--edit-region '{option.path}': no mask for image '{name}' (expected {option.path / (Path(name).stem + '.png')})")


def mask_paths(option: RegionOption, image_names: Sequence[str]) -> list:
    """`mask_path` of every image, so a missing one is reported before any work."""
    return [mask_path(option, name) for name in image_names]


def load_mask(path: Path, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """A PNG mask as bool [H, W] (a pixel is editable when its grey level ≥ 0.5); `size` (H, W) must match."""
    from nerfedit.image.io import load_image

    mask = load_image(path).mean(axis=2) >= 0.5
    if size is not None and mask.shape != tuple(size):
        raise UserError(
            f"--edit-region mask '{path}' is {mask.shape[1]}x{mask.shape[0]} but its image is {size[1]}x{size[0]}"
        )
    return mask
