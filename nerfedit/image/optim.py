"""How a latent is optimised and what is recorded: the settings (`EditConfig`, the papers' defaults), the optimiser
and its learning-rate schedule, and the step-by-step `EditHistory`. The loops that use them are in `edit`.

Defaults follow the papers:
- Editing (DDS, Hertz et al. 2023, supplementary "Zero-shot DDS optimization"): initialise at the
  source latent, 200 iterations of vanilla SGD with a decay of 0.9 every 20 iterations, at the learning
  rate of the official notebook (0.1 with its ×2000/4096 gradient, `DDS_SGD_LR`). The supplement also compares Adam and finds SGD cleaner (Adam's per-element
  normalisation spreads the update over pixels the edit should not touch), so Adam is an option only.
- Generation (SDS-Bridge, McAllister et al. 2024, official 2D code; LMC-SDS, Alldieck et al. 2024):
  1000 steps of AdamW with learning rate 0.01 from a latent that encodes a grey image
  (`init="randn"`: a unit Gaussian latent, as SDS-Bridge's code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor

from nerfedit.losses.output import LossOutput, SkippedSteps

OptimizerName = Literal["sgd", "adam", "adamw"]
ScheduleName = Literal["step", "constant", "cosine"]
InitName = Literal["grey", "randn"]

DDS_SGD_LR = 0.1
"""SGD learning rate of the DDS notebook and the CDS code, whose gradient is ×2000/4096 at SD's 64² latent: our
DDS/CDS `grad_scale` (`DDS_CODE_GRAD_SCALE`), so lr 0.1 takes the official step. (The DDS supplement's "lr 2"
would, with that gradient, step 20× further: on the toy prior it blurs the background to ~15 dB.)"""
DDS_LR_DECAY = 0.9
DDS_LR_DECAY_EVERY = 20
"""The DDS supplement's schedule: the learning rate is multiplied by 0.9 every 20 iterations."""
DDS_STEPS = 200
"""Iterations of DDS's zero-shot editing."""
ADAM_LR = 0.01
"""Adam/AdamW learning rate on the latent (SDS-Bridge's 2D code, threestudio's DreamFusion)."""
GENERATE_STEPS = 1000
"""Steps of SDS-Bridge's 2D text-to-image optimisation (stage 2 from step 500)."""
GREY = 0.5
"""Pixel value of the grey image generation starts from (LMC-SDS paper, 2D synthesis)."""


@dataclass
class EditConfig:
    """How the latent is optimised (the loss itself is configured by `DistillationConfig`)."""

    steps: int = DDS_STEPS
    """Optimisation steps (DDS: 200)."""
    optimizer: OptimizerName = "sgd"
    """sgd (vanilla, DDS's choice for editing) | adam | adamw (SDS-Bridge's choice for generation)."""
    lr: Optional[float] = None
    """Learning rate; None: 0.1 for SGD (`DDS_SGD_LR`, the DDS notebook's), 0.01 for Adam/AdamW."""
    schedule: ScheduleName = "step"
    """step: lr × `lr_decay` every `lr_decay_every` steps (DDS) | constant | cosine (to 0 at the last step)."""
    lr_decay: float = DDS_LR_DECAY
    """Factor of the `step` schedule."""
    lr_decay_every: int = DDS_LR_DECAY_EVERY
    """Interval of the `step` schedule, in steps."""
    seed: int = 0
    """Seeds every random draw of the run (t, ε, patch locations)."""
    save_progress_every: int = 0
    """Keep a snapshot of the latent every this many steps (0: none); the first and last are always kept when > 0."""

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return DDS_SGD_LR if self.optimizer == "sgd" else ADAM_LR

    def validate(self) -> "EditConfig":
        from nerfedit.errors import UserError

        if self.steps <= 0:
            raise UserError(f"steps must be a positive number, not {self.steps}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"learning rate must be a positive number, not {self.lr}")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise UserError(f"unknown optimizer '{self.optimizer}': use sgd, adam or adamw")
        if self.schedule not in ("step", "constant", "cosine"):
            raise UserError(f"unknown learning-rate schedule '{self.schedule}': use step, constant or cosine")
        if self.save_progress_every < 0:
            raise UserError(f"save_progress_every must be ≥ 0, not {self.save_progress_every}")
        return self


def generate_config(**overrides) -> EditConfig:
    """The defaults for text-to-image: 1000 steps of AdamW, lr 0.01, constant (SDS-Bridge's 2D code)."""
    return EditConfig(**{**dict(steps=GENERATE_STEPS, optimizer="adamw", schedule="constant"), **overrides})


@dataclass
class EditHistory:
    """What happened during one optimisation, step by step."""

    loss: List[float] = field(default_factory=list)
    """The loss's scalar per step (0 for a skipped step)."""
    t: List[float] = field(default_factory=list)
    """Timestep per step (mean over the batch's rows)."""
    grad_norm: List[float] = field(default_factory=list)
    """Norm of the injected gradient per step (NaN for a skipped step)."""
    lr: List[float] = field(default_factory=list)
    """Learning rate used per step."""
    terms: List[Dict[str, float]] = field(default_factory=list)
    """The loss's diagnostics per step (e.g. {"dds": …, "patchnce": …})."""
    skips: SkippedSteps = field(default_factory=SkippedSteps)
    """Steps whose gradient had NaN/Inf: nothing was applied."""
    snapshots: List[Tuple[int, Tensor]] = field(default_factory=list)
    """(steps done, latents) every `save_progress_every` steps, on the CPU."""
    snapshot_images: List[Tuple[int, Tensor]] = field(default_factory=list)
    """(steps done, images [B, 3, H, W] in [0, 1]) decoded from `snapshots` by `edit_image`/`generate_image`."""
    seconds: float = 0.0
    """Wall-clock time of the loop."""
    region: Optional[Tensor] = None
    """The edit region [B, 1, h, w] (1 = editable) the gradient was restricted to, or None (`nerfedit.region`)."""
    pixel_region: Optional[Tensor] = None
    """The region at the image's pixels [B, R, R] (bool): the edit is kept inside it, the input outside
    (`nerfedit.region.pixels`); None without a region."""

    @property
    def skipped(self) -> int:
        """How many steps were skipped for a NaN/Inf gradient."""
        return self.skips.count

    @property
    def skipped_steps(self) -> List[int]:
        """The skipped steps, in order."""
        return self.skips.steps

    @property
    def steps(self) -> int:
        return len(self.loss)

    def summary(self) -> str:
        """One line: steps, time, last loss, skipped steps."""
        last = next((v for v in reversed(self.loss) if math.isfinite(v)), float("nan"))
        text = f"{self.steps} steps in {self.seconds:.1f} s, final loss {last:.4g}"
        if self.skipped:
            text += f", {self.skips.summary()}"
        return text


StepCallback = Callable[[int, Tensor, LossOutput], Optional[bool]]
"""Called after every step with (step, latents, loss output); returning True stops the loop."""


def make_optimizer(params: Sequence[Tensor], config: EditConfig) -> torch.optim.Optimizer:
    """Vanilla SGD (no momentum), Adam or AdamW (torch defaults otherwise) at `config.resolved_lr()`."""
    lr = config.resolved_lr()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)


def optimiser_step(optimizer: torch.optim.Optimizer, z: Tensor, out: LossOutput, step: int, config: EditConfig, skips: SkippedSteps) -> bool:
    """One step of `edit-image`'s optimisation of the latent `z` from the loss's output `out` at `step` (0-based): the
    schedule's learning rate, backward, optimiser step. A skipped (NaN/Inf) or corrupt gradient applies nothing and
    is counted in `skips`. Returns whether the step was applied."""
    for group in optimizer.param_groups:
        group["lr"] = config.resolved_lr() * lr_factor(step, config)
    optimizer.zero_grad(set_to_none=True)
    if skips.record(step, out):
        return False
    out.loss.backward()
    if z.grad is None or not bool(torch.isfinite(z.grad).all()):  # never apply a corrupt step
        skips.steps.append(step)
        return False
    optimizer.step()
    return True


def lr_factor(step: int, config: EditConfig) -> float:
    """Multiplier of the base learning rate at `step` (0-based)."""
    if config.schedule == "step":
        return config.lr_decay ** (step // max(1, config.lr_decay_every))
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(1, config.steps)))
    return 1.0
