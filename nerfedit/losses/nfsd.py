"""Noise-Free Score Distillation (Katzir, Patashnik, Cohen-Or, Lischinski, arXiv:2310.17590, ICLR 2024) — a baseline.

NFSD splits the CFG prediction ε̂_s = δ_N + δ_D + s·δ_C into a noise term δ_N, a domain term δ_D and a
condition term δ_C = ε(z_t; y) − ε(z_t; ∅), and distils without the noise term (no "− ε"):

    ∇_z L_NFSD = w(t) · (δ_D + s·δ_C)                     NFSD's update rule (arXiv:2310.17590)
    δ_C = ε(z_t; y, t) − ε(z_t; ∅, t)
    δ_D = ε(z_t; ∅, t)                          for t < 200 (of 1000): little noise is left, ε(∅) ≈ δ_D
        = ε(z_t; ∅, t) − ε(z_t; y_neg, t)       otherwise, y_neg = "unrealistic, blurry, low quality, …"

This is also the reference NFSD of the SDS-Bridge code (`nfsd_loss`), which we follow for w(t) = 1 − ᾱ_t.
s = 7.5 (NFSD works at a nominal CFG scale), t ∈ [20, 980). One UNet call of 3B rows [∅, y, y_neg]
(the reference code makes two calls of 2B rows).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nerfedit.losses.base import DistillationConfig, ScoreDistillationLoss, StepInputs, timestep_weight
from nerfedit.priors.prior import DiffusionPrior

NFSD_SMALL_T = 0.2
"""δ_D = ε(∅) below t = 200 of 1000 (NFSD paper); a fraction, so that it scales with the prior's T."""


@torch.no_grad()
def nfsd_gradient(prior: DiffusionPrior, z: Tensor, t: Tensor, eps: Tensor, prompts, config: DistillationConfig) -> Tensor:
    """w(t)·(δ_D + s·δ_C) from one UNet call of 3B rows [∅ …, y …, y_neg …]."""
    batch = z.shape[0]
    z_t = prior.add_noise(z.detach(), eps, t)
    rows = [""] * batch + list(prompts) + [config.negative_prompt] * batch
    eps_uncond, eps_cond, eps_neg = prior.predict_eps(torch.cat([z_t] * 3), t.repeat(3), prior.encode_text(rows)).chunk(3)
    delta_c = eps_cond - eps_uncond
    small_t = (t < NFSD_SMALL_T * prior.num_train_timesteps).view(-1, 1, 1, 1)
    delta_d = torch.where(small_t, eps_uncond, eps_uncond - eps_neg)
    return timestep_weight(prior.alpha_bar(t), config.weighting) * (delta_d + config.guidance_scale * delta_c)


class NoiseFreeScoreDistillation(ScoreDistillationLoss):
    """NFSD."""

    name = "nfsd"

    def gradient(self, inputs: StepInputs):
        """w(t)·(δ_D + s·δ_C)  (NFSD's update rule)."""
        return nfsd_gradient(self.prior, inputs.z, inputs.t, inputs.eps, inputs.prompts, self.config), {}
