"""Delta Denoising Score (Hertz, Aberman, Cohen-Or, ICCV 2023).

    ∇_z L_DDS = w(t) · (ε̂_s(z_t; y_tgt, t) − ε̂_s(ẑ_t; y_src, t))   DDS: ∇SDS(z, y) − ∇SDS(ẑ, ŷ); CDS Eq. 4 / 7
    z_t = √ᾱ_t z + √(1 − ᾱ_t) ε,   ẑ_t = √ᾱ_t ẑ + √(1 − ᾱ_t) ε     the SAME ε and t in both branches
    ε̂_s = ε(∅) + s·(ε(y) − ε(∅))                                   CFG in the DDS form, s = 7.5

The ε of the two SDS terms cancels (that is the point of DDS), so it never appears in the gradient.
ONE batched UNet call of 4B rows [∅ on ẑ_t, ∅ on z_t, y_src on ẑ_t, y_tgt on z_t] — the order of the
official notebook — and no VAE work: the source latent ẑ is given, encoded once by the caller.
Defaults (official notebook): s = 7.5, t ∈ [50, 950), w = 1, SGD; `grad_scale` = 2000/64² (base.py).
A missing `source_prompt` is the null text (DDS supplement: "we set ŷ to the embedding of the null text").
"""

from __future__ import annotations

from typing import Optional, Sequence

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

ROWS = ("uncond_src", "uncond_tgt", "cond_src", "cond_tgt")
"""Order of the B-row blocks in DDS's single UNet call (as the official notebook)."""


def dds_batch(z_t_src: Tensor, z_t_tgt: Tensor, t: Tensor, prompts_src: Sequence[str], prompts_tgt: Sequence[str]):
    """The 4B rows of the call: latents, timesteps and prompts in `ROWS` order."""
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


def check_source(z: Tensor, z_source: Optional[Tensor], name: str) -> Tensor:
    if z_source is None:
        raise ValueError(f"{name} needs z_source, the source image's latent")
    if z_source.shape != z.shape:
        raise ValueError(f"{name}: z_source {tuple(z_source.shape)} and z {tuple(z.shape)} differ in shape")
    return z_source


class DeltaDenoisingScore:
    """The DDS loss: edit `z` towards `prompt`, relative to the source latent `z_source` described by `source_prompt`."""

    def __init__(self, config: DistillationConfig, prior: DiffusionPrior):
        self.config = config.with_defaults()
        self.prior = prior

    def gradient(
        self, z: Tensor, z_source: Tensor, t: Tensor, eps: Tensor, prompt: Prompt, source_prompt: Optional[Prompt]
    ) -> Tensor:
        """w(t)·δ for the given t and ε (CDS reuses it inside its feature capture)."""
        batch = z.shape[0]
        delta = delta_denoising_score(
            self.prior,
            z,
            z_source,
            t,
            eps,
            as_prompts(prompt, batch),
            as_prompts(source_prompt, batch),
            self.config.guidance_scale,
        )
        return timestep_weight(self.prior.alpha_bar(t), self.config.weighting) * delta

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
        z_source = check_source(z, z_source, "DDS")
        t, eps = draw_t_and_eps(z, self.config, self.prior.num_train_timesteps, generator)
        grad = self.gradient(z, z_source, t, eps, prompt, source_prompt)
        return finish(z, grad, t, grad_scale=self.config.grad_scale, name="dds")
