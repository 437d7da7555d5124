#!/usr/bin/env python
"""Method tables: every loss side by side, one command, Markdown tables and PNGs the README quotes.

Tables (`--tables`, comma-separated; each is built by the project's own evaluation of that task, at the defaults a
user runs, and states its machine, seeds and command):

    speed       time per step and peak memory of every loss, our DDS and CDS against the official code's arrangement
                of the same step (bench_losses.py)                                            ~2 min on the toy prior
    edit        2D editing: held-out colour/shape/floor swaps, every loss (eval_edit.py, full captions): success,
                keep PSNR outside the object, SSIM, time per edit; with the speed table's ms/step and peak MB
    cfg         the CFG-scale sweep of DDS and CDS as success against preservation (the LMC-SDS paper's Fig. 5
                trade-off): cfg_tradeoff.png and a table
    generate    text-to-image by optimisation per generating loss (generate-image's defaults), one prompt per world
                shape, read by the judge: generate.png and a table
    nerf        NeRF colour edits per loss on the bundled scenes (run_nerf_edit_eval.py; hours on a CPU)
    text_to_3d  text-to-3D per generating loss (run_text_to_3d_eval.py, SDS beside each; hours on a CPU)

    python scripts/bench_methods.py --out outputs/methods                             # speed, edit, cfg, generate
    python scripts/bench_methods.py --out outputs/methods --tables nerf,text_to_3d    # the long ones
    python scripts/bench_methods.py --out /tmp/m --prior /tmp/tiny --judge none --num 3 --steps 2 --tables speed,edit,cfg,generate

Writes methods.md (every table built in this run), methods.json, and the PNGs into --out; a table's sub-runs keep
their own folders (edit/, cfg/<scale>/, nerf/, text_to_3d/). Exit code 0; 2 on bad input, before any work.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Sequence

from nerfedit.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TABLES = ("speed", "edit", "cfg", "generate", "nerf", "text_to_3d")
DEFAULT_TABLES = "speed,edit,cfg,generate"
DEFAULT_SCALES = "1.5,2.5,5,7.5,15"
NERF_EDITS = (("scenes/red_cube", "blue"), ("scenes/yellow_sphere", "purple"))
"""The bundled scenes and their README colour edits."""


def script(name: str) -> ModuleType:
    """A sibling script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from nerfedit.commandline import NerfeditArgumentParser, add_overwrite_option

    p = NerfeditArgumentParser(prog="bench_methods.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tables", default=DEFAULT_TABLES, help=f"comma-separated, of {', '.join(TABLES)} (default: {DEFAULT_TABLES})")
    p.add_argument("--prior", default="toy", help="prior name or folder (default: toy)")
    p.add_argument("--losses", default="all", help="comma-separated losses of every table, or 'all' (default: all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds of the edits and images (default: 0)")
    p.add_argument("--num", type=int, default=32, help="held-out 2D pairs of the edit table (default: 32; the cfg sweep uses half)")
    p.add_argument("--scales", default=DEFAULT_SCALES, help=f"guidance scales of the cfg sweep (default: {DEFAULT_SCALES})")
    p.add_argument("--steps", type=int, default=None, help="override every run's steps (plumbing runs only; labelled)")
    p.add_argument("--judge", default="default", help="'default' (the shipped judge), a checkpoint path, or 'none'")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    add_overwrite_option(p)
    args = p.parse_args(argv)
    args.table_list = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in args.table_list if t not in TABLES]
    if unknown or not args.table_list:
        p.error(f"--tables {args.tables!r}: use a comma-separated list of {', '.join(TABLES)}")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",")]
        args.scale_list = [float(s) for s in args.scales.split(",")]
    except ValueError:
        p.error("--seeds takes integers and --scales numbers, comma-separated")
    from nerfedit.losses.catalog import LOSS_NAMES

    args.loss_list = list(LOSS_NAMES) if args.losses == "all" else [n.strip() for n in args.losses.split(",") if n.strip()]
    if not args.loss_list or any(n not in LOSS_NAMES for n in args.loss_list):
        p.error(f"--losses {args.losses!r}: use 'all' or a comma-separated list of {', '.join(LOSS_NAMES)}")
    if args.num < 2 or (args.steps is not None and args.steps <= 0):
        p.error("--num must be ≥ 2 and --steps positive")
    out = Path(args.out)
    if (out / "methods.md").exists() and not args.overwrite:
        p.error(f"{out / 'methods.md'} exists; pass --overwrite or choose another --out")
    return args


def edit_argv(args: argparse.Namespace, out: Path, losses: str, num: int, extra: Sequence[str] = ()) -> List[str]:
    """eval_edit.py's command line for one table's run (full captions, this run's seeds)."""
    argv = ["--prior", args.prior, "--losses", losses, "--seeds", args.seeds, "--prompts", "full", "--num", str(num),
            "--judge", args.judge, "--out", str(out), "--quiet", *extra]  # fmt: skip
    if args.steps:
        argv += ["--steps", str(args.steps)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return argv + (["--overwrite"] if args.overwrite else [])


def speed_table(args, out: Path) -> Dict[str, object]:
    """bench_losses.py on the prior: every loss, and the official DDS/CDS arrangements beside ours."""
    bench = script("bench_losses")
    argv = ["--prior", args.prior, "--steps", "10", "--warmup", "2", "--losses", ",".join(args.loss_list)]
    options = bench.parse_args(argv + (["--threads", str(args.threads)] if args.threads else []))
    return {"command": "python scripts/bench_losses.py " + " ".join(argv), "result": bench.run_bench(options)}


def edit_table(args, out: Path) -> Dict[str, object]:
    """eval_edit.py over every loss; its summary and timing."""
    argv = edit_argv(args, out / "edit", args.losses, args.num, ["--sheet", str(out / "edit" / "sheet.png")])
    script("eval_edit").main(argv)
    return {"command": "python scripts/eval_edit.py " + shlex.join(argv), **_results(out / "edit")}


def cfg_table(args, out: Path) -> Dict[str, object]:
    """eval_edit.py for DDS and CDS at every guidance scale of --scales, on half the edit table's pairs."""
    runs, commands = {}, []
    for scale in args.scale_list:
        argv = edit_argv(args, out / "cfg" / f"{scale:g}", ",".join(n for n in ("dds", "cds") if n in args.loss_list) or "dds,cds", max(2, args.num // 2), ["--guidance-scale", f"{scale:g}"])
        script("eval_edit").main(argv)
        runs[scale] = _results(out / "cfg" / f"{scale:g}")
        commands.append("python scripts/eval_edit.py " + shlex.join(argv))
    return {"commands": commands, "runs": {f"{s:g}": r for s, r in runs.items()}, "by_scale": runs}


def generate_table(args, out: Path) -> Dict[str, object]:
    """Text-to-image per generating loss: one prompt per world shape (text_to_3d.matrix_prompts) at every seed."""
    import torch

    from nerfedit.eval.generation import generate_and_judge
    from nerfedit.eval.judging import load_judge_option
    from nerfedit.eval.sheets import Cell, contact_sheet, save_sheet
    from nerfedit.eval.text_to_3d import matrix_prompts
    from nerfedit.losses.catalog import GENERATING_LOSS_NAMES
    from nerfedit.priors import load_prior

    if args.threads:
        torch.set_num_threads(args.threads)
    prior, prompts = load_prior(args.prior), matrix_prompts()
    judge = load_judge_option(args.judge)
    runs, rows = {}, []
    for loss in [n for n in GENERATING_LOSS_NAMES if n in args.loss_list]:
        try:
            run = generate_and_judge(prior, judge, loss, prompts, args.seed_list, steps=args.steps)
        except UserError as error:  # LMC-SDS needs a corrective trained for the prior
            print(f"left out {loss}: {error}")
            continue
        rows.append([Cell(image, text=loss if i == 0 else None) for i, image in enumerate(run.pop("tensor"))])
        runs[loss] = run
    save_sheet(out / "generate.png", contact_sheet(rows, titles=[p.split(" on ")[0] for p in prompts] * len(args.seed_list)))
    command = shlex.join(["python", "scripts/bench_methods.py", "--tables", "generate", "--prior", args.prior, "--seeds", args.seeds, "--losses", args.losses])
    return {"command": command + (f" --steps {args.steps}" if args.steps else ""), "prompts": prompts, "runs": runs}


def nerf_table(args, out: Path) -> Dict[str, object]:
    """run_nerf_edit_eval.py per loss on each bundled scene (reconstruction included: ~20 min a run on one core)."""
    from nerfedit.eval.nerf_edit import run_folder

    evaluate, results, commands = script("run_nerf_edit_eval"), {}, []
    for loss in args.loss_list:
        for scene, colour in NERF_EDITS:
            name = Path(scene).name
            argv = ["--scene", str(REPO / scene), "--target-color", colour, "--out", str(out / "nerf" / loss), "--timestamp", name]
            argv += (["--edit-steps", str(args.steps), "--reconstruct-steps", str(args.steps)] if args.steps else [])
            argv += ["--", "--pipeline.loss.name", loss]
            evaluate.main(argv)
            run = run_folder(out / "nerf" / loss, name) / "eval.json"
            results.setdefault(loss, []).append(json.loads(run.read_text()) if run.is_file() else {"scene": scene, "failed": True})
            commands.append("python scripts/run_nerf_edit_eval.py " + shlex.join(argv))
    return {"commands": commands, "results": results}


def text_to_3d_table(args, out: Path) -> Dict[str, object]:
    """run_text_to_3d_eval.py per generating loss (its 4 prompts, seed 0; SDS beside each run)."""
    summaries, commands = {}, []
    for loss in [n for n in ("lmc", "bridge", "nfsd") if n in args.loss_list]:
        argv = ["--loss", loss, "--out", str(out / "text_to_3d" / loss), "--judge", args.judge]
        argv += ["--steps", str(args.steps)] if args.steps else []
        script("run_text_to_3d_eval").main(argv)
        report = json.loads((out / "text_to_3d" / loss / "results.json").read_text())
        summaries[loss] = report.get(loss)
        summaries.setdefault("sds", report.get("sds"))
        commands.append("python scripts/run_text_to_3d_eval.py " + shlex.join(argv))
    return {"commands": commands, "summaries": {k: v for k, v in summaries.items() if v}}


def _results(folder: Path) -> Dict[str, object]:
    report = json.loads((folder / "results.json").read_text())
    return {"summary": report["summary"], "timing": report["timing"], "settings": report["settings"]}


BUILDERS = {"speed": speed_table, "edit": edit_table, "cfg": cfg_table, "generate": generate_table, "nerf": nerf_table,
            "text_to_3d": text_to_3d_table}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from nerfedit.eval import method_tables as mt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    built: Dict[str, Dict[str, object]] = {}
    for table in args.table_list:
        started = time.perf_counter()
        print(f"== {table}", flush=True)
        built[table] = BUILDERS[table](args, out)
        built[table]["minutes"] = (time.perf_counter() - started) / 60
    if "cfg" in built:
        built["cfg"]["points"] = mt.tradeoff_points(built["cfg"].pop("by_scale"))
        mt.plot_tradeoff(built["cfg"]["points"], out / "cfg_tradeoff.png", f"{args.prior}: DDS and CDS over CFG scales {args.scales}, seeds {args.seeds}")
    command = shlex.join(["python", "scripts/bench_methods.py", *(sys.argv[1:] if argv is None else argv)])
    machine = mt.machine_line(threads=args.threads) + (f"; every run's steps overridden to {args.steps} [non-default]" if args.steps else "")
    markdown = mt.methods_markdown(built, prior=args.prior, seeds=args.seeds, machine=machine, command=command)
    (out / "methods.md").write_text(markdown + "\n")
    (out / "methods.json").write_text(json.dumps(built, indent=1, default=str) + "\n")
    print("\n" + markdown)
    print(f"wrote {out / 'methods.md'}, methods.json and the PNGs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
