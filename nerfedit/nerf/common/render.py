"""Full-image rendering for edit steps: cameras at the edit resolution, jittered novel views, orbits, chunks.

Edit steps need whole images (the prior sees images, not rays). A 512² image is 262 144 rays; the
autograd graph of that many nerfacto rays does not fit a 12 GB card, so when an image has more rays
than `chunk`, the edit step renders it in two passes (deferred back-propagation, as ARF):

    pass 1  render every chunk without a graph            → image
    prior   image (leaf) → VAE → loss → backward          → dL/dimage
    pass 2  re-render each chunk WITH a graph, backward (rgb · dL/dimage).sum()   one chunk in memory

Both passes draw each chunk's stratified samples from the same seed, so pass 2 re-creates pass 1's
image exactly and the gradient is the one of the image the loss saw.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle

Renderer = Callable[[RayBundle], Dict[str, Tensor]]
"""A model's forward: ray bundle → outputs dict with "rgb" (and, in training, the proposal weights)."""


# ---- cameras ----------------------------------------------------------------------------------
def scaled_camera(cameras: Cameras, index: int, short_side: int) -> Cameras:
    """Camera `index` of `cameras`, its intrinsics scaled so that its shorter image side is `short_side` px."""
    camera = cameras[index : index + 1]
    height, width = int(camera.height.reshape(-1)[0]), int(camera.width.reshape(-1)[0])
    scale = short_side / min(height, width)
    if abs(scale - 1.0) > 1e-9:
        camera = Cameras(
            camera_to_worlds=camera.camera_to_worlds,
            fx=camera.fx * scale,
            fy=camera.fy * scale,
            cx=camera.cx * scale,
            cy=camera.cy * scale,
            width=torch.full_like(camera.width, max(short_side, round(width * scale))),
            height=torch.full_like(camera.height, max(short_side, round(height * scale))),
            camera_type=camera.camera_type,
            distortion_params=camera.distortion_params,
        )
    return camera


def orbit_to_cameras(orbit: Sequence, size: int, transform: Optional[Tensor] = None, scale: float = 1.0) -> Cameras:
    """`nerfedit.orbit.OrbitCamera`s (world frame, z up, focal in image widths) as nerfstudio `Cameras` of square
    `size`-pixel images; with a run's dataparser `transform` [3, 4] and `scale`, in that run's frame."""
    c2w = torch.tensor(np.stack([camera.c2w() for camera in orbit]), dtype=torch.float32)  # [N, 4, 4]
    if transform is None:
        c2w = c2w[:, :3]
    else:
        c2w = transform[None] @ c2w  # [N, 3, 4]
        c2w[:, :3, 3] *= scale
    focal = torch.tensor([[camera.intrinsics(size)[0]] for camera in orbit], dtype=torch.float32)
    return Cameras(
        camera_to_worlds=c2w,
        fx=focal,
        fy=focal,
        cx=torch.full_like(focal, size / 2.0),
        cy=torch.full_like(focal, size / 2.0),
        width=torch.full((len(orbit), 1), size, dtype=torch.long),
        height=torch.full((len(orbit), 1), size, dtype=torch.long),
    )


def focus_point(cameras: Cameras) -> Tensor:
    """The point closest (least squares) to every camera's optical axis: what a capture looks at. [3]"""
    c2w = cameras.camera_to_worlds.reshape(-1, 3, 4).double().cpu()
    origins, directions = c2w[:, :, 3], -c2w[:, :, 2]  # OpenGL: cameras look down -z
    directions = directions / directions.norm(dim=-1, keepdim=True)
    projector = torch.eye(3, dtype=torch.float64) - directions[:, :, None] * directions[:, None, :]
    a = projector.sum(0)
    b = (projector @ origins[:, :, None]).sum(0)
    try:
        return torch.linalg.solve(a, b).reshape(3).float()
    except RuntimeError:  # all axes parallel: fall back to the mean position
        return origins.mean(0).float()


def up_vector(cameras: Cameras) -> Tensor:
    """The average camera up (+y) axis, normalised: the capture's vertical. [3]"""
    up = cameras.camera_to_worlds.reshape(-1, 3, 4)[:, :, 1].double().mean(0).cpu()
    return (up / up.norm().clamp(min=1e-9)).float()


def _rotation(axis: Tensor, angle: float) -> Tensor:
    """Rodrigues' rotation matrix about the unit `axis` by `angle` radians. [3, 3] float64"""
    axis = axis.double() / axis.double().norm().clamp(min=1e-12)
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def orbit_camera(camera: Cameras, focus: Tensor, up: Tensor, azimuth: float, elevation: float) -> Cameras:
    """`camera` moved on its sphere around `focus`: `azimuth` radians about `up`, then `elevation` radians up."""
    c2w = camera.camera_to_worlds.reshape(3, 4).double().cpu()
    right = c2w[:, 0]
    rotation = _rotation(up, azimuth) @ _rotation(right, -elevation)
    focus = focus.double()
    new = torch.empty_like(c2w)
    new[:, :3] = rotation @ c2w[:, :3]
    new[:, 3] = rotation @ (c2w[:, 3] - focus) + focus
    return Cameras(
        camera_to_worlds=new.float()[None].to(camera.device),
        fx=camera.fx,
        fy=camera.fy,
        cx=camera.cx,
        cy=camera.cy,
        width=camera.width,
        height=camera.height,
        camera_type=camera.camera_type,
        distortion_params=camera.distortion_params,
    )


def jitter_camera(camera: Cameras, focus: Tensor, up: Tensor, degrees: float, rng: np.random.Generator) -> Cameras:
    """A novel view near `camera`: orbit it by up to ±`degrees` in azimuth and ±`degrees`/2 in elevation."""
    azimuth = math.radians(rng.uniform(-degrees, degrees))
    elevation = math.radians(rng.uniform(-degrees / 2, degrees / 2))
    return orbit_camera(camera, focus, up, azimuth, elevation)


def turntable_cameras(cameras: Cameras, frames: int, short_side: Optional[int] = None) -> List[Cameras]:
    """`frames` views on a full circle around the capture's focus, at the first camera's height and intrinsics."""
    focus, up = focus_point(cameras), up_vector(cameras)
    camera = cameras[0:1] if short_side is None else scaled_camera(cameras, 0, short_side)
    return [orbit_camera(camera, focus, up, 2 * math.pi * i / frames, 0.0) for i in range(frames)]


def ray_bundle(camera: Cameras, camera_index: int, device: torch.device) -> Tuple[RayBundle, int, int]:
    """The flattened [H·W] ray bundle of a single camera, tagged with training camera `camera_index`.

    The tag selects the appearance embedding and the camera optimiser's pose correction of that view.
    """
    camera = camera.to(device)
    bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
    height, width = bundle.shape[:2]
    bundle.camera_indices = torch.full_like(bundle.camera_indices, camera_index)
    return bundle.flatten(), int(height), int(width)


def crop_bundle(bundle: RayBundle, height: int, width: int, top: int, left: int, size: int) -> RayBundle:
    """The rays of the `size`×`size` window at (`top`, `left`) of a flattened [height·width] bundle."""
    if (top, left, size, size) == (0, 0, height, width):
        return bundle
    return bundle.reshape((height, width))[top : top + size, left : left + size].flatten()


# ---- rendering --------------------------------------------------------------------------------
def _chunk_seed(base: int, chunk: int) -> int:
    return (base * 1_000_003 + chunk) % (2**31 - 1)


def render_image(render: Renderer, bundle: RayBundle, chunk: int, seed: Optional[int] = None) -> Tensor:
    """RGB [N, 3] of a flattened bundle, chunk by chunk, without an autograd graph."""
    pieces = []
    with torch.no_grad():
        for i, start in enumerate(range(0, len(bundle), chunk)):
            with seeded_rng(bundle, seed, i):
                pieces.append(render(bundle[start : start + chunk])["rgb"].float())
    return torch.cat(pieces)


AuxLoss = Callable[[Dict[str, Tensor]], Tensor]
"""Extra per-render loss (e.g. nerfacto's interlevel loss) from a chunk's outputs; averaged over rays."""


def render_with_graph(render: Renderer, bundle: RayBundle, aux: Optional[AuxLoss] = None, seed: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """RGB [N, 3] with its autograd graph (one pass, the whole bundle) and the aux loss (0 if none)."""
    with seeded_rng(bundle, seed, 0):
        outputs = render(bundle[0 : len(bundle)])  # a copy: the model's collider and pose correction write into it
    aux_loss = aux(outputs) if aux is not None else outputs["rgb"].new_zeros(())
    return outputs["rgb"].float(), aux_loss


def deferred_backward(
    render: Renderer,
    bundle: RayBundle,
    image_grad: Tensor,
    chunk: int,
    aux: Optional[AuxLoss] = None,
    seed: Optional[int] = None,
    scale: float = 1.0,
) -> float:
    """Pass 2 of deferred back-propagation: re-render each chunk with a graph and back-propagate
    `scale` · (rgb · image_grad).sum() (+ its share of the aux loss). Returns the total aux loss."""
    total_aux = 0.0
    n = len(bundle)
    for i, start in enumerate(range(0, n, chunk)):
        with seeded_rng(bundle, seed, i):
            outputs = render(bundle[start : start + chunk])
        surrogate = (outputs["rgb"].float() * image_grad[start : start + chunk]).sum()
        if aux is not None:
            aux_loss = aux(outputs) * (min(chunk, n - start) / n)
            surrogate = surrogate + aux_loss
            total_aux += float(aux_loss.detach())
        (surrogate * scale).backward()
    return total_aux


class seeded_rng:
    """Seed torch's global RNG (CPU and the bundle's CUDA device) for one chunk, restoring it afterwards."""

    def __init__(self, bundle: RayBundle, seed: Optional[int], chunk: int) -> None:
        self.seed = None if seed is None else _chunk_seed(seed, chunk)
        device = bundle.origins.device
        self.devices = [device] if device.type == "cuda" else []
        self._fork = None

    def __enter__(self) -> None:
        if self.seed is None:
            return
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc) -> None:
        if self._fork is not None:
            self._fork.__exit__(*exc)


def to_image(rgb: Tensor, height: int, width: int) -> Tensor:
    """[N, 3] → [1, 3, H, W] (the layout the prior takes)."""
    return rgb.reshape(height, width, 3).permute(2, 0, 1)[None]


def from_image(image: Tensor) -> Tensor:
    """[1, 3, H, W] → [N, 3] (ray order)."""
    return image[0].permute(1, 2, 0).reshape(-1, 3)
