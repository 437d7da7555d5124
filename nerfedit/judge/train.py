"""Train the judge (colour / shape / floor classifier) on renders of the world, from scratch.

    python scripts/train_judge.py                       # ~4 min of CPU time; writes nerfedit/assets/judge/judge.pt
    python scripts/train_judge.py --resume              # continue from runs/judge/last.pt
    python scripts/train_judge.py --steps 5 --data 256 --eval-n 64 --out /tmp/judge.pt --checkpoint /tmp/judge_ckpt.pt  # smoke run

Data: `--data` renders drawn with seed `--seed`, rendered once, then reused with random
degradations (blur, noise, shifts, down-up sampling, brightness) every time they are drawn.
The judge never sees outputs of a diffusion prior. At the end it prints its accuracy on
`--eval-n` fresh renders from a different seed (see nerfedit/judge/evaluate.py).
"""

# `scripts/train_judge.py` and `scripts/train_prior.py`'s judge stage run `main`; its --help shows this docstring.

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nerfedit.judge.augment import augment
from nerfedit.judge.evaluate import EVAL_SEED, evaluate
from nerfedit.judge.model import DEFAULT_WEIGHTS, HEADS, JudgeNet, save_judge
from nerfedit.world.render import sample_batch

RENDER_CHUNK = 128  # fixed, so the data set depends on --seed and --data only
# Shape is the hardest label (a cylinder's rim vs a cube's edges is a few pixels); floor the easiest.
LOSS_WEIGHTS = {"color": 1.0, "shape": 2.0, "floor": 0.5}


def parse_args(argv=None) -> argparse.Namespace:
    """The options of `scripts/train_judge.py`."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1100, help="optimiser steps")
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--data", type=int, default=8192, help="number of training renders")
    p.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--widths", type=int, nargs=5, default=list(JudgeNet().widths), help="conv channel widths")
    p.add_argument("--seed", type=int, default=0, help="seeds the training renders, the initialisation and the augmentation")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="where to write the inference weights")
    p.add_argument("--checkpoint", type=Path, default=Path("runs/judge/last.pt"), help="training state, for --resume")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps")
    p.add_argument("--eval-n", type=int, default=2000, help="fresh renders for the held-out accuracy (0: skip)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest on a shared 2-core machine: no OpenMP spin-waiting)")
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="seed of the held-out renders")
    return p.parse_args(argv)


def render_dataset(n: int, seed: int) -> dict:
    """`n` renders as uint8 images plus labels; deterministic in (n, seed)."""
    rng = np.random.default_rng(seed)
    images, labels = [], {name: [] for name in HEADS}
    for start in tqdm(range(0, n, RENDER_CHUNK), desc="rendering training data", unit="batch"):
        batch = sample_batch(min(RENDER_CHUNK, n - start), rng)
        images.append((batch["images"] * 255 + 0.5).to(torch.uint8))
        for name in HEADS:
            labels[name].append(batch[name])
    return {"images": torch.cat(images), **{name: torch.cat(v) for name, v in labels.items()}}


def main(argv=None) -> None:
    """`scripts/train_judge.py ARGV`: train (or resume), evaluate on fresh renders, write the weights."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        train(args)
    finally:
        torch.set_num_threads(threads)  # leave the caller's setting alone (tests and train_prior.py call this in-process)


def train(args: argparse.Namespace) -> None:
    """The training loop of `main`, on parsed options."""
    torch.manual_seed(args.seed)
    model = JudgeNet(args.widths)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=max(args.steps, 1), pct_start=0.15)
    generator = torch.Generator().manual_seed(args.seed)
    step = 0
    if args.resume:
        if not args.checkpoint.is_file():
            sys.exit(f"train_judge: error: --resume but no checkpoint at {args.checkpoint}")
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        for key in ("steps", "batch", "data", "seed", "widths"):
            if state["args"][key] != getattr(args, key):
                sys.exit(f"train_judge: error: checkpoint was made with --{key} {state['args'][key]}, not {getattr(args, key)}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        step = state["step"]
        print(f"resuming from step {step} of {args.steps}")

    data = render_dataset(args.data, args.seed)

    def save_checkpoint() -> None:
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "generator": generator.get_state(), "step": step,
             "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}},
            args.checkpoint,
        )

    model.train()
    start_time = time.time()
    with tqdm(total=args.steps, initial=step, desc="training judge", unit="step") as bar:
        while step < args.steps:
            index = torch.randint(0, args.data, (args.batch,), generator=generator)
            images = augment(data["images"][index].float() / 255.0, generator)
            logits = model(images)
            losses = {name: F.cross_entropy(logits[name], data[name][index], label_smoothing=0.05) for name in HEADS}
            loss = sum(LOSS_WEIGHTS[name] * value for name, value in losses.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", **{name: f"{v.item():.2f}" for name, v in losses.items()})
            if step % args.save_every == 0 or step == args.steps:
                save_checkpoint()
    model.eval()
    info = {"steps": args.steps, "data": args.data, "seed": args.seed, "train_seconds": round(time.time() - start_time)}
    if args.eval_n > 0:
        clean = evaluate(model, args.eval_n, args.eval_seed, progress=True)
        degraded = evaluate(model, args.eval_n, args.eval_seed + 1, degrade=True, progress=True)
        info.update({"heldout_clean": clean, "heldout_degraded": degraded, "eval_n": args.eval_n})
        for label, acc in (("fresh renders", clean), ("fresh renders, degraded", degraded)):
            print(f"held-out accuracy on {args.eval_n} {label}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()))
    save_judge(model, args.out, **info)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")

