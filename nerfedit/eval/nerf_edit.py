"""One scored NeRF edit (`scripts/run_nerf_edit_eval.py`): the recipe, the bars, the held-out cameras and the scoring
that the single-scene mode and the sweep (`nerf_sweep`) share.

    EDIT_ARGS, train_command, run_folder   the `ns-train nerfedit-small` command of a scored run, and where it writes
    EditSpec                               what is edited: the scene's object and the new colour or floor
    held_out_cameras                       scored views + a 10°-apart partner of each (for `consistency`)
    score_edit                             judge reads, PSNR and consistency → the results dict (eval.json)
    report_lines                           the results as the lines the script prints (PASS/FAIL per bar)

Edit kinds and their bars:

    color   judge reads the target colour ≥ 85 %, the original shape ≥ 90 %, PSNR edited vs source outside the
            object ≥ 25 dB (mean of views)
    floor   judge reads the target floor ≥ 80 %, the object kept (shape AND colour unchanged) ≥ 90 %; PSNR inside
            the object mask is reported (the object should stay), without a bar
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from nerfedit.world.shapes import ObjectSpec

EDIT_ARGS: List[str] = []
"""ns-train flags of the edit this evaluation measures beyond steps, prompts and prior: none — the scored run is the
README's command at `ns-train nerfedit-small`'s defaults (CDS, colours only, lr 0.01, training views only)."""

BARS = {
    "color": {"color": 0.85, "shape": 0.90, "psnr_outside": 25.0},
    "floor": {"floor": 0.80, "object_kept": 0.90},
}
"""Per edit kind: the bars every run is checked against (rates are shares of held-out views, PSNR in dB)."""

EDIT_KINDS = tuple(BARS)
HELD_OUT_ELEVATIONS = (20.0, 50.0)
EXPERIMENT = "eval"


@dataclass(frozen=True)
class EditSpec:
    """An edit of a world scene: `kind` "color" or "floor", and the target word (colour, or floor phrase/key)."""

    obj: ObjectSpec
    kind: str
    target: str

    def __post_init__(self) -> None:
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"edit kind {self.kind!r}: expected one of {EDIT_KINDS}")

    @property
    def target_object(self) -> ObjectSpec:
        """The scene's object as the target prompt describes it (words canonicalised by `ObjectSpec`)."""
        return replace(self.obj, **{self.kind: self.target})

    @property
    def source_prompt(self) -> str:
        return self.obj.caption

    @property
    def target_prompt(self) -> str:
        return self.target_object.caption

    @property
    def target_word(self) -> str:
        return getattr(self.target_object, self.kind)


def run_folder(out: Path, timestamp: str) -> Path:
    """Where `train_command(…, out, timestamp, …)` writes its run (config.yml, checkpoints, eval.json)."""
    return Path(out).resolve() / EXPERIMENT / "nerfedit-small" / timestamp


def train_command(python: str, scene: Path, out: Path, timestamp: str, edit: EditSpec, prior: str,
                  reconstruct_steps: int, edit_steps: int, extra: Sequence[str] = ()) -> List[str]:
    """`ns-train nerfedit-small …` as a user types it (from the virtualenv of `python`)."""
    return [
        str(Path(python).parent / "ns-train"), "nerfedit-small",
        "--data", str(scene),
        "--output-dir", str(Path(out).resolve()),
        "--experiment-name", EXPERIMENT,
        "--timestamp", timestamp,
        "--vis", "tensorboard",
        "--steps-per-eval-batch", "0", "--steps-per-eval-image", "0", "--steps-per-eval-all-images", "0",
        "--pipeline.prior", prior,
        "--pipeline.source-prompt", edit.source_prompt,
        "--pipeline.target-prompt", edit.target_prompt,
        "--pipeline.reconstruct-steps", str(reconstruct_steps),
        "--pipeline.edit-steps", str(edit_steps),
        *EDIT_ARGS,
        *extra,
    ]  # fmt: skip


def held_out_cameras(views: int, seed: int) -> list:
    """2·`views` world-frame `OrbitCamera`s no training camera saw: the `views` scored ones (seeded azimuths and
    elevations), then each one's partner 10° further round (`consistency.partner_cameras`)."""
    from nerfedit.eval.consistency import partner_cameras
    from nerfedit.world.scene import orbit_cameras

    scored = orbit_cameras(views, seed=seed, elevation_range=HELD_OUT_ELEVATIONS)
    return scored + partner_cameras(scored)


def score_edit(edit: EditSpec, renders: Dict[str, torch.Tensor], truth: Dict[str, torch.Tensor], judge,
               cameras: Sequence, size: int) -> Dict[str, object]:
    """Score one run on `held_out_cameras(V, …)` (2V views; the bars use the first V).

    `renders`: "source"/"edited" [2V, 3, H, W] and their world z-depths "source_depth"/"edited_depth" [2V, H, W];
    `truth`: the ground-truth world renders "images" [2V, 3, H, W] and object "masks" [2V, H, W] of the source.
    """
    from nerfedit.eval.consistency import consistency_summary
    from nerfedit.eval.judging import agreement, read
    from nerfedit.eval.masks import dilate
    from nerfedit.eval.psnr import psnr_outside_summary

    views = len(cameras) // 2
    scored = slice(0, views)
    obj = edit.obj
    reads = {name: read(judge, images) for name, images in (("gt", truth["images"]), ("source", renders["source"]), ("edited", renders["edited"]))}
    edited = {head: words[scored] for head, words in reads["edited"].items()}
    source_img, edited_img, masks = renders["source"][scored], renders["edited"][scored], truth["masks"][scored]
    results: Dict[str, object] = {
        "edit": edit.kind,
        "source_prompt": edit.source_prompt,
        "target_prompt": edit.target_prompt,
        "object": {"shape": obj.shape, "color": obj.color, "floor": obj.floor},
        "target": edit.target_word,
        "views": views,
        "shape_rate": agreement(edited["shape"], obj.shape),
    }
    if edit.kind == "color":
        results["color_rate"] = agreement(edited["color"], edit.target_word)
        results["psnr_outside"] = psnr_outside_summary(edited_img, source_img, masks)
        results["psnr_outside_dilated_2px"] = psnr_outside_summary(edited_img, source_img, dilate(masks, 2))
        measured = {"color": results["color_rate"], "shape": results["shape_rate"], "psnr_outside": results["psnr_outside"]["mean_of_views"]}
    else:
        kept = [s == obj.shape and c == obj.color for s, c in zip(edited["shape"], edited["color"])]
        results["floor_rate"] = agreement(edited["floor"], edit.target_word)
        results["object_kept_rate"] = float(sum(kept) / len(kept))
        results["color_kept_rate"] = agreement(edited["color"], obj.color)
        results["psnr_inside"] = psnr_outside_summary(edited_img, source_img, ~masks.bool())
        measured = {"floor": results["floor_rate"], "object_kept": results["object_kept_rate"]}
    results["pass"] = {bar: bool(measured[bar] >= wanted) for bar, wanted in BARS[edit.kind].items()}
    results["passed"] = all(results["pass"].values())
    results["reference"] = {
        **{f"gt_{head}_rate": agreement(reads["gt"][head][scored], getattr(obj, head)) for head in ("color", "shape", "floor")},
        **{f"source_{head}_rate": agreement(reads["source"][head][scored], getattr(obj, head)) for head in ("color", "shape", "floor")},
        "source_psnr_vs_gt": psnr_outside_summary(source_img, truth["images"][scored], torch.zeros_like(masks))["pooled"],
        "edited_reads": edited,
    }
    pairs = [(i, views + i) for i in range(views)]
    colours = {name: reads[name]["color"] for name in ("source", "edited")}
    results["consistency"] = consistency_summary(renders, colours, cameras, pairs, size)
    return results


def _verdict(results: Dict[str, object], bar: str) -> str:
    return "PASS" if results["pass"][bar] else "FAIL"  # type: ignore[index]


def report_lines(results: Dict[str, object]) -> List[str]:
    """The printed summary of `score_edit`'s results: one line per bar with PASS/FAIL, then reference numbers."""
    bars, obj, target = BARS[results["edit"]], results["object"], results["target"]  # type: ignore[index]
    lines = [f"nerfedit eval: {results['source_prompt']!r} → {results['target_prompt']!r} on {results['views']} held-out views"]
    if results["edit"] == "color":
        p = results["psnr_outside"]
        lines += [
            f"  colour: judge reads '{target}' on {results['color_rate']:.0%} of edited views   (bar ≥ {bars['color']:.0%})  {_verdict(results, 'color')}",
            f"  shape:  judge reads '{obj['shape']}' on {results['shape_rate']:.0%} of edited views      (bar ≥ {bars['shape']:.0%})  {_verdict(results, 'shape')}",
            f"  PSNR edited vs source outside the object: {p['mean_of_views']:.1f} dB mean, {p['pooled']:.1f} dB pooled, "
            f"{p['worst_view']:.1f} dB worst   (bar ≥ {bars['psnr_outside']:.0f} dB)  {_verdict(results, 'psnr_outside')}",
        ]
    else:
        p = results["psnr_inside"]
        lines += [
            f"  floor:  judge reads '{target}' on {results['floor_rate']:.0%} of edited views   (bar ≥ {bars['floor']:.0%})  {_verdict(results, 'floor')}",
            f"  object kept: judge reads '{obj['color']} {obj['shape']}' on {results['object_kept_rate']:.0%} of edited views   "
            f"(bar ≥ {bars['object_kept']:.0%})  {_verdict(results, 'object_kept')}",
            f"  PSNR edited vs source inside the object: {p['mean_of_views']:.1f} dB mean, {p['worst_view']:.1f} dB worst (no bar)",
        ]
    ref, cons = results["reference"], results["consistency"]
    lines += [
        f"  reference: GT judged {ref['gt_color_rate']:.0%} colour / {ref['gt_shape_rate']:.0%} shape / {ref['gt_floor_rate']:.0%} floor; "
        f"source renders {ref['source_color_rate']:.0%} / {ref['source_shape_rate']:.0%} / {ref['source_floor_rate']:.0%}; "
        f"source vs GT PSNR {ref['source_psnr_vs_gt']:.1f} dB",
        f"  consistency: colour read agrees on {cons['edited_color_agreement']:.0%} of {cons['judge_pairs']} neighbouring view pairs "
        f"(source {cons['source_color_agreement']:.0%}); depth-warp PSNR over {cons['warp_pairs']} 10° pairs "
        f"{cons['edited_warp_psnr']['mean_of_pairs']:.1f} dB edited vs {cons['source_warp_psnr']['mean_of_pairs']:.1f} dB source "
        f"({cons['warp_psnr_change']:+.1f} dB)",
    ]
    return lines
