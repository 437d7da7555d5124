"""Score-distillation losses on a latent diffusion prior: SDS, DDS, CDS, LMC-SDS, SDS-Bridge and NFSD.

    from nerfedit.losses import DistillationConfig, build_loss
    loss = build_loss(DistillationConfig(name="dds"), prior)
    out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_src, step=i, generator=g)
    out.loss.backward()                       # z.grad == out.grad; out.terms for the progress bar

The call shape and the shared conventions (CFG form, w(t), gradient injection, NaN guard) are in `base.py`;
each method is one small module citing its paper's equations. Nothing here imports nerfstudio.
"""

from __future__ import annotations

from typing import Callable, Dict

from nerfedit.errors import UserError
from nerfedit.losses.base import (
    DDS_CODE_GRAD_SCALE,
    PAPER_DEFAULTS,
    DistillationConfig,
    DistillationLoss,
    LossOutput,
    WeightedSum,
    weighted_sum,
)
from nerfedit.losses.bridge import SDSBridge
from nerfedit.losses.cds import ContrastiveDenoisingScore
from nerfedit.losses.dds import DeltaDenoisingScore
from nerfedit.losses.lmc import LearnedManifoldCorrective
from nerfedit.losses.nfsd import NoiseFreeScoreDistillation
from nerfedit.losses.patchnce import PatchNCELoss
from nerfedit.losses.sds import ScoreDistillation
from nerfedit.priors.prior import DiffusionPrior

LOSSES: Dict[str, Callable[[DistillationConfig, DiffusionPrior], DistillationLoss]] = {
    "sds": ScoreDistillation,
    "dds": DeltaDenoisingScore,
    "cds": ContrastiveDenoisingScore,
    "lmc": LearnedManifoldCorrective,
    "bridge": SDSBridge,
    "nfsd": NoiseFreeScoreDistillation,
}
LOSS_NAMES = tuple(LOSSES)
"""Every loss `build_loss` knows, in the order the CLI lists them."""
NEEDS_SOURCE = ("dds", "cds")
"""Losses that need a source latent `z_source` (and use `source_prompt`)."""


def build_loss(config: DistillationConfig, prior: DiffusionPrior) -> DistillationLoss:
    """The loss `config.name` on `prior`, with the paper's defaults for every unset field.

    Fails at once (UserError, one line) on an unknown name or, for LMC-SDS, a missing corrective.
    """
    if config.name not in LOSSES:
        raise UserError(f"unknown loss '{config.name}': use one of {', '.join(LOSS_NAMES)}")
    return LOSSES[config.name](config, prior)


__all__ = [
    "DDS_CODE_GRAD_SCALE",
    "LOSS_NAMES",
    "NEEDS_SOURCE",
    "PAPER_DEFAULTS",
    "ContrastiveDenoisingScore",
    "DeltaDenoisingScore",
    "DistillationConfig",
    "DistillationLoss",
    "LearnedManifoldCorrective",
    "LossOutput",
    "NoiseFreeScoreDistillation",
    "PatchNCELoss",
    "SDSBridge",
    "ScoreDistillation",
    "WeightedSum",
    "build_loss",
    "weighted_sum",
]
