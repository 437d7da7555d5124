"""`ns-train nerfedit` and `ns-train nerfedit-small`: the plugin's MethodSpecifications (entry points).

    nerfedit        nerfacto's field, optimisers and schedule; prior sd15 (fp16 on CUDA); edits at the
                    prior's resolution (512² with chunked, deferred back-propagation). A source trained
                    with `ns-train nerfacto` loads with --load-dir.
    nerfedit-small  a small, fast field for CPUs and previews (8 hash levels, 2^15 tables, max res 256,
                    32 nerf samples, proposals 64/32, 1024 rays per batch) and the embedded toy prior.

Both reconstruct the source first when no --load-dir is given (one run, one output folder), and edit with
DDS unless `--pipeline.loss.name` names another loss, which brings its own defaults (`nerfedit.losses.catalog`).
On a machine without CUDA the device defaults to the CPU; nothing changes where CUDA is available.
"""

from __future__ import annotations

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.plugins.types import MethodSpecification

from nerfedit.nerf.common.device import DEFAULT_DEVICE
from nerfedit.nerf.edit.datamanager import EditDataManagerConfig
from nerfedit.nerf.edit.model import NerfEditModelConfig
from nerfedit.nerf.edit.pipeline import NerfEditPipelineConfig
from nerfedit.nerf.edit.trainer import NerfEditTrainerConfig


def _optimizers(max_steps: int) -> dict:
    """nerfacto's optimisers (Adam 1e-2 for fields and proposals, 1e-3 for camera poses)."""
    return {
        "proposal_networks": {
            "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=max_steps),
        },
        "fields": {
            "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=max_steps),
        },
        "camera_opt": {
            "optimizer": AdamOptimizerConfig(lr=1e-3, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=5000),
        },
    }


def nerfedit_config() -> NerfEditTrainerConfig:
    """Full size: nerfacto as `ns-train nerfacto` trains it, edited with Stable Diffusion 1.5."""
    return NerfEditTrainerConfig(
        method_name="nerfedit",
        steps_per_eval_batch=500,
        steps_per_save=250,
        max_num_iterations=31000,  # informational: the run's length is reconstruct_steps + edit_steps
        mixed_precision=True,
        machine=MachineConfig(device_type=DEFAULT_DEVICE),
        pipeline=NerfEditPipelineConfig(
            datamanager=EditDataManagerConfig(
                train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096,
            ),
            model=NerfEditModelConfig(
                eval_num_rays_per_chunk=1 << 15,
                average_init_density=0.01,
                camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"),
            ),
            prior="sd15",
            reconstruct_steps=30000,
            edit_steps=1000,
            render_chunk=1 << 15,
        ),
        optimizers=_optimizers(200000),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


def nerfedit_small_config() -> NerfEditTrainerConfig:
    """Small and fast: a CPU-sized nerfacto field and the embedded toy prior (64×64 scenes)."""
    return NerfEditTrainerConfig(
        method_name="nerfedit-small",
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_save=100,
        max_num_iterations=1600,  # informational: the run's length is reconstruct_steps + edit_steps
        mixed_precision=True,
        machine=MachineConfig(device_type=DEFAULT_DEVICE),
        pipeline=NerfEditPipelineConfig(
            datamanager=EditDataManagerConfig(
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
            ),
            model=NerfEditModelConfig(
                eval_num_rays_per_chunk=1 << 14,
                average_init_density=0.01,
                num_levels=8,
                log2_hashmap_size=15,
                max_res=256,
                num_nerf_samples_per_ray=32,
                num_proposal_samples_per_ray=(64, 32),
                proposal_net_args_list=[
                    {"hidden_dim": 16, "log2_hashmap_size": 15, "num_levels": 5, "max_res": 128, "use_linear": False},
                    {"hidden_dim": 16, "log2_hashmap_size": 15, "num_levels": 5, "max_res": 256, "use_linear": False},
                ],
                camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"),
            ),
            prior="toy",
            reconstruct_steps=1200,
            edit_steps=400,
            render_chunk=1 << 14,
            viewer_max_res=128,
        ),
        optimizers=_optimizers(20000),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 14),
        vis="viewer",
    )


nerfedit_method = MethodSpecification(
    config=nerfedit_config(),
    description="Text-driven NeRF editing by score distillation (DDS by default) from a latent diffusion prior.",
)

nerfedit_small_method = MethodSpecification(
    config=nerfedit_small_config(),
    description="nerfedit with a small, fast nerfacto field and the embedded toy prior (CPUs, previews).",
)
