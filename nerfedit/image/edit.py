"""Image editing and text-to-image by optimising a latent against a score-distillation loss.

Framework-agnostic loops on the loss core (`nerfedit.losses`): nothing here imports nerfstudio, so
the NeRF plugin can reuse `edit_latents` for its viewer's 2D preview.

    edit_latents(loss, z_source, target=…, source=…)  → (z, history)       the loop itself
    edit_image(prior, images, target=…, source=…)     → (images, history)  encode, loop, decode
    generate_image(prior, prompt)                     → (images, history)  loop from a grey (or random) latent

Settings, their paper defaults (DDS's SGD for editing, AdamW for generation), the optimiser, its schedule and
the history are in `optim`.

Reproducibility: every random draw of a run (the loss's t and ε, PatchNCE's patch locations) comes
from a generator seeded with `EditConfig.seed`, and the global RNG is forked and seeded the same way
for anything that ignores the generator, so a fixed seed gives bit-identical results on the CPU.
"""

from __future__ import annotations

import time
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from nerfedit.image.optim import (  # noqa: F401  (DDS_SGD_LR: callers import the settings from here too)
    DDS_SGD_LR,
    GREY,
    EditConfig,
    EditHistory,
    InitName,
    StepCallback,
    generate_config,
    lr_factor,
    make_optimizer,
    optimiser_step,
)
from nerfedit.losses.base import DistillationConfig, DistillationLoss, Prompt


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
    region: Optional[Tensor] = None,
) -> Tuple[Tensor, EditHistory]:
    """Optimise latents `z_init` [B, C, h, w] against `loss` for `config.steps` steps.

    Each step: one loss call (`prompt`, `source_prompt`, `z_source` passed through; `region` [B, 1, h, w], the
    edit region, multiplies its gradient — `nerfedit.region`), backward, one optimiser step. A step whose gradient has NaN/Inf (`out.skipped`) applies nothing and is counted.
    Returns the final latents (detached, float32) and the history.
    """
    config = (config or EditConfig()).validate()
    z = z_init.detach().float().clone().requires_grad_(True)
    if z_source is not None:
        z_source = z_source.detach().float()
    optimizer = make_optimizer([z], config)
    history = EditHistory(region=region)
    restrict = {} if region is None else {"region": region}  # none: the loss is called exactly as before
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
            out = loss(z, prompt=prompt, source_prompt=source_prompt, z_source=z_source, step=step, generator=generator, **restrict)
            t_mean = float(out.t.float().mean()) if out.t is not None and out.t.numel() else float("nan")
            applied = optimiser_step(optimizer, z, out, step, config, history.skips)
            history.loss.append(float(out.loss.detach()) if applied else float("nan"))
            history.grad_norm.append(out.grad_norm if applied else float("nan"))
            history.t.append(t_mean)
            history.lr.append(optimizer.param_groups[0]["lr"])
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
    region: Optional[Tensor] = None,
) -> Tuple[Tensor, EditHistory]:
    """Edit latents towards `target`: start at `z_source` (DDS) and optimise; `source` describes the input.

    `z_source` [B, C, h, w] stays the loss's reference (DDS/CDS compare against it); `region` [B, 1, h, w]
    (1 = editable) restricts the gradient. Returns the edited latents and the history.
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
        region=region,
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
    region: Union[None, str, Tensor] = None,
) -> Tuple[Tensor, EditHistory]:
    """Edit images [B, 3, R, R] in [0, 1] (R = `prior.resolution`) from `source` towards `target`.

    `loss` is a built loss, a `DistillationConfig`, a loss name, or None for DDS with its paper's
    defaults. `region`: None (edit everywhere), "auto" (from the prior's cross-attention on the words that
    differ, seeded with `config.seed`), or pixel masks [B, R, R] (True = editable); the latent region used is
    `history.region`. Returns the edited images [B, 3, R, R] in [0, 1] on the CPU and the history (with
    decoded snapshots when `config.save_progress_every` > 0).
    """
    loss_fn = _build(loss, prior)
    with torch.no_grad():
        z_source = prior.encode_images(images.to(prior.device))
    latent_region, attention = edit_region(prior, region, z_source, target, source, (config or EditConfig()).seed)
    z, history = edit_latents(
        loss_fn, z_source, target=target, source=source, config=config, progress=progress, callback=callback, region=latent_region
    )
    with torch.no_grad():
        edited = prior.decode_latents(z).cpu()
    history.pixel_region = pixel_region(region, attention, latent_region, images, edited)
    _decode_snapshots(prior, history)
    return edited, history


def edit_region(prior, region: Union[None, str, Tensor], z_source: Tensor, target: Prompt, source: Optional[Prompt], seed: int):
    """(the latent region [B, 1, h, w], the auto region's attention map M̃ [B, h, w] or None) of `edit_image`'s
    `region` argument (None: (None, None))."""
    if region is None or (isinstance(region, str) and region == "none"):
        return None, None
    batch, latent_hw = z_source.shape[0], z_source.shape[-2:]
    if isinstance(region, str):
        if region != "auto":
            raise ValueError(f"region must be None, 'auto' or pixel masks, not '{region}'")
        from nerfedit.losses.base import as_prompts
        from nerfedit.region.auto import attention_map, region_from_map

        attention = attention_map(prior, z_source, as_prompts(source, batch), as_prompts(target, batch), seed)
        return region_from_map(attention).to(prior.device), attention
    from nerfedit.region.latent import pixel_to_latent

    return pixel_to_latent(_pixel_masks(region, batch), latent_hw).to(z_source.device), None


def pixel_region(
    region: Union[None, str, Tensor], attention: Optional[Tensor], latent_region: Optional[Tensor], images: Tensor, edited: Tensor
) -> Optional[Tensor]:
    """The pixel region [B, R, R] (bool, CPU) outside which the input's own pixels are kept: the user's masks, or
    the auto region cut along the source's and the edit's edges (`nerfedit.region.pixels`); None without a region."""
    if attention is not None:
        from nerfedit.region.pixels import auto_pixel_region

        return auto_pixel_region(images, edited, attention, latent_region)
    if isinstance(region, Tensor):
        return _pixel_masks(region, len(images)).bool().cpu()
    return None


def _pixel_masks(region: Tensor, batch: int) -> Tensor:
    masks = region if region.dim() == 3 else region.reshape(-1, *region.shape[-2:])
    return masks.expand(batch, *masks.shape[-2:])


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

