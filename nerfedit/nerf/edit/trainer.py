"""nerfstudio's Trainer, plus what editing needs around it: validation, source vs resume, the step budget, and
the edit's iteration (the pipeline's `edit_step` back-propagates; the trainer steps the optimisers).

    --load-dir RUN/nerfstudio_models of a nerfacto run      → that model is the source; edit steps 0 … edit_steps
    --load-dir RUN/nerfstudio_models of a nerfedit run      → resume it, in its own folder, with its optimiser state
    --load-config RUN/config.yml of a nerfedit run          → the same, from the run's saved settings
    --load-dir … of a nerfedit run + --pipeline.reuse-source → a new edit of that run's frozen source
    no checkpoint                                           → reconstruct for reconstruct_steps, then edit

Ctrl-C during the steps saves a checkpoint before exiting (code 130), so an interrupted edit resumes where it
stopped (a killed one resumes from its last periodic checkpoint, every `--steps-per-save` steps); Ctrl-C after the
last step (turntable, viewer wait) keeps the final checkpoint (`nerf/common/lifecycle.py`).
Bad input is reported as one line (`nerfedit: error: …`, exit code 2) before anything is written.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Type, cast

import torch

from nerfstudio.engine.trainer import TRAIN_INTERATION_OUTPUT
from nerfstudio.utils.rich_utils import CONSOLE

from nerfedit.errors import UserError, exit_with
from nerfedit.nerf.common.lifecycle import INTERRUPTED_EXIT_CODE, LifecycleTrainer
from nerfedit.nerf.common.progress import Phase
from nerfedit.nerf.common.validate import check_output_dir, check_prior, check_prompts, check_scene, check_words
from nerfedit.nerf.common.validated_trainer import ValidatedTrainerConfig
from nerfedit.nerf.edit.loss_config import apply_loss_defaults
from nerfedit.nerf.edit.region import check_edit_region
from nerfedit.nerf.edit.view_edits import ViewEdit, load_view_edits, view_edits_state
from nerfedit.nerf.edit.source import (
    check_checkpoint_fits,
    checkpoint_path,
    checkpoint_to_load,
    has_checkpoints,
    inspect_checkpoint,
    load_pipeline,
    load_source_of_edit,
)

PROG = "nerfedit"


def validate(config: "NerfEditTrainerConfig") -> None:
    """Every check that can fail before training (raises `UserError`); fills in the chosen loss's edit defaults."""
    pipeline = config.pipeline
    scene = check_scene(pipeline.datamanager.data or config.data or pipeline.datamanager.dataparser.data)
    apply_loss_defaults(pipeline)
    check_prompts(pipeline.target_prompt, pipeline.source_prompt, pipeline.loss.name)
    if pipeline.edit_steps <= 0:
        raise UserError(f"--pipeline.edit-steps must be positive, not {pipeline.edit_steps}")
    if pipeline.crop_scale < 1.0:
        raise UserError(f"--pipeline.crop-scale must be ≥ 1, not {pipeline.crop_scale}")
    if pipeline.render_chunk <= 0:
        raise UserError(f"--pipeline.render-chunk must be positive, not {pipeline.render_chunk}")
    if pipeline.distill_into == "views" and (pipeline.crop_scale > 1.0 or pipeline.novel_view_prob > 0.0):
        raise UserError("--pipeline.distill-into views edits whole training views: crops and novel views need --pipeline.distill-into field")
    if pipeline.view_steps_per_visit <= 0:
        raise UserError(f"--pipeline.view-steps-per-visit must be positive, not {pipeline.view_steps_per_visit}")
    try:
        pipeline.view_edit.validate()
    except UserError as error:
        raise UserError(f"--pipeline.view-edit: {error}") from None
    given = checkpoint_to_load(config)
    if given is not None:
        info = inspect_checkpoint(*given)
        if pipeline.reuse_source and info.kind == "resume" and info.edit_start_step < 0:
            raise UserError("--pipeline.reuse-source: that run was still reconstructing (no source yet); resume it instead")
        check_checkpoint_fits(pipeline.model, info, pipeline.reuse_source)
    elif pipeline.reconstruct_steps <= 0:
        raise UserError("no source model: pass --load-dir of a trained nerfacto run, or --pipeline.reconstruct-steps > 0")
    folder = check_prior(pipeline.prior, pipeline.prior_device, pipeline.prior_dtype)
    check_words(folder, pipeline.prior, {"--pipeline.source-prompt": pipeline.source_prompt, "--pipeline.target-prompt": pipeline.target_prompt})
    check_output_dir(config.output_dir)
    check_edit_region(pipeline, scene)


@dataclass
class NerfEditTrainerConfig(ValidatedTrainerConfig):
    """nerfstudio's TrainerConfig; the number of steps comes from --pipeline.reconstruct-steps/--pipeline.edit-steps."""

    _target: Type = field(default_factory=lambda: NerfEditTrainer)
    """target class to instantiate"""

    def set_timestamp(self) -> None:
        """ns-train calls this first. A resumed run keeps its own folder (and its own checkpoints win)."""
        try:
            self._pick_run_folder()
        except UserError as error:
            exit_with(error, PROG)
        super().set_timestamp()

    def _pick_run_folder(self) -> None:
        if self.timestamp != "{timestamp}" and self.method_name is not None:
            own = self.get_checkpoint_dir()
            if has_checkpoints(own) and inspect_checkpoint(own).kind == "resume":
                if self.load_dir is None or Path(self.load_dir).resolve() != own.resolve():
                    CONSOLE.print(f"nerfedit: resuming the run in {self.get_base_dir()} from its own checkpoints")
                self.load_dir, self.load_step, self.load_checkpoint = own, None, None
                return
        if self.load_dir is None:
            return
        info = inspect_checkpoint(self.load_dir, self.load_step)
        if info.kind != "resume" or self.pipeline.reuse_source:
            return
        run = Path(self.load_dir).resolve().parent
        if run.parent.name != self.method_name:
            raise UserError(f"--load-dir is a '{run.parent.name}' run: resume it with ns-train {run.parent.name}")
        self.output_dir, self.experiment_name, self.timestamp = run.parents[2], run.parents[1].name, run.name
        CONSOLE.print(f"nerfedit: resuming the run in {run}")

    def validate(self) -> None:
        validate(self)


class NerfEditTrainer(LifecycleTrainer):
    """Trainer whose checkpoint loading tells a nerfacto source from a nerfedit run to resume, and whose iterations
    after the reconstruction are edit steps."""

    config: NerfEditTrainerConfig
    _resumed_in_edit = False
    """A resumed edit keeps its optimisers' state; every other edit restarts them at the edit's learning rate."""
    _edit_prepared = False
    """Whether `_start_edit` has run in this process."""
    _loaded_view_edits: Dict[int, ViewEdit] = {}
    """A resumed edit's views' edits, from beside its checkpoint (`_load_view_edits`)."""

    def _load_checkpoint(self) -> None:
        given = checkpoint_to_load(self.config)
        if given is None:
            CONSOLE.print("nerfedit: no checkpoint given: reconstructing the source first")
        else:
            path, _ = checkpoint_path(*given)
            info = inspect_checkpoint(*given)
            loaded = torch.load(path, map_location="cpu")
            own = path.parent.resolve() == self.config.get_checkpoint_dir().resolve()
            reuse = self.pipeline.config.reuse_source and info.kind == "resume" and not own
            if reuse:  # another nerfedit run's frozen source, edited anew (never when resuming this run)
                load_source_of_edit(self.pipeline.model, loaded["pipeline"], loaded["step"])
            else:
                self._resumed_in_edit = load_pipeline(self.pipeline, loaded["pipeline"], loaded["step"])
            if info.kind == "source" or reuse:
                self._start_step = 0  # the source's own optimiser state and schedule are not the edit's
            else:
                self._start_step = loaded["step"] + 1
                self.optimizers.load_optimizers(loaded["optimizers"])
                if "schedulers" in loaded and self.config.load_scheduler:
                    self.optimizers.load_schedulers(loaded["schedulers"])
                self.grad_scaler.load_state_dict(loaded["scalers"])
            if self._resumed_in_edit:
                self._load_view_edits(path)
            CONSOLE.print(f"nerfedit: loaded {'the source of ' if reuse else ''}{info.kind} checkpoint {path}")
        self._set_step_budget()

    # ---- the views' 2D edits (--pipeline.distill-into views) beside each checkpoint ------------
    @staticmethod
    def _view_edits_path(checkpoint: Path) -> Path:
        """<run>/view_edits/step-N.pt beside <run>/nerfstudio_models/step-N.ckpt (nerfstudio reads every file there
        as a checkpoint)."""
        return checkpoint.parent.parent / "view_edits" / f"{checkpoint.stem}.pt"

    def save_checkpoint(self, step: int) -> None:
        """nerfstudio's checkpoint, and the views' edits beside it (only the newest is kept, as nerfstudio may)."""
        super().save_checkpoint(step)
        edits = self.pipeline.datamanager.view_edits
        if edits:
            path = self._view_edits_path(self.checkpoint_dir / f"step-{step:09d}.ckpt")
            path.parent.mkdir(exist_ok=True)
            torch.save(view_edits_state(edits), path)
            if self.config.save_only_latest_checkpoint:
                for old in path.parent.glob("step-*.pt"):
                    if old != path:
                        old.unlink()

    def _load_view_edits(self, checkpoint: Path) -> None:
        """A resumed edit continues its views' edits where the checkpoint left them (none saved: they restart)."""
        path = self._view_edits_path(checkpoint)
        if path.is_file():
            prior_device = self.pipeline.get_prior().device
            self._loaded_view_edits = load_view_edits(torch.load(path, map_location="cpu"), self.pipeline.config.view_edit, prior_device)

    def phases(self) -> List[Phase]:
        """Reconstruct (unless the source is loaded or already frozen), then edit: absolute steps, as checkpoints
        count them, whatever step this process starts at."""
        config, model = self.pipeline.config, self.pipeline.model
        if model.source_frozen:
            start = int(model.edit_start_step)
            return [Phase("edit", start, start + config.edit_steps)]
        reconstruct = config.reconstruct_steps
        return [Phase("reconstruct", 0, reconstruct), Phase("edit", reconstruct, reconstruct + config.edit_steps)]

    def _set_step_budget(self) -> None:
        """max_num_iterations = the steps LEFT: the end of the last phase − start."""
        self.config.max_num_iterations = max(0, self.phases()[-1].end - self._start_step)
        self.step = max(0, self._start_step - 1)  # what _after_train saves if no step is left to run
        if self.config.max_num_iterations == 0:
            CONSOLE.print("nerfedit: this run has finished all its steps; nothing left to train")

    # ---- iterations -----------------------------------------------------------------------
    def train_iteration(self, step: int) -> TRAIN_INTERATION_OUTPUT:
        """nerfstudio's iteration while reconstructing; from then on an edit step: the pipeline's `edit_step`
        renders, encodes, asks the loss and back-propagates, then the optimisers step as in nerfstudio's iteration."""
        model = self.pipeline.model
        if not model.source_frozen:
            if step < self.pipeline.config.reconstruct_steps:
                return super().train_iteration(step)
            model.freeze_source(step)
        if not self._edit_prepared:
            self._start_edit()
        accumulation = self.gradient_accumulation_steps
        groups = list(self.optimizers.parameters.keys())
        self.optimizers.zero_grad_some([g for g in groups if step % accumulation[g] == 0])
        device_type = "cpu" if self.device.split(":")[0] == "mps" else self.device.split(":")[0]
        with torch.autocast(device_type=device_type, enabled=self.mixed_precision):
            loss_dict, metrics_dict = self.pipeline.edit_step(step)
            loss = functools.reduce(torch.add, loss_dict.values())
        self.optimizers.optimizer_scaler_step_some(
            self.grad_scaler, [g for g in groups if step % accumulation[g] == accumulation[g] - 1]
        )
        if self.config.log_gradients:
            total_grad = 0
            for tag, value in model.named_parameters():
                if value.grad is not None:
                    grad = value.grad.norm()
                    metrics_dict[f"Gradients/{tag}"] = grad
                    total_grad += grad
            metrics_dict["Gradients/Total"] = cast(torch.Tensor, total_grad)
        scale = self.grad_scaler.get_scale()
        self.grad_scaler.update()
        if scale <= self.grad_scaler.get_scale():  # a lowered scale means no optimiser step was taken
            self.optimizers.scheduler_step_all(step)
        return loss, loss_dict, metrics_dict

    def _start_edit(self) -> None:
        """The edit's first step (or a resumed edit's): freeze what it must not touch; unless resuming an edit,
        restart Adam's state at `edit_lr`; with --pipeline.start-edit-paused and a viewer, pause after this step."""
        self.pipeline.prepare_edit()  # empties the caches; a resumed edit's views' edits come back from its checkpoint
        self.pipeline.datamanager.view_edits.update(self._loaded_view_edits)
        if not self._resumed_in_edit:
            self._restart_optimizers(float(self.pipeline.config.edit_lr))
        self._edit_prepared = True
        if self.pipeline.config.start_edit_paused and getattr(self, "viewer_state", None) is not None:
            self.training_state = "paused"
            self.pipeline.nerfedit.status("**paused** before the first edit step: Preview, then Start/Pause edit")

    def _restart_optimizers(self, lr: float) -> None:
        """Forget the reconstruction's Adam moments and set the edit's learning rate (and its schedule's base)."""
        for group in ("fields", "proposal_networks"):
            optimizer = self.optimizers.optimizers.get(group)
            if optimizer is None:
                continue
            optimizer.state.clear()
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr
            scheduler = self.optimizers.schedulers.get(group)
            if scheduler is not None:
                scheduler.base_lrs = [lr for _ in scheduler.base_lrs]

    def interrupted_while_training(self) -> None:
        """Ctrl-C mid-step k: the parameters are those after step k−1; save them as step k−1 and exit 130."""
        last_done = self.step - 1
        run = self.config.get_base_dir()
        if last_done >= self._start_step:
            self.save_checkpoint(last_done)
            CONSOLE.print(
                f"nerfedit: interrupted; saved step {last_done}. Resume with: "
                f"ns-train {self.config.method_name} --load-config {run / 'config.yml'}"
            )
        else:
            CONSOLE.print("nerfedit: interrupted before the first step finished; nothing new to save")
        self.exit_now(INTERRUPTED_EXIT_CODE)
