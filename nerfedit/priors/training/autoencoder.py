"""Stages `data`, `vae` and `latents` of training the toy prior: world renders, the AutoencoderKL, the encoded data set."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nerfedit.eval.psnr import psnr
from nerfedit.eval.sheets import contact_sheet, grid, save_sheet
from nerfedit.priors import toy_models
from nerfedit.priors.training.common import Config, already_done, atomic_save, cosine_lr, load_images, log, rng_state, set_rng_state, to_model_range


def stage_data(cfg: Config, work: Path, resume: bool) -> None:
    """Render cfg.num_images world scenes in seeded chunks, then join them into data/images.npy (uint8 NCHW)."""
    from nerfedit.world.render import sample_batch

    data = work / "data"
    if already_done(data / "done.json", resume, "data"):
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
    if already_done(out / "model" / "config.json", resume, "vae"):
        return
    out.mkdir(parents=True, exist_ok=True)
    if cfg.init_from:  # fine-tuning a prior: its UNet was trained on this VAE's latents, so the VAE stays
        from diffusers import AutoencoderKL

        AutoencoderKL.from_pretrained(str(Path(cfg.init_from) / "vae"), torch_dtype=torch.float32).save_pretrained(str(out / "model"))
        log(f"vae: taken from {cfg.init_from}")
        return
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
    if already_done(out / "done.json", resume, "latents"):
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
    # Stable Diffusion's 0.18215 is 1 / std of sampled latents over its data; we do the same (a fine-tuned prior
    # keeps the one its UNet was trained with).
    sampled = mean + std * torch.randn_like(mean)
    scaling_factor = float(vae.config.scaling_factor) if cfg.init_from else float(1.0 / sampled.std())
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
