"""Renders of trained runs from orbit cameras, to be scored: the one module of `nerfedit.eval` that needs nerfstudio
(imported inside the functions, so that the rest of the package's scoring stays importable without it).

    load_run             a run's pipeline and checkpoint step, loaded as ns-render loads them
    run_frame_cameras    the toy world's orbit cameras in a nerfedit run's dataparser frame
    edit_renders         source and edited renders and depths of a nerfedit run (scripts/run_nerf_edit_eval.py)
    run_scale            a run's dataparser scale (to bring its depths back to world units)
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
def edit_renders(pipeline, cameras, scale: float = 1.0) -> Dict[str, torch.Tensor]:
    """Source and edited renders of a nerfedit run (eval mode, as ns-render): "source"/"edited" images
    [N, 3, H, W] in [0, 1], and "source_depth"/"edited_depth" [N, H, W], nerfacto's (median) ray distance
    divided by the dataparser's `scale`, i.e. in world units along unit ray directions."""
    from nerfedit.nerf.common.render import ray_bundle, to_image

    model = pipeline.model
    model.eval()
    renders: Dict[str, list] = {"source": [], "edited": [], "source_depth": [], "edited_depth": []}
    for i in range(len(cameras)):
        bundle, height, width = ray_bundle(cameras[i : i + 1], 0, model.device)
        for name, field in (("source", model.source), ("edited", model)):
            chunks = [field(bundle[start : start + EVAL_CHUNK]) for start in range(0, len(bundle), EVAL_CHUNK)]
            rgb = torch.cat([chunk["rgb"].float() for chunk in chunks])
            depth = torch.cat([chunk["depth"].float() for chunk in chunks])
            renders[name].append(to_image(rgb, height, width).clamp(0, 1).cpu())
            renders[f"{name}_depth"].append(depth.reshape(1, height, width).cpu() / scale)
    return {name: torch.cat(parts) for name, parts in renders.items()}


def run_scale(run: Path) -> float:
    """The dataparser's scale of a run (world units × scale = the run's units)."""
    return float(json.loads((Path(run) / "dataparser_transforms.json").read_text())["scale"])


def generated_renders(config_path: Path, views: int, elevation_deg: float, distance: float, focal: float) -> Dict[str, torch.Tensor]:
    """A text-to-3D run's model (loaded as ns-render loads it) rendered from `views` cameras on a circle: lit and rgb
    (unlit albedo) [views, 3, H, W] and accumulation [views, 1, H, W] (`lit_renders`), at its eval resolution."""
    from nerfedit.nerf.generate.pipeline import circle_cameras, lit_renders

    pipeline, _ = load_run(config_path)
    cameras = circle_cameras(views, elevation_deg, distance, focal, pipeline.datamanager.config.eval_resolution)
    return lit_renders(pipeline.model, cameras)
