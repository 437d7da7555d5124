"""The 2D benchmark's contact sheet: per pair, source | rendered target | each loss × prompt form's edit.

Under each edit a green bar when the judge reads the pair's target word (colour / shape / floor by kind),
red when not; the judge's word is written on the edit. Rows are the first pairs, so every kind shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from torch import Tensor

from nerfedit.eval.swaps import SwapSet


def pair_label(swaps: SwapSet, row: int) -> List[str]:
    """Two lines left of a row: "colour: red -> blue" and the rest of the scene ("cube, grass")."""
    from nerfedit.eval.swaps import swapped_word

    kind, source = swaps.kinds[row], swaps.sources[row]
    before, after = swapped_word(source, kind), swapped_word(swaps.targets[row], kind)
    rest = [w for w in (source.color, source.shape, source.floor) if w != before]
    return [f"{kind}: {before} -> {after}", ", ".join(rest)]


def swap_sheet(path: Path, swaps: SwapSet, edits: Dict[str, Tensor], judge=None, rows: int = 12) -> Optional[Path]:
    """Write the sheet of `edits` ({column title: images [n, 3, R, R]}) for the first `rows` pairs to `path`."""
    from nerfedit.eval.edit_scores import judge_reads
    from nerfedit.eval.sheets import GREEN, RED, Cell, contact_sheet, save_sheet

    n = min(rows, len(swaps))
    wanted = swaps.wanted("target")
    reads = {title: judge_reads(judge, images[:n], _head(swaps, n)) for title, images in edits.items()} if judge is not None else {}
    cells, labels = [], []
    for r in range(n):
        row = [Cell(swaps.images[r]), Cell(swaps.target_images[r])]
        for title, images in edits.items():
            if title in reads:
                row.append(Cell(images[r], text=reads[title][r], bar=GREEN if reads[title][r] == wanted[r] else RED))
            else:
                row.append(Cell(images[r]))
        cells.append(row)
        labels.append(pair_label(swaps, r))
    sheet = contact_sheet(cells, label_width=170, row_labels=labels, titles=["source", "target"] + list(edits), bar_height=4)
    return save_sheet(path, sheet)


def _head(swaps: SwapSet, n: int) -> SwapSet:
    """The first `n` pairs of `swaps` (what `judge_reads` needs: their kinds)."""
    from dataclasses import replace

    return replace(swaps, kinds=swaps.kinds[:n])
