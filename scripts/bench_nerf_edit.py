#!/usr/bin/env python
"""Time one nerfedit edit step on the CPU and split it: source, render, encode, loss (UNet), backward.

Splits: geometry (appearance-only: the frozen samples/weights/features of the view, cached per
view), source (render + encode of the source view, cached), render (target RGB with a graph),
encode (VAE encoder; --distill-into field only), loss (the loss core: UNet calls; with views, the view's
--pipeline.view-steps-per-visit latent steps and the decode of its edit), backward (into the field) + Adam step.

Builds the `nerfedit-small` pipeline in-process on a bundled scene with the toy prior, freezes the
source, and runs edit steps exactly as training does (the pipeline's `edit_step`, which back-propagates, then
an Adam step, as the trainer's iteration). Steps cycle through the training views, so the first epoch renders and encodes each
view's source once and later epochs hit the cache: the source side is reported for both.

    python scripts/bench_nerf_edit.py                      # toy prior, 64×64, the default loss (DDS), appearance-only and full
    python scripts/bench_nerf_edit.py --load-dir outputs/…/nerfstudio_models --steps 40 --threads 2

Target (issue 4): ≤ 1.5 s per step on 2 CPU cores with the toy prior at 64×64.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from nerfedit.losses.catalog import DEFAULT_NERF_LOSS

REPO = Path(__file__).resolve().parents[1]


def build(args: argparse.Namespace, appearance_only: bool):
    import nerfedit.nerf  # noqa: F401  (run-time CPU workarounds)
    from nerfedit.nerf.edit.method_configs import nerfedit_small_config

    config = nerfedit_small_config()
    pipeline_config = config.pipeline
    pipeline_config.datamanager.data = args.data
    pipeline_config.prior = args.prior
    pipeline_config.loss.name = args.loss
    pipeline_config.source_prompt = "a red cube on a wooden floor"
    pipeline_config.target_prompt = "a blue cube on a wooden floor"
    pipeline_config.edit_resolution = args.resolution
    pipeline_config.edit_appearance_only = appearance_only
    pipeline_config.distill_into = args.distill_into
    pipeline = pipeline_config.setup(device="cpu", test_mode="val")
    if args.load_dir is not None:
        from nerfedit.nerf.edit.source import checkpoint_path

        path, _ = checkpoint_path(args.load_dir)
        state = torch.load(path, map_location="cpu")
        pipeline.load_pipeline(state["pipeline"], state["step"])
    if not pipeline.model.source_frozen:
        pipeline.model.freeze_source(0)
    pipeline.train()
    pipeline.prepare_edit()  # freezes what the edit must not touch, as the trainer's first edit step
    params = [p for p in pipeline.model.parameters() if p.requires_grad and p.numel()]
    optimizer = torch.optim.Adam(params, lr=1e-2, eps=1e-15)
    pipeline.edit_step(int(pipeline.model.edit_start_step))  # warm-up (its gradients are cleared before each timed step)
    return pipeline, optimizer


def bench(args: argparse.Namespace, appearance_only: bool) -> dict:
    pipeline, optimizer = build(args, appearance_only)
    views = len(pipeline.datamanager.train_dataset.cameras)
    start = int(pipeline.model.edit_start_step)
    rows = []
    for i in range(args.steps):
        step = start + 1 + i
        renders_before = pipeline.datamanager.stats["source_renders"]
        clock = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        pipeline.edit_step(step)  # render → encode → loss → backward
        edit = time.perf_counter() - clock
        clock = time.perf_counter()
        optimizer.step()
        adam = time.perf_counter() - clock
        timings = dict(pipeline.last_timings)
        timings["backward"] = adam + timings.pop("backward", 0.0)
        timings["total"] = edit + adam
        timings["source_cached"] = pipeline.datamanager.stats["source_renders"] == renders_before
        rows.append(timings)

    def mean(key, rows_=rows):
        values = [r[key] for r in rows_ if key in r]
        return round(statistics.mean(values), 3) if values else None

    cached = [r for r in rows if r["source_cached"]]
    fresh = [r for r in rows if not r["source_cached"]]
    return {
        "mode": "appearance-only" if appearance_only else "full field",
        "steps": len(rows),
        "views": views,
        "s_per_step": mean("total"),
        "split_s": {k: mean(k) for k in ("geometry", "source", "render", "encode", "loss", "backward") if mean(k) is not None},
        "source_s_first_visit": mean("source", fresh),
        "source_s_cached": mean("source", cached),
        "geometry_s_first_visit": mean("geometry", fresh),
        "geometry_s_cached": mean("geometry", cached),
        "s_per_step_cached_source": mean("total", cached),
        "cached_steps": len(cached),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "scenes" / "red_cube")
    parser.add_argument("--prior", default="toy", help="toy | a local diffusers folder")
    parser.add_argument("--loss", default=DEFAULT_NERF_LOSS, help=f"(default: {DEFAULT_NERF_LOSS}, ns-train nerfedit's)")
    parser.add_argument("--resolution", type=int, default=64, help="edit render resolution (pixels)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per mode (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    parser.add_argument("--load-dir", type=Path, default=None, help="a nerfedit/nerfacto checkpoint folder (default: untrained field)")
    parser.add_argument("--mode", choices=["both", "appearance", "full"], default="both")
    parser.add_argument("--distill-into", choices=["views", "field"], default="views", help="the edit's route (default: views, the pipeline's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    modes = {"both": [True, False], "appearance": [True], "full": [False]}[args.mode]
    results = []
    for appearance_only in modes:
        result = bench(args, appearance_only)
        results.append(result)
        split = ", ".join(f"{k} {v:.3f}" for k, v in result["split_s"].items())
        print(
            f"{result['mode']:>15}: {result['s_per_step']:.3f} s/step over {result['steps']} steps "
            f"({split}); source: {result['source_s_first_visit']} s first visit, {result['source_s_cached']} s cached; "
            f"{result['s_per_step_cached_source']} s/step once cached",
            flush=True,
        )
    print(json.dumps({"prior": args.prior, "loss": args.loss, "distill_into": args.distill_into, "resolution": args.resolution, "threads": args.threads, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
