"""The before/after turntable: source | edited renders side by side on a circle around the scene (mp4)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from nerfstudio.cameras.cameras import Cameras

from nerfedit.nerf.render import ray_bundle, render_image, to_image, turntable_cameras
from nerfedit.nerf.viewer import side_by_side

VIDEO_MIN_HEIGHT = 256
"""Frames smaller than this are upscaled (nearest) so 64 px scenes are watchable; codecs want ≥ 16 px anyway."""


@torch.no_grad()
def turntable_frames(model, cameras: Cameras, frames: int, chunk: int, short_side: Optional[int] = None) -> List[np.ndarray]:
    """uint8 [H, 2W+gap, 3] frames: the frozen source (left) and the edited field (right), eval mode."""
    was_training = model.training
    model.eval()
    panels = []
    try:
        for camera in turntable_cameras(cameras, frames, short_side):
            bundle, height, width = ray_bundle(camera, 0, model.device)
            source = to_image(render_image(model.source, bundle, chunk), height, width)
            edited = to_image(render_image(model, bundle, chunk), height, width)
            panels.append(side_by_side(source, edited))
    finally:
        model.train(was_training)
    return panels


def upscale(frame: np.ndarray, min_height: int = VIDEO_MIN_HEIGHT) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor to at least `min_height`, then pad to even sides."""
    factor = max(1, -(-min_height // frame.shape[0]))
    frame = frame.repeat(factor, axis=0).repeat(factor, axis=1)
    pad_h, pad_w = (-frame.shape[0]) % 16, (-frame.shape[1]) % 16
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=255)


def write_turntable(model, cameras: Cameras, path: Path, frames: int = 48, fps: int = 12, chunk: int = 1 << 15) -> Path:
    """Render the turntable and write it as an H.264 mp4 (imageio-ffmpeg). Returns the path."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = [upscale(p) for p in turntable_frames(model, cameras, frames, chunk)]
    imageio.mimwrite(path, panels, fps=fps, codec="libx264", quality=8, macro_block_size=16)
    imageio.imwrite(path.with_suffix(".png"), panels[0])  # first frame, for READMEs and quick looks
    return path
