"""What every score-distillation loss shares: its config, its output, timesteps, CFG and gradient injection.

Call shape of every loss (see `DistillationLoss`):

    out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_src, step=i, generator=g)
    out.loss.backward()          # d out.loss / d z == out.grad  (the method's gradient, scaled)

`z` are float32 latents [B, C, h, w] (a latent image, or VAE-encoded NeRF renders); `z_source` (DDS, CDS)
the same shape. Prompts are strings or one string per row (view-dependent prompting); embeddings are
cached by the prior. Every random draw (t, ε, patch locations) comes from `generator` (the global RNG
when it is None), in a fixed order, so a fixed seed gives bit-identical gradients on the CPU.

Conventions shared by all losses (each module's docstring repeats the ones it uses):
- CFG: ε̂_s(z_t; y) = ε(z_t; ∅) + s·(ε(z_t; y) − ε(z_t; ∅))  — the DDS / CDS / LMC-SDS form
  (LMC-SDS Eq. 5); threestudio's scale is ours minus one.
- The Jacobian of the UNet is never back-propagated (DreamFusion Eq. 3); ∂z_t/∂z = √ᾱ_t is absorbed
  into w(t), as DreamFusion does.
- `out.loss` is a surrogate built by `inject_gradient`: its gradient is exactly `out.grad` and its VALUE
  is what progress bars should print — for the score losses the mean square of the method's gradient
  before `grad_scale`, mean((w(t)·δ)²) (the DDS notebook's `log_loss`); for PatchNCE the contrastive
  loss itself; for a `WeightedSum` the weighted sum of its parts' values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Dict, List, Literal, Optional, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor

Prompt = Union[str, Sequence[str]]
LossName = Literal["sds", "dds", "cds", "lmc", "bridge", "nfsd"]
Weighting = Literal["uniform", "sds", "fantasia3d"]

DDS_CODE_GRAD_SCALE = 2000 / (64 * 64)
"""0.48828125: the DDS notebook and the CDS code back-propagate `2000 · Σ(z·δ) / (h·w)` and step SGD with
lr 0.1; at SD's 64×64 latent (512² images) that is δ × 2000/4096 per element. We fold that CONSTANT (not
its 1/(h·w), which would make the step grow as the latent shrinks) into DDS/CDS/SDS's default
`grad_scale`, so SGD with lr 0.1 reproduces the official step size at 512² and stays resolution-free."""

NFSD_NEGATIVE_PROMPT = (
    "unrealistic, blurry, low quality, out of focus, ugly, low contrast, dull, dark, low-resolution, gloomy"
)
"""NFSD's negative prompt for δ_D (Katzir et al. 2023; the same string as SDS-Bridge's NFSD baseline code)."""


@dataclass
class DistillationConfig:
    """Settings of a score-distillation loss. `None` means: the default of that loss's paper / official code."""

    name: LossName = "dds"
    """Which loss: sds | dds | cds | lmc | bridge | nfsd."""
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
    Default: `DDS_CODE_GRAD_SCALE` (2000/64², ≈0.49) for dds, cds and sds — the DDS/CDS code's factor, with
    which SGD lr 0.1 is the official step — and 1.0 for lmc, bridge, nfsd (their code uses Adam/AdamW)."""
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

    def with_defaults(self) -> "DistillationConfig":
        """This config with every `None` replaced by the named loss's published default."""
        if self.name not in PAPER_DEFAULTS:
            from nerfedit.errors import UserError

            raise UserError(f"unknown loss '{self.name}': use one of {', '.join(PAPER_DEFAULTS)}")
        defaults = PAPER_DEFAULTS[self.name]
        return replace(
            self,
            **{f.name: defaults[f.name] for f in fields(self) if getattr(self, f.name) is None and f.name in defaults},
        )


PAPER_DEFAULTS: Dict[str, Dict[str, object]] = {
    # DreamFusion (Poole et al. 2022): ω = 100, w(t) = 1 − ᾱ_t (threestudio "sds"), t ∈ [20, 980] (threestudio).
    "sds": dict(guidance_scale=100.0, t_min=20, t_max=980, weighting="sds", grad_scale=DDS_CODE_GRAD_SCALE),
    # DDS official notebook: CFG 7.5, t in [50, 950), uniform weight, ×2000/(64·64).
    "dds": dict(guidance_scale=7.5, t_min=50, t_max=950, weighting="uniform", grad_scale=DDS_CODE_GRAD_SCALE),
    # CDS official code: DDS settings + PatchNCE with weight 3.0 (PatchNCE itself is not ×2000).
    "cds": dict(
        guidance_scale=7.5, t_min=50, t_max=950, weighting="uniform", grad_scale=DDS_CODE_GRAD_SCALE, patchnce_weight=3.0
    ),
    # LMC-SDS paper: ω = 15 for editing (8 for synthesis), w(t) = 1, t ~ U(0.02, 0.98), Adam.
    "lmc": dict(guidance_scale=15.0, t_min=20, t_max=980, weighting="uniform", grad_scale=1.0),
    # SDS-Bridge official 2D code: CFG 40 in both stages, w = 1 − ᾱ, t in 0.02–0.98 of T, AdamW.
    "bridge": dict(guidance_scale=40.0, t_min=20, t_max=980, weighting="sds", grad_scale=1.0),
    # NFSD (Katzir et al. 2023): a nominal CFG 7.5, w = 1 − ᾱ and t range as threestudio / SDS-Bridge's baseline.
    "nfsd": dict(
        guidance_scale=7.5, t_min=20, t_max=980, weighting="sds", grad_scale=1.0, negative_prompt=NFSD_NEGATIVE_PROMPT
    ),
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


class TextScoreLoss:
    """The losses that score `z` against `prompt` alone (SDS, NFSD, SDS-Bridge, LMC-SDS): draw t and ε, ask
    `gradient` for w(t)·δ, inject it (`finish`). `source_prompt` and `z_source` are ignored."""

    name = "loss"

    def __init__(self, config: DistillationConfig, prior):
        self.config = config.with_defaults()
        self.prior = prior

    def gradient(
        self, z: Tensor, t: Tensor, eps: Tensor, prompts: List[str], step: int, generator: Optional[torch.Generator]
    ) -> Tuple[Tensor, Dict[str, float]]:
        """(w(t)·δ, diagnostics) for these t and ε."""
        raise NotImplementedError

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
        t, eps = draw_t_and_eps(z, self.config, self.prior.num_train_timesteps, generator)
        grad, terms = self.gradient(z, t, eps, as_prompts(prompt, z.shape[0]), step, generator)
        return finish(z, grad, t, terms, grad_scale=self.config.grad_scale, name=self.name)


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


# ---- gradient injection ------------------------------------------------------------------------
class _InjectGradient(torch.autograd.Function):
    """Forward: the given value. Backward: the given gradient (times the incoming scale)."""

    @staticmethod
    def forward(ctx, z: Tensor, grad: Tensor, value: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(grad)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None, None


def inject_gradient(z: Tensor, grad: Tensor, value: Union[Tensor, float]) -> Tensor:
    """A scalar whose value is `value` and whose gradient w.r.t. `z` is exactly `grad`.

    Replaces the reference code's surrogates (`Σ z·δ`, threestudio's `½‖z − (z − δ).detach()‖²`): those give
    δ only up to rounding and a value that means nothing (or NaN when z has NaN); this gives both exactly.
    """
    value = torch.as_tensor(value, dtype=torch.float32, device=z.device).reshape(())
    return _InjectGradient.apply(z, grad.detach().to(z.dtype), value)


def finish(
    z: Tensor,
    grad: Tensor,
    t: Tensor,
    terms: Optional[Dict[str, float]] = None,
    *,
    grad_scale: float = 1.0,
    value: Optional[Tensor] = None,
    name: str = "loss",
) -> LossOutput:
    """The step's `LossOutput` from the method's gradient g = w(t)·δ: inject grad_scale·g, or skip on NaN/Inf.

    The value (progress bars) is mean(g²) unless given; `terms[name]` repeats it, `terms["t"]` is the mean t.
    """
    grad = grad.detach()
    if not bool(torch.isfinite(grad).all()):
        return skipped_output(z, t, terms)
    value = (grad.float() ** 2).mean() if value is None else value.detach().float()
    terms = {**(terms or {}), name: float(value), "t": float(t.float().mean())}
    applied = grad * grad_scale
    return LossOutput(loss=inject_gradient(z, applied, value), grad=applied, t=t, terms=terms)


def skipped_output(z: Tensor, t: Tensor, terms: Optional[Dict[str, float]] = None) -> LossOutput:
    """The NaN/Inf guard's answer: a zero loss with a zero gradient, flagged `skipped` for the caller to count."""
    zero = torch.zeros_like(z, dtype=torch.float32).detach()
    loss = inject_gradient(z, zero, 0.0)
    return LossOutput(loss=loss, grad=zero, t=t, terms={**(terms or {}), "skipped": 1.0}, skipped=True)


# ---- composition -------------------------------------------------------------------------------
def weighted_sum(parts: Sequence[Tuple[float, str, LossOutput]]) -> LossOutput:
    """Σ λ_i·out_i for (λ_i, name_i, out_i): losses, gradients and values add; one skipped part skips the step.

    Terms: each part's value under its name ("dds", "patchnce"), its other diagnostics prefixed with the
    name ("patchnce/…"), and the first part's mean t as "t".
    """
    first = parts[0][2]
    terms: Dict[str, float] = {}
    for weight, name, out in parts:
        terms.update({f"{name}/{k}": v for k, v in out.terms.items() if k not in (name, "t")})
    if any(out.skipped for _, _, out in parts):
        zero = torch.zeros_like(first.grad)
        terms["skipped"] = 1.0
        loss = sum(0.0 * out.loss for _, _, out in parts)  # every part's (zero) gradient, value 0
        return LossOutput(loss=loss, grad=zero, t=first.t, terms=terms, skipped=True)
    loss = sum(weight * out.loss for weight, _, out in parts)
    grad = sum(weight * out.grad for weight, _, out in parts)
    terms.update({name: float(out.loss.detach()) for _, name, out in parts})
    terms["t"] = float(first.t.float().mean())
    return LossOutput(loss=loss, grad=grad, t=first.t, terms=terms)


class WeightedSum:
    """Σ λ_i·L_i of independent losses, each called with the same arguments (and the same generator, in order).

    E.g. `WeightedSum([(1.0, "sds", sds), (0.5, "nfsd", nfsd)])`. CDS shares one DDS pass with its PatchNCE
    term, so it combines its two outputs with `weighted_sum` directly (see `cds.py`).
    """

    def __init__(self, parts: Sequence[Tuple[float, str, DistillationLoss]], config: Optional[DistillationConfig] = None):
        if not parts:
            raise ValueError("WeightedSum needs at least one loss")
        self.parts = list(parts)
        self.config = config or self.parts[0][2].config

    def __call__(self, z: Tensor, **kwargs) -> LossOutput:
        return weighted_sum([(weight, name, loss(z, **kwargs)) for weight, name, loss in self.parts])
