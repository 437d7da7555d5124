"""The official DDS and CDS steps' arrangement of UNet calls, as timing baselines for our losses (bench_losses.py).

What is reproduced is the work per step, not new maths: the same prior, noise, timestep and features as our losses.

    official_dds_step   DDS notebook (google/prompt-to-prompt, DDS_zeroshot.ipynb, `get_dds_loss`): one no-grad
                        UNet call of 4B rows [∅ on ẑ_t, ∅ on z_t, y_src on ẑ_t, y_tgt on z_t], CFG per branch,
                        surrogate 2000·Σ(z·δ)/(h·w) back-propagated to z. Ours makes the same single call (dds.py):
                        expect a time ratio of ≈ 1.
    official_cds_step   CDS code (HyelinNAM/ContrastiveDenoisingScore, pipeline_cds.py): the DDS call above, which also
                        stores the source's conditional decoder self-attention features; then a SECOND, differentiable
                        UNet call over both CFG rows of the target ([∅, y_tgt] on z_t) whose conditional row gives the
                        target features; PatchNCE·w_cut (3) added to the DDS surrogate, back-propagated through the
                        UNet. Ours runs that second call on the conditional row only (cds.py).

Neither re-encodes the source image per step: both notebooks encode it once before the loop, as we do.
"""

from __future__ import annotations

from typing import Callable

import torch

from nerfedit.losses.base import DistillationConfig, classifier_free_guidance, draw_t_and_eps
from nerfedit.losses.dds import dds_batch
from nerfedit.losses.patchnce import patchnce_layers

OFFICIAL_DDS_SCALE = 2000.0
"""The notebook's surrogate: 2000 · Σ(z·δ) / (h·w)."""
OFFICIAL_W_CUT = 3.0
"""The CDS code's PatchNCE weight (w_cut)."""
SOURCE_PROMPT, TARGET_PROMPT = "a red cube", "a blue cube"
"""The prompts of a timed step (bench_losses.py's)."""


def _dds_pass(prior, z, z_source, t, eps, source_prompt: str, target_prompt: str, scale: float):
    """The one no-grad call of 4B rows and the per-branch CFG: δ = ε̂_s(z_t; y_tgt) − ε̂_s(ẑ_t; y_src)."""
    batch = z.shape[0]
    latents, timesteps, prompts = dds_batch(prior.add_noise(z_source, eps, t), prior.add_noise(z.detach(), eps, t), t,
                                            [source_prompt] * batch, [target_prompt] * batch)  # fmt: skip
    uncond_src, uncond_tgt, cond_src, cond_tgt = prior.predict_eps(latents, timesteps, prior.encode_text(prompts)).chunk(4)
    return classifier_free_guidance(uncond_tgt, cond_tgt, scale) - classifier_free_guidance(uncond_src, cond_src, scale)


def _surrogate(z: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """2000 · Σ(z·δ) / (h·w): the notebook's loss, whose gradient w.r.t. z is δ scaled."""
    return OFFICIAL_DDS_SCALE * (z * delta).sum() / (z.shape[-2] * z.shape[-1])


def official_dds_loss(prior, z: torch.Tensor, z_source: torch.Tensor, generator: torch.Generator, config: DistillationConfig,
                      source_prompt: str = SOURCE_PROMPT, target_prompt: str = TARGET_PROMPT) -> torch.Tensor:
    """The official DDS step's loss on `z` (module docstring); t and ε drawn from `generator` as our losses draw them."""
    t, eps = draw_t_and_eps(z, config, prior.num_train_timesteps, generator)
    with torch.no_grad():
        delta = _dds_pass(prior, z, z_source, t, eps, source_prompt, target_prompt, config.guidance_scale)
    return _surrogate(z, delta)


def official_cds_loss(prior, z: torch.Tensor, z_source: torch.Tensor, generator: torch.Generator, config: DistillationConfig,
                      source_prompt: str = SOURCE_PROMPT, target_prompt: str = TARGET_PROMPT) -> torch.Tensor:
    """The official CDS step's loss (module docstring): the DDS call with the source features, then the target's two
    CFG rows with grad; PatchNCE on the conditional rows, its patches drawn from `generator` after t and ε."""
    batch = z.shape[0]
    t, eps = draw_t_and_eps(z, config, prior.num_train_timesteps, generator)
    with torch.no_grad(), prior.capture_self_attention() as store:
        delta = _dds_pass(prior, z, z_source, t, eps, source_prompt, target_prompt, config.guidance_scale)
        source = {name: f.chunk(4)[2].detach() for name, f in store.features.items()}
    with prior.capture_self_attention() as store:
        z_t = prior.add_noise(z, eps, t)
        prior.predict_eps(torch.cat([z_t] * 2), t.repeat(2), prior.encode_text([""] * batch + [target_prompt] * batch))
        target = {name: f.chunk(2)[1] for name, f in store.features.items()}
        cut = patchnce_layers(source, target, tuple(z.shape[-2:]), config, generator)
    return _surrogate(z, delta) + OFFICIAL_W_CUT * cut


OFFICIAL_LOSSES = {"dds": official_dds_loss, "cds": official_cds_loss}
"""Loss name → its official step's loss."""


def official_step(name: str, prior, z: torch.Tensor, z_source: torch.Tensor, generator: torch.Generator,
                  config: DistillationConfig) -> Callable[[int], None]:
    """One official step of `name` (dds | cds) on leaf `z` with back-propagation, as a callable of the step index."""

    def step(i: int) -> None:
        OFFICIAL_LOSSES[name](prior, z, z_source, generator, config).backward()
        z.grad = None

    return step
