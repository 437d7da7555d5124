"""The edit's DataManager: nerfstudio's ray batches for the reconstruction, and for the edit its views and caches.

As Instruct-NeRF2NeRF keeps its edited-image cache in its datamanager, this one owns what an edit step
reads besides the model:

    views    one camera per step — a training camera, sometimes jittered into a novel view around the
             capture's focus, at the render size, with a random square crop — deterministic in (seed, step)
    caches   the source's latent (or render, for crops) of each training view, its edit region (when one is
             used), and for appearance-only edits each view's frozen target geometry (samples, weights,
             features), with hit counts
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Set, Tuple, Type

import numpy as np
import torch

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.datasets.base_dataset import InputDataset

from nerfedit.nerf.common.render import crop_bundle, focus_point, jitter_camera, ray_bundle, scaled_camera, up_vector
from nerfedit.nerf.edit.view_edits import ViewEdit


class EditViewOptions(Protocol):
    """What edit views are drawn with: the pipeline config's fields of the same names (their docs are there)."""

    seed: int
    crop_scale: float
    novel_view_prob: float
    jitter_degrees: float
    geometry_cache_mb: int


@dataclass
class EditView:
    """The view of one edit step: a whole render of `bundle` (height × width), of which a size² crop is edited."""

    index: int
    """The training camera it comes from (appearance embedding, pose correction, cache key)."""
    novel: bool
    """Jittered away from that camera: not cached."""
    bundle: RayBundle
    """The rays of the whole render, flattened."""
    height: int
    width: int
    crop: Tuple[int, int]
    """(top, left) of the edited square."""
    size: int
    """Side of the edited square (the edit resolution)."""
    seed: int
    """This step's seed of stratified sampling and of the loss's noise."""

    @property
    def whole(self) -> bool:
        """The edited square is the whole render (no crop)."""
        return self.crop == (0, 0) and self.height == self.size and self.width == self.size

    def target_bundle(self) -> RayBundle:
        """The rays of the edited square."""
        return crop_bundle(self.bundle, self.height, self.width, *self.crop, self.size)


@dataclass
class EditDataManagerConfig(VanillaDataManagerConfig):
    """nerfstudio's VanillaDataManager (ray batches of the training images); its cameras are the edit views."""

    _target: Type = field(default_factory=lambda: EditDataManager)
    """target class to instantiate"""
    dataparser: NerfstudioDataParserConfig = field(default_factory=NerfstudioDataParserConfig)
    """nerfstudio-format scenes (transforms.json)."""


class EditDataManager(VanillaDataManager[InputDataset]):
    """Ray batches for the reconstruction; edit views, the source-latent cache and the geometry cache for the edit."""

    config: EditDataManagerConfig

    def __init__(self, config: EditDataManagerConfig, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self.view_options: Optional[EditViewOptions] = None  # set by the pipeline, whose flags they are
        self.source_cache: Dict[int, Dict[str, torch.Tensor]] = {}
        self.view_edits: Dict[int, ViewEdit] = {}  # distill-into views: each training view's 2D edit, by camera index
        self.geometry_cache: Dict[Tuple[int, int, int], Any] = {}
        self.geometry_bytes = 0
        self.region_cache: Dict[Tuple[int, int, int], torch.Tensor] = {}  # (view, crop top, left) → [1, 1, h, w]
        self.view_masks: Optional[List[np.ndarray]] = None  # --pipeline.edit-region PATH: each training image's mask
        self.regions_saved: Set[int] = set()  # training views whose region was written to the run folder
        self.stats = {"source_renders": 0, "source_cache_hits": 0, "geometry_cache_hits": 0}
        self._focus: Optional[torch.Tensor] = None
        self._up: Optional[torch.Tensor] = None

    @property
    def cameras(self) -> Cameras:
        return self.train_dataset.cameras

    # ---- views ----------------------------------------------------------------------------------
    def edit_view(self, step: int, size: int) -> EditView:
        """The view of edit step `step` at edit size `size`: deterministic in (seed, step), so resumes continue alike."""
        options = self.view_options
        rng = np.random.default_rng([options.seed, step])
        index = int(rng.integers(len(self.cameras)))
        camera = scaled_camera(self.cameras, index, max(size, round(size * options.crop_scale)))
        novel = bool(rng.random() < options.novel_view_prob)
        if novel:
            camera = jitter_camera(camera, self.focus(), self.up(), options.jitter_degrees, rng)
        bundle, height, width = ray_bundle(camera, index, self.device)
        crop = (int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1)))
        seed = (options.seed * 7_919 + step) % (2**31 - 1)
        return EditView(index, novel, bundle, height, width, crop, size, seed)

    def initial_view(self):
        """Where a new browser starts: training camera 0, looking at the capture's focus (nerfstudio units)."""
        c2w = self.cameras.camera_to_worlds[0].cpu().numpy()
        fov = 2 * float(np.arctan(float(self.cameras.height[0]) / (2 * float(self.cameras.fy[0]))))
        return c2w[:, 3], self.focus().numpy(), self.up().numpy(), fov

    def focus(self) -> torch.Tensor:
        """What the capture looks at (novel views orbit it)."""
        if self._focus is None:
            self._focus = focus_point(self.cameras)
        return self._focus

    def up(self) -> torch.Tensor:
        """The capture's vertical."""
        if self._up is None:
            self._up = up_vector(self.cameras)
        return self._up

    # ---- caches ---------------------------------------------------------------------------------
    def clear_caches(self) -> None:
        """Forget cached sources and geometry (the edit (re)starts: the fields they came from may differ)."""
        self.source_cache.clear()
        self.region_cache.clear()
        self.view_edits.clear()
        self.geometry_cache.clear()
        self.geometry_bytes = 0

    def cached_source(self, view: EditView) -> Optional[Dict[str, torch.Tensor]]:
        """The source's cached {"latent"} (whole views) or {"image"} (cropped views) of a training view, or None."""
        entry = None if view.novel else self.source_cache.get(view.index)
        self.stats["source_cache_hits" if entry is not None else "source_renders"] += 1
        return entry

    def store_source(self, view: EditView, entry: Dict[str, torch.Tensor]) -> None:
        if not view.novel:
            self.source_cache[view.index] = entry

    def cached_geometry(self, view: EditView):
        """The target's frozen geometry of a training view's edited square, or None."""
        geometry = None if view.novel else self.geometry_cache.get((view.index, *view.crop))
        if geometry is not None:
            self.stats["geometry_cache_hits"] += 1
        return geometry

    def store_geometry(self, view: EditView, geometry) -> None:
        """Keep a training view's geometry while the cache stays within its budget."""
        size = geometry.nbytes()
        if not view.novel and self.geometry_bytes + size <= self.view_options.geometry_cache_mb * 2**20:
            self.geometry_cache[(view.index, *view.crop)] = geometry
            self.geometry_bytes += size
