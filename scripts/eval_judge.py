#!/usr/bin/env python
"""Accuracy of the judge on N fresh renders of the world (the number quoted in the README).

    python scripts/eval_judge.py                 # shipped weights, 2000 renders, clean and degraded
    python scripts/eval_judge.py --n 500 --weights runs/judge/judge.pt --seed 7

"Degraded" passes each render through the training degradations (blur, noise, shifts,
down-up sampling, brightness): a proxy for NeRF renders and diffusion samples.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from nerfedit.judge.evaluate import EVAL_SEED, evaluate
from nerfedit.judge.model import load_judge


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="number of fresh renders")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="seed of the renders (training used small seeds)")
    p.add_argument("--weights", type=Path, default=None, help="judge weights (default: the shipped ones)")
    p.add_argument("--no-degraded", action="store_true", help="skip the degraded pass")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    judge = load_judge(args.weights)
    results = {"n": args.n, "seed": args.seed, "clean": evaluate(judge, args.n, args.seed, progress=True)}
    if not args.no_degraded:
        results["degraded"] = evaluate(judge, args.n, args.seed + 1, degrade=True, progress=True)
    if args.json:
        print(json.dumps(results))
        return
    for kind in ("clean", "degraded"):
        if kind in results:
            accs = ", ".join(f"{k} {100 * v:.1f}%" for k, v in results[kind].items())
            print(f"judge accuracy on {args.n} fresh renders ({kind}, seed {args.seed + (kind == 'degraded')}): {accs}")


if __name__ == "__main__":
    main()
