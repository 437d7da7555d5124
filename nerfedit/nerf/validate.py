"""Everything `ns-train nerfedit` checks before it trains: each failure is ONE line and exit code 2.

    check_scene       --data is a readable nerfstudio scene (transforms.json, frames, first image)
    check_prompts     a non-empty target prompt
    check_loss        a known loss name
    check_prior       the prior resolves to weights on this machine, and its device/dtype make sense
    inspect_checkpoint  --load-dir holds a loadable nerfacto (source) or nerfedit (resume) checkpoint
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, get_args

import torch

from nerfedit.errors import UserError
from nerfedit.losses.base import LossName

CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)\.ckpt$")
EDIT_STATE_KEY = "_model.edit_start_step"
"""Key of nerfedit's edit state in a checkpoint's pipeline state: its presence marks a nerfedit checkpoint."""
FIELD_PREFIX = "_model.field."
"""Keys of a nerfacto field in a pipeline state."""


def check_scene(data: Optional[Path]) -> Path:
    """`data` is a nerfstudio scene: a folder with transforms.json (or that file) listing readable images."""
    if data is None or str(data) in ("", "."):
        raise UserError("no scene given: pass --data SCENE (a folder with a nerfstudio transforms.json)")
    data = Path(data).expanduser()
    if not data.exists():
        raise UserError(f"--data {data}: no such file or folder")
    transforms = data if data.suffix == ".json" else data / "transforms.json"
    if not transforms.is_file():
        raise UserError(f"--data {data}: no transforms.json there (nerfedit reads nerfstudio-format scenes)")
    try:
        meta = json.loads(transforms.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"--data {data}: {transforms.name} is not readable JSON ({error})") from None
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames:
        raise UserError(f"--data {data}: {transforms.name} lists no frames")
    root = transforms.parent
    missing = [f.get("file_path") for f in frames if not (root / str(f.get("file_path", ""))).is_file()]
    if missing:
        raise UserError(f"--data {data}: {len(missing)} of {len(frames)} images are missing (first: {missing[0]})")
    first = root / frames[0]["file_path"]
    try:
        import imageio.v2 as imageio

        imageio.imread(first)
    except Exception as error:  # any decoder error: the scene is unreadable
        raise UserError(f"--data {data}: cannot read image {first.name} ({type(error).__name__})") from None
    return data


def check_prompts(target_prompt: str) -> None:
    """The target prompt is what the edit goes towards: it must say something."""
    if not target_prompt or not target_prompt.strip():
        raise UserError('empty target prompt: pass --pipeline.target-prompt "what the scene should show"')


def check_loss(name: str) -> None:
    """`name` is one of the loss core's losses."""
    known = get_args(LossName)
    if name not in known:
        raise UserError(f"unknown loss '{name}': use one of {', '.join(known)} (--pipeline.loss.name)")


def check_prior(name: str, device: Optional[str], dtype: str) -> None:
    """The prior's weights are on this machine (or downloadable), and device/dtype are usable."""
    from nerfedit.priors.loader import DTYPES, _local_folder, resolve_prior

    if dtype != "auto" and dtype not in DTYPES:
        raise UserError(f"unknown prior dtype '{dtype}': use auto or one of {', '.join(DTYPES)}")
    if device:
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError):
            raise UserError(f"unknown prior device '{device}' (e.g. cpu, cuda, cuda:1)") from None
        if parsed.type == "cuda":
            if not torch.cuda.is_available():
                raise UserError(f"prior device '{device}' asked for, but CUDA is not available here")
            if parsed.index is not None and parsed.index >= torch.cuda.device_count():
                raise UserError(f"prior device '{device}': only {torch.cuda.device_count()} CUDA device(s) here")
    _local_folder(name, resolve_prior(name))


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
    if EDIT_STATE_KEY in pipeline:
        info = CheckpointInfo(path, int(state.get("step", step)), "resume", int(pipeline[EDIT_STATE_KEY]))
    else:
        info = CheckpointInfo(path, int(state.get("step", step)), "source")
    _CHECKPOINT_CACHE[key] = info
    return info
