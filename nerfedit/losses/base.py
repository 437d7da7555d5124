"""What every score-distillation loss shares: its config, its output, timesteps, CFG and gradient injection.

Call shape of every loss (see `DistillationLoss`):

    out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_src, step=i, generator=g)
    out.loss.backward()          # d out.loss / d z == out.grad  (the method's gradient, scaled)

`z` are float32 latents [B, C, h, w] that require grad (a latent image, or VAE-encoded NeRF renders).
Prompts are strings or one string per row (view-dependent prompting); embeddings are cached by the prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Dict, Literal, Optional, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor

Prompt = Union[str, Sequence[str]]
LossName = Literal["sds", "dds", "cds", "lmc", "bridge", "nfsd"]
Weighting = Literal["uniform", "sds", "fantasia3d"]


@dataclass
class DistillationConfig:
    """Settings of a score-distillation loss. `None` means: the default of that loss's paper / official code."""

    name: LossName = "dds"
    """Which loss: sds | dds | cds | lmc | bridge | nfsd."""
    guidance_scale: Optional[float] = None
    """CFG scale s in ε̂ = ε(∅) + s·(ε(y) − ε(∅)) (the DDS form; threestudio's s is ours minus one)."""
    t_min: Optional[int] = None
    """Smallest timestep sampled (of the prior's T, e.g. 1000)."""
    t_max: Optional[int] = None
    """Timesteps are sampled from [t_min, t_max)."""
    weighting: Optional[Weighting] = None
    """w(t): uniform = 1, sds = 1 − ᾱ_t, fantasia3d = √ᾱ_t (1 − ᾱ_t)."""
    grad_scale: float = 1.0
    """Multiplies the injected gradient (a learning-rate knob kept apart from the optimiser's)."""
    # CDS
    patchnce_weight: Optional[float] = None
    """λ in DDS + λ·PatchNCE (CDS: 3.0)."""
    patch_sizes: Tuple[int, ...] = (1, 2)
    """Average-pooling sizes of the patches PatchNCE contrasts."""
    num_patches: int = 256
    """Locations sampled per feature map and patch size."""
    nce_temperature: float = 0.07
    """τ of the PatchNCE softmax."""
    # LMC-SDS
    corrective: Optional[str] = None
    """Path of the learned corrective b̂ψ; default: the one shipped with the prior (toy) if any."""
    fixed_eps: bool = False
    """LMC-SDS: draw ε once and keep it, for diverse results across seeds (paper Sec. 4)."""
    # SDS-Bridge
    bridge_switch_step: int = 500
    """Step at which SDS-Bridge switches from stage 1 (SDS) to stage 2 (the calibrated bridge)."""
    bridge_target_modifiers: str = ", detailed high resolution, high quality, sharp"
    """Appended to the prompt for stage 2's target distribution (official SDS-Bridge code)."""
    bridge_source_modifiers: str = (
        ", oversaturated, smooth, pixelated, cartoon, foggy, hazy, blurry, bad structure, noisy, malformed"
    )
    """Appended to the prompt for stage 2's source (current-image) distribution (official code)."""

    def with_defaults(self) -> "DistillationConfig":
        """This config with every `None` replaced by the named loss's published default."""
        defaults = PAPER_DEFAULTS[self.name]
        return replace(self, **{f.name: defaults[f.name] for f in fields(self) if getattr(self, f.name) is None and f.name in defaults})


PAPER_DEFAULTS: Dict[str, Dict[str, object]] = {
    # DDS official notebook: CFG 7.5, t in [50, 950), uniform weight.
    "dds": dict(guidance_scale=7.5, t_min=50, t_max=950, weighting="uniform"),
    # CDS official code: DDS settings + PatchNCE with weight 3.0.
    "cds": dict(guidance_scale=7.5, t_min=50, t_max=950, weighting="uniform", patchnce_weight=3.0),
    # DreamFusion-style SDS as threestudio: t in [20, 980], w = 1 − ᾱ.
    "sds": dict(guidance_scale=7.5, t_min=20, t_max=980, weighting="sds"),
    "nfsd": dict(guidance_scale=7.5, t_min=20, t_max=980, weighting="sds"),
    "lmc": dict(guidance_scale=7.5, t_min=20, t_max=980, weighting="uniform"),
    "bridge": dict(guidance_scale=7.5, t_min=20, t_max=980, weighting="sds"),
}


@dataclass
class LossOutput:
    """What a loss returns for one step."""

    loss: Tensor
    """Scalar surrogate; its gradient w.r.t. the latents is `grad`. Zero (with a zero gradient) when skipped."""
    grad: Tensor
    """The injected gradient, detached, shaped like the latents."""
    t: Tensor
    """Timesteps used, one per row."""
    terms: Dict[str, float] = field(default_factory=dict)
    """Diagnostics for logs and progress bars (e.g. {"dds": …, "patchnce": …})."""
    skipped: bool = False
    """True when the gradient had NaN/Inf: nothing is applied, the caller counts and reports it."""

    @property
    def grad_norm(self) -> float:
        return float(self.grad.norm())


class DistillationLoss(Protocol):
    """The call shape every loss in `nerfedit.losses` follows."""

    config: DistillationConfig

    def __call__(
        self,
        z: Tensor,
        *,
        prompt: Prompt,
        source_prompt: Optional[Prompt] = None,
        z_source: Optional[Tensor] = None,
        step: int = 0,
        generator: Optional[torch.Generator] = None,
    ) -> LossOutput: ...
