"""A sweep of scored NeRF edits over fresh world scenes (`scripts/run_nerf_edit_eval.py --sweep N --seed S`).

    sample_sweep(n, seed, edits)     n distinct random scenes (shape, colour, floor) and, per edit kind, a target
    ensure_scene(run, folder)        the scene folder, written by `nerfedit world scene` unless already there
    run_sweep(runs, out, command, …) every run not yet scored, `workers` at a time, with a progress line each;
                                     a scene's floor edit re-edits its colour edit's reconstruction (`source_run`)
    write_summary(results, out)      sweep.md (table + aggregate), sweep.json, sweep.png

Each run is one single-scene evaluation (the script itself, in a subprocess), so the sweep's recipe and scoring
are the single-scene mode's by construction. Layout of the output folder:

    scenes/<scene>/                               the nerfstudio scene (transforms.json written last)
    runs/<run>/eval/nerfedit-small/sweep/         the ns-train run, its eval.json and eval_renders.npz
    runs/<run>/eval.log                           the single-scene script's output
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from nerfedit.eval.nerf_edit import BARS, EDIT_KINDS, run_folder
from nerfedit.world.vocab import COLORS, FLOOR_KEYS, FLOORS, SHAPES

SWEEP_TIMESTAMP = "sweep"
"""Every sweep run's `--timestamp`, so that its run folder is known before it starts (resuming)."""


@dataclass(frozen=True)
class SweepRun:
    """One scored edit of a sweep: the scene (its words and seeds) and what the target prompt changes."""

    index: int
    shape: str
    color: str
    floor: str
    """Floor phrase, e.g. "wooden floor"."""
    scene_seed: int
    """`nerfedit world scene --seed`: the object's yaw, the sun and the training cameras."""
    held_out_seed: int
    """Seeds the held-out cameras."""
    kind: str
    """"color" or "floor"."""
    target: str
    """The target colour word, or floor key."""

    @property
    def floor_key(self) -> str:
        return FLOOR_KEYS[FLOORS.index(self.floor)]

    @property
    def scene_name(self) -> str:
        return f"{self.index:02d}_{self.color}_{self.shape}_{self.floor_key}"

    @property
    def name(self) -> str:
        return f"{self.scene_name}__{self.kind}_{self.target}"


def sample_sweep(n: int, seed: int, edits: Sequence[str] = ("color",)) -> List[SweepRun]:
    """`n` distinct scenes, uniformly random over the world's shapes × colours × floors (without repeats), each
    with a target colour ≠ its colour and a target floor ≠ its floor; one run per scene and edit kind.

    Deterministic in `seed`; the scenes and targets do not depend on `edits`, so a colour sweep and a
    colour+floor sweep with the same seed share their scenes.
    """
    unknown = [kind for kind in edits if kind not in EDIT_KINDS]
    if unknown or not edits:
        raise ValueError(f"edit kinds {list(edits)}: expected some of {EDIT_KINDS}")
    combos = [(shape, color, floor) for shape in SHAPES for color in COLORS for floor in FLOORS]
    if not 1 <= n <= len(combos):
        raise ValueError(f"a sweep has 1 to {len(combos)} distinct scenes, asked for {n}")
    rng = np.random.default_rng(seed)
    runs = []
    for index, combo in enumerate(rng.choice(len(combos), size=n, replace=False).tolist()):
        shape, color, floor = combos[combo]
        scene_seed, held_out_seed = (int(x) for x in rng.integers(0, 2**31 - 1, size=2))
        targets = {
            "color": [c for c in COLORS if c != color][int(rng.integers(len(COLORS) - 1))],
            "floor": [k for k, f in zip(FLOOR_KEYS, FLOORS) if f != floor][int(rng.integers(len(FLOORS) - 1))],
        }
        runs += [SweepRun(index, shape, color, floor, scene_seed, held_out_seed, kind, targets[kind]) for kind in edits]
    return runs


def ensure_scene(run: SweepRun, scene_dir: Path, views: int = 32, size: int = 64) -> Path:
    """`nerfedit world scene …` for `run`'s scene into `scene_dir`, unless a complete one is there (a folder
    without transforms.json, which is written last, is an interrupted write: it is replaced)."""
    from nerfedit.cli import main as nerfedit

    if (scene_dir / "transforms.json").is_file():
        return scene_dir
    if scene_dir.exists():
        shutil.rmtree(scene_dir)
    argv = ["world", "scene", "--shape", run.shape, "--color", run.color, "--floor", run.floor_key,
            "--views", str(views), "--size", str(size), "--seed", str(run.scene_seed), "--out", str(scene_dir)]
    if nerfedit(argv) != 0:
        raise RuntimeError(f"nerfedit {' '.join(argv)} failed")
    return scene_dir


def run_dir(out: Path, run: SweepRun) -> Path:
    """The ns-train run folder of `run` (where its eval.json goes)."""
    return run_folder(out / "runs" / run.name, SWEEP_TIMESTAMP)


def source_run(run: SweepRun, runs: Sequence[SweepRun]) -> Optional[SweepRun]:
    """The run among `runs` whose reconstruction `run` re-edits: the same scene's first kind (the colour edit) when
    `run` is another kind (a floor edit); None for a run that reconstructs its scene itself."""
    first = next((other for other in runs if other.index == run.index), None)
    return None if first is None or first is run or first.kind == run.kind else first


Command = Callable[[SweepRun, Path, Path, Optional[Path]], List[str]]
"""(run, scene folder, run output folder, its source run's nerfstudio_models or None) → the single-scene
evaluation's command line."""


def run_sweep(runs: Sequence[SweepRun], out: Path, command: Command, workers: int = 2, scene_views: int = 32) -> List[Dict[str, object]]:
    """Write the scenes, run every run without an eval.json (`workers` subprocesses at a time, each told to use one
    thread), print a line per finished run with an ETA, and return every run's results (`load_result`).

    A scene's further edits (floor after colour) start from its first edit's reconstruction (`source_run`): they
    run after every first edit, and the command gets that run's checkpoint folder, as a user re-edits a scene with
    `--load-dir … --pipeline.reuse-source True`; the reconstruction is the same recipe and seed either way."""
    out = Path(out)
    for run in runs:
        ensure_scene(run, out / "scenes" / run.scene_name, views=scene_views)
    pending = [run for run in runs if not (run_dir(out, run) / "eval.json").is_file()]
    print(f"sweep: {len(runs)} runs, {len(runs) - len(pending)} already scored, {len(pending)} to run, {workers} at a time", flush=True)
    started, durations = time.time(), []

    def job(run: SweepRun) -> float:
        begin = time.time()
        source = source_run(run, runs)
        models = run_dir(out, source) / "nerfstudio_models" if source is not None else None
        models = models if models is not None and models.is_dir() else None
        (out / "runs" / run.name).mkdir(parents=True, exist_ok=True)
        with open(out / "runs" / run.name / "eval.log", "w") as log:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            line = command(run, out / "scenes" / run.scene_name, out / "runs" / run.name, models)
            subprocess.run(line, stdout=log, stderr=subprocess.STDOUT, env=env)
        return time.time() - begin

    first_edits = [run for run in pending if source_run(run, runs) is None]
    phases = [first_edits, [run for run in pending if run not in first_edits]]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for phase in phases:
            futures = {pool.submit(job, run): run for run in phase}
            for future in as_completed(futures):
                run, seconds = futures[future], future.result()
                done += 1
                durations.append(seconds)
                left = len(pending) - done
                eta = statistics.mean(durations) * -(-left // max(1, workers))  # rounds of `workers` runs still to go
                print(f"[{done}/{len(pending)}] {run.name}: {verdict_line(load_result(out, run))}  ({seconds / 60:.1f} min; "
                      f"{(time.time() - started) / 60:.0f} min elapsed, ETA {eta / 60:.0f} min)", flush=True)
    return [load_result(out, run) for run in runs]


def load_result(out: Path, run: SweepRun) -> Dict[str, object]:
    """`run`'s eval.json with the sweep's fields ("sweep": the SweepRun, "name"), or {"error": …} if it has none."""
    path = run_dir(Path(out), run) / "eval.json"
    base = {"name": run.name, "sweep": asdict(run), "run_dir": str(path.parent)}
    if not path.is_file():
        return {**base, "error": f"no eval.json; see {Path(out) / 'runs' / run.name / 'eval.log'}", "passed": False}
    return {**json.loads(path.read_text()), **base}


# ---- the summary --------------------------------------------------------------------------------

METRICS = {
    "color": [("colour %", lambda r: 100 * r["color_rate"]), ("shape %", lambda r: 100 * r["shape_rate"]),
              ("PSNR outside dB", lambda r: r["psnr_outside"]["mean_of_views"])],
    "floor": [("floor %", lambda r: 100 * r["floor_rate"]), ("object kept %", lambda r: 100 * r["object_kept_rate"]),
              ("PSNR inside dB", lambda r: r["psnr_inside"]["mean_of_views"])],
}
"""Per edit kind: the table's metric columns (title, value of a result)."""
CONSISTENCY = [("colour agrees %", lambda r: 100 * r["consistency"]["edited_color_agreement"]),
               ("warp dB edited", lambda r: r["consistency"]["edited_warp_psnr"]["mean_of_pairs"]),
               ("warp dB source", lambda r: r["consistency"]["source_warp_psnr"]["mean_of_pairs"])]
"""Columns shared by both kinds: multi-view consistency of the edited renders (and the source's warp for reference)."""


def verdict_line(result: Dict[str, object]) -> str:
    """'PASS (colour 92 %, shape 100 %, PSNR outside 26.1 dB)' — or FAIL with the failed bars, or the error."""
    if "error" in result:
        return f"ERROR ({result['error']})"
    numbers = ", ".join(f"{title.replace(' %', '').replace(' dB', '')} {value(result):.0f}{' %' if '%' in title else ' dB'}"
                        for title, value in METRICS[result["edit"]])  # type: ignore[index]
    failed = [bar for bar, ok in result["pass"].items() if not ok]  # type: ignore[union-attr]
    return ("PASS" if not failed else "FAIL " + "/".join(failed)) + f" ({numbers})"


def aggregate(results: Sequence[Dict[str, object]]) -> Dict[str, Dict[str, object]]:
    """Per edit kind: runs, how many pass all bars and each bar, and the mean/median of every metric column."""
    summary = {}
    for kind in EDIT_KINDS:
        rows = [r for r in results if r["sweep"]["kind"] == kind]  # type: ignore[index]
        if not rows:
            continue
        scored = [r for r in rows if "error" not in r]
        stats = {}
        for title, value in METRICS[kind] + CONSISTENCY:
            values = [float(value(r)) for r in scored]
            stats[title] = {"mean": statistics.mean(values), "median": statistics.median(values)} if values else None
        summary[kind] = {
            "runs": len(rows),
            "errors": len(rows) - len(scored),
            "passed_all": sum(bool(r["passed"]) for r in scored),
            "passed": {bar: sum(bool(r["pass"][bar]) for r in scored) for bar in BARS[kind]},  # type: ignore[index]
            "bars": BARS[kind],
            "metrics": stats,
        }
    return summary


def _cell(value: float) -> str:
    return f"{value:.1f}" if value == value else "–"


def markdown(results: Sequence[Dict[str, object]], summary: Dict[str, Dict[str, object]]) -> str:
    """sweep.md: per edit kind, a table of runs (words, metrics, PASS/FAIL per bar) and the aggregate."""
    lines = []
    for kind, agg in summary.items():
        metrics = METRICS[kind] + CONSISTENCY
        bars = list(BARS[kind])
        lines += [f"## {kind} edits: {agg['passed_all']} of {agg['runs']} scenes pass all bars "
                  f"({', '.join(f'{bar} ≥ {wanted:g}' for bar, wanted in BARS[kind].items())})", ""]
        header = ["scene", "shape", "colour", "floor"] + [title for title, _ in metrics] + bars + ["all"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in results:
            run = r["sweep"]
            if run["kind"] != kind:  # type: ignore[index]
                continue
            colour = f"{run['color']} → {run['target']}" if kind == "color" else run["color"]  # type: ignore[index]
            floor = f"{run['floor']} → {FLOORS[FLOOR_KEYS.index(run['target'])]}" if kind == "floor" else run["floor"]  # type: ignore[index]
            if "error" in r:
                cells = ["–"] * len(metrics) + ["–"] * len(bars) + ["ERROR"]
            else:
                cells = [_cell(float(value(r))) for _, value in metrics]
                cells += ["PASS" if r["pass"][bar] else "FAIL" for bar in bars] + ["PASS" if r["passed"] else "FAIL"]  # type: ignore[index]
            lines.append("| " + " | ".join([f"{run['index']:02d}", run["shape"], colour, floor] + cells) + " |")  # type: ignore[index]
        lines += ["", "| aggregate | " + " | ".join(title for title, _ in metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
        for stat in ("mean", "median"):
            lines.append(f"| {stat} | " + " | ".join(_cell(agg["metrics"][t][stat]) if agg["metrics"][t] else "–" for t, _ in metrics) + " |")  # type: ignore[index]
        lines += ["", "passing each bar: " + ", ".join(f"{bar} {n}/{agg['runs']}" for bar, n in agg["passed"].items())  # type: ignore[union-attr]
                  + (f"; {agg['errors']} runs without results" if agg["errors"] else ""), ""]
    return "\n".join(lines)


def sweep_sheet(results: Sequence[Dict[str, object]], path: Path) -> Path:
    """sweep.png: one row per run, source | edited for two held-out views (the first and the one half-way round),
    labelled with the scene and edit (ASCII: PIL's default font has no arrows); a green/red bar under each edited render for pass/fail."""
    import torch

    from nerfedit.eval.sheets import GREEN, RED, Cell, contact_sheet, save_sheet

    rows, labels = [], []
    for r in results:
        renders_path = Path(str(r["run_dir"])) / "eval_renders.npz"
        if "error" in r or not renders_path.is_file():
            continue
        renders = np.load(renders_path)
        views = (0, len(renders["source"]) // 2)
        bar = GREEN if r["passed"] else RED
        image = {name: torch.from_numpy(renders[name]).permute(0, 3, 1, 2).float() / 255 for name in ("source", "edited")}
        rows.append([Cell(image[name][v], bar=bar if name == "edited" else None) for v in views for name in ("source", "edited")])
        run = r["sweep"]
        labels.append([f"{run['index']:02d} {run['color']} {run['shape']}", run["floor"],  # type: ignore[index]
                       f"{run['kind']} -> {run['target']}", verdict_line(r).split(" (")[0]])  # type: ignore[index]
    if not rows:
        return path
    titles = ["source", "edited", "source", "edited"]
    return save_sheet(path, contact_sheet(rows, label_width=150, row_labels=labels, titles=titles, bar_height=4, scale=2))


def write_summary(results: Sequence[Dict[str, object]], out: Path) -> str:
    """Write sweep.md, sweep.json and sweep.png into `out`; returns the Markdown."""
    out = Path(out)
    summary = aggregate(results)
    text = "# NeRF edit sweep\n\n" + markdown(results, summary)
    (out / "sweep.md").write_text(text)
    (out / "sweep.json").write_text(json.dumps({"aggregate": summary, "runs": list(results)}, indent=1, default=str))
    sweep_sheet(results, out / "sweep.png")
    return text
