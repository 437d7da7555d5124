"""The `auto` edit region: where the prior's cross-attention puts the words the edit changes.

For a source latent ẑ [B, C, h, w], source prompt y_src and target prompt y_tgt (per row):

    D_src, D_tgt = the tokens the edit changes: the differing words and the words after them (causal
                   text encoders carry a change forward; `words.differing_tokens` says why and measures it)
    ẑ_t = √ᾱ_t ẑ + √(1 − ᾱ_t) ε,   t ∈ `AUTO_TIMESTEPS`, ε ~ N(0, I) from `seed`      (the SOURCE latent, noised)
    A_l(y) = mean_heads softmax(Q_l K_lᵀ/√d)  of every cross-attention layer l (`attn2`) of ONE UNet call on
             [ẑ_t with y_src, ẑ_t with y_tgt], reshaped to [L, h_l, w_l] and resized (bilinear) to h × w
    M = mean_{t, l} ( Σ_{i∈D_src} A_l(y_src)[i] + Σ_{j∈D_tgt} A_l(y_tgt)[j] ) / (|D_src| + |D_tgt|)
    M̃ = (M − min M) / (max M − min M)                                                   (per image, in [0, 1])
    m = dilate_1(M̃ ≥ τ),  τ = `AUTO_THRESHOLD` = 0.6 (of max M̃ = 1: a fixed fraction of the maximum)

i.e. the source rows show where the image holds what is being replaced ("red cube …"), the target rows where
the prior would put its replacement ("blue cube …") in the same image; both are averaged over heads, layers
(all resolutions) and a few mid timesteps. τ was chosen against the object masks of 32 held-out toy-world
renders: the largest fraction whose dilated mask still covers every object cell (τ = 0.6: recall 1.00, the
region ≈ 2× the object's area; τ = 0.7 misses up to 10 % of an object). Otsu's threshold fell inside the
flat background mode (recall < 0.5) and was not kept. Dilation by one latent cell (a 3×3 max) brings in the
object's edge, which the VAE spreads over the neighbouring cell.
Deterministic in `seed`. Cost: len(AUTO_TIMESTEPS) UNet calls of 2B rows, once per image (or per NeRF view).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from nerfedit.losses.patchnce import feature_map
from nerfedit.region.words import DifferingTokens, differing_tokens_per_row

AUTO_TIMESTEPS: Tuple[int, ...] = (300, 500, 700)
"""Timesteps (of 1000) the maps are averaged over: mid-noise, where layout is decided but not yet the details."""
AUTO_THRESHOLD = 0.6
"""τ: a latent cell is in the region when its normalised map M̃ ≥ τ (before the one-cell dilation)."""
AUTO_DILATION = 1
"""Latent cells the thresholded map is grown by in every direction."""


def layer_maps(probs: Tensor, latent_hw: Tuple[int, int]) -> Tensor:
    """A layer's probabilities [B, N, L] → [B, L, h, w]: its own grid (the latent's halved until it holds N cells),
    resized bilinearly to the latent's."""
    grid = feature_map(probs, latent_hw)  # the same token layout as CDS's self-attention features
    if tuple(grid.shape[-2:]) == tuple(latent_hw):
        return grid
    return F.interpolate(grid, size=latent_hw, mode="bilinear", align_corners=False)


def token_map(maps: Dict[str, Tensor], rows: Sequence[DifferingTokens], latent_hw: Tuple[int, int]) -> Tensor:
    """Σ over differing tokens of the layer-averaged maps, over both prompts' rows → M summed (not yet averaged over t)
    [B, h, w]. `maps` come from one UNet call on [source rows; target rows] (2B rows)."""
    batch = len(rows)
    total = torch.zeros(batch, *latent_hw)
    for probs in maps.values():
        grid = layer_maps(probs.float().cpu(), latent_hw)  # [2B, L, h, w]
        for b, tokens in enumerate(rows):
            picked = [grid[b, list(tokens.source)]] if tokens.source else []
            picked += [grid[batch + b, list(tokens.target)]] if tokens.target else []
            total[b] += torch.cat(picked).sum(0) / (len(tokens.source) + len(tokens.target))
    return total / max(1, len(maps))


def normalise(maps: Tensor) -> Tensor:
    """Each map [B, h, w] rescaled to [0, 1]: (M − min) / (max − min) (a constant map becomes all ones)."""
    flat = maps.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = (high - low).clamp_min(1e-12)
    out = (maps - low.view(-1, 1, 1)) / span.view(-1, 1, 1)
    return torch.where((high - low).view(-1, 1, 1) > 1e-12, out, torch.ones_like(out))


def dilate(mask: Tensor, cells: int) -> Tensor:
    """Boolean masks [B, h, w] grown by `cells` in every direction (a (2·cells + 1)² max)."""
    if cells <= 0:
        return mask
    return F.max_pool2d(mask[:, None].float(), 2 * cells + 1, stride=1, padding=cells)[:, 0] > 0


@torch.no_grad()
def attention_map(
    prior, z_source: Tensor, sources: Sequence[str], targets: Sequence[str], seed: int = 0, timesteps: Sequence[int] = AUTO_TIMESTEPS
) -> Tensor:
    """M̃ [B, h, w] in [0, 1] (module docstring) for source latents `z_source` [B, C, h, w] and one prompt pair per row."""
    rows = differing_tokens_per_row(prior, sources, targets)
    batch, latent_hw = z_source.shape[0], tuple(z_source.shape[-2:])
    generator = torch.Generator(device="cpu").manual_seed(seed)
    embeddings = prior.encode_text(list(sources) + list(targets))
    total = torch.zeros(batch, *latent_hw)
    for step in timesteps:
        t = torch.full((batch,), min(int(step), prior.num_train_timesteps - 1), dtype=torch.long, device=prior.device)
        eps = torch.randn(z_source.shape, generator=generator).to(prior.device)
        z_t = prior.add_noise(z_source.to(prior.device).float(), eps, t)
        with prior.capture_cross_attention() as store:
            prior.predict_eps(torch.cat([z_t, z_t]), torch.cat([t, t]), embeddings)
            total += token_map(store.maps, rows, latent_hw)
    return normalise(total / len(timesteps))


def auto_region(
    prior,
    z_source: Tensor,
    sources: Sequence[str],
    targets: Sequence[str],
    seed: int = 0,
    threshold: float = AUTO_THRESHOLD,
    dilation: int = AUTO_DILATION,
) -> Tensor:
    """The `auto` edit region m [B, 1, h, w] ∈ {0, 1} (float, on the prior's device): dilate(M̃ ≥ τ) (module docstring)."""
    return region_from_map(attention_map(prior, z_source, sources, targets, seed), threshold, dilation).to(prior.device)


def region_from_map(attention: Tensor, threshold: float = AUTO_THRESHOLD, dilation: int = AUTO_DILATION) -> Tensor:
    """m = dilate(M̃ ≥ τ) [B, 1, h, w] (float) from the maps M̃ [B, h, w]."""
    return dilate(attention >= threshold, dilation)[:, None].float()
