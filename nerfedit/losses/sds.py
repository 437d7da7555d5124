"""Score Distillation Sampling (Poole et al., DreamFusion, ICLR 2023).

    ∇_z L_SDS = w(t) · (ε̂_s(z_t; y, t) − ε)                       DreamFusion Eq. 3 (UNet Jacobian omitted)
    z_t = √ᾱ_t z + √(1 − ᾱ_t) ε,   ε̂_s = ε(∅) + s·(ε(y) − ε(∅))  (CFG, the DDS form; DreamFusion's ω = 100)

One batched UNet call of 2B rows [uncond, cond]. Defaults: s = 100, w = 1 − ᾱ_t, t ∈ [20, 980)
(DreamFusion / threestudio); `grad_scale` ≈ 0.49 (the DDS notebook's SDS baseline, see base.py).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from nerfedit.losses.base import (
    DistillationConfig,
    LossOutput,
    Prompt,
    as_prompts,
    classifier_free_guidance,
    draw_t_and_eps,
    finish,
    timestep_weight,
)
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


class ScoreDistillation:
    """DreamFusion's SDS loss; `source_prompt` and `z_source` are ignored."""

    def __init__(self, config: DistillationConfig, prior: DiffusionPrior):
        self.config = config.with_defaults()
        self.prior = prior

    def __call__(
        self,
        z: Tensor,
        *,
        prompt: Prompt,
        source_prompt: Optional[Prompt] = None,
        z_source: Optional[Tensor] = None,
        step: int = 0,
        generator: Optional[torch.Generator] = None,
    ) -> LossOutput:
        t, eps = draw_t_and_eps(z, self.config, self.prior.num_train_timesteps, generator)
        grad = sds_gradient(self.prior, z, t, eps, as_prompts(prompt, z.shape[0]), self.config)
        return finish(z, grad, t, grad_scale=self.config.grad_scale, name="sds")
