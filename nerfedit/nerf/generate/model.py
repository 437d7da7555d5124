"""The text-to-3D model: nerfstudio's generfacto, distilled from our prior by the pipeline instead of its own guidance.

generfacto (nerfstudio 1.1.5, `nerfstudio/models/generfacto.py`) already has what DreamFusion-style generation
needs — a hash-grid field with a direction-only background MLP, proposal sampling inside a sphere, the density
blob at the start (tapered off), albedo renders that turn into Lambertian-shaded ones (random light) after
`start_lambertian_training`, random solid backgrounds, the opacity / orientation / distortion / interlevel
regularisers, and view-dependent prompting (`PositionalTextEmbeddings`). We keep all of it and change these things:

1. No guidance inside the model. generfacto builds `StableDiffusion` / `DeepFloyd` (hub downloads) in
   `populate_modules` and computes its SDS in `get_loss_dict`. Here `get_loss_dict` returns generfacto's
   regularisers only; the pipeline renders, VAE-encodes and asks nerfedit's loss core (`generate/pipeline.py`).
2. View prompts are strings. generfacto's `PositionalTextEmbeddings` picks the embedding of the camera's view
   ("…, front view" / side / back / overhead) from a diffusion model's `get_text_embeds`; we hand it
   `PromptsAsEmbeddings`, whose "embedding" of a prompt is the prompt itself, so the very same selection code
   returns the view's prompt string — which the loss core encodes (and caches). Only its `discrete` and `off`
   modes select (the `interpolated` one averages embeddings, which strings cannot do).
3. The field's size is configurable. generfacto hard-codes a 16-level, 2^19-entry hash grid (~17 M parameters),
   far too slow without tiny-cuda-nn; the defaults here are a small grid: a 32² step takes ~0.4 s of one CPU
   core (a 64² one ~1.5 s). (generfacto's own field is built first by its `populate_modules` and replaced at once.)
4. An optional density bias in log space, threestudio's "blob_magic3d" for DreamFusion: the field's raw density
   gets + s·(1 − r/R) (`density_bias_scale` s, `density_bias_radius` R), a solid ball to carve from and empty
   space around it, for good. generfacto's own blob (`initialize_density`) adds ≤ 1 to the density and tapers
   off; on top of a fresh field's density ≈ 1 everywhere, that starts in fog, which short runs clear by
   emptying the scene and painting the prompt on the background. The background MLP has its own parameter
   group ("background"), so it can learn slower than the object (threestudio: 10×); the floor's has another
   ("floor", see 7).
5. Two generfacto slips mended. Its composite `accumulation · rgb + (1 − accumulation) · background` expects the
   matter's own colour from its RGB renderer, which also blends in white: half-transparent matter turned
   whitish (`MatterColourRenderer`). And it multiplies the opacity penalty by `opacity_loss_mult` twice: here
   once, so the weight means what it says. The collider's radius (1 in generfacto) is `collider_radius`.
6. Optional toy-world lighting in training (`sun_shading`): from `start_lambertian_training` every training render
   shows the object lit as the world lights its objects (ambient, sky, a random sun) — what the toy prior has
   seen — instead of generfacto's light near the camera on a quarter of the steps. Flat albedo, which the toy
   prior never saw, made yellow drift to orange.
7. An optional floor in the background (`floor_height`, `FloorField`): rays heading down meet a plane and take a
   colour learned per point of it. generfacto's background depends on the direction alone, so a prompted floor
   ("… on grass"), which shifts with the view, could only be built as fog inside the collider. With
   `sun_shading` the floor is lit by the same sun as the object and lies in its shadow (the field's
   transmittance towards the sun), its ambient light dimmed right beside the object (the world's contact
   darkening, here the occlusion of short rays from the floor), and far floor fades into haze, as in every image
   of the toy world. On by default in `nerfedit-generate` (the toy world's floor height).

Known generfacto behaviour we keep: its normals are density gradients taken without `create_graph`, so the
orientation loss only logs and Lambertian shading moves colour and opacity, not normals directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import numpy as np
import torch
import tyro
from torch import Tensor, nn
from torch.nn import Parameter

from nerfstudio.fields.generfacto_field import GenerfactoField
from nerfstudio.generative.positional_text_embeddings import PositionalTextEmbeddings
from nerfstudio.model_components.losses import distortion_loss, interlevel_loss
from nerfstudio.model_components.scene_colliders import SphereCollider
from nerfstudio.models.generfacto import GenerfactoModel, GenerfactoModelConfig
from nerfstudio.utils.external import TCNN_EXISTS

from nerfedit.nerf.generate.floor import FloorField
from nerfedit.nerf.generate.lighting import VIEW_SUN, density_normals, lit_composite
from nerfedit.shading import SUN_ELEVATION_RANGE, unit_direction

VIEW_SUFFIX_FIELDS = ("top_prompt", "side_prompt", "back_prompt", "front_prompt")
"""generfacto's view-dependent prompt suffixes (config field names), in `PositionalTextEmbeddings`' order."""


class PromptsAsEmbeddings:
    """Stands in for generfacto's diffusion model in `PositionalTextEmbeddings`: a prompt's "embedding" is itself."""

    device = torch.device("cpu")

    @staticmethod
    def get_text_embeds(prompt: str, negative_prompt: str) -> str:
        return prompt


class MatterColourRenderer(nn.Module):
    """Σ w·c / Σ w: the colour of the matter a ray meets, with no background in it.

    generfacto composites `accumulation · renderer_rgb(…) + (1 − accumulation) · background`, i.e. it treats its
    RGB renderer's output as the matter's own colour; nerfstudio's RGBRenderer returns Σ w·c + (1 − Σ w)·white
    instead, which turns every semi-transparent sample whitish (faint fog becomes grey, soft edges pale). With
    this renderer generfacto's composite is the usual Σ w·c + (1 − Σ w)·background."""

    @staticmethod
    def forward(rgb: Tensor, weights: Tensor, **_: object) -> Tensor:
        accumulation = weights.sum(dim=-2)
        return (weights * rgb).sum(dim=-2) / accumulation.clamp(min=1e-4)


class DensityBias(nn.Module):
    """Wraps a field's `mlp_base` (normalised positions in [0, 1]³ → raw density, features) and adds
    s·(1 − r/R) to the raw (log-space) density, r the distance from the scene box's centre in world units."""

    def __init__(self, mlp_base: nn.Module, aabb: Tensor, scale: float, radius: float) -> None:
        super().__init__()
        self.mlp_base = mlp_base
        self.register_buffer("aabb", aabb.detach().clone(), persistent=False)
        self.scale, self.radius = scale, radius

    def forward(self, positions: Tensor) -> Tensor:
        out = self.mlp_base(positions)
        world = positions * (self.aabb[1] - self.aabb[0]) + self.aabb[0]
        r = (world - self.aabb.mean(dim=0)).norm(dim=-1, keepdim=True)
        bias = self.scale * (1 - r / self.radius)
        return torch.cat([out[..., :1] + bias.to(out), out[..., 1:]], dim=-1)


@dataclass
class GenerateModelConfig(GenerfactoModelConfig):
    """generfacto with a configurable (small by default) field; the guidance is the pipeline's loss core."""

    _target: Type = field(default_factory=lambda: GenerateModel)
    """target class to instantiate"""
    implementation: Literal["tcnn", "torch"] = field(default_factory=lambda: "tcnn" if TCNN_EXISTS else "torch")
    """Hash grids and MLPs: tiny-cuda-nn when it is installed, plain torch otherwise."""
    num_levels: int = 8
    """Levels of the field's hash grid (generfacto: 16)."""
    log2_hashmap_size: int = 15
    """log2 of each level's hash-table size (generfacto: 19)."""
    max_res: int = 128
    """Finest resolution of the field's hash grid (generfacto: 256)."""
    hidden_dim: int = 32
    """Width of the density MLP (generfacto: 64)."""
    hidden_dim_color: int = 32
    """Width of the colour MLP (generfacto: 64)."""
    num_proposal_samples_per_ray: Tuple[int, ...] = (64, 32)
    """Samples per ray of each proposal network (generfacto: 256, 96)."""
    num_nerf_samples_per_ray: int = 32
    """Samples per ray of the field (generfacto: 48)."""
    proposal_net_args_list: List[Dict] = field(
        default_factory=lambda: [
            {"hidden_dim": 16, "log2_hashmap_size": 15, "num_levels": 5, "max_res": 64},
            {"hidden_dim": 16, "log2_hashmap_size": 15, "num_levels": 5, "max_res": 128},
        ]
    )
    """Arguments of the proposal density fields (generfacto: 2^17 tables, max res 128 and 256)."""
    collider_radius: float = 1.0
    """Radius of the sphere rays are sampled in, with `sphere_collider` (generfacto: 1.0, hard-coded)."""
    density_bias_scale: float = 0.0
    """s of the log-density bias s·(1 − r/R) (threestudio's DreamFusion: 10; 0: none, generfacto's blob only)."""
    density_bias_radius: float = 0.5
    """R of the log-density bias, in world units (threestudio: 0.5): the radius of the initial solid ball."""
    floor_height: Optional[float] = None
    """z of a floor plane in the background (`FloorField`): rays heading down take a colour learned per point of the
    floor, lit and shadowed by the object with `sun_shading`. None (`--pipeline.model.floor-height None`):
    generfacto's direction-only background."""
    sun_shading: bool = False
    """Train on renders lit as the toy world lights its objects (ambient, sky, and a sun drawn from the world's
    range: elevation 40–70°, any azimuth) at every step from `start_lambertian_training`, instead of generfacto's
    shading (a light near the camera on a quarter of the steps, half of those textureless)."""
    positional_prompting: Literal["discrete", "off"] = "discrete"
    """View-dependent prompting: the suffix of the camera's view (front/side/back/overhead) or none."""
    # generfacto's guidance settings: unused here (the pipeline's --pipeline.prompt, --pipeline.loss, --pipeline.prior).
    prompt: tyro.conf.Suppress[str] = ""
    diffusion_model: tyro.conf.Suppress[Optional[str]] = None
    guidance_scale: tyro.conf.Suppress[float] = 0.0
    diffusion_device: tyro.conf.Suppress[Optional[str]] = None
    sd_version: tyro.conf.Suppress[str] = ""
    location_based_prompting: tyro.conf.Suppress[bool] = True
    interpolated_prompting: tyro.conf.Suppress[bool] = False


class GenerateModel(GenerfactoModel):
    """generfacto whose guidance lives in the pipeline; `view_prompt` picks each camera's prompt."""

    config: GenerateModelConfig

    def populate_modules(self) -> None:
        # generfacto's populate_modules builds no diffusion model for `diffusion_model=None` and hands this
        # stand-in to its PositionalTextEmbeddings.
        self._diffusion_model = PromptsAsEmbeddings()
        super().populate_modules()
        size = dict(
            hidden_dim=self.config.hidden_dim,
            num_levels=self.config.num_levels,
            max_res=self.config.max_res,
            log2_hashmap_size=self.config.log2_hashmap_size,
            hidden_dim_color=self.config.hidden_dim_color,
            implementation=self.config.implementation,
        )
        if self.config.floor_height is None:
            self.field = GenerfactoField(self.scene_box.aabb, **size)
        else:
            shadow_radius = self.config.collider_radius if self.config.sphere_collider else float(self.scene_box.aabb.abs().max()) * 3**0.5
            self.field = FloorField(self.scene_box.aabb, floor_height=self.config.floor_height, shadow_radius=shadow_radius, **size)
        self.renderer_rgb = MatterColourRenderer()
        if self.config.sphere_collider:
            self.collider = SphereCollider(torch.zeros(3), self.config.collider_radius)
        if self.config.density_bias_scale:
            self.field.mlp_base = DensityBias(
                self.field.mlp_base, self.scene_box.aabb, self.config.density_bias_scale, self.config.density_bias_radius
            )

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        """generfacto's groups, with the sky's background MLP in a group of its own ("background") and the floor's
        colour MLP in another ("floor"): the floor has to learn a prompted texture, the sky only a gradient."""
        groups = {"background": list(self.field.mlp_background_color.parameters())}
        if isinstance(self.field, FloorField):
            groups["floor"] = list(self.field.mlp_floor_color.parameters())
        ids = {id(p) for group in groups.values() for p in group}
        return {
            "proposal_networks": list(self.proposal_networks.parameters()),
            "fields": [p for p in self.field.parameters() if id(p) not in ids],
            **groups,
        }

    # ---- rendering -----------------------------------------------------------------------------
    def get_outputs(self, ray_bundle):
        shaded = self.train_shaded
        lit_training = self.training and self.config.sun_shading and shaded
        floor = isinstance(self.field, FloorField)
        sun = None
        if lit_training and floor:  # the floor's shadow needs the sun before generfacto renders the background
            sun = self.random_sun()
        if floor:
            self.field.sun = sun if self.training else (VIEW_SUN if self.config.sun_shading else None)
        if self.config.sun_shading:  # generfacto's own shading off: its train_output is then always unshaded
            self.train_shaded = False
        try:
            outputs = super().get_outputs(ray_bundle)
        finally:
            self.train_shaded = shaded
        if lit_training:
            outputs["train_output"] = self.sun_lit(outputs, sun if sun is not None else self.random_sun())
        return outputs

    @staticmethod
    def random_sun() -> Tensor:
        """A sun of the toy world: elevation in its range, any azimuth."""
        return unit_direction(float(np.random.uniform(*SUN_ELEVATION_RANGE)), float(np.random.uniform(0.0, 360.0)))

    def sun_lit(self, outputs: Dict[str, Tensor], sun) -> Tensor:
        """The training render with its object lit by `sun` as the toy world lights its objects, over the same
        background (generfacto's unshaded train_output is accumulation · colour + background)."""
        matter = outputs["accumulation"] * outputs["rgb_only"]
        normals = density_normals(outputs["normals"], outputs["accumulation"])
        return lit_composite(matter, outputs["train_output"] - matter, normals, sun)

    # ---- prompts ------------------------------------------------------------------------------
    def set_prompt(self, prompt: str, suffixes: Optional[Dict[str, str]] = None) -> None:
        """Prompt every view with `prompt` + its view suffix; `suffixes` overrides the config's (e.g. "" to drop one)."""
        suffixes = {name: getattr(self.config, name) for name in VIEW_SUFFIX_FIELDS} | dict(suffixes or {})
        self.prompt = self.cur_prompt = prompt  # generfacto's own fields, kept in step
        self.text_embeddings.update_prompt(
            base_prompt=prompt,
            **{name: prompt + suffixes[name] for name in VIEW_SUFFIX_FIELDS},
        )

    def view_prompt(self, batch: Dict[str, torch.Tensor]) -> str:
        """The prompt of the camera of `batch` (its "vertical"/"central" angles in degrees, as generfacto's)."""
        selector: PositionalTextEmbeddings = self.text_embeddings
        return selector.get_text_embedding(vertical_angle=batch["vertical"], horizontal_angle=batch["central"])

    # ---- losses -------------------------------------------------------------------------------
    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, torch.Tensor]:
        """generfacto's regularisers (its `get_loss_dict` minus the SDS term, which the pipeline adds)."""
        loss_dict: Dict[str, torch.Tensor] = {}
        if self.train_normals:
            loss_dict["orientation_loss"] = self.orientation_loss_mult * outputs["rendered_orientation_loss"].mean()
        if self.config.opacity_penalty:
            # generfacto's get_outputs has already multiplied by opacity_loss_mult (its get_loss_dict does it again).
            loss_dict["opacity_loss"] = outputs["opacity_loss"].mean()
        if self.training:
            loss_dict["distortion_loss"] = self.config.distortion_loss_mult * distortion_loss(
                outputs["weights_list"], outputs["ray_samples_list"]
            )
            loss_dict["interlevel_loss"] = self.config.interlevel_loss_mult * interlevel_loss(
                outputs["weights_list"], outputs["ray_samples_list"]
            )
        return loss_dict
