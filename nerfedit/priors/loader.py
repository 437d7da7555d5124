"""Load a Stable-Diffusion-format prior by shortcut, hub id or local folder — and fail early and clearly offline."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Dict, Union

import torch

from nerfedit.errors import UserError
from nerfedit.priors.prior import DiffusionPrior
from nerfedit.quiet import quiet_libraries

TOY_PRIOR_DIR = Path(__file__).resolve().parent.parent / "assets" / "toy"

PRIOR_SHORTCUTS = {
    "toy": str(TOY_PRIOR_DIR),
    "sd14": "CompVis/stable-diffusion-v1-4",
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd21b": "stabilityai/stable-diffusion-2-1-base",
}
"""Named priors. `toy` is the embedded prior shipped in the package; the others are hub ids."""

LOSS_DEFAULTS_FILE = "loss_defaults.json"
"""A prior folder's own defaults for some losses, over the papers' (`losses.catalog`), e.g. {"dds": {"guidance_scale": 2.5}}:
how strongly a prior answers to CFG depends on the prior (the toy's says why and what was measured); SD has none."""

COMPONENT_FILES = ["model_index.json", LOSS_DEFAULTS_FILE, "scheduler/*", "tokenizer/*", "text_encoder/*", "vae/*", "unet/*"]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class PriorUnavailable(UserError):
    """The prior's weights can't be had here (not cached, not downloadable, not a folder)."""


def looks_like_path(name: str) -> bool:
    """A --prior value meant as a folder: it starts with . / ~, or has more slashes than a hub id `org/model`."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or name.endswith("/") or "\\" in name


def resolve_prior(name: str, flag: str = "--prior") -> str:
    """A shortcut, an existing local folder or a hub id `org/name` → what `from_pretrained` takes.

    `flag` is the option the user gave it with (`--prior`, `--pipeline.prior`), for the error lines."""
    if name in PRIOR_SHORTCUTS:
        return PRIOR_SHORTCUTS[name]
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if looks_like_path(name):
        what = "not a folder" if Path(name).expanduser().exists() else "no such folder"
        raise PriorUnavailable(f"{flag} {name}: {what} (a local prior is a diffusers folder with unet/, vae/, …)")
    if name.count("/") == 1:
        return name
    raise PriorUnavailable(
        f"unknown prior '{name}' ({flag}): use one of {', '.join(PRIOR_SHORTCUTS)}, a hub id like "
        "'org/model' or a local diffusers folder"
    )


def prior_loss_defaults(name: str, flag: str = "--prior") -> Dict[str, Dict[str, object]]:
    """The `LOSS_DEFAULTS_FILE` of prior `name` when it is a folder (toy included), {} otherwise or without one.

    Read without loading the prior, so settings can be printed and checked first. A key that is not a loss of
    the catalogue or not a `DistillationConfig` field is a one-line `UserError`."""
    from dataclasses import fields

    from nerfedit.losses.base import DistillationConfig
    from nerfedit.losses.catalog import read_loss_defaults

    path = Path(resolve_prior(name, flag)) / LOSS_DEFAULTS_FILE
    loss_defaults = read_loss_defaults(path)
    settings = {f.name for f in fields(DistillationConfig)} - {"name"}
    for loss, values in loss_defaults.items():
        if set(values) - settings:
            raise UserError(f"{path}: '{loss}' sets {', '.join(sorted(set(values) - settings))}, not settings of a loss")
    return loss_defaults


def _unavailable(name: str, source: str, reason: str, flag: str) -> PriorUnavailable:
    # huggingface-hub ≥ 1.0 ships the `hf` command (it replaced `huggingface-cli`).
    return PriorUnavailable(
        f"prior '{name}' ({source}) is not available on this machine and cannot be downloaded ({reason}). "
        f"Download it where there is network (hf download {source} --local-dir DIR) and pass "
        f"{flag} DIR, or use {flag} toy, the embedded prior that runs offline."
    )


def local_folder(name: str, source: str, flag: str = "--prior") -> Path:
    """The folder holding the prior: the given one, the hub cache, or (when online) a fresh download."""
    if Path(source).is_dir():
        if not (Path(source) / "unet").is_dir():
            raise PriorUnavailable(f"{flag} {source}: not in diffusers layout (no unet/ subfolder)")
        return Path(source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, allow_patterns=COMPONENT_FILES, local_files_only=True))
    except Exception:  # not in the cache: try the hub unless told to stay offline
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise _unavailable(name, source, "HF_HUB_OFFLINE is set and it is not in the local cache", flag)
    try:
        return Path(snapshot_download(source, allow_patterns=COMPONENT_FILES))
    except Exception as error:
        raise _unavailable(name, source, type(error).__name__, flag) from None


def load_tokenizer(folder: Path):
    """Only the prior's tokenizer (fast): enough to check a prompt's words before anything is written."""
    from transformers import CLIPTokenizer

    quiet_libraries()
    return CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA (what the reference code uses), fp32 on CPU (fp16 kernels are slow or missing there)."""
    return torch.float16 if device.type == "cuda" else torch.float32


def load_prior(
    name: str = "toy",
    device: Union[str, torch.device, None] = None,
    dtype: Union[str, torch.dtype, None] = None,
    flag: str = "--prior",
) -> DiffusionPrior:
    """Load a latent diffusion prior through diffusers' `from_pretrained`, component by component.

    Args:
        name: `toy`, `sd14`, `sd15`, `sd21b`, a hub id or a local folder in diffusers layout.
        device: where the networks run; default CUDA if available, else CPU.
        dtype: "fp32" | "fp16" | "bf16" or a torch dtype; default fp16 on CUDA, fp32 on CPU.
        flag: the option that named the prior (`--prior`, `--pipeline.prior`), for error lines.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise UserError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
        dtype = DTYPES[dtype]
    dtype = dtype or default_dtype(device)

    quiet_libraries()
    source = resolve_prior(name, flag)
    folder = local_folder(name, source, flag)
    try:
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=dtype)
        # Without `accelerate` diffusers falls back to low_cpu_mem_usage=False anyway, with a warning per model.
        low_cpu = {} if importlib.util.find_spec("accelerate") else {"low_cpu_mem_usage": False}
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **low_cpu)
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **low_cpu)
    except (OSError, ValueError) as error:
        raise PriorUnavailable(f"prior '{name}' at {folder} could not be loaded: {error}") from None

    downsampling = 2 ** (len(vae.config.block_out_channels) - 1)
    return DiffusionPrior(
        vae=vae.to(device),
        text_encoder=text_encoder.to(device),
        tokenizer=tokenizer,
        unet=unet.to(device),
        alphas_cumprod=scheduler.alphas_cumprod.float().to(device),
        prediction_type=scheduler.config.prediction_type,
        name=name,
        resolution=int(unet.config.sample_size) * downsampling,
        loss_defaults=prior_loss_defaults(str(folder), flag),
        device=device,
        dtype=dtype,
    )
