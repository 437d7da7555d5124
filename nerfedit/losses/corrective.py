"""The learned manifold corrective b̂ψ(z, t) of LMC-SDS (Alldieck, Kolotouros, Sminchisescu, ECCV 2024).

The prior's one-step denoised estimate ẑ_t = z_φ(z_t, t) is a blurred, timestep-dependent version of z
(Eq. 8: z_φ = b ∘ p). b̂ψ learns that bias b from triplets (z, ẑ_t, t) of natural images z, so that LMC-SDS
can compare ẑ_t with b̂ψ(z, t) instead of z (Eq. 9). It is trained with the normalised loss

    L_k = ‖ẑ_t − (σ(ẑ_t)/σ(b̂) · (b̂ − μ(b̂)) + μ(b̂))‖²,   b̂ = b̂ψ(z, t)                    Eq. 10

(σ, μ: the standard deviation and mean of one sample), which makes b̂ψ agnostic to global image statistics;
the same normalisation is applied when b̂ψ is used (`match_std`, "absorbed into b̂").

Network (paper Sec. 4 and supplement): a standard U-Net, four encoder levels of two Conv/ReLU blocks and a
MaxPool, 32 filters doubling per level (halving in the decoder), skip connections, a final Conv with tanh; t
enters as a 10-dim frequency encoding concatenated to every pixel. We add z to the final Conv's output instead
of the tanh (`CorrectiveConfig.residual`), so that b̂ψ starts as the identity. Training: t ~ U(0.02, 0.98), Adam, batch
128, lr 1e-4 decayed ×0.9 every 100k steps, L_k only. `CorrectiveConfig` scales the width and depth down for
tiny priors (a 16×16 latent has room for at most 4 poolings).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nerfedit.losses.base import predicted_z0, sample_noise, sample_timesteps
from nerfedit.priors.prior import DiffusionPrior

T_RANGE = (0.02, 0.98)
"""t ~ U(0.02, 0.98) for the training triplets (paper, Implementation Details)."""
LEARNING_RATE = 1e-4
BATCH_SIZE = 128
LR_DECAY = 0.9
LR_DECAY_EVERY = 100_000
"""Adam, batch 128, lr 1e-4 decayed by 0.9 every 100k steps (supplement, "Training b̂ψ")."""
STD_EPS = 1e-6
"""Keeps σ(b̂) away from zero in Eq. 10 (a constant b̂, e.g. at initialisation)."""
CORRECTIVE_SUBDIR = "corrective"
CORRECTIVE_FILE = "corrective.pt"
"""A prior's corrective ships at `<prior folder>/corrective/corrective.pt`."""


@dataclass
class CorrectiveConfig:
    """Architecture of b̂ψ (saved with its weights)."""

    channels: int = 4
    """Latent channels in and out."""
    base_filters: int = 32
    """Filters of the first level (paper: 32); doubled per level."""
    levels: int = 4
    """Encoder levels, each two Conv/ReLU and a MaxPool (paper: 4)."""
    time_frequencies: int = 5
    """t is encoded as sin/cos at this many octaves: 2 × 5 = the paper's 10 dimensions."""
    residual: bool = True
    """b̂ψ(z, t) = z + U-Net(z, t), the U-Net's last Conv zero at initialisation, so b̂ψ starts as the identity
    corrective and training only has to learn the bias b. The paper's b̂ψ is the U-Net's tanh output alone
    (residual=False), which must first relearn z itself: short CPU trainings of it stayed worse than the identity."""


def frequency_encoding(t: Tensor, frequencies: int) -> Tensor:
    """t ∈ [0, 1] [B] → [B, 2F]: sin(2^k π t), cos(2^k π t) for k = 0 … F−1 (NeRF-style positional encoding)."""
    angles = t.float()[:, None] * math.pi * 2.0 ** torch.arange(frequencies, device=t.device, dtype=torch.float32)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3×3 Conv/ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)
    )


class CorrectiveUNet(nn.Module):
    """b̂ψ(z, t): a small U-Net on the latent with t concatenated per pixel; z + its output (`residual`), or its
    output through tanh (the paper's)."""

    def __init__(self, config: CorrectiveConfig = CorrectiveConfig()):
        super().__init__()
        self.config = config
        widths = [config.base_filters * 2**i for i in range(config.levels + 1)]
        c_in = config.channels + 2 * config.time_frequencies
        self.down = nn.ModuleList(conv_block(a, b) for a, b in zip([c_in] + widths[:-2], widths[:-1]))
        self.bottleneck = conv_block(widths[-2], widths[-1])
        self.up_convs = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 3, padding=1) for i in reversed(range(config.levels)))
        self.up = nn.ModuleList(conv_block(2 * widths[i], widths[i]) for i in reversed(range(config.levels)))
        self.out = nn.Conv2d(widths[0], config.channels, 1)
        if config.residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        """z [B, C, h, w], t ∈ [0, 1] [B] (the timestep as a fraction of T) → b̂ψ(z, t) [B, C, h, w]."""
        code = frequency_encoding(t, self.config.time_frequencies)
        x = torch.cat([z, code[:, :, None, None].expand(-1, -1, *z.shape[-2:])], dim=1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, ceil_mode=True)
        x = self.bottleneck(x)
        for up_conv, block, skip in zip(self.up_convs, self.up, reversed(skips)):
            x = F.relu(up_conv(F.interpolate(x, size=skip.shape[-2:], mode="nearest")))
            x = block(torch.cat([x, skip], dim=1))
        return z + self.out(x) if self.config.residual else torch.tanh(self.out(x))


def _stats(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-sample mean and standard deviation over (C, h, w), broadcastable to x."""
    flat = x.flatten(1)
    return flat.mean(1).view(-1, 1, 1, 1), flat.std(1, unbiased=False).view(-1, 1, 1, 1)


def match_std(b_hat: Tensor, z_hat: Tensor) -> Tensor:
    """σ(ẑ_t)/σ(b̂)·(b̂ − μ(b̂)) + μ(b̂): b̂ with ẑ_t's spread and its own mean (the bracket of Eq. 10)."""
    mu_b, sigma_b = _stats(b_hat)
    _, sigma_z = _stats(z_hat)
    return sigma_z / (sigma_b + STD_EPS) * (b_hat - mu_b) + mu_b


def normalised_loss(b_hat: Tensor, z_hat: Tensor) -> Tensor:
    """L_k (Eq. 10), averaged over elements and samples (the paper's ‖·‖² up to a constant factor)."""
    return ((z_hat - match_std(b_hat, z_hat)) ** 2).mean()


@torch.no_grad()
def denoised_triplets(
    prior: DiffusionPrior,
    z: Tensor,
    generator: Optional[torch.Generator] = None,
    t_range: Tuple[float, float] = T_RANGE,
    chunk: int = 32,
) -> Tuple[Tensor, Tensor, Tensor]:
    """(z, ẑ_t, t/T) with t ~ U(t_range)·T, ε ~ N(0, I), ẑ_t = (z_t − √(1−ᾱ)ε̂(z_t; ∅, t))/√ᾱ (unconditional, Eq. 7).

    The UNet runs in chunks of `chunk` rows (batch 128 of SD latents would not fit a small GPU in one call).
    """
    steps = prior.num_train_timesteps
    t = sample_timesteps(z.shape[0], round(t_range[0] * steps), round(t_range[1] * steps), steps, generator, z.device)
    eps = sample_noise(z, generator)
    z_t = prior.add_noise(z, eps, t)
    eps_hat = torch.cat(
        [
            prior.predict_eps(z_t[i : i + chunk], t[i : i + chunk], prior.encode_text([""] * len(t[i : i + chunk])))
            for i in range(0, z.shape[0], chunk)
        ]
    )
    z_hat = predicted_z0(z_t, eps_hat, prior.alpha_bar(t))
    return z, z_hat, t.float() / steps


def identity_corrective(z: Tensor, t: Tensor) -> Tensor:
    """b̂(z, t) = z: no corrective (LMC-SDS reduces to comparing ẑ_t with z, i.e. L_proj without its weight)."""
    return z


def train_step(model: CorrectiveUNet, optimizer: torch.optim.Optimizer, z: Tensor, z_hat: Tensor, t: Tensor) -> float:
    """One Adam step on L_k; returns L_k before the step."""
    loss = normalised_loss(model(z, t), z_hat)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


# ---- files ------------------------------------------------------------------------------------
def save_corrective(path: Union[str, Path], model: CorrectiveUNet, **meta) -> None:
    """Architecture + weights (+ `meta`, e.g. the prior's name and the step) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": asdict(model.config), "state_dict": model.state_dict(), "meta": meta}, path)


def load_corrective(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> CorrectiveUNet:
    """A corrective written by `save_corrective` (or `scripts/train_corrective.py`), in eval mode, frozen."""
    state: Dict = torch.load(Path(path), map_location=device, weights_only=False)
    model = CorrectiveUNet(CorrectiveConfig(**{"residual": False, **state["config"]}))  # files from before `residual`
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval().requires_grad_(False)


def default_corrective_path(prior: DiffusionPrior) -> Optional[Path]:
    """`<prior folder>/corrective/corrective.pt` when the prior was loaded from a folder (or `toy`), else None."""
    from nerfedit.priors.loader import resolve_prior

    try:
        folder = Path(resolve_prior(prior.name))
    except Exception:
        return None
    return folder / CORRECTIVE_SUBDIR / CORRECTIVE_FILE if folder.is_dir() else None
