"""`ns-train nerfedit-generate`: text-to-3D with SDS, LMC-SDS, SDS-Bridge or NFSD (MethodSpecification, entry point).

    ns-train nerfedit-generate --pipeline.prompt "a red cube on a wooden floor"                    # LMC-SDS, toy prior
    ns-train nerfedit-generate --pipeline.prompt "…" --pipeline.loss.name sds                       # DreamFusion's SDS
    ns-train nerfedit-generate --pipeline.prompt "…" --pipeline.loss.name bridge                    # SDS-Bridge
    ns-train nerfedit-generate --pipeline.prompt "…" --pipeline.loss.fixed-eps True --machine.seed 3  # diverse LMC-SDS

The defaults are sized for the embedded toy prior on a CPU (400 steps of 32² renders, upsampled to the prior's
64²; a small generfacto field; the toy world's camera ranges; ~0.4 s per step on one core). For Stable Diffusion
pass e.g. `--pipeline.prior sd21b --pipeline.datamanager.train-resolution 64 --max-num-iterations 10000` (64²
renders upsampled to the prior's 512², as DreamFusion and threestudio do). The regulariser weights, the 0.8
collider and the sun-lit training renders were tuned on the toy prior (`scripts/run_text_to_3d_eval.py`); with
Stable Diffusion they are untested (generfacto's own shading: `--pipeline.model.sun-shading False`).
Bad input — an empty prompt, `--data`, a loss that needs a source image or is unknown, an unavailable prior
or LMC-SDS corrective — is one line (`nerfedit-generate: error: …`, exit code 2) before anything is written.
The run folder is nerfstudio's (config.yml, nerfstudio_models/), so ns-render, ns-viewer and ns-export work on it,
plus turntable.mp4 (lit by a fixed sun; and a PNG strip of it) written at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, List, Type

from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from nerfedit.errors import UserError, exit_with
from nerfedit.nerf.common.device import DEFAULT_DEVICE
from nerfedit.nerf.common.lifecycle import LifecycleTrainer
from nerfedit.nerf.common.progress import Phase
from nerfedit.nerf.common.validate import check_output_dir, check_prior, check_words
from nerfedit.nerf.common.validated_trainer import ValidatedTrainerConfig
from nerfedit.nerf.generate.model import GenerateModelConfig
from nerfedit.nerf.generate.pipeline import PROG, GenerateLossConfig, GeneratePipelineConfig, resolve_loss, toy_datamanager


FLOOR_LR = 3e-3
"""Initial learning rate of the floor's colour MLP (decays 10×), 10× the sky's. "a yellow cylinder on grass"
(LMC-SDS, seed 0, 400 steps, judged on 16 lit orbit views): with `--pipeline.distill-into image` the floor went
to (0.28, 0.46, 0.23), read as grass on 16/16 views, colour and shape 100 %; at the sky's 3e-4 it stayed grey
(0.46, 0.45, 0.46), grass on 0/16. With `latent` (J_Eᵀ·g) at 3e-3 it went grey-green (0.30, 0.37, 0.29), grass on
0/16 (at 3e-4: grey, 0/16): a faster floor needs the image route to move the right way."""


def check_no_data(config: TrainerConfig) -> None:
    """Text-to-3D has no input images."""
    data = config.data or config.pipeline.datamanager.data
    if data is not None:
        raise UserError(f"nerfedit-generate makes a scene from text alone and takes no --data (got {data}); drop it")


def validate(config: "GenerateTrainerConfig") -> None:
    """Every check that can fail before training (raises `UserError`); fills the run-length-dependent defaults."""
    pipeline = config.pipeline
    check_no_data(config)
    if config.prompt:  # ns-train's --prompt alias (it writes generfacto's model prompt): same as --pipeline.prompt
        pipeline.prompt = config.prompt
    if not pipeline.prompt.strip():
        raise UserError('empty prompt: pass --pipeline.prompt "what to generate", e.g. "a red cube on a wooden floor"')
    pipeline.loss = resolve_loss(pipeline.loss, config.max_num_iterations)
    if pipeline.loss.fixed_eps and pipeline.loss.name != "lmc":
        raise UserError(f"--pipeline.loss.fixed-eps is LMC-SDS's option (--pipeline.loss.name lmc), not {pipeline.loss.name}'s")
    if config.max_num_iterations <= 0:
        raise UserError(f"--max-num-iterations must be positive, not {config.max_num_iterations}")
    if pipeline.datamanager.train_resolution <= 0:
        raise UserError(f"--pipeline.datamanager.train-resolution must be positive, not {pipeline.datamanager.train_resolution}")
    folder = check_prior(pipeline.prior, pipeline.prior_device, pipeline.prior_dtype)
    check_words(folder, pipeline.prior, {"--pipeline.prompt": pipeline.prompt})
    check_output_dir(config.output_dir)


def slug(prompt: str) -> str:
    """A folder name for a prompt: "a red cube, on wood" → "a-red-cube-on-wood" (at most 60 characters)."""
    return re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60].rstrip("-") or "unnamed"


@dataclass
class GenerateTrainerConfig(ValidatedTrainerConfig):
    """nerfstudio's TrainerConfig; bad input stops ns-train with one line before it prints or writes anything."""

    _target: Type = field(default_factory=lambda: GenerateTrainer)
    """target class to instantiate"""
    prog: ClassVar[str] = PROG

    def __post_init__(self) -> None:
        # ns-train moves --data into the datamanager with a log line before any other hook runs: refuse it here,
        # when the command line is parsed (a config loaded from YAML does not pass through __init__).
        try:
            check_no_data(self)
        except UserError as error:
            exit_with(error, PROG)

    def set_experiment_name(self) -> None:
        """Runs are filed under the prompt (outputs/a-red-cube-on-a-wooden-floor/nerfedit-generate/<time>)."""
        if self.experiment_name is None:
            self.experiment_name = slug(self.prompt or self.pipeline.prompt)

    def validate(self) -> None:
        validate(self)


class GenerateTrainer(LifecycleTrainer):
    """nerfstudio's Trainer; a bad input or an unloadable prior/corrective is one line, before training; Ctrl-C
    after the last step keeps the final checkpoint (`nerf/common/lifecycle.py`)."""

    config: GenerateTrainerConfig

    def phases(self) -> List[Phase]:
        return [Phase("generate", 0, self._start_step + self.config.max_num_iterations)]


def nerfedit_generate_config() -> GenerateTrainerConfig:
    """Toy-sized text-to-3D on a CPU: 32² renders of a small generfacto field, LMC-SDS from the toy prior."""
    max_steps = 400
    return GenerateTrainerConfig(
        method_name="nerfedit-generate",
        steps_per_eval_batch=0,
        steps_per_eval_image=0,
        steps_per_eval_all_images=0,
        steps_per_save=200,
        max_num_iterations=max_steps,
        mixed_precision=DEFAULT_DEVICE == "cuda",
        machine=MachineConfig(device_type=DEFAULT_DEVICE),
        pipeline=GeneratePipelineConfig(
            datamanager=toy_datamanager(),
            model=GenerateModelConfig(
                eval_num_rays_per_chunk=1 << 14,
                distortion_loss_mult=1.0,
                interlevel_loss_mult=100.0,
                sphere_collider=True,
                collider_radius=0.8,  # the toy world's objects are about one unit across (bounding radius 0.72 at size 1)
                initialize_density=False,  # the log-density bias below is the start-up blob (threestudio's)
                density_bias_scale=10.0,
                density_bias_radius=0.35,
                random_background=True,
                proposal_warmup=200,
                proposal_update_every=0,
                proposal_weights_anneal_max_num_iters=200,
                start_lambertian_training=150,
                start_normals_training=300,
                orientation_loss_mult_range=(0, max_steps),
                # Weighted once (generfacto squares its weight): against the unscaled score-distillation gradient
                # of a 32² render, weaker lets a cylinder grow to fill the collider, 10× stronger empties the scene.
                opacity_loss_mult=30.0,
                sun_shading=True,
                floor_height=-0.45,  # the toy world's floor, under objects about one unit across centred at 0
                positional_prompting="discrete",
            ),
            prompt="",
            loss=GenerateLossConfig(),
            prior="toy",
        ),
        optimizers={
            "proposal_networks": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-3, max_steps=max_steps),
            },
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-3, max_steps=max_steps),
            },
            "background": {  # the sky: 30× slower than the object, else it takes the prompt's colour
                "optimizer": AdamOptimizerConfig(lr=3e-4, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=3e-5, max_steps=max_steps),
            },
            # The floor (FloorField's colour MLP; unused without one): a group of its own, so that its rate can be
            # set apart from the sky's (see FLOOR_LR for what a faster floor did).
            "floor": {
                "optimizer": AdamOptimizerConfig(lr=FLOOR_LR, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=FLOOR_LR / 10, max_steps=max_steps),
            },
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 14),
        vis="viewer",
    )


nerfedit_generate_method = MethodSpecification(
    config=nerfedit_generate_config(),
    description="Text-to-3D by score distillation (LMC-SDS by default; SDS, SDS-Bridge, NFSD) on a generfacto field.",
)
