#!/usr/bin/env python
"""Train nerfedit's embedded `toy` prior from scratch: world renders → VAE → text encoder + UNet → export.

    python scripts/train_prior.py                                  # everything (see "Cost" below)
    python scripts/train_prior.py --resume                         # go on from the checkpoints in --workdir
    python scripts/train_prior.py --stages unet,export --resume    # only some stages
    python scripts/train_prior.py --stages unet,export --resume --unet-steps 5000   # train a finished UNet longer
    python scripts/train_prior.py --smoke                          # a few steps of each stage, into a temp dir
    python scripts/train_prior.py --workdir runs/ft --out runs/toy_ft --stages data,vae,latents,unet,export \
        --init-from nerfedit/assets/toy --short-captions 0.3 --num-images 20000 --unet-steps 1000 --unet-lr 3e-4
                                                                   # fine-tune the shipped prior on floorless captions too

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

With --init-from FOLDER the run fine-tunes that prior instead of starting from scratch: `vae` copies the folder's
VAE, `latents` keeps its scaling factor, and `unet` starts from its text encoder and UNet (fresh optimiser and EMA).
--short-captions P replaces that share of the training captions by the object named without its floor ("a red
cube", `nerfedit.world.vocab.SHORT_TEMPLATES`), the phrase a user types; the shipped prior saw floors in every caption.

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
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

# On a CPU shared with other jobs, OpenMP threads that spin while waiting make every step many times slower
# (measured: 2 spinning threads 5-10x slower than 1 thread when the machine is oversubscribed). Must be set
# before torch starts its thread pool; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from nerfedit.judge.model import DEFAULT_WEIGHTS  # noqa: E402
from nerfedit.priors.loader import TOY_PRIOR_DIR  # noqa: E402
from nerfedit.priors.training.common import Config, log, smoke_config  # noqa: E402
from nerfedit.priors.training.stages import STAGES, run_stages  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = TOY_PRIOR_DIR
DEFAULT_WORKDIR = REPO / "runs" / "prior"
DEFAULT_JUDGE = DEFAULT_WEIGHTS


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
    p.add_argument("--short-captions", type=float, default=defaults.short_caption_prob, metavar="P",
                   help="share of training captions that name the object without its floor, 'a red cube' (default: 0, as the shipped prior)")
    p.add_argument("--init-from", default=defaults.init_from, metavar="FOLDER",
                   help="fine-tune this diffusers prior (e.g. nerfedit/assets/toy): its VAE kept, its text encoder and UNet trained on (default: from scratch)")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"train_prior: error: unknown stage(s) {', '.join(unknown)}; valid: {', '.join(STAGES)}", file=sys.stderr)
        raise SystemExit(2)
    if not 0.0 <= args.short_captions <= 1.0:
        print(f"train_prior: error: --short-captions must lie in [0, 1], not {args.short_captions}", file=sys.stderr)
        raise SystemExit(2)
    if args.init_from and not (Path(args.init_from) / "model_index.json").is_file():
        print(f"train_prior: error: --init-from {args.init_from} is not a diffusers prior folder (no model_index.json)", file=sys.stderr)
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
            short_caption_prob=args.short_captions,
            init_from=str(args.init_from),
        )
        work, out = args.workdir, args.out
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(cfg.__dict__, indent=2))
    log(f"stages {','.join(stages)}; workdir {work}; out {out}")

    judge_out = out.parent / "judge.pt" if args.smoke else DEFAULT_JUDGE
    timings, stats = run_stages(cfg, stages, work, out, judge_out, args.resume, smoke=args.smoke)
    (work / "timings.json").write_text(json.dumps(timings))
    if args.smoke:
        print(json.dumps({"out": str(out), **{k: v for k, v in stats.items() if "probe" in k}}))
    return stats


if __name__ == "__main__":
    main()
