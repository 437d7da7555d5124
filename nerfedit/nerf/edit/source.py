"""The scene an edit starts from: which checkpoint `--load-dir` names, what it holds, and how it is loaded.

    a nerfacto checkpoint              → the source: loaded into the target, copied into the frozen source
    a nerfedit checkpoint              → the run resumes (the source is in it, already frozen)
    a nerfedit one + --pipeline.reuse-source → that run's frozen source, edited anew

Without a checkpoint the source is the reconstruction: `NerfEditModel.freeze_source` copies it when the
reconstruction steps are done. Classification (`inspect_checkpoint`) runs in validation, before training;
loading runs in the trainer (`load_checkpoint`) and in nerfstudio's `eval_setup` (`load_pipeline`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE

from nerfedit.errors import UserError
from nerfedit.nerf.edit.model import SOURCE_PREFIX

# ---- which checkpoint, and what it holds -------------------------------------------------------
CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)\.ckpt$")
EDIT_STATE_KEY = "_model.edit_start_step"
"""Key of nerfedit's edit state in a checkpoint's pipeline state: its presence marks a nerfedit checkpoint."""
FIELD_PREFIX = "_model.field."
"""Keys of a nerfacto field in a pipeline state."""
APPEARANCE_KEY = "field.embedding_appearance.embedding.weight"
"""nerfacto's per-image appearance codes: one row per training image of the scene."""


@dataclass
class CheckpointInfo:
    """What `--load-dir` holds."""

    path: Path
    """The checkpoint file that will be loaded."""
    step: int
    """Its training step."""
    kind: str
    """"source": a nerfacto model to edit; "resume": an interrupted nerfedit run."""
    edit_start_step: int = -1
    """For "resume": the step at which editing began (-1: it was still reconstructing)."""
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict, repr=False)
    """Shape of every tensor of its model (`_model.` dropped), to check that it fits this method's model."""


_CHECKPOINT_CACHE: Dict[Tuple[str, float], CheckpointInfo] = {}


def checkpoint_path(load_dir: Path, load_step: Optional[int] = None) -> Tuple[Path, int]:
    """The file nerfstudio's trainer would load from `load_dir` (latest step unless `load_step`)."""
    load_dir = Path(load_dir).expanduser()
    if not load_dir.is_dir():
        raise UserError(f"--load-dir {load_dir}: no such folder (give a run's nerfstudio_models folder)")
    if (load_dir / "nerfstudio_models").is_dir():
        raise UserError(f"--load-dir {load_dir}: that is a run folder; pass {load_dir / 'nerfstudio_models'}")
    steps = sorted(int(m.group(1)) for m in map(CHECKPOINT_PATTERN.match, os.listdir(load_dir)) if m)
    if not steps:
        raise UserError(f"--load-dir {load_dir}: no step-*.ckpt checkpoint in it")
    step = steps[-1] if load_step is None else load_step
    path = load_dir / f"step-{step:09d}.ckpt"
    if not path.is_file():
        raise UserError(f"--load-dir {load_dir}: no checkpoint for step {step} (have {steps[0]} … {steps[-1]})")
    return path, step


def inspect_checkpoint(load_dir: Path, load_step: Optional[int] = None) -> CheckpointInfo:
    """Load the checkpoint once (cached per file and mtime) and classify it; corrupt or foreign → UserError."""
    path, step = checkpoint_path(load_dir, load_step)
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _CHECKPOINT_CACHE:
        return _CHECKPOINT_CACHE[key]
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as error:  # truncated zip, pickle errors, weights_only refusals: all "can't load"
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise UserError(f"--load-dir: checkpoint {path.name} cannot be loaded ({type(error).__name__}: {reason})") from None
    pipeline = state.get("pipeline") if isinstance(state, dict) else None
    if not isinstance(pipeline, dict) or not any(k.startswith(FIELD_PREFIX) or k.startswith("_model.module.field.") for k in pipeline):
        raise UserError(f"--load-dir: {path.name} is not a nerfacto/nerfedit checkpoint (no nerfacto field in it)")
    shapes = {k[len("_model.") :]: tuple(v.shape) for k, v in _unwrapped(pipeline).items() if k.startswith("_model.") and hasattr(v, "shape")}
    if EDIT_STATE_KEY in pipeline:
        info = CheckpointInfo(path, int(state.get("step", step)), "resume", int(pipeline[EDIT_STATE_KEY]), shapes)
    else:
        info = CheckpointInfo(path, int(state.get("step", step)), "source", shapes=shapes)
    _CHECKPOINT_CACHE[key] = info
    return info


NOT_MODEL_STATE = ("lpips.", "edit_start_step", "device_indicator_param")
"""State entries that are not the nerfacto model's (metrics, nerfedit's edit state, a device marker)."""
OTHER_METHOD_HINT = (
    "edit it with the method whose field sizes it was trained with (nerfedit for nerfacto, nerfedit-small for a small field)"
)


def check_checkpoint_fits(model_config, info: CheckpointInfo, reuse_source: bool) -> None:
    """The checkpoint's nerfacto model has exactly the tensors, of the same shapes, as the model `model_config` builds
    — checked in validation, before ns-train makes a run folder (loading it would fail later, mid-setup).

    The expected shapes come from building that nerfacto on torch's meta device (no memory, a fraction of a second),
    with the checkpoint's own number of training images (a different scene is not a different kind of checkpoint)."""
    prefix = SOURCE_PREFIX if reuse_source and info.kind == "resume" else ""
    given = {k[len(prefix) :]: v for k, v in info.shapes.items() if k.startswith(prefix)}
    given = {k: v for k, v in given.items() if not k.startswith((SOURCE_PREFIX, *NOT_MODEL_STATE))}
    expected = nerfacto_shapes(model_config, given.get(APPEARANCE_KEY, (1,))[0])
    problems: List[str] = [f"missing {k}" for k in expected if k not in given]
    problems += [f"unexpected {k}" for k in given if k not in expected]
    problems += [f"{k}: {list(given[k])} here, {list(v)} in this method" for k, v in expected.items() if k in given and given[k] != v]
    if problems:
        raise UserError(f"--load-dir: {info.path.name} is a nerfacto model of other settings ({problems[0]}); {OTHER_METHOD_HINT}")


def nerfacto_shapes(model_config, num_train_data: int) -> Dict[str, Tuple[int, ...]]:
    """Tensor shapes of the nerfacto model `model_config` builds (on the meta device: nothing is allocated)."""
    from nerfstudio.data.scene_box import SceneBox
    from nerfstudio.models.nerfacto import NerfactoModel

    with torch.device("meta"):
        model = NerfactoModel(model_config, scene_box=SceneBox(aabb=torch.ones(2, 3)), num_train_data=num_train_data)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(NOT_MODEL_STATE)}


def checkpoint_to_load(config: TrainerConfig) -> Optional[Tuple[Path, Optional[int]]]:
    """(folder, step) of the checkpoint --load-checkpoint / --load-dir name, or None."""
    if config.load_checkpoint is not None:
        path = Path(config.load_checkpoint)
        match = CHECKPOINT_PATTERN.match(path.name)
        if not path.is_file() or match is None:
            raise UserError(f"--load-checkpoint {path}: not a nerfstudio step-NNNNNNNNN.ckpt file")
        return path.parent, int(match.group(1))
    if config.load_dir is not None:
        return Path(config.load_dir), config.load_step
    return None


def has_checkpoints(folder: Path) -> bool:
    return folder.is_dir() and any(CHECKPOINT_PATTERN.match(p.name) for p in folder.iterdir())


# ---- loading ------------------------------------------------------------------------------------
def _unwrapped(state: Dict[str, Any]) -> Dict[str, Any]:
    """A pipeline state without DistributedDataParallel's "module." prefixes."""
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def load_pipeline(pipeline, loaded_state: Dict[str, Any], step: int) -> bool:
    """A nerfedit checkpoint resumes; a nerfacto one becomes the source (target = source = it).
    Returns whether the run resumes in its edit phase (then its optimisers' state is the edit's)."""
    state = _unwrapped(loaded_state)
    if EDIT_STATE_KEY not in state:
        load_source(pipeline.model, state, step)
        return False
    own = pipeline.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("_model.lpips.") or k in own}
    state.update({k: v for k, v in own.items() if k.startswith("_model.lpips.") and k not in state})
    pipeline.model.update_to_step(step)
    pipeline.load_state_dict(state)
    return pipeline.model.source_frozen


def load_source_of_edit(model, loaded_state: Dict[str, Any], step: int) -> None:
    """A nerfedit checkpoint's frozen source as the scene to edit (a new edit of the same reconstruction)."""
    prefix = "_model.source."
    state = _unwrapped(loaded_state)
    if int(state.get(EDIT_STATE_KEY, -1)) < 0:
        raise UserError("--pipeline.reuse-source: that run was still reconstructing (no source yet); resume it instead")
    load_source(model, {"_model." + k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, step)


def load_source(model, state: Dict[str, Any], step: int) -> None:
    """Load a nerfacto pipeline state as the scene to edit: into the target, then copied to the source."""
    target = {
        k[len("_model.") :]: v
        for k, v in state.items()
        if k.startswith("_model.") and not k.startswith("_model.lpips.")
    }
    try:
        missing, unexpected = model.load_state_dict(target, strict=False)
    except RuntimeError as error:  # shape mismatch: trained with other field settings
        first = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error)[:200])
        raise UserError(f"the source checkpoint's nerfacto settings differ from this method's ({first}); {OTHER_METHOD_HINT}") from None
    missing = [k for k in missing if not k.startswith((SOURCE_PREFIX, *NOT_MODEL_STATE))]
    if missing or unexpected:
        names = (missing or unexpected)[:3]
        raise UserError(f"the source checkpoint does not match a nerfacto model ({'missing' if missing else 'unexpected'}: {', '.join(names)})")
    model.update_to_step(step)
    model.freeze_source(0)
    CONSOLE.print(f"nerfedit: loaded the source (nerfacto, step {step}); editing starts at step 0")
