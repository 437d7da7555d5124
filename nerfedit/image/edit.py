"""Image editing and text-to-image by optimising a latent against a score-distillation loss.

Framework-agnostic loops on the loss core (`nerfedit.losses`): nothing here imports nerfstudio, so
the NeRF plugin can reuse `edit_latents` for its viewer's 2D preview.

    edit_latents(loss, z_source, target=…, source=…)  → (z, history)       the loop itself
    edit_image(prior, images, target=…, source=…)     → (images, history)  encode, loop, decode
    generate_image(prior, prompt)                     → (images, history)  loop from a grey (or random) latent

Defaults follow the papers:
- Editing (DDS, Hertz et al. 2023, supplementary "Zero-shot DDS optimization"): initialise at the
  source latent, 200 iterations of vanilla SGD with a decay of 0.9 every 20 iterations, at the learning
  rate of the official notebook (0.1 with its ×2000/4096 gradient, `DDS_SGD_LR`). The supplement also compares Adam and finds SGD cleaner (Adam's per-element
  normalisation spreads the update over pixels the edit should not touch), so Adam is an option only.
- Generation (SDS-Bridge, McAllister et al. 2024, official 2D code; LMC-SDS, Alldieck et al. 2024):
  1000 steps of AdamW with learning rate 0.01 from a latent that encodes a grey image
  (`init="randn"`: a unit Gaussian latent, as SDS-Bridge's code).

Reproducibility: every random draw of a run (the loss's t and ε, PatchNCE's patch locations) comes
from a generator seeded with `EditConfig.seed`, and the global RNG is forked and seeded the same way
for anything that ignores the generator, so a fixed seed gives bit-identical results on the CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from nerfedit.losses.base import DistillationConfig, DistillationLoss, Prompt
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


def lr_factor(step: int, config: EditConfig) -> float:
    """Multiplier of the base learning rate at `step` (0-based)."""
    if config.schedule == "step":
        return config.lr_decay ** (step // max(1, config.lr_decay_every))
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(1, config.steps)))
    return 1.0


def _fork_rng(device: torch.device):
    devices = [device] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def optimize_latents(
    loss: DistillationLoss,
    z_init: Tensor,
    *,
    prompt: Prompt,
    source_prompt: Optional[Prompt] = None,
    z_source: Optional[Tensor] = None,
    config: Optional[EditConfig] = None,
    progress: bool = True,
    desc: str = "optimising",
    callback: Optional[StepCallback] = None,
) -> Tuple[Tensor, EditHistory]:
    """Optimise latents `z_init` [B, C, h, w] against `loss` for `config.steps` steps.

    Each step: one loss call (`prompt`, `source_prompt`, `z_source` passed through), backward, one
    optimiser step. A step whose gradient has NaN/Inf (`out.skipped`) applies nothing and is counted.
    Returns the final latents (detached, float32) and the history.
    """
    config = (config or EditConfig()).validate()
    z = z_init.detach().float().clone().requires_grad_(True)
    if z_source is not None:
        z_source = z_source.detach().float()
    optimizer = make_optimizer([z], config)
    base_lr = config.resolved_lr()
    history = EditHistory()
    keep_every = config.save_progress_every
    if keep_every:
        history.snapshots.append((0, z.detach().cpu().clone()))

    from tqdm.auto import tqdm

    start = time.perf_counter()
    with _fork_rng(z.device):
        torch.manual_seed(config.seed)
        generator = torch.Generator(device=z.device).manual_seed(config.seed)
        bar = tqdm(range(config.steps), desc=desc, disable=not progress, dynamic_ncols=True, leave=False)
        for step in bar:
            lr = base_lr * lr_factor(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            out = loss(z, prompt=prompt, source_prompt=source_prompt, z_source=z_source, step=step, generator=generator)
            t_mean = float(out.t.float().mean()) if out.t is not None and out.t.numel() else float("nan")
            applied = not history.skips.record(step, out)
            if applied:
                out.loss.backward()
                applied = z.grad is not None and bool(torch.isfinite(z.grad).all())  # never apply a corrupt step
                if not applied:
                    history.skips.steps.append(step)
            if applied:
                optimizer.step()
            history.loss.append(float(out.loss.detach()) if applied else float("nan"))
            history.grad_norm.append(out.grad_norm if applied else float("nan"))
            history.t.append(t_mean)
            history.lr.append(lr)
            history.terms.append(dict(out.terms))
            done = step + 1
            if keep_every and (done % keep_every == 0 or done == config.steps):
                history.snapshots.append((done, z.detach().cpu().clone()))
            if progress:
                postfix = {"loss": f"{history.loss[-1]:.4g}", "t": f"{t_mean:.0f}"}
                if history.skipped:
                    postfix["skipped"] = history.skipped
                bar.set_postfix(postfix, refresh=False)
            if callback is not None and callback(step, z.detach(), out):
                if keep_every and history.snapshots[-1][0] != done:
                    history.snapshots.append((done, z.detach().cpu().clone()))
                break
        bar.close()
    history.seconds = time.perf_counter() - start
    return z.detach(), history


def edit_latents(
    loss: DistillationLoss,
    z_source: Tensor,
    *,
    target: Prompt,
    source: Optional[Prompt] = None,
    config: Optional[EditConfig] = None,
    progress: bool = True,
    callback: Optional[StepCallback] = None,
) -> Tuple[Tensor, EditHistory]:
    """Edit latents towards `target`: start at `z_source` (DDS) and optimise; `source` describes the input.

    `z_source` [B, C, h, w] stays the loss's reference (DDS/CDS compare against it). Returns the
    edited latents and the history.
    """
    return optimize_latents(
        loss,
        z_source,
        prompt=target,
        source_prompt=source,
        z_source=z_source,
        config=config,
        progress=progress,
        desc="editing",
        callback=callback,
    )


def _build(loss: Union[DistillationLoss, DistillationConfig, str, None], prior) -> DistillationLoss:
    if loss is None:
        loss = DistillationConfig(name="dds")
    if isinstance(loss, str):
        loss = DistillationConfig(name=loss)  # type: ignore[arg-type]
    if isinstance(loss, DistillationConfig):
        from nerfedit.losses import build_loss

        return build_loss(loss, prior)
    return loss


@torch.no_grad()
def _decode_snapshots(prior, history: EditHistory) -> None:
    history.snapshot_images = [(step, prior.decode_latents(z.to(prior.device)).cpu()) for step, z in history.snapshots]


def edit_image(
    prior,
    images: Tensor,
    *,
    target: Prompt,
    source: Optional[Prompt] = None,
    loss: Union[DistillationLoss, DistillationConfig, str, None] = None,
    config: Optional[EditConfig] = None,
    progress: bool = True,
    callback: Optional[StepCallback] = None,
) -> Tuple[Tensor, EditHistory]:
    """Edit images [B, 3, R, R] in [0, 1] (R = `prior.resolution`) from `source` towards `target`.

    `loss` is a built loss, a `DistillationConfig`, a loss name, or None for DDS with its paper's
    defaults. Returns the edited images [B, 3, R, R] in [0, 1] on the CPU and the history (with
    decoded snapshots when `config.save_progress_every` > 0).
    """
    loss_fn = _build(loss, prior)
    with torch.no_grad():
        z_source = prior.encode_images(images.to(prior.device))
    z, history = edit_latents(loss_fn, z_source, target=target, source=source, config=config, progress=progress, callback=callback)
    with torch.no_grad():
        edited = prior.decode_latents(z).cpu()
    _decode_snapshots(prior, history)
    return edited, history


@torch.no_grad()
def initial_latents(prior, batch: int = 1, init: InitName = "grey", seed: int = 0) -> Tensor:
    """Starting latents for generation: the encoding of a grey image, or a unit Gaussian (seeded)."""
    size = prior.latent_resolution
    if init == "grey":
        grey = torch.full((batch, 3, prior.resolution, prior.resolution), GREY, device=prior.device)
        return prior.encode_images(grey).float()
    if init == "randn":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(batch, prior.latent_channels, size, size, generator=generator).to(prior.device)
    from nerfedit.errors import UserError

    raise UserError(f"unknown init '{init}': use grey or randn")


def generate_image(
    prior,
    prompt: Prompt,
    *,
    loss: Union[DistillationLoss, DistillationConfig, str, None] = None,
    config: Optional[EditConfig] = None,
    init: InitName = "grey",
    batch: int = 1,
    progress: bool = True,
    callback: Optional[StepCallback] = None,
) -> Tuple[Tensor, EditHistory]:
    """Text-to-image by optimisation: from a grey image's latent, follow `loss` (default SDS) towards `prompt`.

    Returns images [batch, 3, R, R] in [0, 1] on the CPU and the history.
    """
    loss_fn = _build(loss if loss is not None else "sds", prior)
    config = config or generate_config()
    z0 = initial_latents(prior, batch, init, seed=config.seed)
    z, history = optimize_latents(loss_fn, z0, prompt=prompt, config=config, progress=progress, desc="generating", callback=callback)
    with torch.no_grad():
        images = prior.decode_latents(z).cpu()
    _decode_snapshots(prior, history)
    return images, history


__all__ = [
    "EditConfig",
    "EditHistory",
    "edit_image",
    "edit_latents",
    "generate_config",
    "generate_image",
    "initial_latents",
    "lr_factor",
    "make_optimizer",
    "optimize_latents",
]
