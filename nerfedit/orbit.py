"""`OrbitCamera`: a pinhole camera on a sphere around the origin, world z up — the toy world's cameras, and the
turntable / evaluation cameras of text-to-3D (which sees the world's objects from the same orbits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from nerfedit.shading import unit_direction


@dataclass
class OrbitCamera:
    """A pinhole camera on a sphere around the origin, looking at the origin, world z up."""

    elevation_deg: float = 30.0
    azimuth_deg: float = 0.0
    distance: float = 3.5
    focal: float = 1.4
    """Focal length in units of the image width (1.4 ≈ 39° horizontal field of view)."""

    def position(self) -> np.ndarray:
        return self.distance * unit_direction(self.elevation_deg, self.azimuth_deg)

    def c2w(self) -> np.ndarray:
        """4×4 float64 OpenGL camera-to-world matrix (camera looks down -z, y up), nerfstudio convention."""
        eye = self.position()
        forward = -eye / np.linalg.norm(eye)
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
        if np.linalg.norm(right) < 1e-8:  # looking straight down: any right vector will do
            right = np.array([0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        c2w = np.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, eye
        return c2w

    def intrinsics(self, size: int) -> Tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels for a square image of side `size`."""
        f = self.focal * size
        return f, f, size / 2.0, size / 2.0
