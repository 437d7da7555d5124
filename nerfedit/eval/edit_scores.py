"""Scores of the 2D benchmark's edits: per edit, then summarised per kind of swap, and the Markdown table.

Per edit (`score_edits`):
    success       the judge reads the TARGET word of the pair's kind (colour / shape / floor head)
    still_source  the judge still reads the SOURCE word
    keep_psnr     PSNR (dB) between source and edit over the pixels the edit should keep (`SwapSet.keep_masks`:
                  outside the object for colour swaps, outside both objects for shape swaps, object + sky for floor swaps)
    ssim          SSIM between source and edit over the whole image (structure preservation, `structure`)
    target_psnr   PSNR (dB) between the edit and the rendered target scene (the ground truth), whole image

`summarise` pools edits (over pairs and seeds) per kind and over all kinds: rates, median and mean PSNR, mean SSIM.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from nerfedit.eval.swaps import JUDGE_HEAD, KINDS, SwapSet

ALL = "all"
"""The summary row over every kind."""


def judge_reads(judge, images: Tensor, swaps: SwapSet) -> List[str]:
    """Per pair, what the judge reads on `images` with the head of the pair's kind."""
    from nerfedit.eval.judging import read

    words = read(judge, images, heads=tuple(sorted(set(JUDGE_HEAD.values()))))
    return [words[JUDGE_HEAD[kind]][i] for i, kind in enumerate(swaps.kinds)]


def score_edits(swaps: SwapSet, edited: Tensor, judge=None) -> Dict[str, list]:
    """Per-edit scores of `edited` [n, 3, R, R] (one edit per pair of `swaps`); judge-based ones only with a judge."""
    from nerfedit.eval.psnr import psnr_outside
    from nerfedit.eval.structure import ssim_per_image

    nothing = torch.zeros_like(swaps.masks)
    scores: Dict[str, list] = {
        "keep_psnr": psnr_outside(edited, swaps.images, ~swaps.keep_masks()).tolist(),
        "ssim": ssim_per_image(swaps.images, edited).tolist(),
        "target_psnr": psnr_outside(edited.clamp(0, 1), swaps.target_images, nothing).tolist(),
    }
    if judge is not None:
        read = judge_reads(judge, edited, swaps)
        scores["judged"] = read
        scores["success"] = [float(w == t) for w, t in zip(read, swaps.wanted("target"))]
        scores["still_source"] = [float(w == s) for w, s in zip(read, swaps.wanted("source"))]
    return scores


def pool(score_sets: Sequence[Dict[str, list]]) -> Dict[str, list]:
    """Per-edit scores of several runs (e.g. seeds) of the same pairs, concatenated key by key."""
    return {key: [v for scores in score_sets for v in scores[key]] for key in score_sets[0]}


def summarise(scores: Dict[str, list], kinds: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per kind (and `ALL`): edits, success / still-source rates, keep-PSNR median and mean, mean SSIM and target PSNR.

    `kinds` is the kind of each edit (repeat `SwapSet.kinds` once per pooled seed).
    """
    summary: Dict[str, Dict[str, float]] = {}
    for kind in [*KINDS, ALL]:
        rows = [i for i, k in enumerate(kinds) if kind in (k, ALL)]
        if not rows:
            continue
        entry: Dict[str, float] = {"edits": len(rows)}
        for key in ("success", "still_source"):
            if key in scores:
                entry[key] = float(np.mean([scores[key][i] for i in rows]))
        keep = [scores["keep_psnr"][i] for i in rows]
        entry["keep_psnr_median"] = float(np.median(keep))
        entry["keep_psnr_mean"] = float(np.mean(keep))
        entry["ssim"] = float(np.mean([scores["ssim"][i] for i in rows]))
        entry["target_psnr"] = float(np.mean([scores["target_psnr"][i] for i in rows]))
        summary[kind] = entry
    return summary


TABLE_COLUMNS = ("loss", "prompts", "kind", "edits", "success", "still source", "keep PSNR median", "keep PSNR mean", "SSIM(src, edit)", "PSNR vs target", "s/edit")
"""Columns of the Markdown table."""


def table_row(loss: str, form: str, kind: str, entry: Dict[str, float], seconds_per_edit: Optional[float]) -> List[str]:
    """One row of the Markdown table (n/a for what was not measured)."""

    def rate(key: str) -> str:
        return f"{entry[key]:.1%}" if key in entry else "n/a"

    return [
        loss, form, kind, str(int(entry["edits"])), rate("success"), rate("still_source"),
        f"{entry['keep_psnr_median']:.2f}", f"{entry['keep_psnr_mean']:.2f}", f"{entry['ssim']:.3f}", f"{entry['target_psnr']:.2f}",
        f"{seconds_per_edit:.2f}" if seconds_per_edit is not None else "",
    ]  # fmt: skip


def markdown_table(rows: Sequence[Sequence[str]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """`rows` of cells as a Markdown table (text left-aligned, numbers right-aligned)."""
    numeric = [i >= 3 for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def bar_check(summary: Dict[str, Dict[str, Dict[str, float]]], forms: Sequence[str], success_bar: float, psnr_bar: float) -> List[str]:
    """Lines of PASS/FAIL for the issue's bars: DDS and CDS success and keep-PSNR median over all kinds, per
    prompt form; and CDS's SSIM ≥ DDS's. `summary[loss][form]` is a `summarise` result."""
    lines = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    for form in forms:
        for loss in ("dds", "cds"):
            entry = summary.get(loss, {}).get(form, {}).get(ALL)
            if entry is None:
                continue
            if "success" in entry:
                lines.append(f"{loss} {form}: success {entry['success']:.1%} (≥ {success_bar:.0%}: {verdict(entry['success'] >= success_bar)})")
            median = entry["keep_psnr_median"]
            lines.append(f"{loss} {form}: keep PSNR median {median:.2f} dB (≥ {psnr_bar:g}: {verdict(median >= psnr_bar)})")
        dds, cds = (summary.get(name, {}).get(form, {}).get(ALL) for name in ("dds", "cds"))
        if dds and cds:
            lines.append(f"cds {form}: SSIM {cds['ssim']:.3f} vs dds {dds['ssim']:.3f} (cds ≥ dds: {verdict(cds['ssim'] >= dds['ssim'])})")
    return lines
