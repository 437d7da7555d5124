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
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from nerfedit.orbit import OrbitCamera
from nerfedit.shading import (
    CONTACT_DARKENING,
    SUN_ELEVATION_RANGE,
    floor_haze,
    floor_shading,
    object_shading,
    ray_sphere_interval,
    unit_direction,
)
from nerfedit.world.floors import FLOOR_TEXTURES, sky_colour
from nerfedit.world.shapes import ALBEDO, BOUND_RADIUS, SDF, ObjectSpec, random_camera, random_object
from nerfedit.world.vocab import SHAPES, caption

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
        meets, t0, t1 = ray_sphere_interval(o_loc, d_loc, BOUND_RADIUS)
        rays, o_loc, d_loc, t0, t1, rot, scale = (x[meets] for x in (rays, o_loc, d_loc, t0, t1, rot, scale))
        hit, t_loc = _sphere_trace(SDF[shape], o_loc, d_loc, t0, t1)
        rays, o_loc, d_loc, t_loc, rot, scale = (x[hit] for x in (rays, o_loc, d_loc, t_loc, rot, scale))
        normal_loc = _normals(SDF[shape], o_loc + d_loc * t_loc[:, None])
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
    for kind, texture in FLOOR_TEXTURES.items():
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
        meets, t0, t1 = ray_sphere_interval(p_loc, sun_loc, BOUND_RADIUS)
        idx = meets.nonzero().squeeze(1)
        visibility[sel[idx]] = _soft_shadow(SDF[shape], p_loc[idx], sun_loc[idx], t0[idx].clamp(min=0.02), t1[idx])
        near = (p_loc.norm(dim=-1) < 1.6).nonzero().squeeze(1)
        gap = SDF[shape](p_loc[near])
        contact[sel[near]] = 1 - CONTACT_DARKENING * torch.exp(-gap.clamp(min=0) / 0.12)
    shade = floor_shading(sun, visibility, contact)
    color[rays] = floor_haze(albedo * shade[:, None], t_floor[rays])
    t_hit[rays] = t_floor[rays]

    sees_sky = ~is_object & ~down
    color[sees_sky] = sky_colour(dirs[sees_sky])

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


__all__ = [  # the world's public names, wherever they live (shapes, floors, the shared shading and orbit camera)
    "ALBEDO",
    "CONTACT_DARKENING",
    "SUN_ELEVATION_RANGE",
    "ObjectSpec",
    "OrbitCamera",
    "floor_haze",
    "floor_shading",
    "object_shading",
    "random_camera",
    "random_object",
    "ray_sphere_interval",
    "render",
    "render_batch",
    "sample_batch",
    "unit_direction",
]
