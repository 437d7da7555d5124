"""SDS-Bridge (McAllister et al., "Rethinking Score Distillation as a Bridge Between Image Distributions", NeurIPS 2024).

Score distillation read as a Schrödinger bridge from the distribution of the current images (source) to the
target; plain SDS takes the unconditional model as the source, which is wrong for the current (blurry,
oversaturated) optimisation state. Two stages, as the official 2D code (`2D_experiments/guidance.py`):

    stage 1, step < switch:   ∇_z = w(t)·(ε̂_s(z_t; y, t) − ε)                         SDS (sds.py)
    stage 2, step ≥ switch:   ∇_z = w(t)·s·(ε(z_t; y + y_tgt⁺, t) − ε(z_t; y + y_src⁺, t))   `bridge_stage_two`

No unconditional branch in stage 2: the source is calibrated by text describing the current image's artifacts
(y_src⁺ = ", oversaturated, smooth, pixelated, …") and the target by quality modifiers (y_tgt⁺ = ", detailed
high resolution, high quality, sharp"). w(t) = 1 − ᾱ_t, s = 40 in both stages, t ∈ [20, 980) of 1000, stage
2 from step 500 of 1000 (official 2D defaults). One UNet call of 2B rows per step in either stage.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nerfedit.losses.base import DistillationConfig, ScoreDistillationLoss, StepInputs, timestep_weight, with_suffix
from nerfedit.losses.sds import sds_gradient
from nerfedit.priors.prior import DiffusionPrior


@torch.no_grad()
def bridge_gradient(prior: DiffusionPrior, z: Tensor, t: Tensor, eps: Tensor, prompts, config: DistillationConfig) -> Tensor:
    """Stage 2: w(t)·s·(ε(z_t; y_tgt) − ε(z_t; y_src)) from one UNet call of 2B rows [y_tgt …, y_src …]."""
    z_t = prior.add_noise(z.detach(), eps, t)
    tgt = with_suffix(prompts, config.bridge_target_modifiers)
    src = with_suffix(prompts, config.bridge_source_modifiers)
    eps_tgt, eps_src = prior.predict_eps(torch.cat([z_t, z_t]), torch.cat([t, t]), prior.encode_text(tgt + src)).chunk(2)
    return timestep_weight(prior.alpha_bar(t), config.weighting) * config.guidance_scale * (eps_tgt - eps_src)


class SDSBridge(ScoreDistillationLoss):
    """SDS until `config.bridge_switch_step`, the calibrated bridge from then on; `terms["stage"]` says which."""

    name = "bridge"

    def stage(self, step: int) -> int:
        return 1 if step < self.config.bridge_switch_step else 2

    def gradient(self, inputs: StepInputs):
        """Stage 1: SDS (DreamFusion Eq. 3); stage 2: w(t)·s·(ε(z_t; y + y_tgt⁺) − ε(z_t; y + y_src⁺))."""
        stage = self.stage(inputs.step)
        gradient = sds_gradient if stage == 1 else bridge_gradient
        return gradient(self.prior, inputs.z, inputs.t, inputs.eps, inputs.prompts, self.config), {"stage": float(stage)}
