"""Score Distillation Sampling with Learned Manifold Corrective (LMC-SDS; Alldieck, Kolotouros, Sminchisescu, ECCV 2024).

SDS splits into a conditioning and a projection term (Eq. 6): ∇L_SDS = ∇L_cond + ∇L_proj. LMC-SDS keeps L_cond
and replaces the noisy, blurring L_proj by L_lmc, which compares the denoised estimate with the learned
corrective b̂ψ(z, t) (corrective.py) instead of with z:

    ∇_z L_cond = ω·(ε(z_t; y, t) − ε(z_t; ∅, t))                                      Eq. 6b
    ∇_z L_lmc  = b̂ψ(z, t) − ẑ_t,   ẑ_t = (z_t − √(1−ᾱ)·ε(z_t; ∅, t)) / √ᾱ              Eq. 9 (ẑ_t: Eq. 7)
    ∇_z L_LMC-SDS = (∇L_cond + ∇L_lmc) / ω                                             Sec. 5 "Set-up": scaled by 1/ω

b̂ψ(z, t) is used in the normalised form it was trained in (Eq. 10: σ matched to ẑ_t's). Both Jacobians (the
UNet's and b̂ψ's) and the weight √ᾱ/√(1−ᾱ) of Eq. 7 are dropped, as the paper does; w(t) = 1; t ~ U(0.02, 0.98).
CFG convention: Eq. 4–5, ε^ω = ε(∅) + ω·(ε(y) − ε(∅)) (the DDS form); ω = 15 for editing (8 for synthesis).
`fixed_eps`: the ε of L_cond is drawn at step 0 and kept, while L_lmc keeps drawing a fresh ε (Sec. 4,
"Increasing Sample Diversity"). One UNet call per step: 2B rows [∅, y] on z_t, or with `fixed_eps` 3B rows
[∅, y] on the fixed-ε z_t and [∅] on the fresh-ε z_t.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from nerfedit.errors import UserError
from nerfedit.losses.base import DistillationConfig, ScoreDistillationLoss, StepInputs, predicted_z0, sample_noise, timestep_weight
from nerfedit.losses.corrective import CorrectiveUNet, default_corrective_path, load_corrective, match_std
from nerfedit.priors.prior import DiffusionPrior


def find_corrective(config: DistillationConfig, prior: DiffusionPrior) -> CorrectiveUNet:
    """`config.corrective`, else `<prior folder>/corrective/corrective.pt`; a one-line UserError when neither exists."""
    path = config.corrective or default_corrective_path(prior)
    if path is not None and Path(path).is_file():
        return load_corrective(path, prior.device)
    where = f"at {path}" if path is not None else "for it"
    out = path or "corrective.pt"
    raise UserError(
        f"LMC-SDS needs a learned corrective b̂ψ for prior '{prior.name}' and there is none {where}; train one with "
        f"`python scripts/train_corrective.py --prior {prior.name} --images DIR --out {out}` "
        f"(or --world 2000 instead of --images for the toy prior), or pass its path as the loss's `corrective`"
    )


class LearnedManifoldCorrective(ScoreDistillationLoss):
    """LMC-SDS; `corrective` overrides the one found from the config."""

    name = "lmc"

    def __init__(self, config: DistillationConfig, prior: DiffusionPrior, corrective: Optional[CorrectiveUNet] = None):
        super().__init__(config, prior)
        self.corrective = corrective if corrective is not None else find_corrective(self.config, prior)
        self.corrective.to(prior.device).eval().requires_grad_(False)
        self._fixed_eps: Optional[Tensor] = None

    def cond_noise(self, z: Tensor, eps: Tensor, step: int, generator) -> Tensor:
        """ε of L_cond: the step's ε, or with `fixed_eps` one drawn at step 0 (or on a new shape) and kept."""
        if not self.config.fixed_eps:
            return eps
        if step == 0 or self._fixed_eps is None or self._fixed_eps.shape != z.shape:
            self._fixed_eps = sample_noise(z, generator)
        return self._fixed_eps

    @torch.no_grad()
    def deltas(self, z: Tensor, t: Tensor, eps: Tensor, eps_cond: Tensor, prompts):
        """(ε(y) − ε(∅), b̂ψ(z, t) − ẑ_t) from one UNet call."""
        prior, batch = self.prior, z.shape[0]
        z = z.detach()
        z_t = prior.add_noise(z, eps_cond, t)
        rows = [""] * batch + list(prompts)
        latents, timesteps = [z_t, z_t], [t, t]
        if self.config.fixed_eps:
            rows += [""] * batch
            latents.append(prior.add_noise(z, eps, t))
            timesteps.append(t)
        out = prior.predict_eps(torch.cat(latents), torch.cat(timesteps), prior.encode_text(rows)).chunk(len(latents))
        eps_uncond, eps_text = out[0], out[1]
        z_t_lmc, eps_uncond_lmc = (latents[2], out[2]) if self.config.fixed_eps else (z_t, eps_uncond)
        z_hat = predicted_z0(z_t_lmc, eps_uncond_lmc, prior.alpha_bar(t))
        b_hat = match_std(self.corrective(z, t.float() / prior.num_train_timesteps), z_hat)
        return eps_text - eps_uncond, b_hat - z_hat

    def gradient(self, inputs: StepInputs):
        """w(t)·(ω·∇L_cond + ∇L_lmc)/ω  (Eqs. 6b and 9, scaled by 1/ω as in Sec. 5)."""
        z, t, eps = inputs.z, inputs.t, inputs.eps
        delta_cond, delta_lmc = self.deltas(z, t, eps, self.cond_noise(z, eps, inputs.step, inputs.generator), inputs.prompts)
        omega = self.config.guidance_scale
        w = timestep_weight(self.prior.alpha_bar(t), self.config.weighting)
        terms = {"l_cond": float((delta_cond**2).mean()), "l_lmc": float((delta_lmc**2).mean())}
        return w * (omega * delta_cond + delta_lmc) / omega, terms
