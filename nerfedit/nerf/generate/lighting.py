"""Text-to-3D's renders lit as the toy world lights its objects: the fixed sun of lit views, normals from
generfacto's density gradients, and the lit composite of matter over background."""

from __future__ import annotations

import torch
from torch import Tensor

from nerfedit.shading import SUN_ELEVATION_RANGE, object_shading, unit_direction

VIEW_SUN = unit_direction(sum(SUN_ELEVATION_RANGE) / 2, 45.0)
"""The sun of lit renders (turntable, judged views, viewer): the middle of the toy world's sun elevations, fixed
in the world frame as a scene's sun is, so that the object turns under it."""


def lit_composite(matter: Tensor, background: Tensor, normals: Tensor, sun) -> Tensor:
    """matter · object_shading(n, sun) + background: the rendered object (premultiplied colour) lit as the toy
    world lights its objects (ambient, sky and the sun, no shadows). Channels last; `normals` unit vectors."""
    sun = torch.as_tensor(sun, dtype=normals.dtype, device=normals.device)
    return matter * object_shading(normals, sun)[..., None] + background


def density_normals(normals_output: Tensor, accumulation: Tensor) -> Tensor:
    """Unit normals from generfacto's "normals" output, (n + 1) / 2 · accumulation with n = −∇σ / |∇σ|: density
    gradients taken without `create_graph`, so they carry no gradient, and speckled where the hash grid is."""
    normals = normals_output.detach() / accumulation.detach().clamp(min=1e-3) * 2 - 1
    return normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-6)
