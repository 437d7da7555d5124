"""`FloorField`: generfacto's field with a floor plane in its background, lit and shadowed as the toy world's floor."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.field_components.encodings import NeRFEncoding
from nerfstudio.field_components.mlp import MLP
from nerfstudio.fields.generfacto_field import GenerfactoField

from nerfedit.shading import CONTACT_DARKENING, floor_haze, floor_shading, ray_sphere_interval

CONTACT_DIRECTIONS = ((0.0, 0.0, 1.0),) + tuple(
    (0.866 * x, 0.866 * y, 0.5) for x, y in ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))
)
"""Unit directions of `FloorField.contact`'s occlusion rays: straight up and four at 30° elevation."""


class FloorField(GenerfactoField):
    """generfacto's field whose background has a floor: a ray heading down meets the plane z = `floor_height` and
    takes a colour learned as a function of where it lands (Fourier features of x, y → MLP); other rays keep the
    direction-only background MLP ("at infinity"). A prompt's floor ("… on a wooden floor") shifts with the view;
    a direction-only background cannot show that parallax, so the field builds the floor as fog in its sphere.

    With a `sun` set (a unit vector towards it), the floor is lit as the toy world lights its floor, in the
    object's shadow: ambient plus the sun's Lambert term times the field's transmittance from the floor point
    towards the sun. The world's images all have that shadow; a field that cannot cast one paints it in."""

    def __init__(self, *args, floor_height: float, shadow_radius: float, implementation: str = "torch", **kwargs) -> None:
        super().__init__(*args, implementation=implementation, **kwargs)
        self.floor_height = floor_height
        self.shadow_radius = shadow_radius
        self.sun: Optional[Tensor] = None
        # Periods 1 to 1/4 world unit: finer ones alias where the floor recedes (a pixel there spans several).
        self.floor_encoding = NeRFEncoding(in_dim=2, num_frequencies=3, min_freq_exp=0.0, max_freq_exp=2.0, include_input=True)
        self.mlp_floor_color = MLP(
            in_dim=self.floor_encoding.get_out_dim(),
            num_layers=2,
            layer_width=32,
            out_dim=3,
            activation=nn.ReLU(),
            out_activation=nn.Sigmoid(),
            implementation=implementation,
        )

    def get_background_rgb(self, ray_bundle: RayBundle) -> Tensor:
        sky = super().get_background_rgb(ray_bundle)
        origins, directions = ray_bundle.origins, ray_bundle.directions
        down = directions[..., 2:] < -1e-3
        t = ((self.floor_height - origins[..., 2:]) / directions[..., 2:].clamp(max=-1e-3)).clamp(min=0)
        floor = self.floor_rgb(origins + t * directions).to(sky)
        return torch.where(down, floor_haze(floor, t[..., 0]), sky)

    def floor_rgb(self, points: Tensor) -> Tensor:
        """The colour of the floor at `points` [..., 3] (on it), lit by `sun` if one is set."""
        albedo = self.mlp_floor_color(self.floor_encoding(points[..., :2].reshape(-1, 2))).view(*points.shape[:-1], 3)
        if self.sun is None:
            return albedo
        sun = torch.as_tensor(self.sun, dtype=points.dtype, device=points.device)
        return albedo * floor_shading(sun, self.sun_transmittance(points, sun), self.contact(points))[..., None]

    def transmittance(self, points: Tensor, directions: Tensor, near: Tensor, far: Tensor, samples: int) -> Tensor:
        """T = exp(−Σ σ δ) of the field from `points` [..., 3] along unit `directions` over [`near`, `far`] [...]
        in `samples` equal steps, counting matter inside the sphere of `shadow_radius` only (the collider's)."""
        near, far = near[..., None, None], far[..., None, None]
        edges = near + (far - near) * torch.linspace(0, 1, samples + 1, device=points.device)[:, None]  # [..., samples + 1, 1]
        rays = RayBundle(origins=points, directions=directions, pixel_area=torch.ones_like(points[..., :1]))
        ray_samples = rays.get_ray_samples(bin_starts=edges[..., :-1, :], bin_ends=edges[..., 1:, :])
        density, _ = self.get_density(ray_samples)
        inside = ray_samples.frustums.get_positions().norm(dim=-1, keepdim=True) < self.shadow_radius
        return torch.exp(-(density * inside * (far - near) / samples).sum(dim=(-2, -1)))

    def sun_transmittance(self, points: Tensor, sun: Tensor, samples: int = 16) -> Tensor:
        """The transmittance from `points` [..., 3] towards `sun` (unit) over the chord of the collider's sphere;
        1 where the ray misses it."""
        directions = sun.expand_as(points)
        _, near, far = ray_sphere_interval(points, directions, self.shadow_radius)
        return self.transmittance(points, directions, near, far.clamp(min=near), samples)  # a miss: an empty chord

    def contact(self, points: Tensor, reach: float = 0.3, samples: int = 6) -> Tensor:
        """The world's contact darkening of the floor's ambient light beside the object, 1 − 0.45 · exp(−gap / 0.12),
        taken as ambient occlusion: 1 − 0.45 · (1 − mean T) over `reach` along five short rays from each point
        (straight up, and at 30° elevation towards ±x and ±y). Under the object it is 0.55 as in the world."""
        directions = torch.tensor(CONTACT_DIRECTIONS, dtype=points.dtype, device=points.device)
        starts = points[..., None, :].expand(*points.shape[:-1], len(directions), 3)
        near = torch.full(starts.shape[:-1], 0.02, dtype=points.dtype, device=points.device)
        open_sky = self.transmittance(starts, directions.expand_as(starts), near, near + reach, samples).mean(dim=-1)
        return 1 - CONTACT_DARKENING * (1 - open_sky)
