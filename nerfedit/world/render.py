"""A procedural ray-traced world: one primitive on a textured floor, seen from an orbit camera.

Conventions
    * World frame: z up, the floor is the plane z = `floor_height(obj)` (< 0), the object's centre
      sits at (offset_x, offset_y, 0), so cameras orbit and look at the origin.
    * Cameras follow nerfstudio/OpenGL: camera-to-world matrices whose columns are the camera's
      right (+x), up (+y) and backward (+z) axes in world coordinates; the camera looks down -z.
    * Pixel (row v, column u) looks through the image point (u + 0.5, v + 0.5), as in nerfstudio.
    * `depth` is z-depth (distance along the optical axis), +inf where a ray sees the sky.

Rendering is exact up to sphere tracing: each primitive is a signed distance function (SDF) in its
own local frame; rays are intersected analytically with the floor plane and a bounding sphere, and
only rays that enter the bounding sphere are sphere-traced. Everything is vectorised over all rays
of a batch of scenes, which is what makes ~10^5 training images cheap on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

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

_SKY_HORIZON = (0.93, 0.91, 0.87)
_SKY_ZENITH = (0.60, 0.73, 0.90)

# ---- the primitives, in local units (the object is about one unit across at size 1) ----------

# Distance from the local origin down to the primitive's lowest point: the floor touches it there.
_BOTTOM = {"sphere": 0.5, "cube": 0.4, "cylinder": 0.45, "cone": 0.475, "torus": 0.16}
# Every primitive fits in a sphere of this radius around the local origin.
_BOUND_RADIUS = 0.72
_TORUS_MAJOR, _TORUS_MINOR = 0.40, 0.16
_CYL_RADIUS, _CYL_HALF_HEIGHT = 0.38, 0.45
_CONE_RADIUS, _CONE_HALF_HEIGHT = 0.45, 0.475
_CUBE_HALF = 0.4

SUN_ELEVATION_RANGE = (40.0, 70.0)
"""Elevations (degrees) of the sun of random scenes; its azimuth is any."""

# Lighting: kept moderate so that the colour of an object stays readable on its dark side.
_AMBIENT_BASE, _AMBIENT_SKY, _DIFFUSE = 0.26, 0.14, 0.62


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


_SDF = {
    "sphere": _sdf_sphere,
    "cube": _sdf_cube,
    "cylinder": _sdf_cylinder,
    "cone": _sdf_cone,
    "torus": _sdf_torus,
}


# ---- scene and camera descriptions ------------------------------------------------------------


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
        return -_BOTTOM[self.shape] * self.size

    def light_direction(self) -> np.ndarray:
        """Unit vector towards the sun, world frame."""
        return unit_direction(self.light_elevation_deg, self.light_azimuth_deg)

    def labels(self) -> Tuple[int, int, int]:
        """(shape, colour, floor) indices into SHAPES, COLORS, FLOORS."""
        return shape_index(self.shape), color_index(self.color), floor_index(self.floor)


def unit_direction(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """The unit vector at `elevation_deg` above the xy-plane and `azimuth_deg` from +x towards +y (world frame, z up)."""
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


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


def object_shading(normals: Tensor, sun: Tensor) -> Tensor:
    """The world's light on an object's surface (no shadows): ambient, a sky term brighter on upward normals, and
    the sun's Lambert term. `normals` [..., 3] and `sun` (unit, towards the sun; broadcastable) in world frame."""
    lambert = (normals * sun).sum(-1).clamp(min=0)
    return _AMBIENT_BASE + _AMBIENT_SKY * (0.5 + 0.5 * normals[..., 2]) + _DIFFUSE * lambert


CONTACT_DARKENING = 0.45
"""How much of the ambient light the floor loses right against the object (`floor_shading`'s `contact`)."""


def floor_shading(sun: Tensor, visibility: Tensor, contact: Tensor | float = 1.0) -> Tensor:
    """The world's light on the floor: ambient (darkened by `contact` beside the object) and the sun's Lambert
    term where `visibility` (the object's shadow: 0) lets it through. `sun` [..., 3] unit, towards the sun."""
    return (_AMBIENT_BASE + _AMBIENT_SKY) * contact + _DIFFUSE * sun[..., 2].clamp(min=0) * visibility


def floor_haze(rgb: Tensor, distance: Tensor) -> Tensor:
    """The floor's colour `rgb` [..., 3] seen from `distance` [...]: hazed towards the horizon colour, which
    hides the aliasing of far texture and meets the sky."""
    haze = (1 - torch.exp(-((distance / 14.0) ** 2)))[..., None]
    return torch.lerp(rgb, torch.tensor(_SKY_HORIZON).to(rgb).expand_as(rgb), haze)


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


# ---- procedural textures (pure functions of floor coordinates, so every view agrees) ----------


def _hash2(ix: Tensor, iy: Tensor, seed: float = 0.0) -> Tensor:
    """A deterministic pseudo-random number in [0, 1) per integer lattice point."""
    h = torch.sin(ix * 127.1 + iy * 311.7 + seed * 74.7) * 43758.5453
    return h - torch.floor(h)


def _value_noise(x: Tensor, y: Tensor, seed: float = 0.0) -> Tensor:
    """Smooth value noise in [0, 1) with unit feature size."""
    ix, iy = torch.floor(x), torch.floor(y)
    fx, fy = x - ix, y - iy
    ux, uy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash2(ix, iy, seed), _hash2(ix + 1, iy, seed)
    c, d = _hash2(ix, iy + 1, seed), _hash2(ix + 1, iy + 1, seed)
    return a + (b - a) * ux + (c - a) * uy + (a - b - c + d) * ux * uy


def _detail(footprint: Tensor, feature: float) -> Tensor:
    """1 where a texture feature of this size is well resolved by a pixel, fading to 0 when not (anti-aliasing)."""
    return (1.5 - footprint / feature).clamp(0.0, 1.0)


def _lines(coord: Tensor, period: float, width: float, footprint: Tensor) -> Tensor:
    """1 on thin lines every `period` (e.g. gaps between tiles), area-averaged when a pixel is coarser."""
    phase = coord / period - torch.floor(coord / period)
    on = (phase < width / period).float()
    return torch.lerp(on, torch.full_like(on, width / period), 1 - _detail(footprint, 2 * width))


def _wood(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    plank_w, plank_l = 0.32, 1.6
    row = torch.floor(y / plank_w)
    shifted = x + _hash2(row, row, 3.0) * plank_l
    col = torch.floor(shifted / plank_l)
    tone = _hash2(row, col, 1.0)
    light, dark = torch.tensor([0.66, 0.45, 0.26]), torch.tensor([0.50, 0.31, 0.16])
    base = dark + (light - dark) * tone[:, None]
    grain = torch.sin(shifted * 9.0 + 6.0 * _value_noise(shifted * 1.5, y * 14.0, 2.0) + tone * 20)
    base = base * (1 + 0.10 * grain * _detail(footprint, 0.15))[:, None]
    gaps = torch.maximum(_lines(y, plank_w, 0.012, footprint), _lines(shifted, plank_l, 0.012, footprint))
    return torch.lerp(base, torch.tensor([0.22, 0.13, 0.07]).expand_as(base), 0.85 * gaps[:, None])


def _grass(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    coarse = _value_noise(x * 1.3, y * 1.3, 4.0)
    fine = _value_noise(x * 9.0, y * 9.0, 5.0) * _detail(footprint, 0.11) + 0.5 * (1 - _detail(footprint, 0.11))
    lush, dry = torch.tensor([0.22, 0.44, 0.12]), torch.tensor([0.42, 0.50, 0.20])
    base = lush + (dry - lush) * coarse[:, None]
    return base * (0.78 + 0.40 * fine)[:, None]


def _checker(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    tile = 0.5
    # Box-filtered checkerboard (Quilez): exact pixel-area average, so distant tiles blur to grey, not moiré.
    w = (footprint / tile).clamp(min=1e-4)

    def filtered(u: Tensor) -> Tensor:
        a = (u - 0.5 * w) * 0.5
        b = (u + 0.5 * w) * 0.5
        fa = (a - torch.floor(a) - 0.5).abs()
        fb = (b - torch.floor(b) - 0.5).abs()
        return 2 * (fa - fb) / w

    s = 0.5 - 0.5 * filtered(x / tile) * filtered(y / tile)
    light, dark = torch.tensor([0.86, 0.85, 0.82]), torch.tensor([0.20, 0.20, 0.23])
    return dark + (light - dark) * s[:, None]


def _stone(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    tile_w, tile_h = 0.55, 0.36
    row = torch.floor(y / tile_h)
    shifted = x + 0.5 * tile_w * (row - 2 * torch.floor(row / 2))
    col = torch.floor(shifted / tile_w)
    tone = _hash2(row, col, 7.0)
    grit = _value_noise(x * 7.0, y * 7.0, 8.0) * _detail(footprint, 0.14) + 0.5 * (1 - _detail(footprint, 0.14))
    grey = (0.46 + 0.16 * tone + 0.10 * (grit - 0.5))[:, None]
    base = grey * torch.tensor([1.0, 0.97, 0.92])
    mortar = torch.maximum(_lines(y, tile_h, 0.02, footprint), _lines(shifted, tile_w, 0.02, footprint))
    return torch.lerp(base, torch.tensor([0.30, 0.29, 0.27]).expand_as(base), 0.9 * mortar[:, None])


_FLOOR_TEXTURE = {"wooden floor": _wood, "grass": _grass, "checkered floor": _checker, "stone floor": _stone}


def _sky(directions: Tensor) -> Tensor:
    g = directions[:, 2].clamp(0.0, 1.0).pow(0.6)[:, None]
    horizon, zenith = torch.tensor(_SKY_HORIZON), torch.tensor(_SKY_ZENITH)
    return horizon + (zenith - horizon) * g


# ---- ray tracing ------------------------------------------------------------------------------


def _camera_rays(cams: Sequence[OrbitCamera], size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Per camera: origin [B,3], unit directions [B,H*W,3], and cos(angle to optical axis) [B,H*W]."""
    v, u = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    origins, directions, cosines = [], [], []
    for cam in cams:
        fx, fy, cx, cy = cam.intrinsics(size)
        d_cam = torch.stack([(u + 0.5 - cx) / fx, -(v + 0.5 - cy) / fy, -torch.ones_like(u)], dim=-1).reshape(-1, 3)
        d_cam = d_cam / d_cam.norm(dim=-1, keepdim=True)
        c2w = torch.as_tensor(cam.c2w(), dtype=torch.float32)
        directions.append(d_cam @ c2w[:3, :3].T)
        origins.append(c2w[:3, 3])
        cosines.append(-d_cam[:, 2])
    return torch.stack(origins), torch.stack(directions), torch.stack(cosines)


def _to_local(points: Tensor, rot: Tensor, center: Tensor, scale: Tensor) -> Tensor:
    """World points [N,3] into the object frame (rot: [N,3,3] world-from-local, center [N,3], scale [N])."""
    return torch.einsum("nji,nj->ni", rot, points - center) / scale[:, None]


def _sphere_trace(sdf, origin: Tensor, direction: Tensor, t_near: Tensor, t_far: Tensor, steps: int = 80, eps: float = 1.5e-3):
    """March local rays from t_near to t_far; returns (hit bool [N], t [N]). Converged rays stop updating."""
    t = t_near.clone()
    hit = torch.zeros_like(t, dtype=torch.bool)
    active = torch.arange(t.shape[0])
    for _ in range(steps):
        if active.numel() == 0:
            break
        dist = sdf(origin[active] + direction[active] * t[active, None])
        converged = dist < eps
        hit[active[converged]] = True
        t_new = t[active] + dist
        t[active] = torch.where(converged, t[active], t_new)
        active = active[~converged & (t_new < t_far[active])]
    return hit, t


def _normals(sdf, p: Tensor, h: float = 1e-3) -> Tensor:
    """SDF gradient by the four-point tetrahedron stencil."""
    k = torch.tensor([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=p.dtype)
    n = sum(k[i] * sdf(p + h * k[i])[:, None] for i in range(4))
    return n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _soft_shadow(sdf, origin: Tensor, direction: Tensor, t_near: Tensor, t_far: Tensor, sharpness: float = 10.0, steps: int = 32) -> Tensor:
    """Visibility of the sun in [0, 1] along local rays, with soft penumbrae (Quilez' min(k·h/t))."""
    vis = torch.ones_like(t_near)
    t = t_near.clone()
    active = torch.arange(t.shape[0])
    for _ in range(steps):
        if active.numel() == 0:
            break
        h = sdf(origin[active] + direction[active] * t[active, None])
        vis[active] = torch.minimum(vis[active], (sharpness * h / t[active].clamp(min=1e-3)).clamp(0.0, 1.0))
        t[active] = t[active] + h.clamp(0.01, 0.2)
        active = active[(h > 1e-3) & (t[active] < t_far[active])]
    return vis * vis * (3 - 2 * vis)


def ray_sphere_interval(origin: Tensor, direction: Tensor, radius: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Ray/sphere (centred at the local origin) entry and exit distances, and whether the ray meets it."""
    b = (origin * direction).sum(-1)
    c = (origin * origin).sum(-1) - radius * radius
    disc = b * b - c
    root = disc.clamp(min=0).sqrt()
    return disc > 0, (-b - root).clamp(min=0), -b + root


def render_batch(objs: Sequence[ObjectSpec], cams: Sequence[OrbitCamera], size: int = 64) -> Dict[str, Tensor]:
    """Render scene i = (objs[i], cams[i]) for all i at once.

    Returns torch tensors: image float32 [B,H,W,3] in [0,1], mask bool [B,H,W] (object pixels),
    depth float32 [B,H,W] (z-depth, +inf on the sky).
    """
    if len(objs) != len(cams):
        raise ValueError(f"{len(objs)} objects but {len(cams)} cameras")
    batch, hw = len(objs), size * size
    n = batch * hw
    eye, dirs, cos_axis = _camera_rays(cams, size)
    origin = eye[:, None, :].expand(batch, hw, 3).reshape(n, 3)
    dirs = dirs.reshape(n, 3)
    cos_axis = cos_axis.reshape(n)

    # Per-scene parameters, broadcast to rays.
    def per_ray(values) -> Tensor:
        return torch.as_tensor(np.asarray(values), dtype=torch.float32).repeat_interleave(hw, dim=0)

    yaw = np.radians([o.yaw_deg for o in objs])
    rot_np = np.zeros((batch, 3, 3))
    rot_np[:, 0, 0], rot_np[:, 0, 1], rot_np[:, 1, 0], rot_np[:, 1, 1], rot_np[:, 2, 2] = (
        np.cos(yaw), -np.sin(yaw), np.sin(yaw), np.cos(yaw), 1.0)
    scene_of_ray = torch.arange(batch).repeat_interleave(hw)
    center_s = torch.tensor([[o.offset[0], o.offset[1], 0.0] for o in objs], dtype=torch.float32)
    scale_s = torch.tensor([o.size for o in objs], dtype=torch.float32)
    rot_s = torch.as_tensor(rot_np, dtype=torch.float32)
    light_s = torch.as_tensor(np.stack([o.light_direction() for o in objs]), dtype=torch.float32)
    floor_z = per_ray([o.floor_height() for o in objs])
    light = light_s[scene_of_ray]
    focal_px = per_ray([c.focal * size for c in cams])

    color = torch.empty(n, 3)
    t_hit = torch.full((n,), math.inf)
    is_object = torch.zeros(n, dtype=torch.bool)

    # --- object: per shape, sphere-trace the rays that enter the bounding sphere ---------------
    shape_ids = np.array([SHAPES.index(o.shape) for o in objs])
    for s, shape in enumerate(SHAPES):
        scenes = np.nonzero(shape_ids == s)[0]
        if scenes.size == 0:
            continue
        rays = (scene_of_ray[:, None] == torch.as_tensor(scenes)[None, :]).any(dim=1).nonzero().squeeze(1)
        sc = scene_of_ray[rays]
        rot, center, scale = rot_s[sc], center_s[sc], scale_s[sc]
        o_loc = _to_local(origin[rays], rot, center, scale)
        d_loc = torch.einsum("nji,nj->ni", rot, dirs[rays])
        meets, t0, t1 = ray_sphere_interval(o_loc, d_loc, _BOUND_RADIUS)
        rays, o_loc, d_loc, t0, t1, rot, scale = (x[meets] for x in (rays, o_loc, d_loc, t0, t1, rot, scale))
        hit, t_loc = _sphere_trace(_SDF[shape], o_loc, d_loc, t0, t1)
        rays, o_loc, d_loc, t_loc, rot, scale = (x[hit] for x in (rays, o_loc, d_loc, t_loc, rot, scale))
        normal_loc = _normals(_SDF[shape], o_loc + d_loc * t_loc[:, None])
        normal = torch.einsum("nij,nj->ni", rot, normal_loc)
        shade = object_shading(normal, light[rays])
        albedo = torch.tensor([ALBEDO[objs[i].color] for i in range(batch)], dtype=torch.float32)[scene_of_ray[rays]]
        color[rays] = albedo * shade[:, None]
        t_hit[rays] = t_loc * scale
        is_object[rays] = True

    # --- floor: analytic plane, procedural texture, sun shadow of the object, contact darkening --
    down = dirs[:, 2] < -1e-6
    t_floor = torch.where(down, (floor_z - origin[:, 2]) / dirs[:, 2].clamp(max=-1e-6), torch.full_like(floor_z, math.inf))
    on_floor = ~is_object & down
    rays = on_floor.nonzero().squeeze(1)
    sc = scene_of_ray[rays]
    p = origin[rays] + dirs[rays] * t_floor[rays, None]
    footprint = t_floor[rays] / focal_px[rays] / (-dirs[rays, 2]).clamp(min=0.05)
    albedo = torch.empty(rays.shape[0], 3)
    for kind, texture in _FLOOR_TEXTURE.items():
        scenes = torch.as_tensor([i for i, o in enumerate(objs) if o.floor == kind], dtype=torch.long)
        if scenes.numel() == 0:
            continue
        sel = (sc[:, None] == scenes[None, :]).any(dim=1)
        albedo[sel] = texture(p[sel, 0], p[sel, 1], footprint[sel])
    sun = light[rays]
    visibility = torch.ones(rays.shape[0])
    contact = torch.ones(rays.shape[0])
    for s, shape in enumerate(SHAPES):
        sel = (torch.as_tensor(shape_ids)[sc] == s).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        ssc = sc[sel]
        p_loc = _to_local(p[sel], rot_s[ssc], center_s[ssc], scale_s[ssc])
        sun_loc = torch.einsum("nji,nj->ni", rot_s[ssc], sun[sel])
        meets, t0, t1 = ray_sphere_interval(p_loc, sun_loc, _BOUND_RADIUS)
        idx = meets.nonzero().squeeze(1)
        visibility[sel[idx]] = _soft_shadow(_SDF[shape], p_loc[idx], sun_loc[idx], t0[idx].clamp(min=0.02), t1[idx])
        near = (p_loc.norm(dim=-1) < 1.6).nonzero().squeeze(1)
        gap = _SDF[shape](p_loc[near])
        contact[sel[near]] = 1 - CONTACT_DARKENING * torch.exp(-gap.clamp(min=0) / 0.12)
    shade = floor_shading(sun, visibility, contact)
    color[rays] = floor_haze(albedo * shade[:, None], t_floor[rays])
    t_hit[rays] = t_floor[rays]

    sky = ~is_object & ~down
    color[sky] = _sky(dirs[sky])

    image = color.clamp(0.0, 1.0).reshape(batch, size, size, 3)
    depth = (t_hit * cos_axis).reshape(batch, size, size)
    return {"image": image, "mask": is_object.reshape(batch, size, size), "depth": depth}


def render(obj: ObjectSpec, cam: OrbitCamera, size: int = 64) -> Dict[str, np.ndarray]:
    """Render one scene: image float32 [H,W,3] in [0,1], mask bool [H,W], depth float32 [H,W] (numpy)."""
    out = render_batch([obj], [cam], size)
    return {k: v[0].numpy() for k, v in out.items()}


def sample_batch(n: int, rng: np.random.Generator, size: int = 64) -> Dict[str, object]:
    """`n` random scenes from random cameras, with captions from random templates and label indices.

    Returns images float32 [n,3,H,W] in [0,1], masks bool [n,H,W], captions list[str], and
    shape/color/floor long [n] indices into SHAPES/COLORS/FLOORS. Deterministic given `rng`'s state.
    """
    objs, cams, captions = [], [], []
    for _ in range(n):
        obj = random_object(rng)
        objs.append(obj)
        cams.append(random_camera(rng))
        captions.append(caption(obj.shape, obj.color, obj.floor, rng=rng))
    out = render_batch(objs, cams, size)
    labels = torch.tensor([o.labels() for o in objs], dtype=torch.long).reshape(n, 3)
    return {
        "images": out["image"].permute(0, 3, 1, 2).contiguous(),
        "masks": out["mask"],
        "captions": captions,
        "shape": labels[:, 0],
        "color": labels[:, 1],
        "floor": labels[:, 2],
    }
