"""What every score-distillation loss shares: its config, its base class (checks, draws t and ε, finishes), prompts,
timesteps, CFG, w(t) and the denoised estimate. What a call returns and how its gradient is injected: `output.py`.

Call shape of every loss (`ScoreDistillationLoss.__call__`):

    out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_src, step=i, generator=g)
    out.loss.backward()          # d out.loss / d z == out.grad  (the method's gradient, scaled)

An optional `region=m` (latent-resolution mask, 1 = editable) restricts any loss's gradient to m ⊙ g.

`z` are float32 latents [B, C, h, w] (a latent image, or VAE-encoded NeRF renders); `z_source` (DDS, CDS)
the same shape. Prompts are strings or one string per row (view-dependent prompting); embeddings are
cached by the prior. Every random draw (t, ε, patch locations) comes from `generator` (the global RNG
when it is None), in a fixed order, so a fixed seed gives bit-identical gradients on the CPU.

Conventions shared by all losses (each module's docstring repeats the ones it uses):
- CFG: ε̂_s(z_t; y) = ε(z_t; ∅) + s·(ε(z_t; y) − ε(z_t; ∅))  — the DDS / CDS / LMC-SDS form
  (LMC-SDS Eq. 5); threestudio's scale is ours minus one.
- The Jacobian of the UNet is never back-propagated (DreamFusion Eq. 3); ∂z_t/∂z = √ᾱ_t is absorbed
  into w(t), as DreamFusion does.
- `out.loss` is a surrogate built by `output.inject_gradient`: its gradient is exactly `out.grad` and its VALUE
  is what progress bars should print — for the score losses the mean square of the method's gradient
  before `grad_scale`, mean((w(t)·δ)²) (the DDS notebook's `log_loss`); for PatchNCE the contrastive
  loss itself; for a `WeightedSum` the weighted sum of its parts' values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from nerfedit.losses.catalog import CATALOG, DEFAULT_EDIT_LOSS, LossName, entry
from nerfedit.losses.output import LossOutput, finish, restrict_to_region

Prompt = Union[str, Sequence[str]]
Weighting = Literal["uniform", "sds", "fantasia3d"]


@dataclass
class DistillationConfig:
    """Settings of a score-distillation loss. `None` means: the default of that loss's paper / official code."""

    name: LossName = DEFAULT_EDIT_LOSS
    """Which loss (`nerfedit.losses.catalog`)."""
    guidance_scale: Optional[float] = None
    """CFG scale s in ε̂ = ε(∅) + s·(ε(y) − ε(∅)) (the DDS form; threestudio's s is ours minus one)."""
    t_min: Optional[int] = None
    """Smallest timestep sampled (an index into the prior's schedule of T steps, e.g. of 1000)."""
    t_max: Optional[int] = None
    """Timesteps are sampled uniformly from the integers in [t_min, t_max) (clamped to T)."""
    weighting: Optional[Weighting] = None
    """w(t): uniform = 1, sds = 1 − ᾱ_t, fantasia3d = √ᾱ_t (1 − ᾱ_t)."""
    grad_scale: Optional[float] = None
    """Multiplies the injected gradient (a learning-rate knob kept apart from the optimiser's).
    Default: `DDS_CODE_GRAD_SCALE` (2000/64², ≈0.49) for DDS, CDS and SDS — the DDS/CDS code's factor at 512²,
    with which SGD lr 0.1 is the official step — and 1.0 for the losses whose code uses Adam/AdamW."""
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
    """Path of the learned corrective b̂ψ; default: `<prior folder>/corrective/corrective.pt` (shipped for toy)."""
    fixed_eps: bool = False
    """LMC-SDS: draw ε of L_cond once and keep it (L_lmc keeps sampling), for diverse results (paper Sec. 4)."""
    # SDS-Bridge
    bridge_switch_step: int = 500
    """Step at which SDS-Bridge switches from stage 1 (SDS) to stage 2 (the calibrated bridge)."""
    bridge_target_modifiers: str = ", detailed high resolution, high quality, sharp"
    """Appended to the prompt for stage 2's target distribution (official SDS-Bridge code)."""
    bridge_source_modifiers: str = (
        ", oversaturated, smooth, pixelated, cartoon, foggy, hazy, blurry, bad structure, noisy, malformed"
    )
    """Appended to the prompt for stage 2's source (current-image) distribution (official code)."""
    # NFSD
    negative_prompt: Optional[str] = None
    """NFSD's negative prompt for δ_D at t ≥ 200 (default `NFSD_NEGATIVE_PROMPT`)."""

    def with_defaults(self, prior_defaults: Optional[Mapping[str, Mapping[str, object]]] = None) -> "DistillationConfig":
        """This config with every `None` replaced by the prior's own default for this loss (`prior_defaults`, a prior's
        `loss_defaults`), else the loss's published default (`catalog.LOSSES`)."""
        defaults = {**entry(self.name).paper_defaults, **(prior_defaults or {}).get(self.name, {})}
        return replace(
            self,
            **{f.name: defaults[f.name] for f in fields(self) if getattr(self, f.name) is None and f.name in defaults},
        )


@dataclass
class StepInputs:
    """One step of a loss after its random draws: what `ScoreDistillationLoss.gradient` reads."""

    z: Tensor
    """The latents being optimised [B, C, h, w]."""
    t: Tensor
    """Timesteps, one per row."""
    eps: Tensor
    """ε ~ N(0, I), shaped like z."""
    prompts: List[str]
    """The target prompt of each row."""
    source_prompts: List[str]
    """The source prompt of each row ("" = ∅ when none was given)."""
    z_source: Optional[Tensor] = None
    """The source latents (losses that `needs_source`)."""
    step: int = 0
    """The optimisation step (schedules: SDS-Bridge's stages, LMC-SDS's fixed ε)."""
    generator: Optional[torch.Generator] = None
    """Draws after t and ε (PatchNCE's locations, LMC-SDS's fixed ε) come from it."""


class ScoreDistillationLoss:
    """The base of every loss. `__call__` checks the inputs, draws t then ε (in that fixed order), asks the
    subclass's `gradient` for the method's w(t)·δ (its docstring cites the equation) and `finish`es: injects
    grad_scale·w(t)·δ, or answers a NaN/Inf gradient with a skipped step (`skipped_output`)."""

    name: ClassVar[str] = "loss"
    """The loss's catalogue name (`nerfedit.losses.catalog`)."""

    def __init__(self, config: DistillationConfig, prior):
        self.config = config.with_defaults(getattr(prior, "loss_defaults", None))
        self.prior = prior

    @property
    def title(self) -> str:
        return CATALOG[self.name].title

    @property
    def needs_source(self) -> bool:
        return CATALOG[self.name].needs_source

    def gradient(self, inputs: StepInputs) -> Tuple[Tensor, Dict[str, float]]:
        """(w(t)·δ, diagnostics) for the drawn t and ε."""
        raise NotImplementedError

    def output(self, inputs: StepInputs) -> LossOutput:
        """The step's output from `gradient` (CDS and PatchNCE combine more than one gradient here)."""
        grad, terms = self.gradient(inputs)
        return finish(inputs.z, grad, inputs.t, terms, grad_scale=self.config.grad_scale, name=self.name)

    def __call__(
        self,
        z: Tensor,
        *,
        prompt: Prompt,
        source_prompt: Optional[Prompt] = None,
        z_source: Optional[Tensor] = None,
        step: int = 0,
        generator: Optional[torch.Generator] = None,
        region: Optional[Tensor] = None,
    ) -> LossOutput:
        """One step (module docstring). `region` [B, 1, h, w] ∈ {0, 1}: the edit region (`nerfedit.region`) —
        the injected gradient is multiplied by it (`output.restrict_to_region`), whichever the loss."""
        if self.needs_source:
            z_source = check_source(z, z_source, self.title)
        t, eps = draw_t_and_eps(z, self.config, self.prior.num_train_timesteps, generator)
        batch = z.shape[0]
        inputs = StepInputs(z, t, eps, as_prompts(prompt, batch), as_prompts(source_prompt, batch), z_source, step, generator)
        return restrict_to_region(z, self.output(inputs), region)


def check_source(z: Tensor, z_source: Optional[Tensor], title: str) -> Tensor:
    """`z_source` is given and shaped like `z` (the losses that contrast against a source image)."""
    if z_source is None:
        raise ValueError(f"{title} needs z_source, the source image's latent")
    if z_source.shape != z.shape:
        raise ValueError(f"{title}: z_source {tuple(z_source.shape)} and z {tuple(z.shape)} differ in shape")
    return z_source


# ---- prompts ----------------------------------------------------------------------------------
def as_prompts(prompt: Optional[Prompt], batch: int) -> List[str]:
    """One prompt per row: a string is repeated, a sequence must have `batch` entries; None is ∅ ("")."""
    if prompt is None:
        return [""] * batch
    if isinstance(prompt, str):
        return [prompt] * batch
    prompts = list(prompt)
    if len(prompts) != batch:
        raise ValueError(f"got {len(prompts)} prompts for {batch} latents")
    return prompts


def with_suffix(prompts: Sequence[str], suffix: str) -> List[str]:
    """Each prompt with `suffix` appended (SDS-Bridge's modifiers)."""
    return [p + suffix for p in prompts]


# ---- randomness -------------------------------------------------------------------------------
def _draw_device(generator: Optional[torch.Generator], fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


def sample_timesteps(
    batch: int, t_min: int, t_max: int, num_train_timesteps: int, generator: Optional[torch.Generator], device
) -> Tensor:
    """t ~ U{t_min, …, t_max − 1}, one per row (long), with t_max clamped to T and t_min to [0, T)."""
    high = min(int(t_max), num_train_timesteps)
    low = min(max(int(t_min), 0), high - 1)
    device = torch.device(device)
    t = torch.randint(low, high, (batch,), generator=generator, device=_draw_device(generator, device))
    return t.to(device)


def sample_noise(like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """ε ~ N(0, I) shaped like `like`, float32, drawn on the generator's device and moved to `like`'s."""
    eps = torch.randn(like.shape, generator=generator, device=_draw_device(generator, like.device))
    return eps.to(like.device)


def draw_t_and_eps(z: Tensor, config: DistillationConfig, num_train_timesteps: int, generator) -> Tuple[Tensor, Tensor]:
    """The step's random draws in their fixed order: first t (one per row), then ε (shaped like z)."""
    t = sample_timesteps(z.shape[0], config.t_min, config.t_max, num_train_timesteps, generator, z.device)
    return t, sample_noise(z, generator)


# ---- the maths every loss shares --------------------------------------------------------------
def classifier_free_guidance(eps_uncond: Tensor, eps_cond: Tensor, scale: float) -> Tensor:
    """ε̂_s = ε(∅) + s·(ε(y) − ε(∅))  (Ho & Salimans 2022; LMC-SDS Eq. 5; the DDS/CDS code's form)."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


def timestep_weight(alpha_bar: Tensor, weighting: Weighting) -> Tensor:
    """w(t) from ᾱ_t: uniform 1 (DDS, LMC-SDS), 1 − ᾱ_t (DreamFusion/threestudio "sds"), √ᾱ_t(1 − ᾱ_t) (Fantasia3D)."""
    if weighting == "uniform":
        return torch.ones_like(alpha_bar)
    if weighting == "sds":
        return 1 - alpha_bar
    if weighting == "fantasia3d":
        return alpha_bar.sqrt() * (1 - alpha_bar)
    raise ValueError(f"unknown weighting '{weighting}': use uniform, sds or fantasia3d")


def predicted_z0(z_t: Tensor, eps_hat: Tensor, alpha_bar: Tensor) -> Tensor:
    """The one-step denoised estimate ẑ = (z_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t  (DDPM Eq. 4 solved for z; DDIM Eq. 12)."""
    return (z_t - (1 - alpha_bar).sqrt() * eps_hat) / alpha_bar.sqrt()


DistillationLoss = ScoreDistillationLoss
"""The call shape every loss follows (`ScoreDistillationLoss.__call__`); `WeightedSum` and test doubles follow it too."""
