"""nerfstudio's RandomCamerasDataManager (random orbit cameras, no images), made readable by `ns-export`.

`ns-export poisson` / `pointcloud` set `datamanager.train_pixel_sampler.num_rays_per_batch` and then collect
points from `next_train(0)`; RandomCamerasDataManager has no pixel sampler (the export stops on an assertion)
and at step 0 its azimuth warm-up gives only the front view. Here, outside training (`test_mode` other than
"val", as `eval_setup` loads a run) every camera is drawn from the full orbit, and `train_pixel_sampler` is a
stand-in whose `num_rays_per_batch` is only ever set: each batch is a whole image anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple, Type

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.random_cameras_datamanager import RandomCamerasDataManager, RandomCamerasDataManagerConfig


@dataclass
class WholeImageSampler:
    """Stands in for a pixel sampler: a random-camera batch is one whole image of `num_rays_per_batch` rays."""

    num_rays_per_batch: int


@dataclass
class GenerateDataManagerConfig(RandomCamerasDataManagerConfig):
    """Random orbit cameras (no images) around the object; the full orbit outside training (ns-export)."""

    _target: Type = field(default_factory=lambda: GenerateDataManager)
    """target class to instantiate"""


class GenerateDataManager(RandomCamerasDataManager):
    """RandomCamerasDataManager with a `train_pixel_sampler` for ns-export; warm-up only while training."""

    config: GenerateDataManagerConfig

    def __init__(self, config: GenerateDataManagerConfig, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self.train_pixel_sampler = WholeImageSampler(config.train_resolution**2)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        if self.test_mode != "val":  # not training (ns-export, ns-render): no azimuth warm-up
            step = max(step, self.config.horizontal_rotation_warmup)
        return super().next_train(step)
