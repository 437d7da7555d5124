#!/usr/bin/env python
"""Quality bars of text-to-3D: the chosen loss beside plain SDS at the same budget, over prompts and seeds.

For each prompt, seed and loss, one `ns-train nerfedit-generate` run with the toy prior (same steps), then 16
orbit views of the result (every 22.5° of azimuth at 30° elevation, the toy world's middle distance and focal)
are read by the judge:

- colour: how often the judge reads the prompted colour     (bar: ≥ 75% of the views)
- shape:  how often the judge reads the prompted shape      (bar: ≥ 50% of the views)
- floor:  how often the judge reads the prompted floor      (bar: ≥ 75% of the views, mean over a loss's runs)

Two prompt sets. The default: four prompts (the ones the defaults were tuned on), seed 0; bar: every run meets
colour and shape. `--matrix`: one prompt per world shape (5; each its own colour, the floors spread, drawn once
with a fixed seed: `nerfedit.eval.text_to_3d.matrix_prompts`) × seeds 0, 1, 2; bar: ≥ 80 % of the runs (12 of 15).

The judged views are lit as the toy world lights its objects (`lit_renders`: ambient, sky and a fixed sun; the
turntable shows the same): the judge has only ever seen lit objects, and generfacto's unlit albedo render is a
flat silhouette. The judge's reads of the unlit albedo renders are printed beside, for comparison.

    python scripts/run_text_to_3d_eval.py                          # LMC-SDS and SDS, 4 prompts (≤ 20 min, 2 cores)
    python scripts/run_text_to_3d_eval.py --matrix                 # 5 shapes × 3 seeds × 2 losses (≈ 75 min, 2 cores)
    python scripts/run_text_to_3d_eval.py --matrix --seeds 0       # one seed of it (≈ 25 min, 2 cores)
    python scripts/run_text_to_3d_eval.py --loss bridge            # SDS-Bridge instead of LMC-SDS
    python scripts/run_text_to_3d_eval.py --prompt "a yellow cylinder on grass" -- --pipeline.distill-into latent
    python scripts/run_text_to_3d_eval.py --prior /tmp/tiny --steps 3 --prompts 1 --judge none   # plumbing only

Runs go in parallel (`--workers`, one torch thread each: on 2 cores that beats one run on 2 threads). Writes
the table (stdout and `results.md`), `results.json` and a contact sheet of the judged views (`views.png`) in
`--out`. Beside the judge's reads the table gives the share of pixels the field itself covers, so that a prompt
painted on the background (no object: the judge still reads a colour) is visible as such.
Exit code 0 whether or not the bars are met (the numbers are the result); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from nerfedit.errors import UserError, exit_with
from nerfedit.eval.text_to_3d import MATRIX_RUNS_BAR, PROMPTS, markdown_table, matrix_prompts, prompted_words, summarize
from nerfedit.losses.catalog import DEFAULT_TEXT_TO_3D_LOSS, GENERATING_LOSS_NAMES

PROG = "run_text_to_3d_eval.py"
BASELINE_LOSS = "sds"
"""Plain SDS runs beside the loss under test, at the same budget."""
VIEWS = 16
ELEVATION, RADIUS, FOCAL = 30.0, 3.5, 1.5
"""The judged orbit: the middle of the toy world's camera ranges (elevation 15–50°, distance 3–4, focal 1.3–1.7)."""
COVERED = 0.5
"""A judged pixel is the field's (object px) where its accumulation exceeds this, the background's elsewhere."""
METHOD = "nerfedit-generate"
METHOD_ENV = f"{METHOD}=nerfedit.nerf.generate.config:nerfedit_generate_method"


def method_env(threads: int) -> Dict[str, str]:
    """Environment of a run: one or more torch threads, and the method registered (needed until installed)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    known = env.get("NERFSTUDIO_METHOD_CONFIGS", "")
    if f"{METHOD}=" not in known:
        env["NERFSTUDIO_METHOD_CONFIGS"] = ",".join(filter(None, [known, METHOD_ENV]))
    return env


def train(prompt: str, loss: str, seed: int, output_dir: Path, timestamp: str, args) -> Dict[str, object]:
    """One `ns-train nerfedit-generate` run, filed as nerfstudio does (OUTPUT_DIR/<prompt>/nerfedit-generate/TIMESTAMP);
    returns its config path and the seconds it took."""
    from nerfedit.nerf.generate.config import slug

    command = [
        str(Path(sys.executable).parent / "ns-train"), METHOD,
        "--pipeline.prompt", prompt,
        "--pipeline.loss.name", loss,
        "--pipeline.prior", args.prior,
        "--max-num-iterations", str(args.steps),
        "--machine.seed", str(seed),
        "--pipeline.turntable-frames", str(VIEWS),
        "--output-dir", str(output_dir), "--experiment-name", slug(prompt), "--timestamp", timestamp,
        "--vis", "tensorboard", "--logging.local-writer.enable", "False",
    ] + list(args.extra)  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=method_env(args.threads))
    seconds = time.perf_counter() - start
    config = output_dir / slug(prompt) / METHOD / timestamp / "config.yml"
    if result.returncode != 0 or not config.is_file():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"ns-train failed for '{prompt}' ({loss}, seed {seed}), exit {result.returncode}:\n{tail}")
    return {"config": config, "seconds": seconds}


def contact_sheet(path: Path, rows: List[Dict[str, object]], views: Dict[int, torch.Tensor], every: int = 2) -> None:
    """One row per run: every `every`-th judged view, labelled with the prompt, the loss, the seed and what the
    judge read (colour, shape, floor)."""
    from nerfedit.eval.sheets import Cell, contact_sheet as sheet, save_sheet

    cells, labels = [], []
    for r, row in enumerate(rows):
        read = row.get("read")
        shown = range(0, VIEWS - VIEWS % every, every)
        cells.append([Cell(views[r][v], text=" ".join(words[v].split()[0] for words in read.values()) if read else None) for v in shown])
        rates = ", ".join(f"{head} {row[f'{head}_rate']:.0%}" for head in ("color", "shape", "floor") if f"{head}_rate" in row)
        labels.append([str(row["prompt"]), f"{row['loss']} seed {row['seed']}: {rates or 'not judged'}"])
    save_sheet(path, sheet(cells, label_width=230, row_labels=labels))


def percent(row: Dict[str, object], key: str) -> str:
    """A rate of a result row as a percentage ("n/a" without a judge)."""
    return f"{row[key]:.0%}" if key in row else "n/a"


def seed_list(text: str) -> List[int]:
    """`--seeds 0,1,2` → [0, 1, 2] (an argparse type)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, not '{text}'") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"must be distinct integers, e.g. 0,1,2, not '{text}'")
    return seeds


def parse_args(argv: Optional[Sequence[str]]):
    from nerfedit.commandline import NerfeditArgumentParser

    p = NerfeditArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    under_test = tuple(name for name in GENERATING_LOSS_NAMES if name != BASELINE_LOSS)
    p.add_argument("--loss", default=DEFAULT_TEXT_TO_3D_LOSS, choices=under_test, help=f"the loss under test; plain SDS runs beside it (default: {DEFAULT_TEXT_TO_3D_LOSS})")
    p.add_argument("--prior", default="toy", help="prior name or folder (default: toy)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default: the method's --max-num-iterations)")
    p.add_argument("--matrix", action="store_true", help="one prompt per world shape (5) × seeds 0,1,2 instead of the 4 default prompts at seed 0")
    p.add_argument("--seeds", "--seed", type=seed_list, default=None, help="--machine.seed of the runs, e.g. 0,1,2 (default: 0; with --matrix 0,1,2)")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT", help="judge this prompt instead of a set (repeatable; the judge reads its colour, shape and floor words)")
    p.add_argument("--prompts", type=int, default=None, help="use the first N prompts of the set (default: all)")
    p.add_argument("--workers", type=int, default=2, help="runs in parallel (default: 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1)")
    p.add_argument("--judge", default="default", help="'default' (the shipped judge), a checkpoint path, or 'none'")
    p.add_argument("--out", default="outputs/text_to_3d_eval", help="folder of the runs, results.json/.md and views.png")
    p.add_argument("extra", nargs="*", help="more ns-train flags after --, e.g. -- --pipeline.datamanager.train-resolution 32")
    args = p.parse_args(argv)
    if args.prompt and args.matrix:
        p.error("--prompt and --matrix are two prompt sets: give one")
    args.prompt_set = [" ".join(text.split()) for text in args.prompt] if args.prompt else matrix_prompts() if args.matrix else list(PROMPTS)
    if not all(args.prompt_set):
        p.error("--prompt: empty prompt")
    args.seeds = args.seeds or ([0, 1, 2] if args.matrix else [0])
    args.prompts = args.prompts or len(args.prompt_set)
    if args.steps is not None and args.steps <= 0 or args.workers <= 0 or args.threads <= 0 or not 0 < args.prompts <= len(args.prompt_set):
        p.error(f"--steps, --workers, --threads must be positive and --prompts between 1 and {len(args.prompt_set)}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return evaluate(args)
    except UserError as error:
        exit_with(error, PROG)
    return 2


def evaluate(args) -> int:
    from nerfedit.eval.judging import load_judge_option, read_and_score
    from nerfedit.eval.orbit import generated_renders

    from nerfedit.nerf.common.validate import check_prior, check_words
    from nerfedit.nerf.generate.config import nerfedit_generate_config

    folder = check_prior(args.prior, None, "auto")
    check_words(folder, args.prior, {"--prompt": " ".join(args.prompt_set)})
    judge = load_judge_option(args.judge)
    args.steps = args.steps or nerfedit_generate_config().max_num_iterations
    out = Path(args.out)
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    losses = [args.loss, BASELINE_LOSS]
    jobs = [(prompt, seed, loss) for seed in args.seeds for prompt in args.prompt_set[: args.prompts] for loss in losses]
    print(f"{len(jobs)} runs of {args.steps} steps (prior {args.prior}, seeds {args.seeds}), {args.workers} at a time on {args.threads} thread(s) each")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(train, prompt, loss, seed, out / loss / f"seed{seed}", stamp, args) for prompt, seed, loss in jobs]
        runs = [future.result() for future in futures]
    train_seconds = time.perf_counter() - start

    os.environ.update({k: v for k, v in method_env(args.threads).items() if k == "NERFSTUDIO_METHOD_CONFIGS"})
    torch.set_num_threads(max(1, args.threads * args.workers))
    rows: List[Dict[str, object]] = []
    views: Dict[int, torch.Tensor] = {}
    for i, ((prompt, seed, loss), run) in enumerate(zip(jobs, runs)):
        rendered = generated_renders(run["config"], VIEWS, ELEVATION, RADIUS, FOCAL)
        views[i] = rendered["lit"]
        row: Dict[str, object] = {
            "prompt": prompt, "loss": loss, "seed": seed, "seconds": run["seconds"], "run": str(run["config"].parent),
            "object_pixels": float((rendered["accumulation"] > COVERED).float().mean()),
            "background_rgb": background_colour(rendered),
        }  # fmt: skip
        if judge is not None:
            for key, images in (("", views[i]), ("albedo_", rendered["rgb"].clamp(0, 1))):
                row.update({f"{key}{name}": value for name, value in read_and_score(judge, images, prompted_words(prompt)).items()})
        rows.append(row)
    total_seconds = time.perf_counter() - start

    print_rows(rows)
    report: Dict[str, object] = {
        "steps": args.steps, "seeds": args.seeds, "prior": args.prior, "views": VIEWS, "elevation": ELEVATION,
        "matrix": args.matrix, "workers": args.workers, "threads": args.threads, "extra": list(args.extra),
        "train_seconds": train_seconds, "total_seconds": total_seconds, "runs": rows,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    if judge is not None:
        summaries = {loss: summarize([r for r in rows if r["loss"] == loss], MATRIX_RUNS_BAR if args.matrix else 1.0) for loss in losses}
        print()
        for loss, s in summaries.items():
            print(
                f"{loss:<7} runs meeting colour ≥ 75 % and shape ≥ 50 %: {s['bars_met']} / {s['runs']} (bar {s['runs_needed']}); "
                f"mean colour {s['mean_color']:.0%}, shape {s['mean_shape']:.0%}, floor agreement {s['mean_floor']:.0%} (bar 75 %)"
            )
        report.update(summaries)
        mine = summaries[args.loss]
        report["bars_met"] = bool(mine["runs_pass"] and mine["floor_pass"])
        print(f"bars ({args.loss}): runs {'PASS' if mine['runs_pass'] else 'FAIL'}, floor {'PASS' if mine['floor_pass'] else 'FAIL'}")
        (out / "results.md").write_text(markdown_table(rows, summaries))
    print(f"\nwall time: {total_seconds / 60:.1f} min (training {train_seconds / 60:.1f} min)")
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    contact_sheet(out / "views.png", rows, views)
    print(f"wrote {out / 'results.json'}, results.md (with a judge) and {out / 'views.png'}")
    return 0


def background_colour(rendered: Dict[str, torch.Tensor]) -> List[float]:
    """Mean RGB of the judged (lit) views where the field covers nothing (accumulation ≤ `COVERED`): the floor and
    the sky behind it, to see where a floor went when the judge does not read the prompted one."""
    empty = (rendered["accumulation"] <= COVERED).expand_as(rendered["lit"])
    return [round(float(channel[mask].mean()), 3) if mask.any() else float("nan") for channel, mask in zip(rendered["lit"].unbind(1), empty.unbind(1))]


def print_rows(rows: Sequence[Dict[str, object]]) -> None:
    """The table of runs on stdout: the lit views' reads (the bars), the unlit ones', the field's coverage, time."""
    print()
    print(f"{'prompt':<40} {'loss':<7} {'seed':>4} {'colour':>7} {'shape':>7} {'floor':>7} {'unlit c/s/f':>17} {'object px':>10} {'background RGB':>20} {'train s':>8}")
    for row in rows:
        unlit = " / ".join(percent(row, f"albedo_{head}_rate") for head in ("color", "shape", "floor"))
        print(
            f"{row['prompt']:<40} {row['loss']:<7} {row['seed']:>4} {percent(row, 'color_rate'):>7} {percent(row, 'shape_rate'):>7} "
            f"{percent(row, 'floor_rate'):>7} {unlit:>17} {row['object_pixels']:>10.0%} {str(tuple(row['background_rgb'])):>20} {row['seconds']:>8.0f}"
        )
    print("(colour, shape, floor: judge's reads of the lit views, which the bars are on; unlit: of the albedo renders.\n"
          " object px: share of the judged pixels the field covers (accumulation > 0.5): near 0 means the\n"
          " prompt was painted on the background and the colour/shape reads are not of an object;\n"
          " background RGB: mean of the lit views where the field covers nothing, i.e. the floor and sky)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
