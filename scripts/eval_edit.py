#!/usr/bin/env python
"""Quality bar of 2D editing (issue 3, section 5): colour swaps on held-out world renders.

For N fresh renders of the world (a seed of their own, drawn with `random_object`/`random_camera`,
never the training stream), each object's colour is swapped for another one:

    source "a red cube on a wooden floor"  →  target "a blue cube on a wooden floor"

and the image is edited with DDS (the method under test), CDS and the SDS baseline, all with the same
optimiser, steps and seed. Two numbers per loss:

- colour: how often the judge reads the TARGET colour on the edited image      (bar: DDS ≥ 85%)
- PSNR outside the object mask, between the source render and the edit, in dB  (bar: DDS ≥ 25 dB)

Printed beside them for context: the VAE's own reconstruction PSNR outside the mask (the ceiling any
latent edit can reach with `--paste replace`) and how often the judge reads the SOURCE colour on the
unedited renders (the judge's own accuracy). A contact sheet (`--sheet`) shows source | each loss for
the first rows, with a green (judge reads the target colour) or red bar under each edit.

    python scripts/eval_edit.py --prior toy --sheet outputs/eval_edit.png          # the bar (CPU: minutes)
    python scripts/eval_edit.py --prior /tmp/tiny --judge none -n 4 --steps 5      # plumbing only

Exit code 0 whether or not the bars are met (the numbers are the result); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, Sequence

import torch

from nerfedit.errors import UserError, exit_with

COLOR_BAR = 0.85
"""Issue 3 §5: the judge reads the target colour on ≥ 85% of DDS edits."""
PSNR_BAR = 25.0
"""Issue 3 §5: PSNR between source and DDS edit outside the object mask ≥ 25 dB."""
EVAL_SEED = 20250917
"""Seed of the held-out renders: a stream of its own, not the training data's."""


def contact_sheet(path: Path, data, results: Dict[str, Dict[str, object]], rows: int) -> None:
    """Source | each loss, `rows` rows; a green/red bar under each edit: the judge read the target colour or not."""
    from nerfedit.eval.sheets import GREEN, RED, Cell, contact_sheet as sheet, save_sheet

    names = list(results)
    n = min(rows, len(data["sources"]))
    cells, labels = [], []
    for r in range(n):
        row = [Cell(data["images"][r])]
        for name in names:
            judged = results[name].get("judged")
            if judged is None:
                row.append(Cell(results[name]["images"][r]))
            else:
                bar = GREEN if judged[r] == data["target_colors"][r] else RED
                row.append(Cell(results[name]["images"][r], text=judged[r], bar=bar))
        cells.append(row)
        labels.append([f"{data['source_colors'][r]} -> {data['target_colors'][r]}", data["shapes"][r]])
    save_sheet(path, sheet(cells, label_width=150, row_labels=labels, titles=["source"] + names, bar_height=4))


def parse_args(argv: Sequence[str] | None):
    from nerfedit.commandline import NerfeditArgumentParser

    p = NerfeditArgumentParser(prog="eval_edit.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", default="toy", help="prior name or folder (default: toy)")
    p.add_argument("-n", "--num", type=int, default=32, help="held-out renders (default: 32; the bar needs ≥ 32)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help=f"seed of the renders and of the edits (default: {EVAL_SEED})")
    p.add_argument("--losses", default="dds,cds,sds", help="comma-separated losses; the first is the one the bars apply to (default: dds,cds,sds)")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps per edit (default: 200, DDS)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="(default: sgd, DDS)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: nerfedit's for the optimiser)")
    p.add_argument("--schedule", choices=("step", "constant", "cosine"), default="step", help="(default: step)")
    p.add_argument("--guidance-scale", type=float, default=None, help="CFG scale for every loss (default: each loss's paper value)")
    p.add_argument("--t-min", type=int, default=None, help="smallest timestep (default: each loss's paper value)")
    p.add_argument("--t-max", type=int, default=None, help="timesteps below this (default: each loss's paper value)")
    p.add_argument("--edit-region", choices=("none", "auto"), default="none", help="restrict each edit's gradient to its auto region (default: none)")
    p.add_argument("--batch", type=int, default=16, help="edits optimised together (independent rows; default: 16)")
    p.add_argument("--judge", default="default", help="'default' (the shipped judge), a checkpoint path, or 'none'")
    p.add_argument("--sheet", default=None, help="write a contact sheet PNG here")
    p.add_argument("--sheet-rows", type=int, default=16, help="rows of the contact sheet (default: 16)")
    p.add_argument("--json", default=None, help="also write the numbers as JSON here")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.num <= 0 or args.steps <= 0 or args.batch <= 0:
        p.error("--num, --steps and --batch must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return evaluate(args)
    except UserError as error:
        exit_with(error, "eval_edit.py")
    return 2


def evaluate(args) -> int:
    from nerfedit.commandline import quiet_libraries
    from nerfedit.eval.colour_swaps import edit_all, held_out_colour_swaps
    from nerfedit.eval.judging import agreement, load_judge_option, read
    from nerfedit.eval.psnr import psnr_outside
    from nerfedit.image.edit import EditConfig
    from nerfedit.priors import load_prior

    names = [s.strip() for s in args.losses.split(",") if s.strip()]
    if args.sheet:
        from nerfedit.image.io import check_output_path

        check_output_path(args.sheet, suffixes=(".png",), what="--sheet")
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    prior = load_prior(args.prior, device=device)
    judge = load_judge_option(args.judge, device)

    data = held_out_colour_swaps(args.num, args.seed, prior.resolution)
    masks = data["masks"]
    config = EditConfig(steps=args.steps, optimizer=args.optimizer, lr=args.lr, schedule=args.schedule, seed=args.seed)
    print(
        f"{args.num} held-out colour swaps (seed {args.seed}), prior {args.prior} ({prior.resolution} px), "
        f"{args.steps} steps of {args.optimizer} lr {config.resolved_lr():g} ({args.schedule} schedule), device {device}"
    )

    report: Dict[str, object] = {
        "num": args.num, "seed": args.seed, "steps": args.steps, "optimizer": args.optimizer, "lr": config.resolved_lr(),
        "schedule": args.schedule, "prior": args.prior, "guidance_scale": args.guidance_scale, "t_min": args.t_min, "t_max": args.t_max,
        "edit_region": args.edit_region,
    }  # fmt: skip
    with torch.no_grad():
        recon = torch.cat([prior.decode_latents(prior.encode_images(data["images"][i : i + 32].to(device))).cpu() for i in range(0, args.num, 32)])
    recon_psnr = psnr_outside(recon, data["images"], masks)
    report["vae_psnr_outside"] = float(recon_psnr.mean())
    if judge is not None:
        report["judge_source_accuracy"] = agreement(read(judge, data["images"])["color"], data["source_colors"])
        report["judge_recon_target_rate"] = agreement(read(judge, recon)["color"], data["target_colors"])

    results: Dict[str, Dict[str, object]] = {}
    for name in names:
        start = time.perf_counter()
        settings = dict(guidance_scale=args.guidance_scale, t_min=args.t_min, t_max=args.t_max)
        region = None if args.edit_region == "none" else args.edit_region
        out = edit_all(prior, name, data, batch=args.batch, edit=config, progress=not args.quiet, region=region, **settings)
        psnr = psnr_outside(out["images"], data["images"], masks)
        out["psnr"] = psnr
        entry = {
            "psnr_outside_mean": float(psnr.mean()),
            "psnr_outside_median": float(psnr.median()),
            "skipped_steps": out["skipped"],
            "seconds_per_edit": (time.perf_counter() - start) / args.num,
        }
        if judge is not None:
            judged = read(judge, out["images"], heads=("color",))["color"]
            out["judged"] = judged
            entry["target_color_rate"] = agreement(judged, data["target_colors"])
            entry["source_color_rate"] = agreement(judged, data["source_colors"])
        results[name] = out
        report[name] = entry

    print()
    print(f"{'loss':<6} {'judge: target colour':>21} {'still source':>13} {'PSNR outside mask':>18} {'(median)':>9} {'s/edit':>7} {'skipped':>8}")
    for name in names:
        e = report[name]
        target = f"{e['target_color_rate']:.1%}" if "target_color_rate" in e else "n/a"
        still = f"{e['source_color_rate']:.1%}" if "source_color_rate" in e else "n/a"
        print(
            f"{name:<6} {target:>21} {still:>13} {e['psnr_outside_mean']:>15.2f} dB {e['psnr_outside_median']:>9.2f} "
            f"{e['seconds_per_edit']:>7.2f} {e['skipped_steps']:>8}"
        )
    print(f"\nVAE reconstruction (no edit): PSNR outside mask {report['vae_psnr_outside']:.2f} dB — the ceiling of a latent edit")
    if judge is not None:
        print(f"judge on the unedited sources: reads the source colour {report['judge_source_accuracy']:.1%}; "
              f"on their reconstructions reads the target colour {report['judge_recon_target_rate']:.1%}")
        main_loss = names[0]
        e = report[main_loss]
        ok_color = e["target_color_rate"] >= COLOR_BAR
        ok_psnr = e["psnr_outside_mean"] >= PSNR_BAR
        print(
            f"bars ({main_loss}): target colour {e['target_color_rate']:.1%} (≥ {COLOR_BAR:.0%}: {'PASS' if ok_color else 'FAIL'}), "
            f"PSNR outside mask {e['psnr_outside_mean']:.2f} dB (≥ {PSNR_BAR:g}: {'PASS' if ok_psnr else 'FAIL'})"
        )
        report["bars_met"] = bool(ok_color and ok_psnr)
    if args.sheet:
        contact_sheet(Path(args.sheet), data, results, args.sheet_rows)
        print(f"wrote {args.sheet}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
