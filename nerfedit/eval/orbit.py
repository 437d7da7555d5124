"""Renders of trained runs from orbit cameras, to be scored: the one module of `nerfedit.eval` that needs nerfstudio
(imported inside the functions, so that the rest of the package's scoring stays importable without it).

    load_run             a run's pipeline and checkpoint step, loaded as ns-render loads them
    run_frame_cameras    the toy world's orbit cameras in a nerfedit run's dataparser frame
    edit_renders         source and edited renders of a nerfedit run (scripts/run_nerf_edit_eval.py)
    generated_renders    lit and unlit renders of a text-to-3D run on a camera circle (scripts/run_text_to_3d_eval.py)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import torch

EVAL_CHUNK = 1 << 14
"""Rays rendered at once when scoring."""


def load_run(config_path: Path) -> Tuple[Any, int]:
    """(pipeline, checkpoint step) of the run whose config.yml is `config_path`, in inference mode."""
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, step = eval_setup(Path(config_path), test_mode="inference")
    return pipeline, step


def run_frame_cameras(orbit: Sequence, run: Path, size: int, device: torch.device):
    """World-frame `OrbitCamera`s → nerfstudio `Cameras` of `size`² images in the run's dataparser frame (the
    transform and scale its dataparser_transforms.json records), on `device`."""
    from nerfedit.nerf.common.render import orbit_to_cameras

    transforms = json.loads((Path(run) / "dataparser_transforms.json").read_text())
    transform = torch.tensor(transforms["transform"], dtype=torch.float32)
    return orbit_to_cameras(orbit, size, transform, float(transforms["scale"])).to(device)


@torch.no_grad()
def edit_renders(pipeline, cameras) -> Dict[str, torch.Tensor]:
    """Source and edited renders [N, 3, H, W] in [0, 1] of a nerfedit run (eval mode, as ns-render)."""
    from nerfedit.nerf.edit.turntable import source_and_edited

    pipeline.model.eval()
    pairs = [source_and_edited(pipeline.model, cameras[i : i + 1], EVAL_CHUNK) for i in range(len(cameras))]
    return {name: torch.cat([pair[k].clamp(0, 1).cpu() for pair in pairs]) for k, name in enumerate(("source", "edited"))}


def generated_renders(config_path: Path, views: int, elevation_deg: float, distance: float, focal: float) -> Dict[str, torch.Tensor]:
    """A text-to-3D run's model (loaded as ns-render loads it) rendered from `views` cameras on a circle: lit and rgb
    (unlit albedo) [views, 3, H, W] and accumulation [views, 1, H, W] (`lit_renders`), at its eval resolution."""
    from nerfedit.nerf.generate.pipeline import circle_cameras, lit_renders

    pipeline, _ = load_run(config_path)
    cameras = circle_cameras(views, elevation_deg, distance, focal, pipeline.datamanager.config.eval_resolution)
    return lit_renders(pipeline.model, cameras)
