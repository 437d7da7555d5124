"""The before/after turntable: source | edited renders side by side on a circle around the scene (mp4), each
panel labelled with its prompt, rendered under a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from nerfstudio.cameras.cameras import Cameras

from nerfedit.nerf.common.render import ray_bundle, render_image, to_image, turntable_cameras
from nerfedit.nerf.common.video import side_by_side, with_progress, write_video


def turntable_labels(source_prompt: str, target_prompt: str) -> Tuple[str, str]:
    """The panels' labels: "source: <prompt>" | "edited: <prompt>"."""
    return (f"source: {source_prompt}" if source_prompt.strip() else "source", f"edited: {target_prompt}")


@torch.no_grad()
def source_and_edited(model, camera: Cameras, chunk: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """[1, 3, H, W] renders of the frozen source and of the edited field from one camera (in the model's mode)."""
    bundle, height, width = ray_bundle(camera, 0, model.device)
    return to_image(render_image(model.source, bundle, chunk), height, width), to_image(render_image(model, bundle, chunk), height, width)


@torch.no_grad()
def turntable_frames(model, cameras: Cameras, frames: int, chunk: int, short_side: Optional[int] = None) -> List[np.ndarray]:
    """uint8 [H, 2W+gap, 3] frames: the frozen source (left) and the edited field (right), eval mode."""
    was_training = model.training
    model.eval()
    panels = []
    try:
        for camera in with_progress(turntable_cameras(cameras, frames, short_side), "Rendering the turntable"):
            panels.append(side_by_side(*source_and_edited(model, camera, chunk)))
    finally:
        model.train(was_training)
    return panels


def write_turntable(
    model, cameras: Cameras, path: Path, frames: int = 48, fps: int = 12, chunk: int = 1 << 15, labels: Optional[Sequence[str]] = None
) -> Path:
    """Render the turntable and write it as an H.264 mp4 (and its first frame as PNG), `labels` (source, edited)
    drawn above the panels. Returns the path."""
    return write_video(path, turntable_frames(model, cameras, frames, chunk), fps, labels=labels)
