"""The NeRF edit's loss settings: the loss core's `DistillationConfig`, with the catalogue's names as choices and
the per-loss defaults shown in `--help`, and what choosing a loss decides about the edit (`apply_loss_defaults`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

from nerfedit.losses.base import DistillationConfig, Weighting
from nerfedit.losses.catalog import DEFAULT_NERF_LOSS, LOSS_NAMES, LossName, entry
from nerfedit.nerf.common.loss_help import loss_choice, per_loss_default


@dataclass
class NerfLossConfig(DistillationConfig):
    """The loss core's settings (`nerfedit.losses.base.DistillationConfig`); `None` = the paper's default."""

    name: Annotated[LossName, loss_choice(LOSS_NAMES, DEFAULT_NERF_LOSS)] = DEFAULT_NERF_LOSS
    """Which loss (`nerfedit.losses.catalog`). DDS, the default, edits each view as `nerfedit edit-image` does; CDS
    adds PatchNCE on the UNet's self-attention."""
    guidance_scale: Annotated[Optional[float], per_loss_default("guidance_scale")] = None
    """CFG scale s in ε̂ = ε(∅) + s·(ε(y) − ε(∅)) (the DDS form; threestudio's s is ours minus one)."""
    t_min: Annotated[Optional[int], per_loss_default("t_min")] = None
    """Smallest timestep sampled (an index into the prior's schedule of T steps, e.g. of 1000)."""
    t_max: Annotated[Optional[int], per_loss_default("t_max")] = None
    """Timesteps are sampled uniformly from the integers in [t_min, t_max) (clamped to T)."""
    weighting: Annotated[Optional[Weighting], per_loss_default("weighting")] = None
    """w(t): uniform = 1, sds = 1 − ᾱ_t, fantasia3d = √ᾱ_t (1 − ᾱ_t)."""
    grad_scale: Annotated[Optional[float], per_loss_default("grad_scale")] = None
    """Multiplies the injected gradient (a learning-rate knob kept apart from the optimiser's)."""
    patchnce_weight: Annotated[Optional[float], per_loss_default("patchnce_weight")] = None
    """λ in DDS + λ·PatchNCE (CDS only)."""
    bridge_switch_step: Optional[int] = None
    """SDS-Bridge: the edit step at which stage 2 (the calibrated bridge) starts. None: half of --pipeline.edit-steps."""


def apply_loss_defaults(pipeline) -> None:
    """Fill in what the chosen loss decides when it is not given (a `NerfEditPipelineConfig`, in place): the edit's
    learning rate and appearance-only switch (the catalogue's `LossEntry.nerf`), and SDS-Bridge's switch step
    (half the edit). Unknown loss names are one-line `UserError`s."""
    nerf = entry(pipeline.loss.name, "--pipeline.loss.name").nerf
    if pipeline.edit_lr is None:
        pipeline.edit_lr = nerf.edit_lr
    if pipeline.edit_appearance_only is None:
        pipeline.edit_appearance_only = nerf.appearance_only
    if pipeline.loss.bridge_switch_step is None:
        pipeline.loss.bridge_switch_step = max(1, pipeline.edit_steps // 2)
