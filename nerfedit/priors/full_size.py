"""Stable Diffusion's real architectures with random weights, written in diffusers layout (no download).

Cost and memory do not depend on the weights' values, so `scripts/bench_full_size.py` measures SD-sized work
with a model built here from the published configs and loaded back through `load_prior` (the `--prior PATH`
path users take):

    sd15   SD-1.5 (stable-diffusion-v1-5 model_index components): UNet 859.5 M parameters, VAE 83.7 M,
           CLIP ViT-L/14 text encoder 123.1 M
    sd21b  SD-2.1-base: UNet 865.9 M (linear projections, head dims 5/10/20/20, 1024-d context), same VAE,
           OpenCLIP ViT-H/14 text encoder (23 layers, 1024 wide) 340.4 M
    tiny   the tests' shapes (`tiny.py`) behind the same text interface (77 positions, 49408 tokens), so a test
           runs the benchmark's code path in seconds

The tokenizer cannot be downloaded: every model here gets `tiny.py`'s character-level CLIP tokenizer (80 tokens,
with `model_max_length` 77), while its text encoder has the real vocabulary size 49408 and 77 positions — the
embedding table, and so the parameter count and memory, are SD's; only token ids 0–79 are ever looked up.
The schedulers are DDPM with SD's betas (the loader reads only ᾱ and the prediction type from them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Sequence, Union

import torch

SD_VOCAB_SIZE = 49408
SD_MAX_TOKENS = 77
MARKER = "full_size.json"
"""Written last into a built folder: its arch, weights dtype and parameter counts (a folder without it is unfinished)."""

_SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
_SD_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[320, 640, 1280, 1280],
    layers_per_block=2,
    norm_num_groups=32,
    act_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
)
_SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
_TEXT = dict(vocab_size=SD_VOCAB_SIZE, max_position_embeddings=SD_MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1)
"""Token ids are the character tokenizer's (bos 0, eos/pad 1), not CLIP's 49406/49407."""

ARCHS: Dict[str, Dict[str, Mapping[str, object]]] = {
    # stable-diffusion-v1-5: unet/, vae/, text_encoder/ config.json (CLIP ViT-L/14's text tower)
    "sd15": dict(
        unet={**_SD_UNET, "cross_attention_dim": 768, "attention_head_dim": 8},
        vae=_SD_VAE,
        text_encoder=dict(_TEXT, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                          hidden_act="quick_gelu", projection_dim=768),
        scheduler={**_SD_SCHEDULER, "prediction_type": "epsilon"},
    ),
    # stable-diffusion-2-1-base (ε-prediction at 512²): OpenCLIP ViT-H/14's text tower without its last layer
    "sd21b": dict(
        unet={**_SD_UNET, "cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True},
        vae=_SD_VAE,
        text_encoder=dict(_TEXT, hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
                          hidden_act="gelu", projection_dim=512),
        scheduler={**_SD_SCHEDULER, "prediction_type": "epsilon"},
    ),
}  # fmt: skip


def tiny_config(latent_size: int = 16, unet_channels: Sequence[int] = (32, 64), vae_channels: Sequence[int] = (8, 16),
                vocab_size: int = SD_VOCAB_SIZE, max_tokens: int = SD_MAX_TOKENS, prediction_type: str = "epsilon") -> Dict[str, Dict[str, object]]:
    """The tests' tiny SD shapes (`tiny.build_tiny_sd`) in `ARCHS`' layout: one cross-attention down/up block per
    UNet width (so its decoder has self-attention for CDS), a VAE level per width (images 2^(levels−1) × the latent
    side), a 2-layer text encoder of `vocab_size` tokens and `max_tokens` positions."""
    return dict(
        unet=dict(sample_size=latent_size, in_channels=4, out_channels=4, down_block_types=["CrossAttnDownBlock2D"] * len(unet_channels),
                  up_block_types=["CrossAttnUpBlock2D"] * len(unet_channels), block_out_channels=list(unet_channels),
                  layers_per_block=1, norm_num_groups=8, cross_attention_dim=32, attention_head_dim=8),
        vae=dict(_SD_VAE, down_block_types=["DownEncoderBlock2D"] * len(vae_channels), up_block_types=["UpDecoderBlock2D"] * len(vae_channels),
                 block_out_channels=list(vae_channels), layers_per_block=1, norm_num_groups=8,
                 sample_size=latent_size * 2 ** (len(vae_channels) - 1)),
        text_encoder=dict(_TEXT, vocab_size=vocab_size, max_position_embeddings=max_tokens, hidden_size=32, intermediate_size=64,
                          num_attention_heads=4, num_hidden_layers=2),
        scheduler={**_SD_SCHEDULER, "prediction_type": prediction_type},
    )  # fmt: skip


ARCHS["tiny"] = tiny_config()  # behind SD's text interface (77 positions, 49408 tokens): the benchmark's code path in seconds

PUBLISHED_PARAMS = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd21b": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
}
"""Parameter counts of the published checkpoints (what `parameter_counts` must give; tests/test_full_size.py)."""


def _modules(config: Mapping[str, Mapping[str, object]], part: str):
    """A zero-argument constructor of component `part` from an arch's config (an `ARCHS` value)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config = dict(config[part])
    if part == "unet":
        return lambda: UNet2DConditionModel(**config)
    if part == "vae":
        return lambda: AutoencoderKL(**config)
    return lambda: CLIPTextModel(CLIPTextConfig(**config))


def meta_modules(arch: str) -> Dict[str, torch.nn.Module]:
    """{unet, vae, text_encoder} of the arch on the `meta` device: shapes without storage (no memory, no init time)."""
    with torch.device("meta"):
        return {part: _modules(ARCHS[arch], part)() for part in ("unet", "vae", "text_encoder")}


def parameter_counts(arch: str) -> Dict[str, int]:
    """{unet, vae, text_encoder}: parameters of the arch, counted on the `meta` device (under a second)."""
    return {part: sum(p.numel() for p in module.parameters()) for part, module in meta_modules(arch).items()}


def read_marker(folder: Union[str, Path]) -> Dict[str, object]:
    """The folder's `MARKER` ({} when there is none: not built here, or the build did not finish)."""
    path = Path(folder) / MARKER
    return json.loads(path.read_text()) if path.is_file() else {}


def write_random_sd(folder: Union[str, Path], config: Mapping[str, Mapping[str, object]], seed: int = 0,
                    weights_dtype: str = "fp16", max_tokens: int = SD_MAX_TOKENS) -> Dict[str, int]:
    """Write a model of `config` (an `ARCHS` value) with random weights seeded by `seed` to `folder` in diffusers
    layout, with the character tokenizer of `max_tokens` positions; returns {part: parameters}.

    One component at a time (text encoder, VAE, UNet: the order fixes the weights a seed gives), so the peak is the
    UNet (sd15: 3.4 GB in fp32 while it is made, then saved)."""
    from diffusers import DDPMScheduler

    from nerfedit.priors.tiny import write_tokenizer_files
    from nerfedit.priors.toy_models import write_model_index

    dtype = {"fp16": torch.float16, "fp32": torch.float32}[weights_dtype]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(folder / "tokenizer", max_length=max_tokens)
    counts = {}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for part in ("text_encoder", "vae", "unet"):
            module = _modules(config, part)()
            counts[part] = sum(p.numel() for p in module.parameters())
            (module if dtype == torch.float32 else module.to(dtype)).save_pretrained(folder / part)
            del module
    DDPMScheduler(**config["scheduler"]).save_pretrained(folder / "scheduler")
    write_model_index(folder)
    return counts


def build_random_sd(folder: Union[str, Path], arch: str, seed: int = 0, weights_dtype: str = "fp16") -> Path:
    """Write arch `arch` with random (seeded) weights to `folder` (`write_random_sd`), then its `MARKER`; returns
    the folder. Weights are saved in `weights_dtype` ("fp16": half the disk, 1.7 GB for SD's UNet; "fp32");
    `load_prior` casts them to the dtype it is asked for, so the measured run does not depend on this choice."""
    from nerfedit.quiet import quiet_libraries

    quiet_libraries()  # diffusers' "modules kept in float32: []" notice on `.to(fp16)`, saving bars
    if arch not in ARCHS:
        raise ValueError(f"unknown arch '{arch}': use one of {', '.join(ARCHS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    counts = write_random_sd(folder, ARCHS[arch], seed, weights_dtype)
    marker = {"arch": arch, "seed": seed, "weights_dtype": weights_dtype, "params": counts}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return folder
