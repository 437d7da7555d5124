"""PatchNCE between decoder self-attention features (CUT, Park et al. 2020; as CDS uses it, Nam et al. CVPR 2024).

    ℓ_con(z, ẑ) = Σ_l Σ_p mean_s ℓ(h_l^s, ĥ_l^s, ĥ_l^{S∖s})                              CDS Eq. 5
    ℓ(h, h⁺, h⁻) = −log exp(h·h⁺/τ) / (exp(h·h⁺/τ) + Σ exp(h·h⁻/τ))                       CDS Eq. 6

h: the target branch's features (differentiable), ĥ: the source branch's (detached). For every decoder
self-attention layer l (UNet `up_blocks.*.attn1`, after the output projection) and patch size p: average-pool
p×p (p > 1), L2-normalise the channels, sample the same ≤ `num_patches` locations s in both maps; the source
feature ĥ_s is the query, its positive the target feature h_s at the same location, its negatives the target
features h_j at the other sampled locations of the same image (the CDS code's orientation); logits / τ,
cross-entropy with label 0, mean over locations (the CDS code, `utils/loss.py`, which runs one image; a batch
sums its images' losses).
Defaults (CDS code): patch sizes 1 and 2, 256 locations, τ = 0.07; the features come from the text-conditioned
rows only. The locations are drawn from the step's generator, one permutation per (layer, patch size).
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from nerfedit.losses.base import DistillationConfig, ScoreDistillationLoss, StepInputs
from nerfedit.losses.output import LossOutput, finish
from nerfedit.priors.prior import DiffusionPrior

NCE_DIAGONAL_FILL = -10.0
"""Logit (before / τ) put on a location's similarity with itself among the negatives: it is the positive, so it
must not count as a negative. CUT and the CDS code fill −10 (exp(−10/τ) ≈ 0)."""

Features = Dict[str, Tensor]
"""Self-attention outputs [B, h·w, C] by layer name."""


def feature_map(tokens: Tensor, latent_hw: Tuple[int, int]) -> Tensor:
    """[B, h·w, C] tokens of a layer → [B, C, h, w], its spatial size found by halving the latent's (rounding up)."""
    batch, count, channels = tokens.shape
    height, width = latent_hw
    while height * width > count and (height > 1 or width > 1):
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    if height * width != count:
        raise ValueError(f"{count} attention tokens match no downsampling of a {latent_hw} latent")
    return tokens.transpose(1, 2).reshape(batch, channels, height, width)


def patch_logits(source: Tensor, target: Tensor, temperature: float) -> Tensor:
    """[B, P, 1 + P] logits: column 0 the positive ĥ_s·h_s, then ĥ_s·h_j over the image's P locations j (j = s masked)."""
    positive = (source * target).sum(-1, keepdim=True)
    negatives = source @ target.transpose(1, 2)
    eye = torch.eye(negatives.shape[-1], dtype=torch.bool, device=negatives.device)
    negatives = negatives.masked_fill(eye, NCE_DIAGONAL_FILL)
    return torch.cat([positive, negatives], dim=-1) / temperature


def patchnce(
    source: Tensor,
    target: Tensor,
    patch_sizes: Sequence[int] = (1, 2),
    num_patches: int = 256,
    temperature: float = 0.07,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Σ over patch sizes of PatchNCE between two feature maps [B, C, h, w]; `source` is detached (CDS Eqs. 5–6).

    Each image is its own problem (its negatives are its own locations): the loss is the mean over its
    locations, summed over the B images, so every row gets the single-image gradient whatever B is (as DDS).
    """
    loss = target.new_zeros(())
    for size in patch_sizes:
        src, tgt = source.detach(), target
        if size > 1:
            src, tgt = F.avg_pool2d(src, size), F.avg_pool2d(tgt, size)
        src = F.normalize(src, dim=1).flatten(2).transpose(1, 2)  # [B, N, C]
        tgt = F.normalize(tgt, dim=1).flatten(2).transpose(1, 2)
        count = src.shape[1]
        draw_on = generator.device if generator is not None else src.device
        ids = torch.randperm(count, generator=generator, device=draw_on)[: min(num_patches, count)].to(src.device)
        logits = patch_logits(src[:, ids], tgt[:, ids], temperature)  # [B, P, 1 + P]
        labels = torch.zeros(logits.shape[0] * logits.shape[1], dtype=torch.long, device=logits.device)
        per_location = F.cross_entropy(logits.flatten(0, 1), labels, reduction="none")
        loss = loss + per_location.view(logits.shape[:2]).mean(1).sum()  # mean over locations, sum over images
    return loss


def patchnce_layers(
    source: Features, target: Features, latent_hw: Tuple[int, int], config: DistillationConfig, generator
) -> Tensor:
    """ℓ_con summed over the layers both feature sets share (CDS Eq. 5), in the UNet's execution order."""
    loss = None
    for name, tokens in target.items():
        term = patchnce(
            feature_map(source[name], latent_hw),
            feature_map(tokens, latent_hw),
            config.patch_sizes,
            config.num_patches,
            config.nce_temperature,
            generator,
        )
        loss = term if loss is None else loss + term
    if loss is None:
        raise ValueError("no self-attention features were captured")
    return loss


def self_attention_features(
    prior: DiffusionPrior, z: Tensor, t: Tensor, eps: Tensor, prompts: Sequence[str]
) -> Features:
    """Decoder self-attention outputs of one UNet call on z_t = √ᾱ z + √(1−ᾱ) ε with text `prompts`.

    Differentiable w.r.t. `z` when grad is enabled and `z` requires it (CDS's second pass).
    """
    with prior.capture_self_attention() as store:
        prior.predict_eps(prior.add_noise(z, eps, t), t, prior.encode_text(list(prompts)))
        return dict(store.features)


class PatchNCELoss(ScoreDistillationLoss):
    """The PatchNCE term alone: d ℓ_con / d z, with target features on z (prompt) and source features on z_source.

    Standalone it costs a no-grad pass on the source and a differentiable pass on the target; inside CDS
    (`cds.py`) the source features come from the DDS pass instead (`from_features`).
    """

    name = "patchnce"
    title = "PatchNCE"
    needs_source = True

    def from_features(
        self, z: Tensor, t: Tensor, eps: Tensor, prompts: Sequence[str], source: Features, generator
    ) -> LossOutput:
        """ℓ_con against given source features (CDS Eqs. 5–6); its gradient w.r.t. z through one differentiable UNet pass."""
        leaf = z.detach().requires_grad_(True)
        with torch.enable_grad():
            target = self_attention_features(self.prior, leaf, t, eps, prompts)
            nce = patchnce_layers(source, target, tuple(z.shape[-2:]), self.config, generator)
            (grad,) = torch.autograd.grad(nce, leaf)
        return finish(z, grad, t, value=nce, name="patchnce")

    def output(self, inputs: StepInputs) -> LossOutput:
        with torch.no_grad():
            source = self_attention_features(self.prior, inputs.z_source, inputs.t, inputs.eps, inputs.source_prompts)
        return self.from_features(inputs.z, inputs.t, inputs.eps, inputs.prompts, source, inputs.generator)
