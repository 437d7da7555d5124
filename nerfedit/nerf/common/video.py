"""Frames and videos of renders: uint8 panels of images side by side, upscaling small frames, mp4 + PNG writing."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

VIDEO_MIN_HEIGHT = 256
"""Frames smaller than this are upscaled (nearest) so 64 px scenes are watchable; codecs want ≥ 16 px anyway."""


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] or [3, H, W] in [0, 1] → uint8 [H, W, 3]."""
    if image.dim() == 4:
        image = image[0]
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def side_by_side(*images: torch.Tensor, gap: int = 2) -> np.ndarray:
    """uint8 panel of equally tall images, left to right, with a white gap."""
    arrays = [to_uint8(i) for i in images]
    height = arrays[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts = []
    for i, array in enumerate(arrays):
        if i:
            parts.append(spacer)
        parts.append(array)
    return np.concatenate(parts, axis=1)


def upscale(frame: np.ndarray, min_height: int = VIDEO_MIN_HEIGHT) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor to at least `min_height`, then pad to even sides."""
    factor = max(1, -(-min_height // frame.shape[0]))
    frame = frame.repeat(factor, axis=0).repeat(factor, axis=1)
    pad_h, pad_w = (-frame.shape[0]) % 16, (-frame.shape[1]) % 16
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=255)


def write_video(path: Path, frames: Sequence[np.ndarray], fps: int) -> Path:
    """uint8 frames → an H.264 mp4 (imageio-ffmpeg), upscaled to `VIDEO_MIN_HEIGHT`, and its first frame as PNG
    beside it (for READMEs and quick looks). Returns the mp4's path."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = [upscale(frame) for frame in frames]
    imageio.mimwrite(path, panels, fps=fps, codec="libx264", quality=8, macro_block_size=16)
    imageio.imwrite(path.with_suffix(".png"), panels[0])
    return path
