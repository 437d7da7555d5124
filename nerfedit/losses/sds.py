"""Score Distillation Sampling (Poole et al., DreamFusion, ICLR 2023).

    ∇_z L_SDS = w(t) · (ε̂_s(z_t; y, t) − ε)                       DreamFusion Eq. 3 (UNet Jacobian omitted)
    z_t = √ᾱ_t z + √(1 − ᾱ_t) ε,   ε̂_s = ε(∅) + s·(ε(y) − ε(∅))  (CFG, the DDS form; DreamFusion's ω = 100)

One batched UNet call of 2B rows [uncond, cond]. Defaults: s = 100, w = 1 − ᾱ_t, t ∈ [20, 980)
(DreamFusion / threestudio); `grad_scale` ≈ 0.49 (the DDS notebook's SDS baseline, see base.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nerfedit.losses.base import DistillationConfig, ScoreDistillationLoss, StepInputs, classifier_free_guidance, timestep_weight
from nerfedit.priors.prior import DiffusionPrior


@torch.no_grad()
def guided_eps(prior: DiffusionPrior, z_t: Tensor, t: Tensor, prompts, scale: float) -> Tensor:
    """ε̂_s(z_t; y, t) from one UNet call of 2B rows [∅ …, y …]."""
    batch = z_t.shape[0]
    emb = prior.encode_text([""] * batch + list(prompts))
    eps = prior.predict_eps(torch.cat([z_t, z_t]), torch.cat([t, t]), emb)
    eps_uncond, eps_cond = eps.chunk(2)
    return classifier_free_guidance(eps_uncond, eps_cond, scale)


def sds_gradient(prior: DiffusionPrior, z: Tensor, t: Tensor, eps: Tensor, prompts, config: DistillationConfig) -> Tensor:
    """w(t)·(ε̂_s(z_t; y, t) − ε)."""
    z_t = prior.add_noise(z.detach(), eps, t)
    delta = guided_eps(prior, z_t, t, prompts, config.guidance_scale) - eps
    return timestep_weight(prior.alpha_bar(t), config.weighting) * delta


class ScoreDistillation(ScoreDistillationLoss):
    """DreamFusion's SDS loss."""

    name = "sds"

    def gradient(self, inputs: StepInputs):
        """w(t)·(ε̂_s(z_t; y, t) − ε)  (DreamFusion Eq. 3)."""
        return sds_gradient(self.prior, inputs.z, inputs.t, inputs.eps, inputs.prompts, self.config), {}
