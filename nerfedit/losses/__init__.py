"""Score-distillation losses on a latent diffusion prior: SDS, DDS, CDS, LMC-SDS, SDS-Bridge and NFSD.

    from nerfedit.losses import DistillationConfig, build_loss
    loss = build_loss(DistillationConfig(name="dds"), prior)
    out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_src, step=i, generator=g)
    out.loss.backward()                       # z.grad == out.grad; out.terms for the progress bar

The list of losses, their paper defaults and their per-use defaults is `catalog.py` (torch-free); the call
shape and the shared maths are in `base.py`, what a call returns in `output.py`; each method is one small module
citing its paper's equations. Nothing here imports nerfstudio. Attributes other than the catalogue's are
imported lazily, so that reading the catalogue (`--help`, validation) does not import torch.
"""

from __future__ import annotations

import importlib

from nerfedit.losses.catalog import (
    CATALOG,
    DDS_CODE_GRAD_SCALE,
    GENERATING_LOSS_NAMES,
    LOSS_NAMES,
    LOSSES,
    SOURCE_LOSS_NAMES,
    LossEntry,
    LossName,
    entry,
)

_LAZY = {
    "DistillationConfig": "nerfedit.losses.base",
    "DistillationLoss": "nerfedit.losses.base",
    "ScoreDistillationLoss": "nerfedit.losses.base",
    "LossOutput": "nerfedit.losses.output",
    "SkippedSteps": "nerfedit.losses.output",
    "WeightedSum": "nerfedit.losses.output",
    "weighted_sum": "nerfedit.losses.output",
    "PatchNCELoss": "nerfedit.losses.patchnce",
}


def loss_class(name: str) -> type:
    """The class implementing catalogue loss `name` (imported on demand)."""
    module, cls = entry(name).implementation.split(":")
    return getattr(importlib.import_module(module), cls)


def build_loss(config, prior):
    """The loss `config.name` on `prior`, with the paper's defaults for every unset field.

    Fails at once (UserError, one line) on an unknown name or, for LMC-SDS, a missing corrective.
    """
    return loss_class(config.name)(config, prior)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nerfedit.losses' has no attribute {name!r}")


__all__ = [
    "CATALOG",
    "DDS_CODE_GRAD_SCALE",
    "GENERATING_LOSS_NAMES",
    "LOSSES",
    "LOSS_NAMES",
    "SOURCE_LOSS_NAMES",
    "LossEntry",
    "LossName",
    "build_loss",
    "entry",
    "loss_class",
    *_LAZY,
]
