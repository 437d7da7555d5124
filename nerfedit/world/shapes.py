"""What a world scene holds: the object's palette, its primitives (signed distance functions in local units),
and `ObjectSpec` (shape, colour, floor, pose, sun) with its random draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import torch
from torch import Tensor

from nerfedit.orbit import OrbitCamera
from nerfedit.shading import SUN_ELEVATION_RANGE, unit_direction
from nerfedit.world.vocab import (
    COLORS,
    FLOORS,
    SHAPES,
    caption,
    color_index,
    floor_index,
    resolve_color,
    resolve_floor,
    resolve_shape,
    shape_index,
)

# ---- the palette ------------------------------------------------------------------------------

ALBEDO: Dict[str, Tuple[float, float, float]] = {
    "red": (0.86, 0.09, 0.08),
    "orange": (0.96, 0.46, 0.05),
    "yellow": (0.95, 0.84, 0.10),
    "green": (0.16, 0.72, 0.18),
    "cyan": (0.08, 0.78, 0.84),
    "blue": (0.12, 0.24, 0.92),
    "purple": (0.52, 0.16, 0.78),
    "pink": (0.97, 0.46, 0.70),
}
"""Linear-ish RGB albedo of each colour word; saturated so shading keeps the hue readable."""


# ---- the primitives, in local units (the object is about one unit across at size 1) ----------

# Distance from the local origin down to the primitive's lowest point: the floor touches it there.
BOTTOM = {"sphere": 0.5, "cube": 0.4, "cylinder": 0.45, "cone": 0.475, "torus": 0.16}
# Every primitive fits in a sphere of this radius around the local origin.
BOUND_RADIUS = 0.72
_TORUS_MAJOR, _TORUS_MINOR = 0.40, 0.16
_CYL_RADIUS, _CYL_HALF_HEIGHT = 0.38, 0.45
_CONE_RADIUS, _CONE_HALF_HEIGHT = 0.45, 0.475
_CUBE_HALF = 0.4


def _sdf_sphere(p: Tensor) -> Tensor:
    return p.norm(dim=-1) - 0.5


def _sdf_cube(p: Tensor) -> Tensor:
    q = p.abs() - _CUBE_HALF
    return q.clamp(min=0).norm(dim=-1) + q.amax(dim=-1).clamp(max=0)


def _sdf_cylinder(p: Tensor) -> Tensor:
    radial = torch.hypot(p[:, 0], p[:, 1]) - _CYL_RADIUS
    axial = p[:, 2].abs() - _CYL_HALF_HEIGHT
    outside = torch.hypot(radial.clamp(min=0), axial.clamp(min=0))
    return outside + torch.maximum(radial, axial).clamp(max=0)


def _sdf_cone(p: Tensor) -> Tensor:
    # Exact capped cone (apex up, base down) after Inigo Quilez's sdCappedCone with r_top = 0.
    h, r1 = _CONE_HALF_HEIGHT, _CONE_RADIUS
    qx = torch.hypot(p[:, 0], p[:, 1])
    qy = p[:, 2]
    k1x, k1y = 0.0, h
    k2x, k2y = -r1, 2.0 * h
    cap_radius = torch.where(qy < 0, torch.full_like(qy, r1), torch.zeros_like(qy))
    cax = qx - torch.minimum(qx, cap_radius)
    cay = qy.abs() - h
    s = ((k1x - qx) * k2x + (k1y - qy) * k2y) / (k2x * k2x + k2y * k2y)
    s = s.clamp(0.0, 1.0)
    cbx = qx - k1x + k2x * s
    cby = qy - k1y + k2y * s
    sign = torch.where((cbx < 0) & (cay < 0), -1.0, 1.0)
    return sign * torch.sqrt(torch.minimum(cax * cax + cay * cay, cbx * cbx + cby * cby))


def _sdf_torus(p: Tensor) -> Tensor:
    ring = torch.hypot(p[:, 0], p[:, 1]) - _TORUS_MAJOR
    return torch.hypot(ring, p[:, 2]) - _TORUS_MINOR


SDF = {
    "sphere": _sdf_sphere,
    "cube": _sdf_cube,
    "cylinder": _sdf_cylinder,
    "cone": _sdf_cone,
    "torus": _sdf_torus,
}


# ---- scene descriptions --------- ------------------------------------------------------------


@dataclass
class ObjectSpec:
    """What is in a scene: the object, its colour, the floor, and where the sun is.

    Words are canonicalised on construction (floor keys such as "wood" become the phrase
    "wooden floor"); unknown words raise `nerfedit.errors.UserError`.
    """

    shape: str
    color: str
    floor: str
    size: float = 1.0
    """Uniform scale of the primitive (about one world unit across at 1.0)."""
    yaw_deg: float = 0.0
    """Rotation of the object about the vertical axis."""
    offset: Tuple[float, float] = (0.0, 0.0)
    """Horizontal (x, y) shift of the object from the origin."""
    light_azimuth_deg: float = 35.0
    light_elevation_deg: float = 55.0
    """Direction towards the (directional) sun."""

    def __post_init__(self) -> None:
        self.shape = resolve_shape(self.shape)
        self.color = resolve_color(self.color)
        self.floor = resolve_floor(self.floor)
        self.offset = (float(self.offset[0]), float(self.offset[1]))

    @property
    def caption(self) -> str:
        """The canonical caption, e.g. "a red cube on a wooden floor"."""
        return caption(self.shape, self.color, self.floor, template=0)

    def floor_height(self) -> float:
        """z of the floor plane: the object rests on it."""
        return -BOTTOM[self.shape] * self.size

    def light_direction(self) -> np.ndarray:
        """Unit vector towards the sun, world frame."""
        return unit_direction(self.light_elevation_deg, self.light_azimuth_deg)

    def labels(self) -> Tuple[int, int, int]:
        """(shape, colour, floor) indices into SHAPES, COLORS, FLOORS."""
        return shape_index(self.shape), color_index(self.color), floor_index(self.floor)


def random_object(rng: np.random.Generator) -> ObjectSpec:
    """A uniformly random shape/colour/floor with a random size, yaw, small offset and sun direction."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    color = COLORS[rng.integers(len(COLORS))]
    floor = FLOORS[rng.integers(len(FLOORS))]
    size = float(rng.uniform(0.85, 1.15))
    yaw = float(rng.uniform(0.0, 360.0))
    offset = (float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15)))
    light_az = float(rng.uniform(0.0, 360.0))
    light_el = float(rng.uniform(*SUN_ELEVATION_RANGE))
    return ObjectSpec(shape, color, floor, size, yaw, offset, light_az, light_el)


def random_camera(rng: np.random.Generator) -> OrbitCamera:
    """An orbit camera with elevation 15–50°, any azimuth, distance 3–4 and focal 1.3–1.7 widths."""
    return OrbitCamera(
        elevation_deg=float(rng.uniform(15.0, 50.0)),
        azimuth_deg=float(rng.uniform(0.0, 360.0)),
        distance=float(rng.uniform(3.0, 4.0)),
        focal=float(rng.uniform(1.3, 1.7)),
    )
