#!/usr/bin/env python
"""Train nerfedit's embedded `toy` prior from scratch: world renders → VAE → text encoder + UNet → export.

    python scripts/train_prior.py                                  # everything (see "Cost" below)
    python scripts/train_prior.py --resume                         # go on from the checkpoints in --workdir
    python scripts/train_prior.py --stages unet,export --resume    # only some stages
    python scripts/train_prior.py --stages unet,export --resume --unet-steps 5000   # train a finished UNet longer
    python scripts/train_prior.py --smoke                          # a few steps of each stage, into a temp dir

Stages (each reads what the previous ones left in --workdir):

    data     render --num-images scenes of the world (nerfedit.world) → data/images.npy (uint8), captions
    vae      train the AutoencoderKL on L1 + edge + KL losses (random crops first, full images at the end)
    latents  encode every image once (posterior mean and std), set scaling_factor = 1 / std(latents) as SD did
    unet     train the CLIP text encoder and the UNet jointly on the ε-prediction loss, with caption dropout
             for classifier-free guidance and an EMA of the weights
    export   write the EMA weights in diffusers layout to --out (default nerfedit/assets/toy) and check that
             diffusers loads the folder back
    corrective  LMC-SDS's b̂ψ for the exported prior (scripts/train_corrective.py) → --out/corrective/
    judge    the colour/shape/floor judge on renders only (scripts/train_judge.py) → nerfedit/assets/judge/
             (with --smoke: into the temp dir); it never sees the prior's outputs

Every stage is seeded from --seed; `vae` and `unet` checkpoint every --ckpt-every steps and `--resume`
continues from the last checkpoint (a finished stage is skipped; a finished UNet asked for more steps
goes on with a warm restart of the learning rate). The corrective and judge stages run what those scripts run
(`nerfedit.losses.corrective_training`, `nerfedit.judge.train`) with the settings below (each script also runs
alone, with more options).

Cost: forward + backward, the UNet takes 0.77 GFLOP per sample and the VAE 0.84 GFLOP per 32² crop.
Measured on 2 CPU cores shared with 3-7 other jobs (load 3-7): rendering 45-80 images/s (~220/s on free
cores), VAE 0.6 s per step at batch 32 (2500 steps: 25 min), encoding 40k images 7 min, UNet 1.4-3.3 s
per step at batch 64. On two free cores expect roughly a third of those times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

# On a CPU shared with other jobs, OpenMP threads that spin while waiting make every step many times slower
# (measured: 2 spinning threads 5-10x slower than 1 thread when the machine is oversubscribed). Must be set
# before torch starts its thread pool; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from tqdm import tqdm

from nerfedit.eval.psnr import psnr  # noqa: E402
from nerfedit.eval.sheets import contact_sheet, grid, save_sheet  # noqa: E402
from nerfedit.judge.model import DEFAULT_WEIGHTS  # noqa: E402
from nerfedit.priors import toy_models  # noqa: E402
from nerfedit.priors.loader import TOY_PRIOR_DIR  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

STAGES = ("data", "vae", "latents", "unet", "export", "corrective", "judge")
DEFAULT_OUT = TOY_PRIOR_DIR
DEFAULT_WORKDIR = REPO / "runs" / "prior"
DEFAULT_JUDGE = DEFAULT_WEIGHTS

UNK_INSERT_PROB = 0.05
"""Probability that a training caption gets 1–3 unknown tokens inserted at a random word boundary, so that
prompts with words outside the vocabulary (warned about, then run) do not throw the model off."""


# ---- configuration ------------------------------------------------------------------------------
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


# ---- small helpers ------------------------------------------------------------------------------
def log(message: str) -> None:
    tqdm.write(f"[train_prior {time.strftime('%H:%M:%S')}] {message}")


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
    return {"torch": torch.get_rng_state()}


def set_rng_state(state: Dict[str, object]) -> None:
    torch.set_rng_state(state["torch"])


# ---- stage: data ----------------------------------------------------------------------------------------
def stage_data(cfg: Config, work: Path, resume: bool) -> None:
    """Render cfg.num_images world scenes in seeded chunks, then join them into data/images.npy (uint8 NCHW)."""
    from nerfedit.world.render import sample_batch

    data = work / "data"
    if resume and (data / "done.json").exists():
        log("data: done, skipping")
        return
    data.mkdir(parents=True, exist_ok=True)
    num_chunks = math.ceil(cfg.num_images / cfg.chunk)
    t0 = time.time()
    with tqdm(total=cfg.num_images, desc="data", unit="img", dynamic_ncols=True) as bar:
        for i in range(num_chunks):
            n = min(cfg.chunk, cfg.num_images - i * cfg.chunk)
            path = data / f"chunk_{i:04d}.npz"
            if resume and path.exists():
                bar.update(n)
                continue
            rng = np.random.default_rng([cfg.seed, i])  # one stream per chunk: resumption changes nothing
            images, captions, labels = [], [], []
            for start in range(0, n, 250):  # bounded memory per render call
                batch = sample_batch(min(250, n - start), rng, size=toy_models.IMAGE_SIZE)
                images.append((batch["images"].numpy() * 255).round().astype(np.uint8))
                captions += list(batch["captions"])
                labels.append(np.stack([batch["shape"].numpy(), batch["color"].numpy(), batch["floor"].numpy()], 1))
                bar.update(images[-1].shape[0])
            tmp = data / f"chunk_{i:04d}.tmp.npz"
            np.savez(tmp, images=np.concatenate(images), captions=np.array(captions), labels=np.concatenate(labels))
            os.replace(tmp, path)
    images, captions, labels = [], [], []
    for i in range(num_chunks):
        with np.load(data / f"chunk_{i:04d}.npz") as chunk:
            images.append(chunk["images"])
            captions += [str(c) for c in chunk["captions"]]
            labels.append(chunk["labels"])
    np.save(data / "images.npy", np.concatenate(images))
    np.save(data / "labels.npy", np.concatenate(labels))
    (data / "captions.json").write_text(json.dumps(captions))
    for i in range(num_chunks):
        (data / f"chunk_{i:04d}.npz").unlink()
    (data / "done.json").write_text(json.dumps({"num_images": len(captions), "seconds": time.time() - t0}))
    log(f"data: {len(captions)} images in {time.time() - t0:.0f} s")


def load_images(work: Path) -> torch.Tensor:
    """The rendered data set as a uint8 tensor [N, 3, 64, 64]."""
    return torch.from_numpy(np.load(work / "data" / "images.npy"))


def to_model_range(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], the VAE's input range (as SD)."""
    return images_u8.float() / 127.5 - 1.0


# ---- stage: vae -----------------------------------------------------------------------------------------
def vae_loss(vae, x: torch.Tensor, cfg: Config, sample: bool = True):
    """L1 reconstruction + L1 on finite differences (edges) + KL, all per pixel; returns (loss, reconstruction)."""
    posterior = vae.encode(x).latent_dist
    z = posterior.sample() if sample else posterior.mode()
    rec = vae.decode(z).sample
    l1 = (rec - x).abs().mean()
    edge = ((rec.diff(dim=-1) - x.diff(dim=-1)).abs().mean() + (rec.diff(dim=-2) - x.diff(dim=-2)).abs().mean()) / 2
    kl = posterior.kl().mean() / x[0].numel()  # KL summed over the latent, per image pixel-value (SD's scaling)
    return l1 + cfg.vae_edge_weight * edge + cfg.vae_kl_weight * kl, rec


def stage_vae(cfg: Config, work: Path, resume: bool) -> None:
    """Train the AutoencoderKL; the result goes to vae/model (diffusers format, scaling_factor still 1)."""
    out = work / "vae"
    if resume and (out / "model" / "config.json").exists():
        log("vae: done, skipping")
        return
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + 1)
    images = load_images(work)
    val, train = images[-cfg.val_images :], images[: -cfg.val_images]
    vae = toy_models.build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    step = 0
    ckpt = out / "ckpt.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        set_rng_state(state["rng"])
        step = state["step"]
        log(f"vae: resuming at step {step}")
    log(f"vae: {toy_models.count_parameters(vae) / 1e6:.2f} M parameters, {len(train)} training images")
    full_from = int(cfg.vae_steps * (1 - cfg.vae_full_frac))
    t0, running = time.time(), None
    vae.train()
    bar = tqdm(total=cfg.vae_steps, initial=step, desc="vae", dynamic_ncols=True)
    while step < cfg.vae_steps:
        idx = torch.randint(len(train), (cfg.vae_batch,))
        x = to_model_range(train[idx])
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        if step < full_from:  # random crops: 4× cheaper, the convolutions don't care
            c = cfg.vae_crop
            i, j = torch.randint(0, x.shape[-1] - c + 1, (2,)).tolist()
            x = x[..., i : i + c, j : j + c]
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.vae_steps, cfg.vae_lr, cfg.warmup)
        loss, _ = vae_loss(vae, x, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if step % cfg.ckpt_every == 0 or step == cfg.vae_steps:
            atomic_save({"model": vae.state_dict(), "opt": opt.state_dict(), "rng": rng_state(), "step": step}, ckpt)
    bar.close()
    vae.eval()
    with torch.no_grad():
        x = to_model_range(val)
        rec = torch.cat([vae.decode(vae.encode(x[i : i + 64]).latent_dist.mode()).sample for i in range(0, len(x), 64)])
        val_psnr = psnr((rec + 1) / 2, (x + 1) / 2)
        save_sheet(out / "reconstructions.png", contact_sheet(grid(torch.cat([(x[:32] + 1) / 2, (rec[:32] + 1) / 2]).clamp(0, 1)), scale=1, gap=0))
    vae.save_pretrained(str(out / "model"))
    (out / "stats.json").write_text(json.dumps({"val_psnr_db": val_psnr, "seconds": time.time() - t0, "steps": step}))
    log(f"vae: held-out reconstruction PSNR {val_psnr:.2f} dB ({time.time() - t0:.0f} s); sheet {out / 'reconstructions.png'}")


# ---- stage: latents -------------------------------------------------------------------------------------
def stage_latents(cfg: Config, work: Path, resume: bool) -> None:
    """Encode every image once: posterior mean and std (float16), and the SD-style scaling factor 1/std."""
    from diffusers import AutoencoderKL

    out = work / "latents"
    if resume and (out / "done.json").exists():
        log("latents: done, skipping")
        return
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + 2)
    vae = AutoencoderKL.from_pretrained(str(work / "vae" / "model")).eval()
    images = load_images(work)
    means, stds = [], []
    t0 = time.time()
    with torch.no_grad():
        for i in tqdm(range(0, len(images), 256), desc="latents", dynamic_ncols=True):
            posterior = vae.encode(to_model_range(images[i : i + 256])).latent_dist
            means.append(posterior.mean.half())
            stds.append(posterior.std.half())
    mean, std = torch.cat(means).float(), torch.cat(stds).float()
    # Stable Diffusion's 0.18215 is 1 / std of sampled latents over its data; we do the same.
    sampled = mean + std * torch.randn_like(mean)
    scaling_factor = float(1.0 / sampled.std())
    np.save(out / "mean.npy", mean.half().numpy())
    np.save(out / "std.npy", std.half().numpy())
    vae.register_to_config(scaling_factor=scaling_factor)
    vae.save_pretrained(str(work / "vae" / "model"))
    stats = {
        "scaling_factor": scaling_factor,
        "latent_std": float(sampled.std()),
        "channel_means": sampled.mean(dim=(0, 2, 3)).tolist(),
        "posterior_std_mean": float(std.mean()),
        "seconds": time.time() - t0,
    }
    (out / "done.json").write_text(json.dumps(stats))
    log(f"latents: {len(mean)} encoded, scaling_factor {scaling_factor:.4f} ({time.time() - t0:.0f} s)")


# ---- stage: unet ----------------------------------------------------------------------------------------
def insert_unknown(ids: torch.Tensor, unk_id: int, eos_id: int, generator: torch.Generator) -> torch.Tensor:
    """Insert 1–3 unknown tokens after a random word of one padded id row (keeps BOS first and fits the length)."""
    length = int((ids != eos_id).sum()) + 1  # BOS + words + EOS
    k = int(torch.randint(1, 4, (), generator=generator))
    if length + k > ids.numel():
        return ids
    at = int(torch.randint(1, length, (), generator=generator))  # after BOS … before EOS
    row = torch.cat([ids[:at], torch.full((k,), unk_id, dtype=ids.dtype), ids[at:]])
    return row[: ids.numel()]


class EMA:
    """Exponential moving average of parameters, with the usual warm-up: decay_t = min(decay, (1+t)/(10+t))."""

    def __init__(self, modules: List[torch.nn.Module], decay: float):
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_mul_(self.shadow, d)
        torch._foreach_add_(self.shadow, [p.detach() for p in self.params], alpha=1 - d)

    @torch.no_grad()
    def copy_to(self, modules: List[torch.nn.Module]) -> None:
        for p, s in zip([p for m in modules for p in m.parameters()], self.shadow):
            p.copy_(s)


def diffusion_loss(unet, text_encoder, scheduler, z0, ids, t, noise, snr_gamma: float) -> torch.Tensor:
    """ε-prediction MSE (DDPM, Ho et al. 2020) with optional Min-SNR-γ weights min(SNR, γ)/SNR per sample."""
    z_t = scheduler.add_noise(z0, noise, t)
    hidden = text_encoder(ids)[0]
    eps = unet(z_t, t, encoder_hidden_states=hidden).sample
    per_sample = (eps - noise).pow(2).mean(dim=(1, 2, 3))
    if snr_gamma > 0:
        alpha_bar = scheduler.alphas_cumprod[t]
        snr = alpha_bar / (1 - alpha_bar)
        per_sample = per_sample * snr.clamp(max=snr_gamma) / snr
    return per_sample.mean()


def stage_unet(cfg: Config, work: Path, resume: bool, smoke: bool = False) -> Dict[str, float]:
    """Train the text encoder and the UNet together on the latents; EMA weights go to unet/ema.pt."""
    from nerfedit.world.vocab import vocabulary

    out = work / "unet"
    ckpt = out / "ckpt.pt"
    if resume and (out / "stats.json").exists():
        done = json.loads((out / "stats.json").read_text())["steps"]
        if done >= cfg.unet_steps:
            log(f"unet: done ({done} steps), skipping")
            return {}
        # More steps asked than were run: go on from the checkpoint; the cosine schedule is recomputed over
        # the new total (a warm restart from where it stands at step `done`).
        log(f"unet: extending from {done} to {cfg.unet_steps} steps (lr warms up again over {cfg.warmup} steps)")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + 3)
    tokenizer = toy_models.build_tokenizer(vocabulary(), out / "tokenizer")
    captions = json.loads((work / "data" / "captions.json").read_text())
    ids_all = toy_models.tokenize(tokenizer, captions)
    empty_ids = toy_models.tokenize(tokenizer, [""])[0]
    unk_id, eos_id = tokenizer.unk_token_id, tokenizer.eos_token_id
    mean = torch.from_numpy(np.load(work / "latents" / "mean.npy"))
    std = torch.from_numpy(np.load(work / "latents" / "std.npy"))
    scaling = json.loads((work / "latents" / "done.json").read_text())["scaling_factor"]

    text_encoder = toy_models.build_text_encoder(len(tokenizer))
    unet = toy_models.build_unet()
    scheduler = toy_models.build_scheduler()
    modules = [text_encoder, unet]
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=cfg.weight_decay)
    ema = EMA(modules, cfg.ema_decay)
    aug = torch.Generator().manual_seed(cfg.seed + 4)
    step = 0
    restart_at = 0  # step at which the learning rate last warmed up (0, or where an extension resumed)
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        text_encoder.load_state_dict(state["text_encoder"])
        unet.load_state_dict(state["unet"])
        opt.load_state_dict(state["opt"])
        ema.shadow = state["ema"]
        set_rng_state(state["rng"])
        aug.set_state(state["aug"])
        step = state["step"]
        restart_at = state.get("restart_at", 0)
        if (out / "stats.json").exists() and step == json.loads((out / "stats.json").read_text())["steps"]:
            restart_at = step  # extending a finished run from its last step (a resumed extension keeps its own)
        log(f"unet: resuming at step {step}")
    log(
        f"unet: UNet {toy_models.count_parameters(unet) / 1e6:.2f} M + text encoder "
        f"{toy_models.count_parameters(text_encoder) / 1e6:.2f} M parameters, {len(mean)} latents"
    )

    # A fixed batch (latents, noise, t) to measure the loss on, before and after (reported in smoke mode).
    probe_gen = torch.Generator().manual_seed(1234)
    n_probe = min(32, len(mean))
    probe = dict(
        z0=(mean[:n_probe] * scaling),
        ids=ids_all[:n_probe],
        t=torch.randint(50, 950, (n_probe,), generator=probe_gen),
        noise=torch.randn(mean[:n_probe].shape, generator=probe_gen),
    )

    def probe_loss() -> float:
        with torch.no_grad():
            return diffusion_loss(unet, text_encoder, scheduler, snr_gamma=0.0, **probe).item()

    before = probe_loss() if smoke else float("nan")
    t0, running = time.time(), None
    unet.train()
    text_encoder.train()
    bar = tqdm(total=cfg.unet_steps, initial=step, desc="unet", dynamic_ncols=True)
    while step < cfg.unet_steps:
        idx = torch.randint(len(mean), (cfg.unet_batch,))
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape)) * scaling
        ids = ids_all[idx].clone()
        drop = torch.rand(cfg.unet_batch, generator=aug) < cfg.cond_drop
        ids[drop] = empty_ids
        for r in (~drop & (torch.rand(cfg.unet_batch, generator=aug) < UNK_INSERT_PROB)).nonzero().flatten().tolist():
            ids[r] = insert_unknown(ids[r], unk_id, eos_id, aug)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.unet_batch,))
        noise = torch.randn_like(z0)
        rewarm = min(1.0, (step - restart_at + 1) / cfg.warmup) if restart_at > 0 and cfg.warmup > 0 else 1.0
        for group in opt.param_groups:
            group["lr"] = rewarm * cosine_lr(step, cfg.unet_steps, cfg.unet_lr, cfg.warmup)
        loss = diffusion_loss(unet, text_encoder, scheduler, z0, ids, t, noise, cfg.min_snr_gamma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        ema.update(step)
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
        if step % cfg.ckpt_every == 0 or step == cfg.unet_steps:
            atomic_save(
                {
                    "text_encoder": text_encoder.state_dict(),
                    "unet": unet.state_dict(),
                    "opt": opt.state_dict(),
                    "ema": ema.shadow,
                    "rng": rng_state(),
                    "aug": aug.get_state(),
                    "step": step,
                    "restart_at": restart_at,
                },
                ckpt,
            )
    bar.close()
    after = probe_loss() if smoke else float("nan")
    ema.copy_to(modules)
    atomic_save({"text_encoder": text_encoder.state_dict(), "unet": unet.state_dict()}, out / "ema.pt")
    stats = {"seconds": time.time() - t0, "steps": step, "final_running_loss": running}
    if smoke:
        stats.update(probe_loss_before=before, probe_loss_after=after)
        log(f"unet: probe loss before {before:.4f} after {after:.4f}")
    (out / "stats.json").write_text(json.dumps(stats))
    log(f"unet: done in {time.time() - t0:.0f} s")
    return stats


# ---- stage: export --------------------------------------------------------------------------------------
def stage_export(cfg: Config, work: Path, out: Path) -> None:
    """Write the prior in diffusers layout to `out` (float32 if it fits in the budget, else float16) and reload it."""
    from diffusers import AutoencoderKL
    from nerfedit.world.vocab import vocabulary

    vae = AutoencoderKL.from_pretrained(str(work / "vae" / "model"))
    state = torch.load(work / "unet" / "ema.pt", weights_only=False)
    tokenizer = toy_models.build_tokenizer(vocabulary(), work / "unet" / "tokenizer")
    text_encoder = toy_models.build_text_encoder(len(tokenizer))
    unet = toy_models.build_unet()
    text_encoder.load_state_dict(state["text_encoder"])
    unet.load_state_dict(state["unet"])

    n_params = sum(toy_models.count_parameters(m) for m in (vae, text_encoder, unet))
    dtype = torch.float32 if n_params * 4 <= toy_models.WEIGHTS_BUDGET_BYTES * 0.98 else torch.float16
    if out.exists():
        for sub in ("vae", "text_encoder", "tokenizer", "unet", "scheduler"):
            shutil.rmtree(out / sub, ignore_errors=True)
    toy_models.save_pipeline(out, vae, text_encoder, vocabulary(), unet, dtype=dtype)
    size = toy_models.weights_size_bytes(out)
    # Reload the way the project (component by component) and diffusers (the whole pipeline) do.
    toy_models.load_components(out)
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline.from_pretrained(str(out), safety_checker=None, requires_safety_checker=False)
    log(f"export: {out} ({dtype}, {size / 1e6:.2f} MB of weights, {n_params / 1e6:.2f} M parameters); loads in diffusers")
    if size > toy_models.WEIGHTS_BUDGET_BYTES:
        raise SystemExit(f"weights {size / 1e6:.2f} MB exceed the {toy_models.WEIGHTS_BUDGET_BYTES / 1e6:.0f} MB budget")


def stage_corrective(cfg: Config, out: Path, resume: bool) -> None:
    """LMC-SDS's corrective for the exported prior, on fresh world renders (`train_corrective.py`)."""
    from nerfedit.losses import corrective_training

    target = out / "corrective" / "corrective.pt"
    argv = [
        "--prior", str(out), "--world", str(cfg.corrective_images), "--steps", str(cfg.corrective_steps),
        "--batch", str(cfg.corrective_batch), "--lr", str(cfg.corrective_lr), "--filters", str(cfg.corrective_filters),
        "--levels", str(cfg.corrective_levels), "--seed", str(cfg.seed), "--out", str(target),
        "--eval-triplets", str(min(256, 8 * cfg.corrective_batch)), "--checkpoint-every", "100",
    ]  # fmt: skip
    if resume and target.with_name(target.name + ".ckpt").is_file():
        argv.append("--resume")
    corrective_training.main(argv)


def stage_judge(cfg: Config, work: Path, judge_out: Path, resume: bool) -> None:
    """The judge, trained on renders only (`train_judge.py`)."""
    from nerfedit.judge import train

    checkpoint = work / "judge" / "last.pt"
    argv = [
        "--steps", str(cfg.judge_steps), "--data", str(cfg.judge_images), "--eval-n", str(cfg.judge_eval),
        "--seed", str(cfg.seed), "--out", str(judge_out), "--checkpoint", str(checkpoint),
    ]  # fmt: skip
    if resume and checkpoint.is_file():
        argv.append("--resume")
    train.main(argv)


# ---- main -----------------------------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    defaults = Config()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="data, checkpoints and logs (default runs/prior)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the diffusers folder goes (default nerfedit/assets/toy)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in --workdir; skip finished stages")
    p.add_argument("--smoke", action="store_true", help="a few steps of every stage on a tiny data set, in a temp dir")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--num-images", type=int, default=defaults.num_images)
    p.add_argument("--vae-steps", type=int, default=defaults.vae_steps)
    p.add_argument("--unet-steps", type=int, default=defaults.unet_steps)
    p.add_argument("--unet-batch", type=int, default=defaults.unet_batch)
    p.add_argument("--unet-lr", type=float, default=defaults.unet_lr)
    p.add_argument("--ema-decay", type=float, default=defaults.ema_decay)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"train_prior: error: unknown stage(s) {', '.join(unknown)}; valid: {', '.join(STAGES)}", file=sys.stderr)
        raise SystemExit(2)

    if args.smoke:
        cfg = smoke_config(args.seed)
        temp = Path(tempfile.mkdtemp(prefix="nerfedit-prior-smoke-"))
        work = temp / "work"
        out = args.out if args.out != DEFAULT_OUT else temp / "toy"
    else:
        cfg = Config(
            seed=args.seed,
            num_images=args.num_images,
            vae_steps=args.vae_steps,
            unet_steps=args.unet_steps,
            unet_batch=args.unet_batch,
            unet_lr=args.unet_lr,
            ema_decay=args.ema_decay,
        )
        work, out = args.workdir, args.out
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(cfg.__dict__, indent=2))
    log(f"stages {','.join(stages)}; workdir {work}; out {out}")

    timings: Dict[str, float] = {}
    stats: Dict[str, float] = {}
    for stage in STAGES:
        if stage not in stages:
            continue
        t0 = time.time()
        if stage == "data":
            stage_data(cfg, work, args.resume)
        elif stage == "vae":
            stage_vae(cfg, work, args.resume)
        elif stage == "latents":
            stage_latents(cfg, work, args.resume)
        elif stage == "unet":
            stats.update(stage_unet(cfg, work, args.resume, smoke=args.smoke))
        elif stage == "export":
            stage_export(cfg, work, out)
        elif stage == "corrective":
            stage_corrective(cfg, out, args.resume)
        elif stage == "judge":
            stage_judge(cfg, work, out.parent / "judge.pt" if args.smoke else DEFAULT_JUDGE, args.resume)
        timings[stage] = time.time() - t0
    log("wall time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    (work / "timings.json").write_text(json.dumps(timings))
    if args.smoke:
        print(json.dumps({"out": str(out), **{k: v for k, v in stats.items() if "probe" in k}}))
    return stats


if __name__ == "__main__":
    main()
