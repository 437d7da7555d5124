"""Running the 2D benchmark's edits: every pair of a `SwapSet`, per loss, seed and prompt form, batched.

    rows_to_edit(swaps, forms)                 per form, the pairs whose prompts an earlier form has not already edited
    edit_rows(prior, images, sources, targets, …)  the edits of some rows, `batch` at a time, as `nerfedit edit-image` makes them
    edit_matrix_entry(prior, swaps, loss, seed, forms, …)   one loss at one seed, every prompt form

A floor swap's short prompt is its full caption, so its short-form edit would repeat the full-form one
(same prompts, same seed): it is edited once and counted under both forms.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from nerfedit.eval.swaps import SwapSet

SEED_STRIDE = 1000
"""Batch k of an edit at seed s is seeded s + k·SEED_STRIDE: batches draw different noise, seeds stay apart."""


def rows_to_edit(swaps: SwapSet, forms: Sequence[str]) -> Dict[str, List[int]]:
    """Per prompt form, the pairs to edit: those whose (source, target) prompts no earlier form had."""
    seen: List[set] = [set() for _ in range(len(swaps))]
    rows: Dict[str, List[int]] = {}
    for form in forms:
        sources, targets = swaps.prompts(form)
        rows[form] = [i for i in range(len(swaps)) if (sources[i], targets[i]) not in seen[i]]
        for i in range(len(swaps)):
            seen[i].add((sources[i], targets[i]))
    return rows


def edit_rows(
    prior,
    images: Tensor,
    sources: Sequence[str],
    targets: Sequence[str],
    *,
    loss_config,
    config,
    batch: int,
    paste: str = "replace",
    on_step: Optional[Callable[[float], None]] = None,
    **edit_options,
) -> Dict[str, object]:
    """Edit `images` [n, 3, R, R] from `sources` towards `targets`, `batch` rows per optimisation.

    `loss_config` (a `DistillationConfig`) and `config` (an `EditConfig`) are edit-image's; batch k runs with
    seed `config.seed + k·SEED_STRIDE`. `on_step(rows_done)` is called after every step with the fraction of
    a row each row of the batch has advanced (for a progress bar over edits). `edit_options` go to
    `edit_image` unchanged (the place for a new option of the edit call). Returns the edited images, the
    steps skipped for NaN/Inf gradients, and the seconds spent optimising.
    """
    from nerfedit.image.edit import edit_image
    from nerfedit.image.fit import pasted_squares
    from nerfedit.losses import build_loss

    edited, skipped, seconds = [], 0, 0.0
    for k, start in enumerate(range(0, len(images), batch)):
        rows = slice(start, min(len(images), start + batch))
        count = rows.stop - rows.start

        def callback(step, z, out, count=count):
            if on_step is not None:
                on_step(count / config.steps)

        out, history = edit_image(
            prior,
            images[rows],
            target=list(targets[rows]),
            source=list(sources[rows]),
            loss=build_loss(loss_config, prior),  # fresh per batch: no state (e.g. a step counter) carries over
            config=replace(config, seed=config.seed + k * SEED_STRIDE),
            progress=False,
            callback=callback,
            **edit_options,
        )
        edited.append(pasted_squares(prior, images[rows], out, paste, history.pixel_region))
        skipped += history.skipped
        seconds += history.seconds
    return {"images": torch.cat(edited), "skipped": skipped, "seconds": seconds}


def edit_matrix_entry(
    prior,
    swaps: SwapSet,
    loss_config,
    config,
    forms: Sequence[str],
    *,
    batch: int,
    paste: str = "replace",
    on_step: Optional[Callable[[float], None]] = None,
    **edit_options,
) -> Dict[str, Dict[str, object]]:
    """Every pair of `swaps` edited in every prompt form with one loss and one seed (`config.seed`).

    Returns per form {"images": [n, 3, R, R], "skipped", "seconds", "edited": the rows edited in this form
    (the others reuse an earlier form's edit of the same prompts)}.
    """
    todo = rows_to_edit(swaps, forms)
    results: Dict[str, Dict[str, object]] = {}
    for form in forms:
        sources, targets = swaps.prompts(form)
        rows = todo[form]
        images = torch.empty_like(swaps.images)
        run: Dict[str, object] = {"skipped": 0, "seconds": 0.0}
        if rows:
            run = edit_rows(
                prior, swaps.images[rows], [sources[i] for i in rows], [targets[i] for i in rows],
                loss_config=loss_config, config=config, batch=batch, paste=paste, on_step=on_step, **edit_options,
            )  # fmt: skip
            images[rows] = run["images"]
        for i in sorted(set(range(len(swaps))) - set(rows)):
            images[i] = _earlier_edit(results, swaps, form, i)
        results[form] = {"images": images, "skipped": run["skipped"], "seconds": run["seconds"], "edited": rows}
    return results


def _earlier_edit(results: Dict[str, Dict[str, object]], swaps: SwapSet, form: str, row: int) -> Tensor:
    """The edit of pair `row` made under an earlier form with the same prompts as `form`'s."""
    wanted = (swaps.prompts(form)[0][row], swaps.prompts(form)[1][row])
    for earlier, result in results.items():
        if (swaps.prompts(earlier)[0][row], swaps.prompts(earlier)[1][row]) == wanted:
            return result["images"][row]
    raise AssertionError(f"pair {row} has no earlier edit for form {form}")
