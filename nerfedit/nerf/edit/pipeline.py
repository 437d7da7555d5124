"""NerfEditPipeline: reconstruct the source (unless given), then edit it by score distillation.

Phases, in ONE run and one output folder (the trainer, `edit/trainer.py`, switches between them):

    steps [0, reconstruct_steps)   nerfacto's RGB loss on ray batches (VanillaPipeline, unchanged)
    then                           the field is copied into the frozen source (`model.source`)
    edit steps                     `edit_step`: render the datamanager's view of the target → VAE-encode →
                                   the loss core (`nerfedit.losses`, DDS by default) against the source's
                                   (cached) latent → back-propagate into the target field. The trainer
                                   then steps the optimisers.

With `--load-dir` of a nerfacto run the reconstruction is skipped: that model is the source. With
`--load-dir` of this run's own checkpoints (or `--load-config` of its config.yml) it resumes (`edit/source.py`).
The pipeline orchestrates; renders and back-propagation are `edit/renders.py`'s, views and caches the datamanager's,
the GUI the viewer's, the loss the core's.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Dict, Iterator, List, Literal, Optional, Tuple, Type

import torch

from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils.rich_utils import CONSOLE

from nerfedit.losses.catalog import entry
from nerfedit.losses.output import LossOutput, SkippedSteps
from nerfedit.nerf.common.loss_help import nerf_edit_default
from nerfedit.image.optim import EditConfig
from nerfedit.nerf.common.prior_options import PriorOptions, at_prior_resolution, encode_renders, load_configured_prior
from nerfedit.nerf.edit.datamanager import EditDataManager, EditDataManagerConfig, EditView
from nerfedit.nerf.edit.loss_config import NerfLossConfig, apply_loss_defaults
from nerfedit.nerf.edit.model import NerfEditModel, NerfEditModelConfig
from nerfedit.nerf.edit.renders import EditRenders
from nerfedit.nerf.edit.region import load_region, view_region
from nerfedit.nerf.edit.source import load_pipeline
from nerfedit.nerf.edit.view_edits import advance, start_view_edit, view_fit_loss
from nerfedit.nerf.edit.viewer import EditControls, preview, start_pause
from nerfedit.priors.loader import prior_loss_defaults
from nerfedit.priors.words import refuse_unknown_words


@dataclass
class NerfEditPipelineConfig(VanillaPipelineConfig, PriorOptions):
    """Text-driven editing of a nerfacto scene by score distillation from a latent diffusion prior
    (`PriorOptions` adds --pipeline.prior, --pipeline.prior-device/-dtype and the before | after turntable)."""

    _target: Type = field(default_factory=lambda: NerfEditPipeline)
    """target class to instantiate"""
    datamanager: EditDataManagerConfig = field(default_factory=EditDataManagerConfig)
    """Ray batches for the reconstruction; its training cameras are the edit views."""
    model: NerfEditModelConfig = field(default_factory=NerfEditModelConfig)
    """nerfacto settings (the edited field and its frozen source copy)."""
    source_prompt: str = ""
    """What the scene shows now, e.g. "a red cube on a wooden floor" (DDS/CDS contrast the edit against it)."""
    target_prompt: str = ""
    """What the scene should show, e.g. "a blue cube on a wooden floor". Required."""
    loss: NerfLossConfig = field(default_factory=NerfLossConfig)
    """The score-distillation loss (e.g. --pipeline.loss.name dds --pipeline.loss.guidance-scale 7.5)."""
    reuse_source: bool = False
    """With --load-dir of a nerfedit run: start a NEW edit from its frozen source (no reconstruction, new run
    folder) instead of resuming that run."""
    reconstruct_steps: int = 5000
    """Without --load-dir: steps of plain nerfacto reconstruction of the source before editing starts."""
    edit_steps: int = 1000
    """Edit steps (after the reconstruction, or from the loaded source). Replaces --max-num-iterations."""
    edit_lr: Annotated[Optional[float], nerf_edit_default(lambda nerf: nerf.edit_lr)] = None
    """Learning rate of the edited parameters when editing starts (Adam state reset). None: the loss's
    (`nerfedit.losses.catalog`; DDS's and CDS's NeRF edits: 0.01)."""
    edit_resolution: Optional[int] = None
    """Side of the square edit renders in pixels; default: the prior's resolution. Renders are resized
    to the prior's resolution before encoding, so a smaller value trades detail for speed."""
    crop_scale: float = 1.0
    """> 1: render the view with its short side at crop_scale × edit_resolution and edit a random square crop."""
    edit_appearance_only: Annotated[Optional[bool], nerf_edit_default(lambda nerf: nerf.appearance_only)] = None
    """Edit colours only: train the colour head, keep density/geometry (and proposals) frozen. None: the loss's
    (losses without a source reference, the SDS family, edit colours only)."""
    geometry_cache_mb: int = 2048
    """Appearance-only edits: keep each view's frozen samples/weights/geometry features (up to this many MB),
    so an edit step only runs the colour head. 0: recompute every step."""
    render_chunk: int = 1 << 15
    """Rays per chunk. Edit renders with more rays use two-pass deferred back-propagation (512² fits 12 GB)."""
    novel_view_prob: float = 0.0
    """Probability that an edit step uses a novel view: a training camera orbited by up to ±jitter_degrees."""
    jitter_degrees: float = 15.0
    """Largest azimuth jitter of novel views (elevation: half of it), around the capture's focus point."""
    seed: int = 0
    """Seeds camera choice, crops, jitter and the loss's noise per step (resumed runs continue identically)."""
    start_edit_paused: bool = False
    """With the viewer: pause before the first edit step until Start/Pause edit is clicked (Preview first)."""
    viewer_max_res: Optional[int] = None
    """Initial "Max res" of the viewer's 3D view (nerfstudio: 512). Renders hold the train lock, so on a CPU
    a small value keeps training and Preview responsive."""
    distill_into: Literal["views", "field"] = "views"
    """Where the loss's gradient goes. "views": into each training view's own latent, edited as `nerfedit edit-image`
    edits an image (--pipeline.view-edit: 200 SGD steps per view), while the field is fitted to the edited views by an
    RGB loss (`edit/view_edits.py` says why). "field": back-propagated through the VAE encoder into the render (the
    DDS/CDS reference code's way; crops and novel views need it)."""
    view_edit: EditConfig = field(default_factory=EditConfig)
    """distill-into views: how a view's latent is optimised (the defaults are `nerfedit edit-image`'s; --pipeline.seed
    seeds the views, so its seed and save-progress-every are not used)."""
    view_steps_per_visit: int = 16
    """distill-into views: loss steps on a view's latent each time an edit step draws it."""
    edit_region: str = "none"
    """Where the edit may change the scene: "none" (everywhere); "auto" (per training view, where the prior's
    cross-attention puts the words that differ between the prompts, from the source's render); or PATH, a folder
    of PNG masks named like the training images (white = editable). Each view's latent gradient is multiplied by
    its mask, so the field learns only inside it. The first views' masks are written to <run>/edit_region/."""
    preview_steps: int = 200
    """Latent optimisation steps of the viewer's 2D Preview: the 2D edit's own 200 DDS steps (same loss core,
    same settings; a few seconds with the toy prior on a CPU, ~20 s with Stable Diffusion on a GPU)."""


class NerfEditPipeline(EditRenders, VanillaPipeline):
    """VanillaPipeline for the reconstruction; render → encode → loss core → backward for the edit."""

    config: NerfEditPipelineConfig
    datamanager: EditDataManager
    model: NerfEditModel

    def __init__(
        self,
        config: NerfEditPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[Any] = None,
    ) -> None:
        apply_loss_defaults(config)
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self.grad_scaler = grad_scaler
        self.datamanager.view_options = config
        self._prior = None
        self._losses: Dict[Tuple[str, Optional[float]], Any] = {}
        self.skipped = SkippedSteps()
        self.trainer = None
        self.run_dir: Optional[Path] = None
        self.last_timings: Dict[str, float] = {}
        self.nerfedit = EditControls(
            config.source_prompt,
            config.target_prompt,
            config.loss.name,
            float(config.loss.with_defaults(prior_loss_defaults(config.prior, "--pipeline.prior")).guidance_scale or 7.5),
            lambda: preview(self),
            lambda: start_pause(self),
            self.datamanager.initial_view,
            config.viewer_max_res,
        )
        if test_mode == "val":  # training: a broken prior or a word it can't read fails now, not at the first edit step
            self.check_prompts_readable(config.source_prompt, config.target_prompt)
        self.region_option = load_region(self)

    def check_prompts_readable(self, source_prompt: str, target_prompt: str) -> None:
        """The one rule of `nerfedit.priors.words`: a word the prior does not know would edit towards noise."""
        prior = self.get_prior()
        refuse_unknown_words(prior.unknown_words, prior.name, {"the source prompt": source_prompt, "the target prompt": target_prompt})

    # ---- prior and loss -------------------------------------------------------------------
    def get_prior(self):
        """The diffusion prior, loaded on first use on `prior_device` (default: the pipeline's device)."""
        if self._prior is None:
            self._prior = load_configured_prior(self.config, str(self.device))
        return self._prior

    def edit_resolution(self) -> int:
        return int(self.config.edit_resolution or self.get_prior().resolution)

    def current_loss(self):
        """The loss core's loss for the viewer's current loss/guidance (the config's without a viewer)."""
        name = self.nerfedit.e3_loss.value
        entry(name, "--pipeline.loss.name")
        config = replace(self.config.loss, name=name)
        if self.nerfedit.guidance_changed:
            config = replace(config, guidance_scale=float(self.nerfedit.e4_guidance.value))
        key = (name, config.guidance_scale)
        if key not in self._losses:
            from nerfedit.losses import build_loss

            self._losses[key] = build_loss(config, self.get_prior())
        return self._losses[key]

    def prompts(self) -> Tuple[str, str]:
        """(source, target) prompts: the viewer's text boxes, or the config's."""
        return self.nerfedit.e1_source_prompt.value, self.nerfedit.e2_target_prompt.value

    @torch.no_grad()
    def encode_source(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode(image)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return encode_renders(self.get_prior(), image)

    # ---- the edit -------------------------------------------------------------------------
    def prepare_edit(self) -> List[str]:
        """Freeze what the edit must not touch and start with empty caches; returns the trainable modules."""
        trainable = self.model.set_edit_trainable(bool(self.config.edit_appearance_only))
        self.datamanager.clear_caches()
        source, target = self.prompts()
        CONSOLE.print(
            f"nerfedit: editing from step {int(self.model.edit_start_step)} for {self.config.edit_steps} steps: "
            f"'{source}' → '{target}', loss {self.nerfedit.e3_loss.value}, training {', '.join(trainable)}"
        )
        self.nerfedit.status(f"**editing** from step {int(self.model.edit_start_step)}")
        return trainable

    def edit_step(self, step: int) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
        """One edit step: render → encode → loss → backward. The gradients are left in the edited parameters for
        the trainer's optimisers (none on a skipped step); returns (loss dict, metrics dict) to log."""
        self.last_timings = {}
        view = self.datamanager.edit_view(step, self.edit_resolution())
        deferred = len(view.target_bundle()) > self.config.render_chunk
        with self._timed("geometry"):
            geometry = self.frozen_geometry(view) if self.config.edit_appearance_only and not deferred else None
        with self._timed("source"):
            z_source = self.source_latent(view, geometry)
        with self._timed("region"):
            region = view_region(self, view, z_source)
        if self.config.distill_into == "views":
            return self.view_edit_step(step, view, geometry, z_source, region, deferred)
        with self._timed("render"):
            image, aux_loss = self.render_target(view, geometry, deferred)
        with self._timed("encode"):
            z = self.encode(image)
        with self._timed("loss"):
            out = self.distill(z, z_source, step - int(self.model.edit_start_step), view.seed, region)
        with self._timed("backward"):
            loss_dict = self.backward(None if out.skipped else out.loss, image, aux_loss, view, deferred)
        self.skipped.record(step, out)
        metrics: Dict[str, Any] = {"edit_t": float(out.t.float().mean()), **{f"edit_{k}": v for k, v in out.terms.items()}}
        metrics.update(self.datamanager.stats, skipped_steps=self.skipped.count)
        if not deferred and not out.skipped:
            metrics["edit_grad_norm"] = out.grad_norm
        return loss_dict, metrics

    def view_edit_step(self, step: int, view: EditView, geometry, z_source: torch.Tensor, region, deferred: bool):
        """distill-into views: advance the view's 2D edit, then fit the render to it (`edit/view_edits.py`)."""
        prior = self.get_prior()
        with self._timed("loss"):
            edit = self.datamanager.view_edits.get(view.index)
            if edit is None:
                edit = start_view_edit(prior, at_prior_resolution(prior, self.rendered_source_image(view, geometry)), z_source)
                self.datamanager.view_edits[view.index] = edit

            def distill(z, z_src, edit_step, seed):
                return self.distill(z, z_src, edit_step, seed, region)

            advance(edit, distill, self.config.view_edit, self.config.view_steps_per_visit, view.seed, self.skipped)
            target = edit.target(prior)
        with self._timed("render"):
            image, aux_loss = self.render_target(view, geometry, deferred)
        with self._timed("backward"):
            loss = view_fit_loss(at_prior_resolution(prior, image).to(prior.device), target)
            loss_dict = self.backward(loss, image, aux_loss, view, deferred)
        metrics = {"view_edit_steps": edit.steps, "views_started": len(self.datamanager.view_edits), **self.datamanager.stats}
        return loss_dict, {**metrics, "skipped_steps": self.skipped.count}

    def distill(self, z: torch.Tensor, z_source: torch.Tensor, edit_step: int, seed: int, region=None) -> LossOutput:
        """The loss core's output for the latents `z` of the target against `z_source` (fp32, outside autocast);
        `region` [1, 1, h, w] restricts its gradient (None: not passed at all, the loss is called as without one)."""
        source_prompt, target_prompt = self.prompts()
        restrict = {} if region is None else {"region": region}
        prior = self.get_prior()
        generator = torch.Generator(device=prior.device).manual_seed(seed)
        with torch.autocast(device_type=prior.device.type, enabled=False):
            return self.current_loss()(
                z, prompt=target_prompt, source_prompt=source_prompt, z_source=z_source, step=edit_step, generator=generator, **restrict
            )

    @contextmanager
    def _timed(self, part: str) -> Iterator[None]:
        """Seconds spent in `part` of the last edit step, in `last_timings` (scripts/bench_nerf_edit.py)."""
        clock = time.perf_counter()
        yield
        self.last_timings[part] = time.perf_counter() - clock

    # ---- checkpoints ----------------------------------------------------------------------
    def load_pipeline(self, loaded_state: Dict[str, Any], step: int) -> None:
        """nerfstudio's hook (eval_setup, ns-render): a nerfedit checkpoint resumes, a nerfacto one is the source."""
        load_pipeline(self, loaded_state, step)

    # ---- callbacks ------------------------------------------------------------------------
    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        self.trainer = training_callback_attributes.trainer
        if self.trainer is not None:
            self.run_dir = Path(self.trainer.base_dir)
        callbacks = super().get_training_callbacks(training_callback_attributes)
        callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN], self._after_train))
        return callbacks

    def _after_train(self, step: int) -> None:
        if not self.model.source_frozen or self.config.turntable_frames <= 0 or self.run_dir is None:
            return
        from nerfedit.nerf.edit.turntable import turntable_labels, write_turntable

        path = write_turntable(
            self.model,
            self.datamanager.cameras,
            self.run_dir / "turntable.mp4",
            frames=self.config.turntable_frames,
            fps=self.config.turntable_fps,
            chunk=self.config.render_chunk,
            labels=turntable_labels(*self.prompts()),
        )
        CONSOLE.print(f"nerfedit: before | after turntable written to {path}")
