"""What every stage of training the toy prior shares: the run's hyper-parameters, logging, checkpoints, schedules."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import numpy as np
import torch
from tqdm import tqdm


@dataclass
class Config:
    """Hyper-parameters of a run (the defaults are the shipped prior's)."""

    seed: int = 0
    num_images: int = 40_000
    chunk: int = 1000  # images per data chunk file (the unit of resumption of `data`)
    # VAE
    vae_steps: int = 2500
    vae_batch: int = 32
    vae_crop: int = 32  # side of random crops for the first (1 - vae_full_frac) of the steps
    vae_full_frac: float = 0.05  # last fraction of steps on full 64² images (the image borders as at inference)
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6  # SD/LDM's KL weight, relative to a per-pixel reconstruction loss
    vae_edge_weight: float = 0.5  # L1 on image finite differences: keeps edges and texture sharp
    # UNet + text encoder
    unet_steps: int = 3000
    unet_batch: int = 64
    unet_lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    cond_drop: float = 0.1  # caption dropout for classifier-free guidance (SD used 10%)
    min_snr_gamma: float = 5.0  # Min-SNR-γ loss weighting (Hang et al. 2023); 0 disables
    short_caption_prob: float = 0.0  # share of captions replaced by the object without its floor ("a red cube"); the shipped prior: 0
    init_from: str = ""  # a diffusers prior folder to fine-tune: its VAE (and scaling factor) kept, its text encoder and UNet trained on
    ema_decay: float = 0.997  # horizon ~300 steps, a tenth of the run (SD: 0.9999 over >100k steps)
    # LMC corrective b̂ψ (train_corrective.py) and judge (train_judge.py)
    corrective_images: int = 1000
    corrective_steps: int = 2000
    corrective_batch: int = 32
    corrective_lr: float = 1e-3  # the paper's 1e-4 is for ~750k steps
    corrective_filters: int = 16
    corrective_levels: int = 3
    judge_steps: int = 1100
    judge_images: int = 8192
    judge_eval: int = 2000
    # bookkeeping
    ckpt_every: int = 100
    val_images: int = 256


def smoke_config(seed: int) -> Config:
    """A few steps of each stage on a tiny data set (for CI)."""
    return Config(
        seed=seed,
        num_images=48,
        chunk=24,
        vae_steps=4,
        vae_batch=4,
        unet_steps=12,
        unet_batch=8,
        unet_lr=1e-3,
        warmup=0,
        ckpt_every=6,
        val_images=8,
        corrective_images=16,
        corrective_steps=3,
        corrective_batch=4,
        corrective_filters=4,
        corrective_levels=1,
        judge_steps=3,
        judge_images=64,
        judge_eval=32,
    )


def log(message: str) -> None:
    """One timestamped progress line (written above any progress bar)."""
    tqdm.write(f"[train_prior {time.strftime('%H:%M:%S')}] {message}")


def already_done(marker: Path, resume: bool, stage: str) -> bool:
    """With `resume`, whether `stage` finished before (its `marker` file exists); says so when it skips."""
    if resume and marker.exists():
        log(f"{stage}: done, skipping")
        return True
    return False


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: an interrupted run never leaves a broken checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def rng_state() -> Dict[str, object]:
    """The global torch RNG state, for a checkpoint."""
    return {"torch": torch.get_rng_state()}


def set_rng_state(state: Dict[str, object]) -> None:
    """Restore the global torch RNG state of a checkpoint."""
    torch.set_rng_state(state["torch"])


def load_images(work: Path) -> torch.Tensor:
    """The rendered data set as a uint8 tensor [N, 3, 64, 64]."""
    return torch.from_numpy(np.load(work / "data" / "images.npy"))


def to_model_range(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], the VAE's input range (as SD)."""
    return images_u8.float() / 127.5 - 1.0
