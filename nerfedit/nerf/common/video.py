"""Frames and videos of renders: uint8 panels of images side by side, upscaling small frames, a label band over
the panels, a progress bar while frames render, mp4 + PNG writing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional, Sequence, TypeVar

import numpy as np
import torch

VIDEO_MIN_HEIGHT = 256
"""Frames smaller than this are upscaled (nearest) so 64 px scenes are watchable; codecs want ≥ 16 px anyway."""
LABEL_BAND_HEIGHT = 48
"""White band above the (upscaled) panels that holds their labels: two lines of `LABEL_FONT_SIZE` text."""
LABEL_FONT_SIZE = 15
T = TypeVar("T")


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


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)  # Pillow's embedded scalable font (needs FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()  # its small bitmap font


def _fit_lines(text: str, width: int, measure, lines: int = 2) -> list:
    """`text` word-wrapped into at most `lines` lines of at most `width` pixels; the last one ends in "…" if cut."""
    out, words = [], text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and measure(line + " " + words[0]) <= width:
            line += " " + words.pop(0)
        out.append(line)
    if words or (out and measure(out[-1]) > width):
        last = out[-1]
        while last and measure(last + "…") > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


def label_band(width: int, labels: Sequence[str]) -> np.ndarray:
    """uint8 [LABEL_BAND_HEIGHT, width, 3]: white, each label in black over its equal share of the width (the
    panels of `side_by_side`), left-aligned, wrapped to two lines."""
    from PIL import Image, ImageDraw

    band = Image.new("RGB", (width, LABEL_BAND_HEIGHT), "white")
    draw, font = ImageDraw.Draw(band), _font()
    column = width // max(1, len(labels))
    measure = lambda text: draw.textlength(text, font=font)  # noqa: E731
    for i, label in enumerate(labels):
        for row, line in enumerate(_fit_lines(label, column - 8, measure)):
            draw.text((i * column + 4, 4 + row * (LABEL_FONT_SIZE + 6)), line, fill="black", font=font)
    return np.asarray(band)


def with_progress(items: Sequence[T], description: str) -> Iterator[T]:
    """`items`, one by one, under nerfstudio's rich progress bar (with the time left): rendering a turntable
    takes about a minute on a CPU, after "Training Finished", and showed nothing."""
    from nerfstudio.utils.rich_utils import get_progress

    with get_progress(description, suffix="frames/s") as progress:
        yield from progress.track(items, total=len(items))


def write_video(path: Path, frames: Sequence[np.ndarray], fps: int, labels: Optional[Sequence[str]] = None) -> Path:
    """uint8 frames → an H.264 mp4 (imageio-ffmpeg), upscaled to `VIDEO_MIN_HEIGHT`, with `labels` (one per panel)
    in a band above, and its first frame as PNG beside it (for READMEs and quick looks). Both are written to a
    temporary name and renamed: an interrupted write leaves no half file. Returns the mp4's path."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = [upscale(frame) for frame in frames]
    if labels:
        band = label_band(panels[0].shape[1], labels)
        panels = [np.concatenate([band, panel]) for panel in panels]
    partial_video, partial_image = path.with_suffix(".partial.mp4"), path.with_suffix(".partial.png")
    imageio.mimwrite(partial_video, panels, fps=fps, codec="libx264", quality=8, macro_block_size=16)
    imageio.imwrite(partial_image, panels[0])
    os.replace(partial_video, path)
    os.replace(partial_image, path.with_suffix(".png"))
    return path
