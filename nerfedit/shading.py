"""The toy world's light, shared by the world's ray tracer (`nerfedit.world`) and text-to-3D's lit renders
(`nerfedit.nerf.generate`): the sun's range, the sky colours, how objects and the floor are lit, the floor's haze.

Text-to-3D lights its renders as the world lights its images (what the toy prior has seen); both read these
functions so that the two cannot drift apart. Torch and numpy only.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

SUN_ELEVATION_RANGE = (40.0, 70.0)
"""Elevations (degrees) of the sun of random scenes; its azimuth is any."""

SKY_HORIZON = (0.93, 0.91, 0.87)
"""The sky's colour at the horizon (and the colour far floor fades into)."""
SKY_ZENITH = (0.60, 0.73, 0.90)
"""The sky's colour straight up."""

# Lighting: kept moderate so that the colour of an object stays readable on its dark side.
AMBIENT_BASE, AMBIENT_SKY, DIFFUSE = 0.26, 0.14, 0.62

CONTACT_DARKENING = 0.45
"""How much of the ambient light the floor loses right against the object (`floor_shading`'s `contact`)."""


def unit_direction(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """The unit vector at `elevation_deg` above the xy-plane and `azimuth_deg` from +x towards +y (world frame, z up)."""
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def object_shading(normals: Tensor, sun: Tensor) -> Tensor:
    """The world's light on an object's surface (no shadows): ambient, a sky term brighter on upward normals, and
    the sun's Lambert term. `normals` [..., 3] and `sun` (unit, towards the sun; broadcastable) in world frame."""
    lambert = (normals * sun).sum(-1).clamp(min=0)
    return AMBIENT_BASE + AMBIENT_SKY * (0.5 + 0.5 * normals[..., 2]) + DIFFUSE * lambert


def floor_shading(sun: Tensor, visibility: Tensor, contact: Tensor | float = 1.0) -> Tensor:
    """The world's light on the floor: ambient (darkened by `contact` beside the object) and the sun's Lambert
    term where `visibility` (the object's shadow: 0) lets it through. `sun` [..., 3] unit, towards the sun."""
    return (AMBIENT_BASE + AMBIENT_SKY) * contact + DIFFUSE * sun[..., 2].clamp(min=0) * visibility


def floor_haze(rgb: Tensor, distance: Tensor) -> Tensor:
    """The floor's colour `rgb` [..., 3] seen from `distance` [...]: hazed towards the horizon colour, which
    hides the aliasing of far texture and meets the sky."""
    haze = (1 - torch.exp(-((distance / 14.0) ** 2)))[..., None]
    return torch.lerp(rgb, torch.tensor(SKY_HORIZON).to(rgb).expand_as(rgb), haze)


def ray_sphere_interval(origin: Tensor, direction: Tensor, radius: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Ray/sphere (centred at the local origin) entry and exit distances, and whether the ray meets it."""
    b = (origin * direction).sum(-1)
    c = (origin * origin).sum(-1) - radius * radius
    disc = b * b - c
    root = disc.clamp(min=0).sqrt()
    return disc > 0, (-b - root).clamp(min=0), -b + root
