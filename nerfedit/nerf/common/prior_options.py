"""What both ns-train methods (nerfedit, nerfedit-generate) share about their prior and their turntable video."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F

PriorDtype = Literal["auto", "fp32", "fp16", "bf16"]


@dataclass
class PriorOptions:
    """Pipeline-config fields: which diffusion prior, where it runs, and the video written at the end."""

    prior: str = "toy"
    """Diffusion prior: toy (embedded, offline) | sd14 | sd15 | sd21b | a hub id | a local diffusers folder."""
    prior_device: Optional[str] = None
    """Device of the prior, e.g. cuda:1 to keep it off the field's GPU. Default: the pipeline's device."""
    prior_dtype: PriorDtype = "auto"
    """Dtype of the prior's networks: auto = fp16 on CUDA, fp32 on CPU."""
    turntable_frames: int = 48
    """Frames of the turntable video (turntable.mp4 in the run folder) written at the end (0: none)."""
    turntable_fps: int = 12
    """Frame rate of the turntable video."""


def load_configured_prior(options: PriorOptions, pipeline_device: str):
    """The prior `options` name, on `prior_device` (default: the pipeline's device)."""
    from nerfedit.priors import load_prior

    dtype = None if options.prior_dtype == "auto" else options.prior_dtype
    return load_prior(options.prior, options.prior_device or pipeline_device, dtype, flag="--pipeline.prior")


def at_prior_resolution(prior, images: torch.Tensor) -> torch.Tensor:
    """Renders [B, 3, H, W] resized (bilinear, differentiable) to the prior's square resolution."""
    if images.shape[-2:] != (prior.resolution, prior.resolution):
        images = F.interpolate(images, size=(prior.resolution, prior.resolution), mode="bilinear", align_corners=False)
    return images


def encode_renders(prior, images: torch.Tensor) -> torch.Tensor:
    """Renders [B, 3, H, W] in [0, 1] → the prior's latents (differentiable): resized (bilinear) to the prior's
    resolution, encoded in the prior's own precision outside any autocast."""
    with torch.autocast(device_type=prior.device.type, enabled=False):
        return prior.encode_images(at_prior_resolution(prior, images).to(prior.device))


@torch.no_grad()
def decoded_step_target(prior, images: torch.Tensor, latents: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """x* = x + D(z − g) − D(z): the renders `images` (at the prior's resolution) plus the change a latent step
    along the loss's gradient g decodes to (the VAE's reconstruction error of x cancels). Fitting x to x* carries
    g into pixels as a latent edit would (`nerfedit.nerf.edit.view_edits`), not as J_Eᵀ·g (back-propagation
    through the encoder), whose pixel colours the toy prior's VAE bends (issue 17's route table)."""
    z = latents.detach().to(prior.device)
    change = prior.decode_latents(z - grad.to(z)) - prior.decode_latents(z)
    return images.detach() + change.to(images)

