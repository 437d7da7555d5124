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
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_prior.py: spinning threads crawl on a shared CPU

import torch

from nerfedit.errors import UserError, exit_with
from nerfedit.eval.swaps import KINDS, held_out_swaps
from nerfedit.priors.loader import load_prior, resolve_prior


@torch.no_grad()
def word_pull(prior, pairs, timesteps: Sequence[int], relative: bool, seed: int = 0) -> Dict[str, List[float]]:
    """Per kind, the mean pull (module docstring) of `prior` (a `DiffusionPrior`) at each of `timesteps`, full-caption
    prompts."""
    sources, targets = pairs.prompts("full")
    z = prior.encode_images(pairs.images)
    source, target, empty = prior.encode_text(sources), prior.encode_text(targets), prior.encode_text([""] * len(sources))
    noise = torch.Generator().manual_seed(seed)
    pulls: Dict[str, List[float]] = {kind: [] for kind in KINDS}
    for t in timesteps:
        steps = torch.full((len(z),), int(t))
        z_t = prior.add_noise(z, torch.randn(z.shape, generator=noise), steps)
        eps_src, eps_tgt = (prior.predict_eps(z_t, steps, e) for e in (source, target))
        pull = (eps_tgt - eps_src).flatten(1).norm(dim=1)
        if relative:
            pull = pull / (eps_src - prior.predict_eps(z_t, steps, empty)).flatten(1).norm(dim=1)
        for kind in KINDS:
            rows = pairs.rows_of_kind(kind)
            pulls[kind].append(float(pull[rows].mean()) if rows else float("nan"))
    return pulls


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", default="toy", help="comma-separated: toy or diffusers folders, as --prior elsewhere (default: toy)")
    p.add_argument("-n", "--num", type=int, default=32, help="held-out pairs (as scripts/eval_edit.py; default 32)")
    p.add_argument("--pairs-seed", type=int, default=20250917, help="seed of the pairs (eval_edit.py's default)")
    p.add_argument("--timesteps", default="200,500,800", help="comma-separated t (default 200,500,800)")
    p.add_argument("--relative", action="store_true", help="divide by ‖ε(source) − ε(\"\")‖ per pair")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    names = args.priors.split(",")
    try:
        for name in names:
            resolve_prior(name, "--priors")
        timesteps = [int(t) for t in args.timesteps.split(",")]
        if args.num < 1 or not all(0 <= t < 1000 for t in timesteps):
            raise UserError("-n must be ≥ 1 and every timestep in [0, 1000)")
    except (UserError, ValueError) as error:
        exit_with(error, "diagnose_word_pull.py")
    torch.set_num_threads(args.threads)
    pairs = held_out_swaps(args.num, args.pairs_seed, 64)
    print(f"{'relative ' if args.relative else ''}pull ‖ε(tgt) − ε(src)‖ at t = {', '.join(map(str, timesteps))}; {args.num} pairs (seed {args.pairs_seed})")
    print("| prior | " + " | ".join(KINDS) + " |\n|---|" + "---|" * len(KINDS))
    for name in names:
        try:
            prior = load_prior(name, device="cpu", dtype="fp32", flag="--priors")
        except UserError as error:
            exit_with(error, "diagnose_word_pull.py")
        pulls = word_pull(prior, pairs, timesteps, args.relative)
        print(f"| {name} | " + " | ".join(" / ".join(f"{v:.2f}" for v in pulls[kind]) for kind in KINDS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
