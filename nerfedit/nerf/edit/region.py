"""The edit region in the NeRF edit (`--pipeline.edit-region auto|none|PATH`): one latent mask per edit view.

    check_edit_region(config, scene)    before training: the option, the prompts (auto), every mask (PATH)
    load_region(pipeline)               at the pipeline's start: PATH masks loaded, auto's words read by the prior
    load_view_masks(option, filenames)  the training images' PNG masks (True = editable), in camera order
    view_region(pipeline, view, z_src)  the region of an edit view [1, 1, h, w], cached per training view

The region multiplies the latent gradient the loss injects (`nerfedit.losses.output.restrict_to_region`); that
gradient flows back through the VAE encoder into the render, so each view only teaches the field what lies
inside its region: the restriction is lifted to the field through the rendered views.
- auto: from the source's latent of the view (`nerfedit.region.auto`), seeded with the pipeline's seed.
- PATH: the view's training-image mask, resized to the render ("any" pixel when shrinking), cropped like it.
  Masks exist for training cameras only, so PATH refuses novel views (`--pipeline.novel-view-prob` > 0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nerfedit.errors import UserError
from nerfedit.region.masks import RegionOption, load_mask, mask_path, parse_region

SAVED_VIEWS = 4
"""How many training views' regions are written to `<run>/edit_region/` (once, when first computed)."""


def check_edit_region(config, scene: Path) -> RegionOption:
    """Every check of `--pipeline.edit-region` that can fail before training (one-line `UserError`s)."""
    option = parse_region(config.edit_region)
    if option.kind == "auto":
        if not config.source_prompt.strip():
            raise UserError("--pipeline.edit-region auto needs --pipeline.source-prompt (it reads the words that differ)")
        if config.source_prompt.split() == config.target_prompt.split():
            raise UserError("--pipeline.edit-region auto: the source and target prompts are the same words")
    if option.kind == "path":
        if config.novel_view_prob > 0:
            raise UserError("--pipeline.edit-region PATH has masks for training views only: set --pipeline.novel-view-prob 0 or use auto")
        transforms = scene if scene.suffix == ".json" else scene / "transforms.json"
        meta = json.loads(transforms.read_text())
        for frame in meta["frames"]:
            size = (int(frame.get("h", meta.get("h", 0))), int(frame.get("w", meta.get("w", 0))))
            load_mask(mask_path(option, frame["file_path"]), size if all(size) else None)
    return option


def load_region(pipeline) -> RegionOption:
    """The option for training (test_mode "val"): parsed, PATH masks loaded for the training views, auto's words
    checked against the prior. Rendering or evaluating a run has no edit steps: no region."""
    if pipeline.test_mode != "val":
        return RegionOption("none")
    option = parse_region(pipeline.config.edit_region)
    if option.kind == "path":
        filenames = pipeline.datamanager.train_dataparser_outputs.image_filenames
        pipeline.datamanager.view_masks = load_view_masks(option, filenames)
    elif option.kind == "auto":
        from nerfedit.region.words import differing_tokens

        differing_tokens(pipeline.get_prior(), pipeline.config.source_prompt, pipeline.config.target_prompt)
    return option


def load_view_masks(option: RegionOption, image_filenames: Sequence[Path]) -> List[np.ndarray]:
    """Each training image's mask (bool [H, W], True = editable), in the datamanager's camera order."""
    return [load_mask(mask_path(option, Path(name).name)) for name in image_filenames]


def _resize_any(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[H, W] → [height, width]: nearest when enlarging, "any pixel" (max) when shrinking."""
    grid = mask[None, None].float()
    if height >= mask.shape[0] and width >= mask.shape[1]:
        return F.interpolate(grid, size=(height, width), mode="nearest")[0, 0]
    return F.adaptive_max_pool2d(grid, (height, width))[0, 0]


def view_region(pipeline, view, z_source: torch.Tensor) -> Optional[torch.Tensor]:
    """The edit region [1, 1, h, w] of `view` (None without one): computed once per training view and crop."""
    option = pipeline.region_option
    if option is None or not option.active:
        return None
    manager = pipeline.datamanager
    key = (view.index, *view.crop)
    if not view.novel and key in manager.region_cache:
        return manager.region_cache[key]
    latent_hw = tuple(z_source.shape[-2:])
    if option.kind == "auto":
        from nerfedit.region.auto import auto_region

        source, target = pipeline.prompts()
        region = auto_region(pipeline.get_prior(), z_source, [source], [target], seed=pipeline.config.seed)
    else:
        from nerfedit.region.latent import pixel_to_latent

        mask = _resize_any(torch.from_numpy(manager.view_masks[view.index]), view.height, view.width)
        top, left = view.crop
        region = pixel_to_latent(mask[None, top : top + view.size, left : left + view.size], latent_hw)
    region = region.to(z_source.device)
    if not view.novel:
        manager.region_cache[key] = region
        save_view_region(pipeline.run_dir, manager, view, region)
    return region


def save_view_region(run_dir: Optional[Path], manager, view, region: torch.Tensor) -> None:
    """Write the first `SAVED_VIEWS` training views' regions as `<run>/edit_region/view_<index>.png` (white = editable)."""
    if run_dir is None or len(manager.regions_saved) >= SAVED_VIEWS or view.index in manager.regions_saved:
        return
    from nerfedit.image.io import save_image
    from nerfedit.region.latent import latent_to_pixels

    folder = Path(run_dir) / "edit_region"
    folder.mkdir(parents=True, exist_ok=True)
    save_image(folder / f"view_{view.index:03d}.png", latent_to_pixels(region, view.size))
    manager.regions_saved.add(view.index)
