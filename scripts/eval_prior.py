#!/usr/bin/env python
"""Generation quality of the embedded `toy` prior, read by the judge (issue 3, section 5).

    python scripts/eval_prior.py --sheet /tmp/prior_sheet.png

Samples one image per prompt for 64 prompts spread evenly over the world's colours × shapes × floors
(canonical template "a {color} {shape} on {floor}"), with 50 DDIM steps and classifier-free guidance 7.5
in the form ε_u + 7.5·(ε_c − ε_u), each prompt from its own seeded noise. The judge (trained on renders
only, never on this prior's outputs) then reads colour, shape and floor, and the agreement with the
prompt is printed against the bars: colour ≥ 90 %, shape ≥ 80 %. Exit code 0 either way; --strict
makes a missed bar exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_prior.py: spinning threads crawl on a shared CPU

import numpy as np
import torch

from nerfedit.eval.judging import agreement, read  # noqa: E402
from nerfedit.priors import toy_models  # noqa: E402
from nerfedit.priors.loader import TOY_PRIOR_DIR  # noqa: E402
from nerfedit.world.vocab import COLORS, FLOORS, SHAPES, caption  # noqa: E402

BARS = {"color": 0.90, "shape": 0.80}
"""Issue 3, section 5: the judge agrees with the prompted colour ≥ 90 % and shape ≥ 80 %."""
DEFAULT_PRIOR = TOY_PRIOR_DIR


def evaluation_prompts(n: int = 64) -> List[Tuple[str, str, str]]:
    """`n` (colour, shape, floor) triples, balanced: prompt i has colour i mod 8, shape i mod 5 and floor
    ⌊i/8⌋ mod 4, so the first 40 cover every colour × shape pair once and each floor appears equally."""
    return [(COLORS[i % len(COLORS)], SHAPES[i % len(SHAPES)], FLOORS[(i // len(COLORS)) % len(FLOORS)]) for i in range(n)]


def evaluate(
    prior: Path = DEFAULT_PRIOR,
    num_prompts: int = 64,
    steps: int = 50,
    guidance: float = 7.5,
    seed: int = 0,
    sheet: Optional[Path] = None,
    judge_path: Optional[Path] = None,
) -> Dict[str, float]:
    """Sample, judge, and return the agreement rates (and write the sheet if asked)."""
    from nerfedit.eval.sheets import contact_sheet, grid, save_sheet
    from nerfedit.judge.model import load_judge

    components = toy_models.load_components(prior)
    for name in ("unet", "vae", "text_encoder"):
        components[name].eval()
    triples = evaluation_prompts(num_prompts)
    prompts = [caption(shape, color, floor, template=0) for color, shape, floor in triples]
    t0 = time.time()
    images = toy_models.sample_images(components, prompts, num_inference_steps=steps, guidance_scale=guidance, seed=seed)
    seconds = time.time() - t0
    verdict = read(load_judge(judge_path), images)

    hits = {key: [verdict[key][i] == triples[i][k] for i in range(len(triples))] for k, key in enumerate(("color", "shape", "floor"))}
    rates = {key: agreement(verdict[key], [t[k] for t in triples]) for k, key in enumerate(("color", "shape", "floor"))}
    per_colour = {c: float(np.mean([h for h, t in zip(hits["color"], triples) if t[0] == c])) for c in COLORS}
    per_shape = {s: float(np.mean([h for h, t in zip(hits["shape"], triples) if t[1] == s])) for s in SHAPES}
    if sheet is not None:
        labels = []
        for i, (color, shape, floor) in enumerate(triples):
            words = f"{verdict['color'][i]} {verdict['shape'][i]}"
            ok = hits["color"][i] and hits["shape"][i]
            labels.append([f"{color} {shape}", f"{'' if ok else '!'}judge: {words}"])
        save_sheet(sheet, contact_sheet(grid(images, 8, labels), gap=0, caption_height=24))
    return {
        "color": rates["color"],
        "shape": rates["shape"],
        "floor": rates["floor"],
        "per_colour": per_colour,
        "per_shape": per_shape,
        "num_prompts": len(prompts),
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
        "sampling_seconds": seconds,
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", type=Path, default=DEFAULT_PRIOR, help="diffusers folder (default: the shipped toy prior)")
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--steps", type=int, default=50, help="DDIM steps")
    p.add_argument("--guidance", type=float, default=7.5, help="CFG scale s in ε_u + s·(ε_c − ε_u)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG here")
    p.add_argument("--judge", type=Path, default=None, help="judge weights (default: the shipped ones)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--strict", action="store_true", help="exit 1 if a bar is missed")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    result = evaluate(args.prior, args.num_prompts, args.steps, args.guidance, args.seed, args.sheet, args.judge)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"prior {args.prior}: {result['num_prompts']} prompts, {args.steps} DDIM steps, CFG {args.guidance}, seed {args.seed}")
        print("  per colour: " + ", ".join(f"{k} {v:.0%}" for k, v in result["per_colour"].items()))
        print("  per shape:  " + ", ".join(f"{k} {v:.0%}" for k, v in result["per_shape"].items()))
        for key in ("color", "shape"):
            status = "PASS" if result[key] >= BARS[key] else "MISS"
            print(f"  judge agrees with prompted {key:5s}: {result[key]:.1%}  (bar {BARS[key]:.0%}) {status}")
        print(f"  judge agrees with prompted floor: {result['floor']:.1%}  (no bar)")
        if args.sheet:
            print(f"  contact sheet: {args.sheet}")
    missed = [k for k in BARS if result[k] < BARS[k]]
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
