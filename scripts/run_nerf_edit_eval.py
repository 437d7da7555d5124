#!/usr/bin/env python
"""Scripted full run of `ns-train nerfedit-small` on a scene, scored on held-out views; or a sweep over fresh scenes.

One scene: reconstructs it (no source model is shipped), edits its object's colour (or its floor) with the toy prior
(`ns-train nerfedit-small`'s defaults: DDS, appearance only), then renders held-out views that no training camera saw and measures the bars:

    colour edit   colour: the judge reads the target colour on the edited renders      bar ≥ 85 % of views
                  shape:  the judge reads the original shape on the edited renders     bar ≥ 90 % of views
                  PSNR:   edited vs source renders, pixels outside the object mask      bar ≥ 25 dB (mean of views)
    floor edit    floor:  the judge reads the target floor                              bar ≥ 80 % of views
                  object kept: the judge reads the original shape AND colour            bar ≥ 90 % of views
                  PSNR inside the object mask (edited vs source; reported, no bar)

Beside them, multi-view consistency (`nerfedit/eval/consistency.py`): how often the colour read agrees between
neighbouring held-out views, and the depth-warp PSNR between 10°-apart view pairs, edited beside source.

    python scripts/run_nerf_edit_eval.py                     # red cube → blue cube, ~15–25 min of one core
    python scripts/run_nerf_edit_eval.py --scene scenes/yellow_sphere --target-color purple
    python scripts/run_nerf_edit_eval.py --edit floor --target-floor grass
    python scripts/run_nerf_edit_eval.py --skip-training outputs/nerf_edit_eval/eval/nerfedit-small/<timestamp>

Writes eval.json, a GT | source | edited contact sheet and eval_renders.npz into the run folder; exit code 0
when every bar passes.

Sweep: N fresh scenes (`nerfedit world scene` with a random shape, colour and floor, seeded by S), each run with
the recipe and scoring above, `--workers` runs at a time (each one thread), resumable (a run whose folder has
eval.json is not rerun); with `--edits color,floor` a scene's floor edit re-edits its colour edit's reconstruction
(`--load-dir … --pipeline.reuse-source True`, as a user re-edits a scene) after every colour edit has run:

    python scripts/run_nerf_edit_eval.py --sweep 6 --seed 0                 # colour edits, ~60–80 min on 2 cores
    python scripts/run_nerf_edit_eval.py --sweep 6 --seed 0 --edits color,floor --out outputs/sweep_cf
    python scripts/run_nerf_edit_eval.py --sweep 2 --seed 0 --reconstruct-steps 30 --edit-steps 5 --views 4   # plumbing

Writes sweep.md (per-run table and aggregate), sweep.json and sweep.png into the output folder; exit code 0 when
every run passes every bar.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def train(command, run: Path, threads: int) -> None:
    """Run `ns-train` into `run` (its log beside the run); SystemExit when it fails."""
    print("$ OMP_NUM_THREADS=%d %s" % (threads, " ".join(f"'{c}'" if " " in c else c for c in command)), flush=True)
    run.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with open(run / "ns-train.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"ns-train failed (exit {result.returncode}); see {run / 'ns-train.log'}")


def contact_sheet(gt: torch.Tensor, source: torch.Tensor, edited: torch.Tensor, path: Path, views: int = 8) -> None:
    """GT | source | edited, one held-out view a row."""
    from nerfedit.eval.sheets import Cell, contact_sheet as sheet, save_sheet

    rows = [[Cell(gt[i]), Cell(source[i]), Cell(edited[i])] for i in range(min(views, len(gt)))]
    save_sheet(path, sheet(rows, gap=0))


def save_renders(path: Path, **images: torch.Tensor) -> None:
    """Images [N, 3, H, W] in [0, 1] as uint8 [N, H, W, 3] arrays of one npz (the sweep's sheet reads them)."""
    arrays = {name: (x.permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8) for name, x in images.items()}
    np.savez_compressed(path, **arrays)


def evaluate_scene(args: argparse.Namespace) -> int:
    """The single-scene mode: train (unless --skip-training), render, score, write, print."""
    from nerfedit.eval.consistency import z_depth_from_ray_distance
    from nerfedit.eval.nerf_edit import EditSpec, held_out_cameras, report_lines, run_folder, score_edit, train_command
    from nerfedit.eval.orbit import edit_renders, load_run, run_frame_cameras, run_scale
    from nerfedit.judge.model import load_judge
    from nerfedit.world.scene import load_scene, render_views

    started = time.time()
    scene = load_scene(args.scene)
    size = int(scene["size"])
    edit = EditSpec(scene["object"], args.edit, args.target_color if args.edit == "color" else args.target_floor)

    if args.skip_training is None:
        run = run_folder(args.out, args.timestamp)
        command = train_command(sys.executable, args.scene, args.out, args.timestamp, edit, args.prior,
                                args.reconstruct_steps, args.edit_steps, args.extra)
        train(command, run, args.threads)
    else:
        run = args.skip_training.resolve()
    train_seconds = time.time() - started

    importlib.import_module("nerfedit.nerf")  # for its side effect: the run-time CPU workarounds

    pipeline, step = load_run(run / "config.yml")
    cameras = held_out_cameras(args.views, args.seed)
    renders = edit_renders(pipeline, run_frame_cameras(cameras, run, size, pipeline.device), scale=run_scale(run))
    focal_px = cameras[0].focal * size
    for name in ("source", "edited"):
        renders[f"{name}_depth"] = z_depth_from_ray_distance(renders[f"{name}_depth"], focal_px)
    world = render_views(edit.obj, cameras, size)
    truth = {"images": torch.from_numpy(world["images"]).permute(0, 3, 1, 2).float(), "masks": torch.from_numpy(world["masks"])}

    results = {"scene": str(args.scene), "run": str(run), "checkpoint_step": step, "held_out_seed": args.seed}
    results.update(score_edit(edit, renders, truth, load_judge(), cameras, size))
    scored = slice(0, args.views)
    contact_sheet(truth["images"][scored], renders["source"][scored], renders["edited"][scored], run / "eval_views.png")
    save_renders(run / "eval_renders.npz", gt=truth["images"][scored], source=renders["source"][scored], edited=renders["edited"][scored])
    results["seconds"] = {"train": round(train_seconds, 1), "total": round(time.time() - started, 1)}
    (run / "eval.json").write_text(json.dumps(results, indent=1))

    print()
    print("\n".join(report_lines(results)) + f"\n  run: {run}")
    print(f"  time: {results['seconds']['train']:.0f} s training (reconstruction + edit), {results['seconds']['total']:.0f} s total")
    return 0 if results["passed"] else 1


def sweep(args: argparse.Namespace) -> int:
    """The sweep mode: fresh scenes, one single-scene run each (this script, in parallel), then the summary."""
    from nerfedit.eval.nerf_sweep import run_sweep, sample_sweep, write_summary

    runs = sample_sweep(args.sweep, args.seed, args.edits.split(","))
    out = Path(args.out).resolve()
    settings = ["--reconstruct-steps", str(args.reconstruct_steps), "--edit-steps", str(args.edit_steps),
                "--views", str(args.views), "--prior", args.prior]

    def command(run, scene_dir: Path, run_out: Path, source_models):
        reuse = ["--load-dir", str(source_models), "--pipeline.reuse-source", "True"] if source_models else []
        return [sys.executable, str(Path(__file__).resolve()), "--scene", str(scene_dir), "--edit", run.kind,
                "--target-color" if run.kind == "color" else "--target-floor", run.target, "--out", str(run_out),
                "--timestamp", "sweep", "--seed", str(run.held_out_seed), "--threads", "1", *settings, "--", *reuse, *args.extra]

    results = run_sweep(runs, out, command, workers=args.workers, scene_views=args.scene_views)
    summary = write_summary(results, out)
    print("\n" + summary)
    print(f"wrote {out / 'sweep.md'}, {out / 'sweep.json'}, {out / 'sweep.png'}")
    return 0 if results and all(r.get("passed") for r in results) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", type=Path, default=REPO / "scenes" / "red_cube")
    parser.add_argument("--edit", choices=("color", "floor"), default="color", help="what the target prompt changes")
    parser.add_argument("--target-color", default="blue")
    parser.add_argument("--target-floor", default="grass")
    parser.add_argument("--prior", default="toy")
    parser.add_argument("--out", type=Path, default=None, help="default outputs/nerf_edit_eval (outputs/nerf_sweep with --sweep)")
    parser.add_argument("--timestamp", default=time.strftime("%Y-%m-%d_%H%M%S"))
    parser.add_argument("--reconstruct-steps", type=int, default=1200)
    parser.add_argument("--edit-steps", type=int, default=400)
    parser.add_argument("--views", type=int, default=24, help="scored held-out views (≥ 16 for the bars), each with a 10° partner")
    parser.add_argument("--seed", type=int, default=1234, help="seeds the held-out cameras (with --sweep: the scenes, edits and cameras)")
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads (1 is fastest on a busy 2-core machine)")
    parser.add_argument("--skip-training", type=Path, default=None, help="score an existing run folder instead")
    parser.add_argument("--sweep", type=int, default=0, metavar="N", help="evaluate N fresh random scenes instead of --scene")
    parser.add_argument("--edits", default="color", help="with --sweep: comma-separated edit kinds run on every scene (color,floor)")
    parser.add_argument("--workers", type=int, default=2, help="with --sweep: runs at a time, one thread each")
    parser.add_argument("--scene-views", type=int, default=32, help="with --sweep: training views per scene (as scenes/)")
    parser.add_argument("extra", nargs="*", help="more ns-train flags, after --")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = REPO / "outputs" / ("nerf_sweep" if args.sweep else "nerf_edit_eval")
    torch.set_num_threads(args.threads)
    return sweep(args) if args.sweep else evaluate_scene(args)


if __name__ == "__main__":
    sys.exit(main())
