"""Delta Denoising Score (Hertz, Aberman, Cohen-Or, ICCV 2023).

    ∇_z L_DDS = w(t) · (ε̂_s(z_t; y_tgt, t) − ε̂_s(ẑ_t; y_src, t))   DDS: ∇SDS(z, y) − ∇SDS(ẑ, ŷ); CDS Eq. 4 / 7
    z_t = √ᾱ_t z + √(1 − ᾱ_t) ε,   ẑ_t = √ᾱ_t ẑ + √(1 − ᾱ_t) ε     the SAME ε and t in both branches
    ε̂_s = ε(∅) + s·(ε(y) − ε(∅))                                   CFG in the DDS form, s = 7.5

The ε of the two SDS terms cancels (that is the point of DDS), so it never appears in the gradient.
ONE batched UNet call of 4B rows [∅ on ẑ_t, ∅ on z_t, y_src on ẑ_t, y_tgt on z_t] — the order of the
official notebook — and no VAE work: the source latent ẑ is given, encoded once by the caller.
Defaults (official notebook): s = 7.5, t = randint(50, 949) i.e. t ∈ [50, 949), w = 1, SGD; `grad_scale` =
2000/64² (`catalog.DDS_CODE_GRAD_SCALE`, which also says how that departs from the code's 2000/(h·w)).
A missing `source_prompt` is the null text (DDS supplement: "we set ŷ to the embedding of the null text").
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from nerfedit.losses.base import ScoreDistillationLoss, StepInputs, classifier_free_guidance, timestep_weight
from nerfedit.priors.prior import DiffusionPrior

def dds_batch(z_t_src: Tensor, z_t_tgt: Tensor, t: Tensor, prompts_src: Sequence[str], prompts_tgt: Sequence[str]):
    """The 4B rows of the call: latents, timesteps and prompts, in blocks of B rows [∅ on ẑ_t, ∅ on z_t, y_src on
    ẑ_t, y_tgt on z_t] (the official notebook's order)."""
    batch = z_t_src.shape[0]
    latents = torch.cat([z_t_src, z_t_tgt, z_t_src, z_t_tgt])
    prompts = [""] * (2 * batch) + list(prompts_src) + list(prompts_tgt)
    return latents, t.repeat(4), prompts


@torch.no_grad()
def delta_denoising_score(
    prior: DiffusionPrior,
    z: Tensor,
    z_source: Tensor,
    t: Tensor,
    eps: Tensor,
    prompts_tgt: Sequence[str],
    prompts_src: Sequence[str],
    guidance_scale: float,
) -> Tensor:
    """δ = ε̂_s(z_t; y_tgt, t) − ε̂_s(ẑ_t; y_src, t) with shared ε and t, from ONE UNet call of 4B rows."""
    z_t_tgt = prior.add_noise(z.detach(), eps, t)
    z_t_src = prior.add_noise(z_source.detach().to(z.dtype), eps, t)
    latents, timesteps, prompts = dds_batch(z_t_src, z_t_tgt, t, prompts_src, prompts_tgt)
    eps_hat = prior.predict_eps(latents, timesteps, prior.encode_text(prompts))
    uncond_src, uncond_tgt, cond_src, cond_tgt = eps_hat.chunk(4)
    eps_src = classifier_free_guidance(uncond_src, cond_src, guidance_scale)
    eps_tgt = classifier_free_guidance(uncond_tgt, cond_tgt, guidance_scale)
    return eps_tgt - eps_src


class DeltaDenoisingScore(ScoreDistillationLoss):
    """The DDS loss: edit `z` towards `prompt`, relative to the source latent `z_source` described by `source_prompt`."""

    name = "dds"

    def gradient(self, inputs: StepInputs):
        """w(t)·δ, δ = ε̂_s(z_t; y_tgt, t) − ε̂_s(ẑ_t; y_src, t)  (DDS; CDS Eq. 4). CDS reuses it in its feature capture."""
        delta = delta_denoising_score(
            self.prior,
            inputs.z,
            inputs.z_source,
            inputs.t,
            inputs.eps,
            inputs.prompts,
            inputs.source_prompts,
            self.config.guidance_scale,
        )
        return timestep_weight(self.prior.alpha_bar(inputs.t), self.config.weighting) * delta, {}
