#!/usr/bin/env python
"""How hard a prior's prediction pulls towards a swapped word, per kind of swap (the 2D evaluation's held-out pairs).

    pull(t) = ‖ε(z_t, target prompt) − ε(z_t, source prompt)‖,   z_t = √ᾱ_t·E(source render) + √(1−ᾱ_t)·ε

the size of the DDS gradient before guidance (ε_tgt − ε_src at one shared z_t), averaged over the pairs of each
kind (colour, shape, floor) at a few timesteps; with `--relative`, divided per pair by ‖ε(z_t, source) − ε(z_t, "")‖
(how far the source prompt itself moves the prediction). Same noise for every prior, so priors compare row by row:

    python scripts/diagnose_word_pull.py --priors toy,runs/toy_ft      # the shipped prior beside a fine-tuned one

Written to find why priors fine-tuned on floorless captions lose floor swaps (README, "The embedded prior").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_prior.py: spinning threads crawl on a shared CPU

import torch

from nerfedit.errors import UserError, exit_with
from nerfedit.eval.swaps import KINDS, held_out_swaps
from nerfedit.priors import toy_models
from nerfedit.priors.loader import TOY_PRIOR_DIR


def prior_folder(name: str) -> Path:
    """"toy" → the shipped prior; otherwise a diffusers folder that must exist."""
    folder = TOY_PRIOR_DIR if name == "toy" else Path(name)
    if not (folder / "model_index.json").is_file():
        raise UserError(f"--priors: {name} is not a diffusers prior folder (no model_index.json)")
    return Path(folder)


@torch.no_grad()
def word_pull(folder: Path, pairs, timesteps: Sequence[int], relative: bool, seed: int = 0) -> Dict[str, List[float]]:
    """Per kind, the mean pull (module docstring) at each of `timesteps`, full-caption prompts."""
    c = toy_models.load_components(folder)
    tokenizer, text_encoder, unet, scheduler, vae = c["tokenizer"], c["text_encoder"], c["unet"], c["scheduler"], c["vae"]

    def embed(prompts: List[str]) -> torch.Tensor:
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        return text_encoder(ids)[0]

    sources, targets = pairs.prompts("full")
    z = vae.encode(pairs.images * 2 - 1).latent_dist.mean * vae.config.scaling_factor
    source, target, empty = embed(sources), embed(targets), embed([""] * len(sources))
    noise = torch.Generator().manual_seed(seed)
    pulls: Dict[str, List[float]] = {kind: [] for kind in KINDS}
    for t in timesteps:
        steps = torch.full((len(z),), int(t))
        z_t = scheduler.add_noise(z, torch.randn(z.shape, generator=noise), steps)
        eps_src, eps_tgt = (unet(z_t, steps, encoder_hidden_states=e).sample for e in (source, target))
        pull = (eps_tgt - eps_src).flatten(1).norm(dim=1)
        if relative:
            pull = pull / (eps_src - unet(z_t, steps, encoder_hidden_states=empty).sample).flatten(1).norm(dim=1)
        for kind in KINDS:
            rows = pairs.rows_of_kind(kind)
            pulls[kind].append(float(pull[rows].mean()) if rows else float("nan"))
    return pulls


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", default="toy", help="comma-separated: toy or diffusers folders (default: toy)")
    p.add_argument("-n", "--num", type=int, default=32, help="held-out pairs (as scripts/eval_edit.py; default 32)")
    p.add_argument("--pairs-seed", type=int, default=20250917, help="seed of the pairs (eval_edit.py's default)")
    p.add_argument("--timesteps", default="200,500,800", help="comma-separated t (default 200,500,800)")
    p.add_argument("--relative", action="store_true", help="divide by ‖ε(source) − ε(\"\")‖ per pair")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    try:
        folders = [prior_folder(name) for name in args.priors.split(",")]
        timesteps = [int(t) for t in args.timesteps.split(",")]
        if args.num < 1 or not all(0 <= t < 1000 for t in timesteps):
            raise UserError("-n must be ≥ 1 and every timestep in [0, 1000)")
    except (UserError, ValueError) as error:
        exit_with(error, "diagnose_word_pull.py")
    torch.set_num_threads(args.threads)
    pairs = held_out_swaps(args.num, args.pairs_seed, 64)
    print(f"{'relative ' if args.relative else ''}pull ‖ε(tgt) − ε(src)‖ at t = {', '.join(map(str, timesteps))}; {args.num} pairs (seed {args.pairs_seed})")
    print("| prior | " + " | ".join(KINDS) + " |\n|---|" + "---|" * len(KINDS))
    for name, folder in zip(args.priors.split(","), folders):
        pulls = word_pull(folder, pairs, timesteps, args.relative)
        print(f"| {name} | " + " | ".join(" / ".join(f"{v:.2f}" for v in pulls[kind]) for kind in KINDS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
