"""Multi-view scenes of the world in nerfstudio format, and held-out views of them for evaluation.

A scene directory holds

    transforms.json   intrinsics (fl_x, fl_y, cx, cy, w, h, camera_model "OPENCV"), one frame per
                      view {file_path, transform_matrix (4×4 OpenGL camera-to-world), object_mask_path},
                      and a "nerfedit" entry with the ground truth: object spec, caption, cameras, seed.
    images/frame_00000.png …   RGB renders
    masks/frame_00000.png …    object masks (255 on the object, 0 elsewhere)

Why `object_mask_path` and not `mask_path`: nerfstudio reads `mask_path` as "pixels to train on"
and would then sample rays on the object only, so the floor and sky would never be fitted.
The object masks are for evaluators (e.g. PSNR outside the object), not for NeRF training.

Every view renders the same object on the same floor with the same sun, and the floor textures
are functions of world position, so the views are geometrically and photometrically consistent.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import imageio.v2 as imageio
import numpy as np

from nerfedit.errors import UserError
from nerfedit.world.render import ObjectSpec, OrbitCamera, render_batch

SCENE_DISTANCE = 3.5
SCENE_FOCAL = 1.4
_BATCH = 16  # views rendered per batch; bounds memory, not a quality knob


def orbit_cameras(
    views: int,
    seed: int = 0,
    elevation_range: tuple = (15.0, 55.0),
    distance: float = SCENE_DISTANCE,
    focal: float = SCENE_FOCAL,
) -> List[OrbitCamera]:
    """`views` cameras spread around the object: azimuths evenly spaced (with a seeded phase and
    jitter), elevations interleaved over `elevation_range` so that every side is seen high and low.
    All share one focal length, as transforms.json has one set of intrinsics."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 360.0)
    lo, hi = elevation_range
    cameras = []
    for i in range(views):
        azimuth = (phase + 360.0 * i / views + rng.uniform(-0.3, 0.3) * 360.0 / views) % 360.0
        # The golden-ratio sequence spreads elevations evenly whatever the number of views.
        fraction = (0.5 + i * 0.6180339887) % 1.0
        cameras.append(OrbitCamera(lo + (hi - lo) * fraction, azimuth, distance, focal))
    return cameras


def render_views(obj: ObjectSpec, cameras: Sequence[OrbitCamera], size: int = 64) -> Dict[str, np.ndarray]:
    """Render `obj` from each camera: images float32 [N,H,W,3] in [0,1], masks bool [N,H,W], depths float32 [N,H,W]."""
    parts = [render_batch([obj] * len(chunk), list(chunk), size) for chunk in _chunks(cameras, _BATCH)]
    return {
        "images": np.concatenate([p["image"].numpy() for p in parts]),
        "masks": np.concatenate([p["mask"].numpy() for p in parts]),
        "depths": np.concatenate([p["depth"].numpy() for p in parts]),
    }


def _chunks(items: Sequence, n: int):
    return [items[i : i + n] for i in range(0, len(items), n)]


def check_output_dir(out_dir: Path) -> None:
    """UserError unless `out_dir` does not exist yet or is an empty directory (scenes are never overwritten)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty; choose another --out or remove it")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0,1] image → uint8, rounding to nearest."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_scene(
    out_dir: Path | str,
    obj: ObjectSpec,
    cameras: Sequence[OrbitCamera],
    size: int = 64,
    seed: Optional[int] = None,
    command: Optional[str] = None,
) -> Path:
    """Render `obj` from `cameras` and write a nerfstudio scene to `out_dir` (which must be new or empty)."""
    out_dir = Path(out_dir)
    check_output_dir(out_dir)
    if not cameras:
        raise UserError("a scene needs at least one view")
    focal = cameras[0].focal
    if any(abs(c.focal - focal) > 1e-9 for c in cameras):
        raise ValueError("all cameras of a scene must share one focal length")
    views = render_views(obj, cameras, size)

    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(exist_ok=True)
    fx, fy, cx, cy = cameras[0].intrinsics(size)
    frames = []
    for i, cam in enumerate(cameras):
        name = f"frame_{i:05d}.png"
        imageio.imwrite(out_dir / "images" / name, to_uint8(views["images"][i]))
        imageio.imwrite(out_dir / "masks" / name, views["masks"][i].astype(np.uint8) * 255)
        frames.append(
            {
                "file_path": f"images/{name}",
                "transform_matrix": np.round(cam.c2w(), 8).tolist(),
                "object_mask_path": f"masks/{name}",
            }
        )
    transforms = {
        "camera_model": "OPENCV",
        "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": size, "h": size,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "frames": frames,
        "nerfedit": {
            "object": asdict(obj),
            "caption": obj.caption,
            "cameras": [asdict(c) for c in cameras],
            "seed": seed,
            "command": command,
            "conventions": "world z up, object centre at the origin on a floor at z = floor_height; "
            "transform_matrix is OpenGL camera-to-world; masks are object masks (255 = object)",
            "floor_height": obj.floor_height(),
        },
    }
    (out_dir / "transforms.json").write_text(json.dumps(transforms, indent=2) + "\n")
    return out_dir


def make_scene(
    shape: str, color: str, floor: str, out_dir: Path | str, views: int = 32, size: int = 64, seed: int = 0,
    command: Optional[str] = None,
) -> Path:
    """The scene the `nerfedit world scene` command writes: the object upright at the origin,
    default size, a seeded yaw and sun, `views` orbit cameras."""
    obj = scene_object(shape, color, floor, seed)
    return write_scene(out_dir, obj, orbit_cameras(views, seed), size, seed=seed, command=command)


def scene_object(shape: str, color: str, floor: str, seed: int = 0) -> ObjectSpec:
    """The object of a scene: centred, size 1, with a yaw and sun direction drawn from `seed`."""
    rng = np.random.default_rng([seed, 1])
    return ObjectSpec(
        shape, color, floor, size=1.0, yaw_deg=float(rng.uniform(0.0, 90.0)), offset=(0.0, 0.0),
        light_azimuth_deg=float(rng.uniform(0.0, 360.0)), light_elevation_deg=float(rng.uniform(45.0, 65.0)),
    )


def load_scene(scene_dir: Path | str) -> Dict[str, object]:
    """Read back a scene written by `write_scene`: its ObjectSpec, OrbitCameras, c2w matrices and image size."""
    scene_dir = Path(scene_dir)
    path = scene_dir / "transforms.json"
    if not path.is_file():
        raise UserError(f"{scene_dir} is not a scene: no transforms.json")
    meta = json.loads(path.read_text())
    info = meta.get("nerfedit")
    if info is None:
        raise UserError(f"{path} was not written by nerfedit (no 'nerfedit' entry)")
    obj_fields = dict(info["object"])
    obj_fields["offset"] = tuple(obj_fields.get("offset", (0.0, 0.0)))
    return {
        "object": ObjectSpec(**obj_fields),
        "cameras": [OrbitCamera(**c) for c in info["cameras"]],
        "c2w": np.array([f["transform_matrix"] for f in meta["frames"]], dtype=np.float64),
        "size": int(meta["w"]),
        "frames": meta["frames"],
    }
