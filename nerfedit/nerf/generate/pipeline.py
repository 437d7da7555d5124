"""GeneratePipeline: text-to-3D by score distillation. Thin: render, encode, ask the loss core, return a loss dict.

Each step (DreamFusion's loop, on generfacto's parts):

    camera   a random orbit camera (nerfstudio's RandomCamerasDataManager: azimuth range warmed up over
             `horizontal_rotation_warmup` steps, elevation/distance/focal ranges from the config)
    render   the whole image (`GenerateModel`, i.e. generfacto: albedo, later sometimes Lambertian-shaded,
             over its background MLP or a random colour) at the datamanager's `train_resolution`
    encode   resized to the prior's resolution and VAE-encoded
    loss     the loss core (`nerfedit.losses`): SDS, LMC-SDS (default), SDS-Bridge or NFSD, prompted with the
             camera's view prompt ("…, front view"), gives the latent gradient g
    fit      λ/2·‖x − x*‖², x* = x + D(z − g) − D(z) (`distill_into="image"`, default), or g back-propagated
             through the encoder (`"latent"`); it joins generfacto's regularisers

Why the image route: the toy VAE's encoder Jacobian bends colours (J_E·J_Eᵀ over its 4 channels has condition
≈ 1700, `nerf/edit/view_edits.py`), so J_Eᵀ·g moved a prompted grass floor to grey-green, never grass; the
decoded latent step moves it to grass (`config.FLOOR_LR` has the runs). HiFA (Zhu et al. 2023) likewise
distils in image space against a decoded target.

The 3D defaults where the papers' 2D ones differ (the catalogue's `text_to_3d` entries): LMC-SDS at ω = 20 with DreamFusion's
w(t) = 1 − ᾱ_t (its DreamFusion runs), SDS-Bridge at CFG 100 with stage 2 from 80 % of the run (its 3D
schedule: 20 000 of 25 000), and the gradient injected unscaled, as threestudio and generfacto do (grad_scale 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Tuple, Type

import torch
import tyro

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.viewer.viewer_elements import ViewerText

from nerfedit.errors import UserError
from nerfedit.losses.base import DistillationConfig, Weighting
from nerfedit.losses.catalog import DEFAULT_TEXT_TO_3D_LOSS, GENERATING_LOSS_NAMES, GeneratingLossName, generating_entry
from nerfedit.losses.output import SkippedSteps
from nerfedit.nerf.common.loss_help import loss_choice, per_loss_default
from nerfedit.nerf.common.prior_options import (
    PriorOptions,
    at_prior_resolution,
    decoded_step_target,
    encode_renders,
    load_configured_prior,
)
from nerfedit.nerf.common.render import orbit_to_cameras
from nerfedit.nerf.common.video import with_progress
from nerfedit.nerf.generate.datamanager import GenerateDataManagerConfig
from nerfedit.nerf.generate.lighting import VIEW_SUN, density_normals, lit_composite
from nerfedit.nerf.generate.model import VIEW_SUFFIX_FIELDS, GenerateModel, GenerateModelConfig
from nerfedit.orbit import OrbitCamera
from nerfedit.priors.words import refuse_unknown_words

PROG = "nerfedit-generate"
BRIDGE_SWITCH_FRACTION = 0.8
"""SDS-Bridge's stage 2 starts at this fraction of the run (official 3D schedule: step 20 000 of 25 000)."""


def vertical_rotation_range(elevation_deg: Tuple[float, float]) -> Tuple[float, float]:
    """`RandomCamerasDataManagerConfig.vertical_rotation_range` for cameras between these elevations (degrees).

    `random_train_pose` draws the polar angle θ (0 = overhead) as arccos(1 − 2u) with u uniform in
    [(a + 90)/180, (b + 90)/180] for the range (a, b): uniform on the sphere's area. So elevation e ↔ θ = 90° − e ↔
    a = 90·(1 − cos θ) − 90 = −90·sin(e).
    """
    low, high = sorted(elevation_deg)
    return (-90.0 * math.sin(math.radians(high)), -90.0 * math.sin(math.radians(low)))


@dataclass
class GenerateLossConfig(DistillationConfig):
    """The loss core's settings (`nerfedit.losses.DistillationConfig`); `None` = the 3D default, else the paper's."""

    name: Annotated[GeneratingLossName, loss_choice(GENERATING_LOSS_NAMES, DEFAULT_TEXT_TO_3D_LOSS)] = DEFAULT_TEXT_TO_3D_LOSS
    """Which loss (`nerfedit.losses.catalog`; LMC-SDS by default). DDS and CDS need a source image: not here."""
    guidance_scale: Annotated[Optional[float], per_loss_default("guidance_scale", GENERATING_LOSS_NAMES, "text_to_3d")] = None
    """CFG scale s in ε̂ = ε(∅) + s·(ε(y) − ε(∅)) (the DDS form; threestudio's s is ours minus one)."""
    t_min: Annotated[Optional[int], per_loss_default("t_min", GENERATING_LOSS_NAMES, "text_to_3d")] = None
    """Smallest timestep sampled (an index into the prior's schedule of T steps, e.g. of 1000)."""
    t_max: Annotated[Optional[int], per_loss_default("t_max", GENERATING_LOSS_NAMES, "text_to_3d")] = None
    """Timesteps are sampled uniformly from the integers in [t_min, t_max) (clamped to T)."""
    weighting: Annotated[Optional[Weighting], per_loss_default("weighting", GENERATING_LOSS_NAMES, "text_to_3d")] = None
    """w(t): uniform = 1, sds = 1 − ᾱ_t, fantasia3d = √ᾱ_t (1 − ᾱ_t)."""
    grad_scale: Annotated[Optional[float], per_loss_default("grad_scale", GENERATING_LOSS_NAMES, "text_to_3d")] = None
    """Multiplies the injected gradient (a learning-rate knob kept apart from the optimiser's)."""
    bridge_switch_step: Optional[int] = None
    """SDS-Bridge: the step stage 2 starts at. None: 80 % of --max-num-iterations (its 3D schedule)."""
    # CDS' PatchNCE settings: no CDS in text-to-3D.
    patchnce_weight: tyro.conf.Suppress[Optional[float]] = None
    patch_sizes: tyro.conf.Suppress[Tuple[int, ...]] = (1, 2)
    num_patches: tyro.conf.Suppress[int] = 256
    nce_temperature: tyro.conf.Suppress[float] = 0.07


def resolve_loss(loss: GenerateLossConfig, max_num_iterations: Optional[int] = None) -> GenerateLossConfig:
    """`loss` with the text-to-3D defaults filled in where unset, and SDS-Bridge's switch step placed at
    `BRIDGE_SWITCH_FRACTION` of a run of `max_num_iterations` steps (or DistillationConfig's default without one)."""
    text_to_3d = generating_entry(loss.name, "--pipeline.loss.name", ", or ns-train nerfedit to edit a scene").text_to_3d
    unset = {key: value for key, value in (text_to_3d or {}).items() if getattr(loss, key) is None}
    if loss.bridge_switch_step is None:
        unset["bridge_switch_step"] = (
            round(BRIDGE_SWITCH_FRACTION * max_num_iterations) if max_num_iterations else DistillationConfig.bridge_switch_step
        )
    return replace(loss, **unset)


def circle_cameras(views: int, elevation_deg: float, distance: float, focal: float, resolution: int) -> Cameras:
    """`views` cameras evenly spaced in azimuth on a circle at `elevation_deg`, looking at the origin: the toy
    world's `OrbitCamera`s (z up, focal in image widths) as nerfstudio `Cameras` — turntable and evaluation views."""
    return orbit_to_cameras([OrbitCamera(elevation_deg, 360.0 * i / views, distance, focal) for i in range(views)], resolution)


@torch.no_grad()
def render_outputs(
    model: GenerateModel, cameras: Cameras, outputs: Sequence[str] = ("rgb",), progress: Optional[str] = None
) -> Dict[str, torch.Tensor]:
    """Eval-mode renders of every camera: {output: [N, C, H, W]} (generfacto's `rgb` is albedo over its background);
    with `progress`, under a progress bar of that title."""
    was_training = model.training
    model.eval()
    views = range(len(cameras)) if progress is None else with_progress(range(len(cameras)), progress)
    try:
        renders = [model.get_outputs_for_camera(cameras[i : i + 1].to(model.device)) for i in views]
    finally:
        model.train(was_training)
    return {name: torch.stack([r[name].permute(2, 0, 1).cpu() for r in renders]) for name in outputs}


@torch.no_grad()
def lit_renders(model: GenerateModel, cameras: Cameras, progress: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """`render_outputs` plus "lit": the albedo under the toy world's light (`object_shading`: ambient, sky and the
    sun `VIEW_SUN`, no shadows on the object) over the background (with `floor_height`, its floor lit by the same
    sun, in the object's shadow). generfacto's `rgb` is unlit albedo, a flat silhouette; lit, the object shows
    its shape as the world's images (and the judge) show objects."""
    out = render_outputs(model, cameras, ("rgb", "accumulation", "normals", "background"), progress)
    last = {name: out[name].permute(0, 2, 3, 1) for name in out}  # channels last
    normals = density_normals(last["normals"], last["accumulation"])
    lit = lit_composite(last["rgb"] - last["background"], last["background"], normals, VIEW_SUN)
    out["lit"] = lit.permute(0, 3, 1, 2).clamp(0, 1)
    return out


def toy_datamanager() -> GenerateDataManagerConfig:
    """Random orbit cameras matching the toy prior's training views: elevation 15–50°, distance 3–4, focal 1.3–1.7
    image widths (`nerfedit.world.render.random_camera`); 32² training renders (upsampled to the prior's 64²: 5× faster
    than 64² on a CPU), 64² turntable and viewer renders; the azimuth range warmed up over 100 steps."""
    return GenerateDataManagerConfig(
        train_resolution=32,
        eval_resolution=64,
        num_eval_angles=16,
        radius_mean=3.5,
        radius_std=0.25,
        focal_range=(1.3, 1.7),
        vertical_rotation_range=vertical_rotation_range((15.0, 50.0)),
        jitter_std=0.05,
        horizontal_rotation_warmup=100,
    )


@dataclass
class GeneratePipelineConfig(VanillaPipelineConfig, PriorOptions):
    """Text-to-3D: a generfacto field distilled from a latent diffusion prior by nerfedit's loss core
    (`PriorOptions` adds --pipeline.prior, --pipeline.prior-device/-dtype and the turntable)."""

    _target: Type = field(default_factory=lambda: GeneratePipeline)
    """target class to instantiate"""
    datamanager: GenerateDataManagerConfig = field(default_factory=toy_datamanager)
    """Random orbit cameras (no images): render size (train-resolution), radius, focal and elevation ranges."""
    model: GenerateModelConfig = field(default_factory=GenerateModelConfig)
    """generfacto's field, background, shading, density blob and regularisers (small field by default)."""
    prompt: str = ""
    """What to generate, e.g. "a red cube on a wooden floor". Required; editable in the viewer."""
    loss: GenerateLossConfig = field(default_factory=GenerateLossConfig)
    """The score-distillation loss, e.g. --pipeline.loss.name sds --pipeline.loss.guidance-scale 100."""
    seed: Optional[int] = None
    """Seed of the loss' draws (t, ε, and the fixed ε of --pipeline.loss.fixed-eps). None: from --machine.seed."""
    turntable_elevation: float = 30.0
    """Elevation (degrees) of the turntable's camera circle."""
    distill_into: Literal["image", "latent"] = "image"
    """How the loss's latent gradient g reaches the render x. image: x is fitted to x + D(z − g) − D(z), what a
    latent step along g decodes to (HiFA's image-space score distillation; `ns-train nerfedit`'s views route);
    latent: g is back-propagated through the VAE encoder (J_Eᵀ·g, as DreamFusion and threestudio do)."""
    image_weight: float = 3.0
    """distill-into image: the fit's weight λ in λ/2·‖x − x*‖² (summed over the prior-resolution pixels); 3 makes
    its gradient about as large as J_Eᵀ·g's on world renders (‖J_Eᵀ·g‖ / ‖D(z) − D(z − g)‖ ≈ 3, LMC-SDS), so
    generfacto's regularisers keep their weight."""


class GeneratePipeline(VanillaPipeline):
    """Random orbit view → render → encode → loss core; generfacto's regularisers ride along."""

    config: GeneratePipelineConfig
    model: GenerateModel

    def __init__(
        self,
        config: GeneratePipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[Any] = None,
    ) -> None:
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self._prior = None
        self._loss = None
        self._run_dir: Optional[Path] = None
        seed = config.seed if config.seed is not None else int(torch.randint(0, 2**31 - 1, ()))
        self.generator = torch.Generator().manual_seed(seed)
        self.skipped = SkippedSteps()
        self.viewer_prompt = ViewerText("Prompt", config.prompt, hint="What to generate (applies from the next step)")
        self.prompt = ""
        if test_mode == "val":  # training: a missing prior or corrective fails now, before the first step
            self.set_prompt(config.prompt)
            self.get_loss()

    # ---- prior, loss, prompt ------------------------------------------------------------------
    def get_prior(self):
        """The diffusion prior, loaded on first use (never for ns-render / ns-export / ns-viewer)."""
        if self._prior is None:
            self._prior = load_configured_prior(self.config, str(self.device))
        return self._prior

    def get_loss(self):
        """The loss core's loss for `config.loss` with the text-to-3D defaults (`resolve_loss`)."""
        if self._loss is None:
            from nerfedit.losses import build_loss

            self._loss = build_loss(resolve_loss(self.config.loss), self.get_prior())
        return self._loss

    def set_prompt(self, prompt: str) -> None:
        """Prompt the model's views with `prompt` (a word the prior does not know is a `UserError`); view suffixes with
        such words are dropped (the toy prior knows only its world's words), with a warning, so that they don't
        become noise tokens."""
        prompt = " ".join(prompt.split())
        if not prompt:
            raise UserError('empty prompt: pass --pipeline.prompt "what to generate", e.g. "a red cube on a wooden floor"')
        prior = self.get_prior()
        refuse_unknown_words(prior.unknown_words, prior.name, {"the prompt": prompt})
        suffixes = {name: getattr(self.model.config, name) for name in VIEW_SUFFIX_FIELDS}
        dropped = {name: s for name, s in suffixes.items() if prior.unknown_words(s)}
        if dropped and self.model.config.positional_prompting != "off":
            CONSOLE.print(
                f"{PROG}: warning: the prior '{prior.name}' does not know the view suffixes "
                f"{', '.join(map(repr, dropped.values()))}; those views are prompted without them"
            )
        self.model.set_prompt(prompt, {name: "" for name in dropped})
        self.prompt = prompt

    def _apply_viewer_prompt(self) -> None:
        requested = " ".join(str(self.viewer_prompt.value).split())
        if requested and requested != self.prompt:
            try:
                self.set_prompt(requested)
            except UserError as error:  # typed in the viewer mid-run: refuse it, keep training on the old prompt
                CONSOLE.print(f"{PROG}: {error}; the prompt stays '{self.prompt}'")
                self.viewer_prompt.value = self.prompt
                return
            CONSOLE.print(f"{PROG}: prompt is now '{self.prompt}'")

    # ---- one step -----------------------------------------------------------------------------
    def get_train_loss_dict(self, step: int):
        self._apply_viewer_prompt()
        ray_bundle, batch = self.datamanager.next_train(step)
        outputs = self.model(ray_bundle)
        metrics_dict = self.model.get_metrics_dict(outputs, batch)
        loss_dict = self.model.get_loss_dict(outputs, batch, metrics_dict)

        side = self.datamanager.config.train_resolution
        image = outputs["train_output"].reshape(1, side, side, 3).permute(0, 3, 1, 2)
        prior, into_image = self.get_prior(), self.config.distill_into == "image"
        x = at_prior_resolution(prior, image)
        with torch.set_grad_enabled(not into_image):  # the image route needs no encoder graph
            latents = encode_renders(prior, x)
        with torch.autocast(device_type=latents.device.type, enabled=False):
            out = self.get_loss()(latents, prompt=self.model.view_prompt(batch), step=step, generator=self.generator)
        if self.skipped.record(step, out):
            CONSOLE.print(f"{PROG}: step {step}: non-finite gradient, distillation skipped ({self.skipped.count} so far)")
        if into_image:
            x = x.float()
            target = x if out.skipped else decoded_step_target(prior, x, latents, out.grad)
            loss_dict["distillation_loss"] = (self.config.image_weight / 2 * ((x - target) ** 2).sum()).to(self.device)
        else:
            loss_dict["distillation_loss"] = out.loss.to(self.device)
        metrics_dict.update({f"distillation/{key}": value for key, value in out.terms.items()})
        metrics_dict["distillation/grad_norm"] = out.grad_norm
        metrics_dict["distillation/skipped_steps"] = self.skipped.count
        return outputs, loss_dict, metrics_dict

    # ---- outputs ------------------------------------------------------------------------------
    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        trainer = training_callback_attributes.trainer
        if trainer is not None:
            self._run_dir = Path(trainer.base_dir)
        callbacks = super().get_training_callbacks(training_callback_attributes)
        callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN], self._after_train))
        return callbacks

    def turntable_cameras(self, views: int) -> Cameras:
        """`views` cameras around the object at the turntable elevation and the datamanager's mean radius/focal."""
        dm = self.datamanager.config
        return circle_cameras(views, self.config.turntable_elevation, dm.radius_mean, sum(dm.focal_range) / 2, dm.eval_resolution)

    def write_turntable(self, path: Path) -> Path:
        """Render the turntable (the albedo lit by a fixed sun, over the background: `lit_renders`) and write it
        as mp4 (and a PNG strip)."""
        from nerfedit.image.io import save_progress

        images = lit_renders(self.model, self.turntable_cameras(self.config.turntable_frames), "Rendering the turntable")["lit"]
        frames = [image.permute(1, 2, 0).numpy() for image in images]
        save_progress(path.with_suffix(".png"), frames[:: max(1, len(frames) // 8)])
        return save_progress(path, frames, fps=self.config.turntable_fps)

    def _after_train(self, step: int) -> None:
        if self.config.turntable_frames <= 0 or self._run_dir is None:
            return
        path = self.write_turntable(self._run_dir / "turntable.mp4")
        CONSOLE.print(f"{PROG}: turntable written to {path}")
