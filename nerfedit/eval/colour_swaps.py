"""The 2D editing benchmark's data and runs: colour swaps on held-out world renders (`scripts/eval_edit.py`).

    held_out_colour_swaps(n, seed, size)   renders + "a red cube …" → "a blue cube …" captions and masks
    edit_all(prior, loss, data, …)          every render edited with one loss, in batches
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict

import numpy as np
import torch

from nerfedit.image.edit import EditConfig


def held_out_colour_swaps(n: int, seed: int, size: int) -> Dict[str, object]:
    """`n` fresh world renders, each with a source caption and a colour-swapped target caption (another colour, uniformly).

    Returns images [n, 3, size, size], object masks [n, size, size], captions and the colour/shape words.
    """
    from nerfedit.world.render import random_camera, random_object, render_batch
    from nerfedit.world.vocab import COLORS, caption

    rng = np.random.default_rng(seed)
    objs, cams, sources, targets, target_colors = [], [], [], [], []
    for _ in range(n):
        obj = random_object(rng)
        cam = random_camera(rng)
        new = [c for c in COLORS if c != obj.color][int(rng.integers(len(COLORS) - 1))]
        objs.append(obj)
        cams.append(cam)
        sources.append(caption(obj.shape, obj.color, obj.floor, template=0))
        targets.append(caption(obj.shape, new, obj.floor, template=0))
        target_colors.append(new)
    out = render_batch(objs, cams, size)
    return {
        "images": out["image"].permute(0, 3, 1, 2).contiguous().float(),
        "masks": out["mask"].bool(),
        "sources": sources,
        "targets": targets,
        "source_colors": [o.color for o in objs],
        "target_colors": target_colors,
        "shapes": [o.shape for o in objs],
    }


def edit_all(
    prior, name: str, data: Dict[str, object], *, batch: int, edit: EditConfig, progress: bool = True, region=None, **loss_settings
) -> Dict[str, object]:
    """Edit every image of `data` (from `held_out_colour_swaps`) with loss `name`, `batch` rows at a time.

    Batch k is seeded `edit.seed + k·batch`; `loss_settings` are `DistillationConfig` fields (None: the
    paper's); `region` is `edit_image`'s (None or "auto"). Returns the edited images, the skipped steps and the seconds spent optimising.
    """
    from nerfedit.image.edit import edit_image
    from nerfedit.losses import build_loss
    from nerfedit.losses.base import DistillationConfig

    edited, skipped, seconds = [], 0, 0.0
    n = len(data["sources"])
    for start in range(0, n, batch):
        rows = slice(start, min(n, start + batch))
        loss = build_loss(DistillationConfig(name=name, **loss_settings), prior)  # type: ignore[arg-type]
        images, history = edit_image(
            prior,
            data["images"][rows],
            target=data["targets"][rows],
            source=data["sources"][rows],
            loss=loss,
            config=replace(edit, seed=edit.seed + start),
            progress=progress,
            region=region,
        )
        edited.append(images)
        skipped += history.skipped
        seconds += history.seconds
    return {"images": torch.cat(edited), "skipped": skipped, "seconds": seconds}
