"""nerfacto, plus a frozen copy of itself: the edited (target) field and the source it started from.

The model IS a `NerfactoModel` — its own field, proposal networks and camera optimiser are the
target, so every nerfstudio tool (ns-render, ns-viewer, ns-export) renders the edited scene with no
special case. `self.source` is a second `NerfactoModel` holding the frozen source: a copy made when
editing starts (after the reconstruction, or from a `--load-dir` nerfacto checkpoint), never trained.
Both use nerfstudio's nerfacto field: tiny-cuda-nn when it is installed, plain torch otherwise
(`--pipeline.model.implementation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Type

import torch
from torch import Tensor

from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.losses import interlevel_loss
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig

from nerfedit.nerf.common.cpu_compat import lpips_available

SOURCE_PREFIX = "source."
"""State-dict prefix of the frozen source copy inside the model."""


@dataclass
class NerfEditModelConfig(NerfactoModelConfig):
    """nerfacto's config; the source copy is built from the same settings."""

    _target: Type = field(default_factory=lambda: NerfEditModel)
    """target class to instantiate"""
    render_source: bool = False
    """Also render the frozen source as `source_rgb` in viewer/ns-render outputs (doubles render time)."""


@dataclass
class FrozenGeometry:
    """What an appearance-only edit cannot change about a view: its samples, their weights and geometry features."""

    ray_samples: RaySamples
    density_embedding: Tensor
    """The base MLP's geometry features per sample (input of the colour head)."""
    weights: Tensor
    """Volume-rendering weights per sample."""

    def nbytes(self) -> int:
        tensors = [self.density_embedding, self.weights, self.ray_samples.frustums.origins, self.ray_samples.frustums.directions]
        return 3 * sum(t.numel() * t.element_size() for t in tensors)  # ×3: starts, ends, deltas, indices …


class NerfEditModel(NerfactoModel):
    """nerfacto whose field is the edited one, with the frozen source in `self.source`."""

    config: NerfEditModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        self.source = NerfactoModel(self.config, self.scene_box, self.num_train_data, **self.kwargs)
        del self.source.lpips  # metrics are the target's; no second copy of LPIPS' weights
        self.source.requires_grad_(False)
        self.register_buffer("edit_start_step", torch.tensor(-1, dtype=torch.long))

    # ---- source / target ------------------------------------------------------------------
    @property
    def source_frozen(self) -> bool:
        """Whether the source copy holds the scene to edit (editing has started)."""
        return int(self.edit_start_step) >= 0

    def target_state_dict(self) -> Dict[str, torch.Tensor]:
        """The nerfacto part of the state (field, proposals, camera optimiser), keyed as the source's."""
        skip = (SOURCE_PREFIX, "lpips.", "edit_start_step")
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}

    @torch.no_grad()
    def freeze_source(self, step: int) -> None:
        """Copy the current (reconstructed) field into the source and mark editing as started at `step`."""
        self.source.load_state_dict(self.target_state_dict(), strict=True)
        self.edit_start_step.fill_(step)

    def set_edit_trainable(self, appearance_only: bool) -> List[str]:
        """requires_grad for editing: the colour head (and appearance embeddings) only, or the whole field and
        proposals. Camera poses and the source stay frozen. Returns the names of the trainable modules."""
        self.camera_optimizer.requires_grad_(False)
        self.source.requires_grad_(False)
        if appearance_only:
            self.field.requires_grad_(False)
            self.proposal_networks.requires_grad_(False)
            trainable: Iterable[str] = ("mlp_head", "embedding_appearance")
            for name in trainable:
                module = getattr(self.field, name, None)
                if module is not None:
                    module.requires_grad_(True)
            return [f"field.{n}" for n in trainable if getattr(self.field, n, None) is not None]
        self.field.requires_grad_(True)
        self.proposal_networks.requires_grad_(True)
        return ["field", "proposal_networks"]

    def source_outputs(self, ray_bundle: RayBundle) -> Dict[str, torch.Tensor]:
        """Outputs of the frozen source for a ray bundle (no graph); same train/eval mode as the target."""
        with torch.no_grad():
            return self.source(ray_bundle)

    @torch.no_grad()
    def frozen_geometry(self, ray_bundle: RayBundle) -> FrozenGeometry:
        """Samples, weights and geometry features of a bundle, computed once when density is frozen.

        Same steps as nerfacto's `get_outputs` (collider, pose correction in training, proposal
        sampling, density) without the colour head, so `render_appearance` reproduces its RGB.
        """
        bundle = ray_bundle[0 : len(ray_bundle)]
        if self.collider is not None:
            bundle = self.collider(bundle)
        if self.training:
            self.camera_optimizer.apply_to_raybundle(bundle)
        ray_samples, _, _ = self.proposal_sampler(bundle, density_fns=self.density_fns)
        density, embedding = self.field.get_density(ray_samples)
        return FrozenGeometry(ray_samples, embedding.detach(), ray_samples.get_weights(density).detach())

    def render_appearance(self, geometry: FrozenGeometry, source: bool = False) -> Tensor:
        """RGB [N, 3] of frozen geometry: only the colour head (and appearance embedding) run, with a graph.

        `source=True` uses the frozen source's colour head instead: while the density is frozen the
        source and target share their geometry, so one `frozen_geometry` serves both renders.
        """
        model = self.source if source else self
        outputs = model.field.get_outputs(geometry.ray_samples, density_embedding=geometry.density_embedding)
        return model.renderer_rgb(rgb=outputs[FieldHeadNames.RGB], weights=geometry.weights)

    def interlevel_loss(self, outputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """nerfacto's proposal-supervision loss for a render made in training mode (keeps proposals on the density)."""
        if "weights_list" not in outputs:
            return outputs["rgb"].new_zeros(())
        return self.config.interlevel_loss_mult * interlevel_loss(outputs["weights_list"], outputs["ray_samples_list"])

    # ---- nerfacto overrides ---------------------------------------------------------------
    def get_outputs(self, ray_bundle: RayBundle):
        source_bundle = ray_bundle[0 : len(ray_bundle)] if self.config.render_source and not self.training else None
        outputs = super().get_outputs(ray_bundle)
        if source_bundle is not None:
            outputs["source_rgb"] = self.source_outputs(source_bundle)["rgb"]
        return outputs

    def get_image_metrics_and_images(self, outputs, batch):
        metrics, images = super().get_image_metrics_and_images(outputs, batch)
        if not lpips_available(getattr(self, "lpips", None)) or not math.isfinite(metrics.get("lpips", 0.0)):
            metrics.pop("lpips", None)  # unavailable offline: reported as missing, never with stand-in weights
        return metrics, images
