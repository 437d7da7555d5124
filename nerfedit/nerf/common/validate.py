"""Checks `ns-train nerfedit` and `nerfedit-generate` run before they train: each failure is ONE line and exit code 2.

    check_scene       --data is a readable nerfstudio scene (transforms.json, frames, first image)
    check_prompts     a non-empty target prompt
    check_prior       the prior resolves to weights on this machine, and its device/dtype make sense

Loss names are checked by the catalogue (`nerfedit.losses.catalog.entry`); checkpoints by
`nerfedit.nerf.edit.source.inspect_checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from nerfedit.errors import UserError


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


def check_prior(name: str, device: Optional[str], dtype: str) -> None:
    """The prior's weights are on this machine (or downloadable), and device/dtype are usable."""
    from nerfedit.priors.loader import DTYPES, local_folder, resolve_prior

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
    local_folder(name, resolve_prior(name))
