"""Checks `ns-train nerfedit` and `nerfedit-generate` run before they train: each failure is ONE line and exit code 2.

    check_scene       --data is a readable nerfstudio scene (transforms.json, frames, every image decodes)
    check_prompts     a non-empty target prompt, and a source prompt where the loss needs one
    check_prior       the prior resolves to weights on this machine, and its device/dtype make sense
    check_words       every prompt word is one the prior knows (`nerfedit.priors.words`: its tokenizer only)
    check_output_dir  --output-dir exists or can be created, and is writable

Loss names are checked by the catalogue (`nerfedit.losses.catalog.entry`); checkpoints by
`nerfedit.nerf.edit.source.inspect_checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import torch

from nerfstudio.utils.rich_utils import CONSOLE

from nerfedit.errors import UserError
from nerfedit.losses import catalog
from nerfedit.outputs import check_writable_folder

PRIOR_FLAG = "--pipeline.prior"
"""How ns-train names the prior, for its error lines."""


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
    check_images(root, [str(f["file_path"]) for f in frames], data)
    return data


BIG_SCENE_IMAGES = 200
"""Above this many images, say that they are being checked (each one is decoded: seconds per hundred)."""


def check_images(root: Path, file_paths: List[str], data: Path) -> None:
    """Every image opens and decodes (PIL `load`): a corrupt one is found now, not by the data loader mid-setup."""
    from PIL import Image

    if len(file_paths) > BIG_SCENE_IMAGES:
        CONSOLE.print(f"nerfedit: checking that the {len(file_paths)} images of {data} decode (once, before training)")
    for file_path in file_paths:
        try:
            with Image.open(root / file_path) as image:
                image.load()
        except Exception as error:  # any decoder error (truncated, not an image, bad CRC): the scene is unreadable
            raise UserError(f"--data {data}: cannot read image {file_path} ({type(error).__name__}: {error})") from None


def check_prompts(target_prompt: str, source_prompt: Optional[str] = None, loss: Optional[str] = None) -> None:
    """The target prompt is what the edit goes towards: it must say something; so must the source prompt of a
    loss that contrasts against it (CDS, DDS)."""
    if not target_prompt or not target_prompt.strip():
        raise UserError('empty target prompt: pass --pipeline.target-prompt "what the scene should show"')
    if loss is not None:
        catalog.check_source_prompt(loss, source_prompt, "--pipeline.source-prompt")


def check_prior(name: str, device: Optional[str], dtype: str) -> Path:
    """The prior's weights are on this machine (or downloadable), and device/dtype are usable; its folder."""
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
    return local_folder(name, resolve_prior(name, PRIOR_FLAG), PRIOR_FLAG)


def check_words(prior_folder: Path, prior_name: str, prompts: Dict[str, Optional[str]]) -> None:
    """Every word of `prompts` ({flag: text}) is one the prior knows: read with its tokenizer alone (fast)."""
    from nerfedit.priors.loader import load_tokenizer
    from nerfedit.priors.words import refuse_unknown_words, unknown_words

    tokenizer = load_tokenizer(prior_folder)
    refuse_unknown_words(lambda text: unknown_words(tokenizer, text), prior_name, prompts)


def check_output_dir(output_dir: Path) -> None:
    """ns-train creates its run folder under --output-dir after printing the config: check it can."""
    check_writable_folder(output_dir, f"--output-dir {output_dir}", create=True)
