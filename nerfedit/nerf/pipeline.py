"""NerfEditPipeline: reconstruct the source (unless given), then edit it by score distillation. Thin.

Phases, in ONE run and one output folder:

    steps [0, reconstruct_steps)   nerfacto's RGB loss on ray batches (VanillaPipeline, unchanged)
    then                           the field is copied into the frozen source (`model.source`)
    edit steps                     pick a training camera (sometimes a jittered novel view), render
                                   full images of source and target at the edit resolution, VAE-encode
                                   both — a training view's source latent is computed once and cached —,
                                   ask the loss core (`nerfedit.losses`, CDS by default) for its
                                   surrogate loss, and back-propagate it through the VAE encoder into
                                   the target field.

With `--load-dir` of a nerfacto run the reconstruction is skipped: that model is the source. With
`--load-dir` of this run's own checkpoints (or `--load-config` of its config.yml) it resumes.
The pipeline renders, encodes and steps; it does not implement a loss.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple, Type

import numpy as np
import torch
import torch.nn.functional as F

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils.rich_utils import CONSOLE

from nerfedit.errors import UserError
from nerfedit.image.edit import EditConfig, edit_latents
from nerfedit.losses.base import DistillationConfig
from nerfedit.nerf.model import NerfEditModel, NerfEditModelConfig
from nerfedit.nerf.prior_options import PriorOptions, encode_renders, load_configured_prior
from nerfedit.nerf.render import (
    crop_bundle,
    deferred_backward,
    focus_point,
    from_image,
    jitter_camera,
    ray_bundle,
    render_image,
    render_with_graph,
    scaled_camera,
    seeded_rng,
    to_image,
    up_vector,
)
from nerfedit.nerf.validate import EDIT_STATE_KEY, check_loss
from nerfedit.nerf.viewer import EditControls, side_by_side

@dataclass
class NerfLossConfig(DistillationConfig):
    """The loss core's settings (`nerfedit.losses.base.DistillationConfig`); `None` = the paper's default."""

    name: str = "cds"
    """Which loss: sds | dds | cds | lmc | bridge | nfsd. CDS (DDS + PatchNCE) keeps the scene's structure."""


@dataclass
class NerfEditPipelineConfig(VanillaPipelineConfig, PriorOptions):
    """Text-driven editing of a nerfacto scene by score distillation from a latent diffusion prior
    (`PriorOptions` adds --pipeline.prior, --pipeline.prior-device/-dtype and the before | after turntable)."""

    _target: Type = field(default_factory=lambda: NerfEditPipeline)
    """target class to instantiate"""
    datamanager: VanillaDataManagerConfig = field(
        default_factory=lambda: VanillaDataManagerConfig(dataparser=NerfstudioDataParserConfig())
    )
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
    edit_lr: float = 1e-2
    """Learning rate of the edited parameters when editing starts (Adam state reset; CDS's NeRF edits: 0.01)."""
    edit_resolution: Optional[int] = None
    """Side of the square edit renders in pixels; default: the prior's resolution. Renders are resized
    to the prior's resolution before encoding, so a smaller value trades detail for speed."""
    crop_scale: float = 1.0
    """> 1: render the view with its short side at crop_scale × edit_resolution and edit a random square crop."""
    edit_appearance_only: bool = False
    """Edit colours only: train the colour head, keep density/geometry (and proposals) frozen."""
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
    preview_steps: int = 200
    """Latent optimisation steps of the viewer's 2D Preview: the 2D edit's own 200 DDS steps (same loss core,
    same settings; a few seconds with the toy prior on a CPU, ~20 s with Stable Diffusion on a GPU)."""


class NerfEditPipeline(VanillaPipeline):
    """VanillaPipeline for the reconstruction; render → encode → loss core → backprop for the edit."""

    config: NerfEditPipelineConfig
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
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        self.grad_scaler = grad_scaler
        self._prior = None
        self._losses: Dict[Tuple[str, Optional[float]], Any] = {}
        self._source_cache: Dict[int, Dict[str, torch.Tensor]] = {}
        self._geometry_cache: Dict[Tuple[int, int, int], Any] = {}
        self._geometry_bytes = 0
        self._edit_prepared = False
        self._resumed_in_edit = False
        self._trainer = None
        self._optimizers = None
        self._run_dir: Optional[Path] = None
        self._previews = 0
        self._anchor = torch.zeros((), requires_grad=True)  # see _edit_step: deferred backprop's no-op graph
        self.stats = {"source_renders": 0, "source_cache_hits": 0, "geometry_cache_hits": 0, "skipped_steps": 0}
        self.last_timings: Dict[str, float] = {}
        guidance = config.loss.guidance_scale
        if guidance is None and config.loss.name in _known_losses():
            guidance = config.loss.with_defaults().guidance_scale
        self.nerfedit = EditControls(
            config.source_prompt,
            config.target_prompt,
            config.loss.name,
            float(guidance or 7.5),
            self.preview,
            self.start_pause,
            self._initial_view,
            config.viewer_max_res,
        )
        if test_mode == "val":  # training: a broken prior or a word it can't read fails now, not at the first edit step
            self.check_prompts_readable(config.source_prompt, config.target_prompt)

    def check_prompts_readable(self, source_prompt: str, target_prompt: str) -> None:
        """Word-level priors (toy) map unknown words to one token: that would edit towards noise, so refuse."""
        prior = self.get_prior()
        for which, prompt in (("source", source_prompt), ("target", target_prompt)):
            unknown = prior.unknown_words(prompt)
            if unknown:
                raise UserError(
                    f"the {prior.name} prior does not know the word(s) {', '.join(repr(w) for w in unknown)} "
                    f"in the {which} prompt '{prompt}'"
                )

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
        check_loss(name)
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

    # ---- phases ---------------------------------------------------------------------------
    def get_train_loss_dict(self, step: int):
        if not self.model.source_frozen:
            if step < self.config.reconstruct_steps:
                return super().get_train_loss_dict(step)
            self.model.freeze_source(step)
        if not self._edit_prepared:
            self._prepare_edit(restart_optimizers=not self._resumed_in_edit)
        return self._edit_step(step)

    def _prepare_edit(self, restart_optimizers: bool) -> None:
        """Freeze what the edit must not touch; on a fresh start, reset Adam's state and set `edit_lr`."""
        trainable = self.model.set_edit_trainable(self.config.edit_appearance_only)
        if restart_optimizers and self._optimizers is not None:
            for group in ("fields", "proposal_networks"):
                optimizer = self._optimizers.optimizers.get(group)
                if optimizer is None:
                    continue
                optimizer.state.clear()
                for param_group in optimizer.param_groups:
                    param_group["lr"] = self.config.edit_lr
                scheduler = self._optimizers.schedulers.get(group)
                if scheduler is not None:
                    scheduler.base_lrs = [self.config.edit_lr for _ in scheduler.base_lrs]
        self._source_cache.clear()
        self._geometry_cache.clear()
        self._geometry_bytes = 0
        self._edit_prepared = True
        source, target = self.prompts()
        CONSOLE.print(
            f"nerfedit: editing from step {int(self.model.edit_start_step)} for {self.config.edit_steps} steps: "
            f"'{source}' → '{target}', loss {self.nerfedit.e3_loss.value}, training {', '.join(trainable)}"
        )
        self.nerfedit.status(f"**editing** from step {int(self.model.edit_start_step)}")
        trainer = self._trainer
        if self.config.start_edit_paused and trainer is not None and getattr(trainer, "viewer_state", None) is not None:
            trainer.training_state = "paused"
            self.nerfedit.status("**paused** before the first edit step: Preview, then Start/Pause edit")

    # ---- one edit step --------------------------------------------------------------------
    def _pick_view(self, step: int):
        """(camera at the render size, training index, novel?, crop (top, left), rng) for `step` — deterministic."""
        rng = np.random.default_rng([self.config.seed, step])
        cameras = self.datamanager.train_dataset.cameras
        index = int(rng.integers(len(cameras)))
        size = self.edit_resolution()
        camera = scaled_camera(cameras, index, max(size, round(size * self.config.crop_scale)))
        novel = bool(rng.random() < self.config.novel_view_prob)
        if novel:
            camera = jitter_camera(camera, self._focus(), self._up(), self.config.jitter_degrees, rng)
        height, width = int(camera.height.reshape(-1)[0]), int(camera.width.reshape(-1)[0])
        crop = (int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1)))
        return camera, index, novel, crop

    def _initial_view(self):
        """Where a new browser starts: training camera 0, looking at the capture's focus (nerfstudio units)."""
        cameras = self.datamanager.train_dataset.cameras
        c2w = cameras.camera_to_worlds[0].cpu().numpy()
        fov = 2 * float(np.arctan(float(cameras.height[0]) / (2 * float(cameras.fy[0]))))
        return c2w[:, 3], self._focus().numpy(), self._up().numpy(), fov

    def _focus(self) -> torch.Tensor:
        if not hasattr(self, "_focus_point"):
            self._focus_point = focus_point(self.datamanager.train_dataset.cameras)
        return self._focus_point

    def _up(self) -> torch.Tensor:
        if not hasattr(self, "_up_vector"):
            self._up_vector = up_vector(self.datamanager.train_dataset.cameras)
        return self._up_vector

    def _source_latent(self, bundle, index: int, novel: bool, height: int, width: int, crop: Tuple[int, int], seed: int, geometry=None):
        """Latent of the source's render of this view; a training view's is rendered and encoded once.

        With `geometry` (appearance-only edits, whole views) the source is rendered from the target's
        frozen geometry with the source's colour head: no second sampling/density pass.
        """
        size = self.edit_resolution()
        chunk = self.config.render_chunk
        whole = crop == (0, 0) and height == size and width == size
        entry = None if novel else self._source_cache.get(index)
        if entry is not None:
            self.stats["source_cache_hits"] += 1
        else:
            self.stats["source_renders"] += 1
            if geometry is not None and (whole or novel):
                with torch.no_grad():
                    image = to_image(self.model.render_appearance(geometry, source=True).float(), size, size)
            elif novel:
                image = to_image(render_image(self.model.source, crop_bundle(bundle, height, width, *crop, size), chunk, seed), size, size)
            else:
                image = to_image(render_image(self.model.source, bundle, chunk, seed), height, width)
            if novel:
                return self.encode_source(image)
            entry = {"latent": self.encode_source(image)} if whole else {"image": image}
            self._source_cache[index] = entry
        if whole:
            return entry["latent"]
        top, left = crop
        return self.encode_source(entry["image"][..., top : top + size, left : left + size])

    def _geometry(self, bundle, index: int, novel: bool, crop: Tuple[int, int], seed: int):
        """Frozen geometry of the target for this view (appearance-only edits), cached for training views."""
        key = (index, *crop)
        if not novel and key in self._geometry_cache:
            self.stats["geometry_cache_hits"] += 1
            return self._geometry_cache[key]
        with seeded_rng(bundle, seed, 0):
            geometry = self.model.frozen_geometry(bundle)
        size = geometry.nbytes()
        if not novel and self._geometry_bytes + size <= self.config.geometry_cache_mb * 2**20:
            self._geometry_cache[key] = geometry
            self._geometry_bytes += size
        return geometry

    def _edit_step(self, step: int):
        """Render, encode, loss core, backprop; returns (outputs, loss dict, metrics dict) as nerfstudio expects."""
        timings: Dict[str, float] = {}
        clock = time.perf_counter()
        edit_step = step - int(self.model.edit_start_step)
        camera, index, novel, crop = self._pick_view(step)
        bundle, height, width = ray_bundle(camera, index, self.device)
        size = self.edit_resolution()
        seed = (self.config.seed * 7_919 + step) % (2**31 - 1)

        target_bundle = crop_bundle(bundle, height, width, *crop, size)
        deferred = len(target_bundle) > self.config.render_chunk
        geometry = None
        if self.config.edit_appearance_only and not deferred:
            geometry = self._geometry(target_bundle, index, novel, crop, seed)
        timings["geometry"] = time.perf_counter() - clock
        clock = time.perf_counter()
        z_source = self._source_latent(bundle, index, novel, height, width, crop, seed, geometry)
        timings["source"] = time.perf_counter() - clock

        aux = None if self.config.edit_appearance_only else self.model.interlevel_loss
        clock = time.perf_counter()
        if deferred:
            image = to_image(render_image(self.model, target_bundle, self.config.render_chunk, seed), size, size)
            image.requires_grad_(True)
            aux_loss = None
        elif geometry is not None:
            image = to_image(self.model.render_appearance(geometry).float(), size, size)
            aux_loss = None
        else:
            rgb, aux_loss = render_with_graph(self.model, target_bundle, aux, seed)
            image = to_image(rgb, size, size)
        timings["render"] = time.perf_counter() - clock

        clock = time.perf_counter()
        z = self.encode(image)
        timings["encode"] = time.perf_counter() - clock

        clock = time.perf_counter()
        source_prompt, target_prompt = self.prompts()
        prior = self.get_prior()
        generator = torch.Generator(device=prior.device).manual_seed(seed)
        with torch.autocast(device_type=prior.device.type, enabled=False):
            out = self.current_loss()(
                z, prompt=target_prompt, source_prompt=source_prompt, z_source=z_source, step=edit_step, generator=generator
            )
        timings["loss"] = time.perf_counter() - clock

        metrics: Dict[str, Any] = {"edit_t": float(out.t.float().mean()), **{f"edit_{k}": v for k, v in out.terms.items()}}
        metrics.update(self.stats)
        zero = self._anchor * 0.0  # a graph that reaches no parameter: for steps whose backward is already done
        if out.skipped:
            self.stats["skipped_steps"] += 1
            loss_dict = {"edit_loss": zero.to(self.device)}
        elif deferred:
            clock = time.perf_counter()
            out.loss.backward()
            scale = float(self.grad_scaler.get_scale()) if self.grad_scaler is not None and self.grad_scaler.is_enabled() else 1.0
            aux_total = deferred_backward(
                self.model, target_bundle, from_image(image.grad), self.config.render_chunk, aux, seed, scale
            )
            timings["backward"] = time.perf_counter() - clock
            loss_dict = {"edit_loss": (out.loss.detach() + zero).to(self.device)}
            if aux is not None:
                loss_dict["interlevel_loss"] = torch.tensor(aux_total, device=self.device) + zero.to(self.device)
        else:
            metrics["edit_grad_norm"] = out.grad_norm
            loss_dict = {"edit_loss": out.loss.to(self.device)}
            if aux is not None:
                loss_dict["interlevel_loss"] = aux_loss
        self.last_timings = timings
        return {"rgb": image.detach()}, loss_dict, metrics

    # ---- checkpoints ----------------------------------------------------------------------
    def load_pipeline(self, loaded_state: Dict[str, Any], step: int) -> None:
        """A nerfedit checkpoint resumes; a nerfacto one becomes the source (target = source = it)."""
        state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in loaded_state.items()}
        if EDIT_STATE_KEY not in state:
            self.load_source(state, step)
            return
        own = self.state_dict()
        state = {k: v for k, v in state.items() if not k.startswith("_model.lpips.") or k in own}
        state.update({k: v for k, v in own.items() if k.startswith("_model.lpips.") and k not in state})
        self.model.update_to_step(step)
        self.load_state_dict(state)
        self._resumed_in_edit = self.model.source_frozen

    def load_source_of_edit(self, loaded_state: Dict[str, Any], step: int) -> None:
        """A nerfedit checkpoint's frozen source as the scene to edit (a new edit of the same reconstruction)."""
        prefix = "_model.source."
        state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in loaded_state.items()}
        if int(state.get(EDIT_STATE_KEY, -1)) < 0:
            raise UserError("--pipeline.reuse-source: that run was still reconstructing (no source yet); resume it instead")
        self.load_source({"_model." + k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, step)

    def load_source(self, state: Dict[str, Any], step: int) -> None:
        """Load a nerfacto pipeline state as the scene to edit: into the target, then copied to the source."""
        target = {
            k[len("_model.") :]: v
            for k, v in state.items()
            if k.startswith("_model.") and not k.startswith("_model.lpips.")
        }
        try:
            missing, unexpected = self.model.load_state_dict(target, strict=False)
        except RuntimeError as error:  # shape mismatch: trained with other field settings
            first = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error)[:200])
            raise UserError(
                f"the source checkpoint's nerfacto settings differ from this method's ({first}); "
                "edit it with the method whose field sizes it was trained with (nerfedit for nerfacto, "
                "nerfedit-small for a small field)"
            ) from None
        missing = [k for k in missing if not k.startswith(("source.", "lpips.", "edit_start_step", "device_indicator_param"))]
        if missing or unexpected:
            names = (missing or unexpected)[:3]
            raise UserError(f"the source checkpoint does not match a nerfacto model ({'missing' if missing else 'unexpected'}: {', '.join(names)})")
        self.model.update_to_step(step)
        self.model.freeze_source(0)
        CONSOLE.print(f"nerfedit: loaded the source (nerfacto, step {step}); editing starts at step 0")

    # ---- callbacks ------------------------------------------------------------------------
    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        self._optimizers = training_callback_attributes.optimizers
        self._trainer = training_callback_attributes.trainer
        if self._trainer is not None:
            self._run_dir = Path(self._trainer.base_dir)
        callbacks = super().get_training_callbacks(training_callback_attributes)
        callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN], self._after_train))
        return callbacks

    def _after_train(self, step: int) -> None:
        if not self.model.source_frozen or self.config.turntable_frames <= 0 or self._run_dir is None:
            return
        from nerfedit.nerf.turntable import write_turntable

        path = write_turntable(
            self.model,
            self.datamanager.train_dataset.cameras,
            self._run_dir / "turntable.mp4",
            frames=self.config.turntable_frames,
            fps=self.config.turntable_fps,
            chunk=self.config.render_chunk,
        )
        CONSOLE.print(f"nerfedit: before | after turntable written to {path}")

    # ---- viewer actions -------------------------------------------------------------------
    def preview(self) -> Optional[Path]:
        """A short 2D edit of the viewer's current view with the same loss core; shown and saved as PNG.

        Renders the source (or, before editing starts, the reconstruction so far) from the browser's
        camera — the first training camera without a viewer —, optimises its latent for
        `preview_steps` steps with `nerfedit.image.edit.edit_latents`, and shows source | preview.
        """
        lock = getattr(self._trainer, "train_lock", None) or nullcontext()  # the model is shared with training
        self.nerfedit.status("**preview** running…")
        CONSOLE.log("nerfedit: preview requested")
        try:
            with lock:
                CONSOLE.log("nerfedit: preview started")
                return self._preview(self.edit_resolution())
        except UserError as error:  # e.g. an unknown loss typed in the viewer: say so there, keep training
            self.nerfedit.status(f"**error**: {error}")
            CONSOLE.print(f"nerfedit: preview failed: {error}")
            return None

    def _preview(self, size: int) -> Path:
        was_training = self.training
        self.eval()
        try:
            camera = self.nerfedit.viewer_camera(size, size)
            if camera is None:
                camera = scaled_camera(self.datamanager.train_dataset.cameras, 0, size)
            bundle, height, width = ray_bundle(camera, 0, self.device)
            top, left = (height - size) // 2, (width - size) // 2
            bundle = crop_bundle(bundle, height, width, top, left, size)
            field = self.model.source if self.model.source_frozen else self.model
            image = to_image(render_image(field, bundle, self.config.render_chunk), size, size)
            source_prompt, target_prompt = self.prompts()
            check_loss(self.nerfedit.e3_loss.value)
            z_source = self.encode_source(image)
            prior = self.get_prior()
            z, history = edit_latents(
                self.current_loss(),
                z_source,
                target=target_prompt,
                source=source_prompt,
                config=EditConfig(steps=self.config.preview_steps, seed=self.config.seed),
                progress=False,
            )
            with torch.no_grad():
                edited = prior.decode_latents(z).float()
                if edited.shape[-1] != size:
                    edited = F.interpolate(edited, size=(size, size), mode="bilinear", align_corners=False)
            panel = side_by_side(image.cpu(), edited.cpu())
        finally:
            self.train(was_training)
        self._previews += 1
        folder = (self._run_dir or Path.cwd() / "nerfedit_previews") / "previews"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"preview_{self._previews:03d}.png"
        import imageio.v2 as imageio

        imageio.imwrite(path, panel)
        caption = f"**Preview** ({self.nerfedit.e3_loss.value}, {history.steps} steps): source | '{target_prompt}'"
        self.nerfedit.show_preview(panel, caption)
        state = getattr(self._trainer, "training_state", "")
        self.nerfedit.status(f"preview saved as previews/{path.name}" + (f"; training is {state}" if state else ""))
        CONSOLE.print(f"nerfedit: preview saved to {path} ({history.summary()})")
        return path

    def start_pause(self) -> str:
        """Start/Pause edit: toggles the trainer between training and paused; returns the new state."""
        trainer = self._trainer
        if trainer is None or trainer.training_state == "completed":
            return "completed" if trainer is not None else "no trainer"
        trainer.training_state = "paused" if trainer.training_state == "training" else "training"
        running = "editing" if self.model.source_frozen else "reconstructing"
        self.nerfedit.status(f"**{'paused' if trainer.training_state == 'paused' else running}**")
        return trainer.training_state


def _known_losses() -> Tuple[str, ...]:
    from typing import get_args

    from nerfedit.losses.base import LossName

    return get_args(LossName)
