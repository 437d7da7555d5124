#!/usr/bin/env python
"""Scripted full run of `ns-train nerfedit-small` on a bundled scene, scored on held-out views.

One command: reconstructs the scene (no source model is shipped), edits its object's colour with the
toy prior (CDS, appearance only), then renders ≥ 16 held-out views that no training camera saw and
measures the issue's bars:

    colour   the judge reads the target colour on the edited renders          bar ≥ 80 % of views
    shape    the judge reads the original shape on the edited renders         bar ≥ 90 % of views
    PSNR     edited vs source renders, pixels outside the object mask         bar ≥ 25 dB

    python scripts/run_nerf_edit_eval.py                     # red cube → blue cube, ~15 min on 2 cores
    python scripts/run_nerf_edit_eval.py --scene scenes/yellow_sphere --target-color purple

Prints the numbers (and writes eval.json and a GT | source | edited contact sheet into the run
folder). Exit code 0 when every bar passes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parents[1]

EDIT_ARGS = [
    "--pipeline.loss.name", "cds",
    "--pipeline.edit-appearance-only", "True",
    "--pipeline.edit-lr", "0.01",
    "--pipeline.novel-view-prob", "0.0",
]  # fmt: skip
"""The edit recipe this evaluation measures (beside steps, prompts and prior)."""

BARS = {"color": 0.80, "shape": 0.90, "psnr_outside": 25.0}


def run_training(args: argparse.Namespace, source_prompt: str, target_prompt: str) -> Path:
    """`ns-train nerfedit-small …` as a user types it; returns the run folder."""
    out = Path(args.out).resolve()
    command = [
        str(Path(sys.executable).parent / "ns-train"), "nerfedit-small",
        "--data", str(args.scene),
        "--output-dir", str(out),
        "--experiment-name", "eval",
        "--timestamp", args.timestamp,
        "--vis", "tensorboard",
        "--steps-per-eval-batch", "0", "--steps-per-eval-image", "0", "--steps-per-eval-all-images", "0",
        "--pipeline.prior", args.prior,
        "--pipeline.source-prompt", source_prompt,
        "--pipeline.target-prompt", target_prompt,
        "--pipeline.reconstruct-steps", str(args.reconstruct_steps),
        "--pipeline.edit-steps", str(args.edit_steps),
        *EDIT_ARGS,
        *args.extra,
    ]  # fmt: skip
    run = out / "eval" / "nerfedit-small" / args.timestamp
    print("$ OMP_NUM_THREADS=%d %s" % (args.threads, " ".join(f"'{c}'" if " " in c else c for c in command)), flush=True)
    run.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with open(run / "ns-train.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"ns-train failed (exit {result.returncode}); see {run / 'ns-train.log'}")
    return run


def held_out_cameras(views: int, seed: int):
    """Orbit cameras at seeded azimuths/elevations, none of them a training view."""
    from nerfedit.world.scene import orbit_cameras

    return orbit_cameras(views, seed=seed, elevation_range=(20.0, 50.0))


def contact_sheet(gt: torch.Tensor, source: torch.Tensor, edited: torch.Tensor, path: Path, views: int = 8) -> None:
    """GT | source | edited, one held-out view a row, ×2."""
    from nerfedit.eval.sheets import Cell, contact_sheet as sheet, save_sheet

    rows = [[Cell(gt[i]), Cell(source[i]), Cell(edited[i])] for i in range(min(views, len(gt)))]
    save_sheet(path, sheet(rows, gap=0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", type=Path, default=REPO / "scenes" / "red_cube")
    parser.add_argument("--target-color", default="blue")
    parser.add_argument("--prior", default="toy")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "nerf_edit_eval")
    parser.add_argument("--timestamp", default=time.strftime("%Y-%m-%d_%H%M%S"))
    parser.add_argument("--reconstruct-steps", type=int, default=1200)
    parser.add_argument("--edit-steps", type=int, default=400)
    parser.add_argument("--views", type=int, default=24, help="held-out views (≥ 16)")
    parser.add_argument("--seed", type=int, default=1234, help="seeds the held-out cameras")
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads (1 is fastest on a busy 2-core machine)")
    parser.add_argument("--skip-training", type=Path, default=None, help="score an existing run folder instead")
    parser.add_argument("extra", nargs="*", help="more ns-train flags, after --")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()

    import nerfedit.nerf  # noqa: F401  (run-time CPU workarounds)
    from nerfedit.eval.judging import agreement, read
    from nerfedit.eval.masks import dilate
    from nerfedit.eval.orbit import edit_renders, load_run, run_frame_cameras
    from nerfedit.eval.psnr import psnr_outside_summary
    from nerfedit.judge.model import load_judge
    from nerfedit.world.render import ObjectSpec
    from nerfedit.world.scene import load_scene, render_views
    from nerfedit.world.vocab import caption

    scene = load_scene(args.scene)
    obj: ObjectSpec = scene["object"]
    size = int(scene["size"])
    source_prompt = caption(obj.shape, obj.color, obj.floor, template=0)
    target_prompt = caption(obj.shape, args.target_color, obj.floor, template=0)

    if args.skip_training is None:
        run = run_training(args, source_prompt, target_prompt)
    else:
        run = args.skip_training.resolve()
    train_seconds = time.time() - started

    pipeline, step = load_run(run / "config.yml")
    orbit = held_out_cameras(args.views, args.seed)
    renders = edit_renders(pipeline, run_frame_cameras(orbit, run, size, pipeline.device))
    truth = render_views(obj, orbit, size)
    gt = torch.from_numpy(truth["images"]).permute(0, 3, 1, 2).float()
    masks = torch.from_numpy(truth["masks"])

    judge = load_judge()
    verdict = {name: read(judge, images) for name, images in (("gt", gt), ("source", renders["source"]), ("edited", renders["edited"]))}
    edited = verdict["edited"]
    results = {
        "scene": str(args.scene),
        "source_prompt": source_prompt,
        "target_prompt": target_prompt,
        "run": str(run),
        "checkpoint_step": step,
        "views": args.views,
        "color_rate": agreement(edited["color"], args.target_color),
        "shape_rate": agreement(edited["shape"], obj.shape),
        "psnr_outside": psnr_outside_summary(renders["edited"], renders["source"], masks),
        "psnr_outside_dilated_2px": psnr_outside_summary(renders["edited"], renders["source"], dilate(masks, 2)),
        "reference": {
            "gt_color_rate": agreement(verdict["gt"]["color"], obj.color),
            "gt_shape_rate": agreement(verdict["gt"]["shape"], obj.shape),
            "source_color_rate": agreement(verdict["source"]["color"], obj.color),
            "source_shape_rate": agreement(verdict["source"]["shape"], obj.shape),
            "source_psnr_vs_gt": psnr_outside_summary(renders["source"], gt, torch.zeros_like(masks))["pooled"],
            "edited_colors": edited["color"],
        },
        "seconds": {"train": round(train_seconds, 1), "total": None},
    }
    results["pass"] = {
        "color": results["color_rate"] >= BARS["color"],
        "shape": results["shape_rate"] >= BARS["shape"],
        "psnr_outside": results["psnr_outside"]["mean_of_views"] >= BARS["psnr_outside"],
    }
    contact_sheet(gt, renders["source"], renders["edited"], run / "eval_views.png")
    results["seconds"]["total"] = round(time.time() - started, 1)
    (run / "eval.json").write_text(json.dumps(results, indent=1))

    print(f"\nnerfedit eval: {source_prompt!r} → {target_prompt!r} on {args.views} held-out views ({run})")
    print(f"  colour: judge reads '{args.target_color}' on {results['color_rate']:.0%} of edited views   (bar ≥ {BARS['color']:.0%})  {'PASS' if results['pass']['color'] else 'FAIL'}")
    print(f"  shape:  judge reads '{obj.shape}' on {results['shape_rate']:.0%} of edited views      (bar ≥ {BARS['shape']:.0%})  {'PASS' if results['pass']['shape'] else 'FAIL'}")
    p = results["psnr_outside"]
    print(f"  PSNR edited vs source outside the object: {p['mean_of_views']:.1f} dB mean, {p['pooled']:.1f} dB pooled, {p['worst_view']:.1f} dB worst   (bar ≥ {BARS['psnr_outside']:.0f} dB)  {'PASS' if results['pass']['psnr_outside'] else 'FAIL'}")
    ref = results["reference"]
    print(f"  reference: GT judged {ref['gt_color_rate']:.0%} colour / {ref['gt_shape_rate']:.0%} shape; source renders {ref['source_color_rate']:.0%} / {ref['source_shape_rate']:.0%}; source vs GT PSNR {ref['source_psnr_vs_gt']:.1f} dB")
    print(f"  time: {results['seconds']['train']:.0f} s training (reconstruction + edit), {results['seconds']['total']:.0f} s total")
    return 0 if all(results["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
