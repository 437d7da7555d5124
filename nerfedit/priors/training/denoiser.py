"""Stages `unet` and `export` of training the toy prior: the text encoder and UNet on the latents, then the diffusers folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from tqdm import tqdm

from nerfedit.priors import toy_models
from nerfedit.priors.training.common import Config, atomic_save, cosine_lr, log, rng_state, set_rng_state

UNK_INSERT_PROB = 0.05
"""Probability that a training caption gets 1–3 unknown tokens inserted at a random word boundary, so that
prompts with words outside the vocabulary (warned about, then run) do not throw the model off."""


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


def short_caption_ids(tokenizer) -> torch.Tensor:
    """Token ids [shapes, colours, short templates, length] of every object caption without its floor (`short_caption`)."""
    from nerfedit.world.vocab import COLORS, SHAPES, SHORT_TEMPLATES, short_caption

    texts = [short_caption(s, c, k) for s in SHAPES for c in COLORS for k in range(len(SHORT_TEMPLATES))]
    return toy_models.tokenize(tokenizer, texts).view(len(SHAPES), len(COLORS), len(SHORT_TEMPLATES), -1)


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
    if cfg.init_from:  # fine-tuning: start from the folder's weights (a checkpoint of this run, below, still wins)
        start = toy_models.load_components(cfg.init_from)
        text_encoder.load_state_dict(start["text_encoder"].state_dict())
        unet.load_state_dict(start["unet"].state_dict())
        log(f"unet: starting from {cfg.init_from}")
    scheduler = toy_models.build_scheduler()
    short_ids = short_caption_ids(tokenizer)
    labels = torch.from_numpy(np.load(work / "data" / "labels.npy")).long() if cfg.short_caption_prob > 0 else None
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
        if labels is not None:
            short = ~drop & (torch.rand(cfg.unet_batch, generator=aug) < cfg.short_caption_prob)
            template = torch.randint(short_ids.shape[2], (cfg.unet_batch,), generator=aug)
            rows = labels[idx]  # (shape, colour, floor) indices
            ids[short] = short_ids[rows[short, 0], rows[short, 1], template[short]]
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
