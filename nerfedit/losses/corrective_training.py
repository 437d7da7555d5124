"""Train LMC-SDS's learned manifold corrective b̂ψ(z, t) for any prior (Alldieck et al., ECCV 2024, Sec. 4, Eq. 10).

    python scripts/train_corrective.py --prior toy --world 2000 --steps 20000          # toy prior, rendered world
    python scripts/train_corrective.py --prior sd15 --images photos/ --out sd15_corrective.pt
    python scripts/train_corrective.py ... --resume                                    # continue from <out>.ckpt

Data: the images (any size; the shorter side is resized to the prior's resolution, then centre-cropped to a
square) or N renders of the procedural world are VAE-encoded once (posterior mean × scaling factor, as the
losses see latents). A held-out share is kept aside. Every step draws a batch of latents z and makes fresh
triplets (z, ẑ_t, t) from the prior: t ~ U(0.02, 0.98)·T, ε ~ N(0, I), ẑ_t = (z_t − √(1−ᾱ)·ε̂(z_t; ∅, t))/√ᾱ,
its one-step denoised estimate; b̂ψ takes one Adam step on L_k. Paper defaults: batch 128, lr 1e-4 decayed
×0.9 every 100k steps, 32 filters, 4 levels (trained to ~750k steps; CPU runs are far shorter).

Writes `--out` (architecture + weights, what `LearnedManifoldCorrective` loads; default
`<prior folder>/corrective/corrective.pt`, where LMC-SDS looks first) and `<out>.ckpt` every
`--checkpoint-every` steps (weights, Adam state, step, RNG state) for `--resume`. At the end it prints L_k of
b̂ψ and of the identity corrective b̂(z, t) = z on held-out triplets.

This module is `scripts/train_corrective.py` (and `scripts/train_prior.py`'s corrective stage); like the
rest of `nerfedit.losses` it imports neither nerfstudio nor `nerfedit.nerf`.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import torch

from nerfedit.errors import UserError
from nerfedit.losses.corrective import (
    BATCH_SIZE,
    LEARNING_RATE,
    LR_DECAY,
    LR_DECAY_EVERY,
    CorrectiveConfig,
    CorrectiveUNet,
    default_corrective_path,
    denoised_triplets,
    identity_corrective,
    normalised_loss,
    save_corrective,
    train_step,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The options of `scripts/train_corrective.py`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", default="toy", help="toy | sd14 | sd15 | sd21b | hub id | local diffusers folder (default: toy)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of training images (searched recursively; any size)")
    source.add_argument("--world", type=int, metavar="N", help="use N renders of the procedural world instead of a folder")
    parser.add_argument("--out", type=Path, help="corrective file to write (default: <prior folder>/corrective/corrective.pt)")
    parser.add_argument("--steps", type=int, default=5000, help="total training steps (paper: ~750k; default 5000)")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help=f"triplets per step (paper: {BATCH_SIZE})")
    parser.add_argument("--lr", type=float, default=LEARNING_RATE, help=f"Adam learning rate (paper: {LEARNING_RATE:g})")
    parser.add_argument("--lr-decay", type=float, default=LR_DECAY, help=f"lr factor every --decay-every steps (paper: {LR_DECAY})")
    parser.add_argument("--decay-every", type=int, default=LR_DECAY_EVERY, help=f"(paper: {LR_DECAY_EVERY})")
    parser.add_argument("--filters", type=int, default=32, help="filters of b̂ψ's first level (paper: 32)")
    parser.add_argument("--levels", type=int, default=4, help="encoder levels of b̂ψ (paper: 4; capped by the latent size)")
    parser.add_argument(
        "--paper-head", action="store_true", help="b̂ψ = tanh(U-Net) as in the paper, instead of z + U-Net (starts as the identity)"
    )
    parser.add_argument("--held-out", type=float, default=0.1, help="share of images kept for the final evaluation")
    parser.add_argument("--eval-triplets", type=int, default=256, help="held-out triplets of the final evaluation")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (<out>.ckpt)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>.ckpt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda | cpu (default: cuda if available)")
    parser.add_argument("--dtype", default=None, help="fp32 | fp16 | bf16 for the prior (default: fp16 on CUDA, fp32 on CPU)")
    parser.add_argument("--encode-batch", type=int, default=16, help="images per VAE call when encoding the data")
    parser.add_argument("--unet-chunk", type=int, default=32, help="rows per UNet call when making triplets")
    return parser.parse_args(argv)


def validate(args: argparse.Namespace) -> None:
    """Refuse options that cannot train (a `UserError`), before the prior is loaded."""
    for name in ("steps", "batch", "filters", "levels", "eval_triplets", "checkpoint_every", "encode_batch", "unet_chunk"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, not {getattr(args, name)}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise UserError(f"--lr must be a positive number, not {args.lr}")
    if not 0 < args.held_out < 1:
        raise UserError(f"--held-out must be in (0, 1), not {args.held_out}")
    if args.world is not None and args.world < 2:
        raise UserError(f"--world needs at least 2 renders (one is held out), not {args.world}")
    if args.images is not None and not args.images.is_dir():
        raise UserError(f"--images {args.images}: no such folder")


# ---- data -------------------------------------------------------------------------------------
def square_resize(image, size: int) -> torch.Tensor:
    """PIL image → [3, size, size] in [0, 1]: shorter side resized to `size` (bicubic), centre crop."""
    from PIL import Image

    image = image.convert("RGB")
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(size, size, 3).permute(2, 0, 1).float() / 255


def folder_images(folder: Path, size: int) -> torch.Tensor:
    """Every readable image under `folder` as [N, 3, size, size] (`square_resize`); fewer than 2 is a `UserError`."""
    from PIL import Image, UnidentifiedImageError

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(square_resize(image, size))
        except (UnidentifiedImageError, OSError):
            print(f"skipping unreadable image {path}", file=sys.stderr)
    if len(images) < 2:
        raise UserError(f"--images {folder}: need at least 2 readable images ({', '.join(IMAGE_SUFFIXES)}), found {len(images)}")
    return torch.stack(images)


def world_images(count: int, size: int, seed: int) -> torch.Tensor:
    """`count` seeded renders of the procedural world, [N, 3, size, size] in [0, 1]."""
    import numpy as np

    from nerfedit.world.render import sample_batch

    rng = np.random.default_rng(seed)
    chunks = [sample_batch(min(64, count - i), rng, size=size)["images"] for i in range(0, count, 64)]
    return torch.cat(chunks).float().clamp(0, 1)


@torch.no_grad()
def encode(prior, images: torch.Tensor, batch: int) -> torch.Tensor:
    """VAE posterior mean × scaling factor of every image, float32 on the prior's device."""
    return torch.cat([prior.encode_images(images[i : i + batch]) for i in range(0, len(images), batch)])


# ---- training ---------------------------------------------------------------------------------
def corrective_config(prior, filters: int, levels: int, residual: bool = True) -> CorrectiveConfig:
    """The requested architecture on the prior's latent channels, levels capped at log2(latent size) (≥ 1×1 bottleneck)."""
    max_levels = max(1, int(math.log2(max(prior.latent_resolution, 2))))
    return CorrectiveConfig(
        channels=prior.latent_channels, base_filters=filters, levels=min(levels, max_levels), residual=residual
    )


@torch.no_grad()
def held_out_loss(model, triplets) -> tuple:
    """L_k of `model` and of the identity corrective on the same triplets."""
    z, z_hat, t = triplets
    return float(normalised_loss(model(z, t), z_hat)), float(normalised_loss(identity_corrective(z, t), z_hat))


def main(argv: Optional[List[str]] = None) -> int:
    """`scripts/train_corrective.py ARGV`: train b̂ψ (or resume), checkpointing, then score it on held-out triplets."""
    from tqdm import tqdm

    from nerfedit.priors import load_prior

    args = parse_args(argv)
    validate(args)
    prior = load_prior(args.prior, device=args.device, dtype=args.dtype)
    out = args.out or default_corrective_path(prior)
    if out is None:
        raise UserError(f"prior '{args.prior}' is not a local folder: give --out PATH for the corrective")
    out = Path(out)
    ckpt = out.with_name(out.name + ".ckpt")
    if args.resume and not ckpt.is_file():
        raise UserError(f"--resume: no checkpoint at {ckpt}")

    size = prior.resolution
    images = folder_images(args.images, size) if args.images is not None else world_images(args.world, size, args.seed)
    latents = encode(prior, images, args.encode_batch)
    split = torch.randperm(len(latents), generator=torch.Generator().manual_seed(args.seed))
    held = max(1, round(args.held_out * len(latents)))
    train_z, held_z = latents[split[held:].to(latents.device)], latents[split[:held].to(latents.device)]
    print(f"{len(latents)} images at {size}px → latents {tuple(latents.shape[1:])}: {len(train_z)} train, {held} held out")

    generator = torch.Generator().manual_seed(args.seed)
    eval_idx = torch.randint(len(held_z), (args.eval_triplets,), generator=torch.Generator().manual_seed(args.seed + 1))
    eval_triplets = denoised_triplets(
        prior, held_z[eval_idx.to(held_z.device)], torch.Generator().manual_seed(args.seed + 2), chunk=args.unet_chunk
    )

    config = corrective_config(prior, args.filters, args.levels, residual=not args.paper_head)
    torch.manual_seed(args.seed)
    model = CorrectiveUNet(config).to(prior.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, history = 0, []
    if args.resume:
        state = torch.load(ckpt, map_location=prior.device, weights_only=False)
        model = CorrectiveUNet(CorrectiveConfig(**{"residual": False, **state["config"]})).to(prior.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, history = state["step"], state["history"]
        print(f"resumed from {ckpt} at step {step}")

    def checkpoint() -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "config": asdict(model.config),
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "step": step,
                "history": history,
                "prior": args.prior,
            },
            ckpt,
        )
        save_corrective(out, model, prior=args.prior, step=step)

    model.train()
    bar = tqdm(total=args.steps, initial=step, desc="b̂ψ", dynamic_ncols=True)
    while step < args.steps:
        for group in optimizer.param_groups:
            group["lr"] = args.lr * args.lr_decay ** (step // args.decay_every)
        idx = torch.randint(len(train_z), (args.batch,), generator=generator)
        triplets = denoised_triplets(prior, train_z[idx.to(train_z.device)], generator, chunk=args.unet_chunk)
        history.append(train_step(model, optimizer, *triplets))
        step += 1
        bar.update(1)
        bar.set_postfix(L_k=f"{sum(history[-50:]) / len(history[-50:]):.4g}")
        if step % args.checkpoint_every == 0 or step == args.steps:
            checkpoint()
    bar.close()
    if not history:
        checkpoint()

    model.eval()
    ours, identity = held_out_loss(model, eval_triplets)
    save_corrective(out, model, prior=args.prior, step=step, lk_held_out=ours, lk_identity=identity)
    print(f"held-out L_k over {args.eval_triplets} triplets: b̂ψ {ours:.4g} | identity b̂(z,t)=z {identity:.4g}")
    print(f"wrote {out} (and {ckpt} for --resume)")
    return 0

