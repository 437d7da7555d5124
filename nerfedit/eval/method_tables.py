"""The method tables of `scripts/bench_methods.py`: each loss side by side, built from what the project's own
evaluations write (eval_edit.py, run_nerf_edit_eval.py, run_text_to_3d_eval.py, bench_losses.py's timings).

    machine_line()                        the machine, device and threads a table was measured on
    edit_rows(summary, timing, speed)     2D editing per loss: success, keep PSNR, SSIM, time per step, peak memory
    tradeoff_points(results_by_scale)     (scale, success, keep PSNR) per loss over a CFG sweep
    plot_tradeoff(points, path)           success against preservation, one line per loss (LMC-SDS paper, Fig. 5)
    generation_rows(runs)                 text-to-image per loss: the judge's reads of the prompted words
    nerf_rows(results), text_to_3d_rows(summaries)   NeRF editing and text-to-3D per loss
    methods_markdown(built, …)            every table built in one run, each with its machine, seeds and command

Every table is Markdown (`edit_scores.markdown_table`); rates are shares of images or views, as the
evaluation that made them defines them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

EDIT_COLUMNS = ("loss", "prompts", "edits", "success", "keep PSNR median", "SSIM(src, edit)", "s/edit", "ms/step", "peak MB")
GENERATION_COLUMNS = ("loss", "images", "colour", "shape", "floor", "all three", "s/image")
NERF_COLUMNS = ("loss", "scene", "colour", "shape", "PSNR outside (dB)", "bars", "train s")
TEXT_TO_3D_COLUMNS = ("loss", "runs meeting colour and shape", "mean colour", "mean shape", "mean floor")


def machine_line(device: str = "cpu", threads: Optional[int] = None) -> str:
    """'cpu: <processor>, N torch threads, torch X' or 'cuda: <GPU name>, torch X': what a table's times are of."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"cpu: {cpu_name()} ({os.cpu_count()} cores), {threads or torch.get_num_threads()} torch threads, torch {torch.__version__}"


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rate(value: Optional[float]) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"


def edit_rows(summary: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]], timing: Mapping[str, Mapping[str, float]],
              speed: Mapping[str, Mapping[str, float]]) -> List[List[str]]:
    """One row per loss and prompt form from eval_edit.py's `summary` (all kinds pooled) and `timing`, with the
    loss's step time and peak memory from `speed` (bench_losses.py's rows; blank where it was not timed)."""
    from nerfedit.eval.edit_scores import ALL

    rows = []
    for loss, by_form in summary.items():
        per_edit = timing[loss]["seconds"] / max(1, timing[loss]["edits"])
        step = speed.get(loss, {})
        for form, by_kind in by_form.items():
            entry = by_kind[ALL]
            rows.append([
                loss, form, str(int(entry["edits"])), _rate(entry.get("success")), f"{entry['keep_psnr_median']:.2f}",
                f"{entry['ssim']:.3f}", f"{per_edit:.2f}",
                f"{step['ms']:.1f}" if "ms" in step else "", f"{step['peak_mb']:.0f}" if "peak_mb" in step else "",
            ])  # fmt: skip
    return rows


def tradeoff_points(results_by_scale: Mapping[float, Mapping[str, object]], form: str = "full") -> Dict[str, List[Dict[str, float]]]:
    """Per loss, the (guidance scale, success, keep PSNR median) of each run of a CFG sweep, by rising scale.

    `results_by_scale[s]` is eval_edit.py's results.json of the run at scale s (its "summary").
    """
    from nerfedit.eval.edit_scores import ALL

    points: Dict[str, List[Dict[str, float]]] = {}
    for scale in sorted(results_by_scale):
        for loss, by_form in results_by_scale[scale]["summary"].items():
            entry = by_form[form][ALL]
            points.setdefault(loss, []).append({"scale": float(scale), "success": entry.get("success"), "keep_psnr": entry["keep_psnr_median"]})
    return points


def tradeoff_rows(points: Mapping[str, Sequence[Mapping[str, float]]]) -> List[List[str]]:
    """The sweep as table rows: loss, CFG scale, success, keep PSNR median."""
    return [[loss, f"{p['scale']:g}", _rate(p["success"]), f"{p['keep_psnr']:.2f}"] for loss, run in points.items() for p in run]


def plot_tradeoff(points: Mapping[str, Sequence[Mapping[str, float]]], path: Path, title: str) -> Optional[Path]:
    """Success (the judge reads the target) against preservation (keep PSNR median), one line per loss, each point
    labelled with its guidance scale: the trade-off the LMC-SDS paper plots in its Fig. 5. Without a judge (no
    success rates) there is nothing to plot: returns None."""
    if any(p["success"] is None for run in points.values() for p in run):
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on the machines this runs on
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for loss, run in points.items():
        xs, ys = [p["keep_psnr"] for p in run], [100 * p["success"] for p in run]
        ax.plot(xs, ys, marker="o", label=loss)
        for p, x, y in zip(run, xs, ys):
            ax.annotate(f"{p['scale']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("keep PSNR median (dB): preservation")
    ax.set_ylabel("success (%): the judge reads the target")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def generation_rows(runs: Mapping[str, Mapping[str, object]]) -> List[List[str]]:
    """One row per loss from {loss: {"images", "color_rate", "shape_rate", "floor_rate", "all_rate", "seconds"}}."""
    return [
        [loss, str(r["images"]), _rate(r["color_rate"]), _rate(r["shape_rate"]), _rate(r["floor_rate"]), _rate(r["all_rate"]),
         f"{r['seconds'] / max(1, r['images']):.1f}"]
        for loss, r in runs.items()
    ]  # fmt: skip


def nerf_rows(results: Mapping[str, Sequence[Mapping[str, object]]]) -> List[List[str]]:
    """One row per loss and scene from run_nerf_edit_eval.py's eval.json of each run ({loss: [eval, …]})."""
    rows = []
    for loss, evals in results.items():
        for e in evals:
            rows.append([
                loss, Path(str(e["scene"])).name, _rate(e.get("color_rate")), _rate(e.get("shape_rate")),
                f"{e['psnr_outside']['mean_of_views']:.1f}" if "psnr_outside" in e else "n/a",
                "pass" if e.get("passed") else "fail", f"{e.get('seconds', {}).get('train', 0):.0f}",
            ])  # fmt: skip
    return rows


def text_to_3d_rows(summaries: Mapping[str, Mapping[str, object]]) -> List[List[str]]:
    """One row per loss from run_text_to_3d_eval.py's per-loss summaries (`text_to_3d.summarize`)."""
    return [
        [loss, f"{s['bars_met']} / {s['runs']}", f"{s['mean_color']:.0%}", f"{s['mean_shape']:.0%}", f"{s['mean_floor']:.0%}"]
        for loss, s in summaries.items()
    ]


def _commands(entry: Mapping[str, object]) -> List[str]:
    return [entry["command"]] if "command" in entry else list(entry.get("commands", []))


def methods_markdown(built: Mapping[str, Mapping[str, object]], prior: str, seeds: str, machine: str, command: str) -> str:
    """The Markdown of every table in `built` (bench_methods.py's results by table name), in a fixed order."""
    from nerfedit.eval.edit_scores import markdown_table

    lines = [f"# Method tables: prior `{prior}`, seeds {seeds}", "", f"Machine: {machine}. Command: `{command}`", ""]

    def section(title: str, entry: Mapping[str, object], table: str, notes: Sequence[str] = ()) -> None:
        lines.extend([f"## {title}", "", table, ""])
        lines.extend(notes)
        lines.extend([f"Run by: `{c}`" for c in _commands(entry)] + [f"({entry['minutes']:.1f} min)", ""])

    speed = built.get("speed", {}).get("result", {}).get("rows", {})
    if "speed" in built:
        rows = [[name, f"{r['unet']:.0f}", f"{r['rows']:.0f}", f"{r['ms']:.1f}", "" if r["x_official"] is None else f"{r['x_official']:.2f}",
                 f"{r['peak_mb']:.0f}"] for name, r in speed.items()]  # fmt: skip
        section("Time per step", built["speed"], markdown_table(rows, ("loss", "UNet calls", "UNet rows", "ms/step", "× official", "peak MB")),
                ["× official: over the official DDS step (CDS: the official CDS step), timed round-robin in the same process.", ""])  # fmt: skip
    if "edit" in built:
        e = built["edit"]
        section("2D editing, every loss", e, markdown_table(edit_rows(e["summary"], e["timing"], speed), EDIT_COLUMNS),
                ["success: the judge reads the target word; keep PSNR: outside the object (colour), outside both objects (shape), "
                 "object and sky (floor); ms/step and peak MB from the time-per-step table.", ""])  # fmt: skip
    if "cfg" in built:
        section("CFG scale: success against preservation (cfg_tradeoff.png)", built["cfg"],
                markdown_table(tradeoff_rows(built["cfg"]["points"]), ("loss", "CFG", "success", "keep PSNR median")))
    if "generate" in built:
        g = built["generate"]
        section("Text-to-image by optimisation (generate.png)", g, markdown_table(generation_rows(g["runs"]), GENERATION_COLUMNS),
                [f"Prompts: {'; '.join(g['prompts'])}.", ""])
    if "nerf" in built:
        section("NeRF colour edits", built["nerf"], markdown_table(nerf_rows(built["nerf"]["results"]), NERF_COLUMNS))
    if "text_to_3d" in built:
        section("Text-to-3D", built["text_to_3d"], markdown_table(text_to_3d_rows(built["text_to_3d"]["summaries"]), TEXT_TO_3D_COLUMNS))
    return "\n".join(lines)
