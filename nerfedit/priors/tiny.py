"""A tiny, randomly initialised Stable-Diffusion-format model, written to disk in diffusers layout.

Tests (tests/conftest.py) and `scripts/bench_losses.py` build it, `save_pretrained` every component into a folder laid
out like a hub snapshot (model_index.json, scheduler/, tokenizer/, text_encoder/, vae/, unet/) and
load it back through the real `nerfedit.priors.load_prior`, so the loader is exercised too.

Sizes: 32×32 pixel images, 16×16×4 latents (VAE with 2 levels), a UNet of two cross-attention
levels (so its decoder has self-attention for CDS), a 2-layer CLIP text encoder over a character-level
BPE vocabulary that is written to disk (vocab.json + merges.txt). Weights are seeded: the same
arguments always give the same model.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Tuple, Union

import torch

TINY_LATENT_SIZE = 16
"""Latent side length of the tiny model (its images are 2× that: 32 px)."""
TINY_MAX_TOKENS = 32
"""Tokenizer max length = text encoder positions (SD uses 77)."""

_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]
_CHARS = list(string.ascii_lowercase + string.digits) + list(",.'!?-")


def write_tokenizer_files(folder: Path, max_length: int = TINY_MAX_TOKENS) -> int:
    """A character-level CLIP BPE tokenizer on disk, as SD's `tokenizer/` folder: vocab.json, merges.txt, config.

    Every character is a token alone and at a word's end ("a</w>"); there are no merges, so a word is
    spelt out character by character. Token 0 is <|startoftext|> (bos), 1 is <|endoftext|> (eos, pad, unk).
    `max_length`: the text encoder's positions (SD's 77 in `full_size.py`). Returns the vocabulary size.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tokens = _SPECIAL + _CHARS + [c + "</w>" for c in _CHARS]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": max_length,
        "bos_token": _SPECIAL[0],
        "eos_token": _SPECIAL[1],
        "pad_token": _SPECIAL[1],
        "unk_token": _SPECIAL[1],
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return len(tokens)


def build_tiny_sd(
    folder: Union[str, Path],
    prediction_type: str = "epsilon",
    seed: int = 0,
    latent_size: int = TINY_LATENT_SIZE,
    unet_channels: Tuple[int, ...] = (32, 64),
    vae_channels: Tuple[int, ...] = (8, 16),
) -> Path:
    """Write a tiny random SD model to `folder` (diffusers layout) and return the folder.

    Args:
        prediction_type: "epsilon" or "v_prediction" (the scheduler's, as SD 2.x's v-models).
        seed: seeds the random weights.
        latent_size: latent side length; the images are 2^(len(vae_channels) − 1) times that.
        unet_channels: UNet block widths, one cross-attention down/up block each (multiples of 8).
        vae_channels: VAE block widths (multiples of 8); each level after the first halves the resolution.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from nerfedit.priors.toy_models import write_model_index
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tokenizer_files(folder / "tokenizer")

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                hidden_size=32,
                intermediate_size=64,
                num_attention_heads=4,
                num_hidden_layers=2,
                max_position_embeddings=TINY_MAX_TOKENS,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
            up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
            block_out_channels=tuple(vae_channels),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=latent_size * 2 ** (len(vae_channels) - 1),
        )
        unet = UNet2DConditionModel(
            sample_size=latent_size,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) * len(unet_channels),
            up_block_types=("CrossAttnUpBlock2D",) * len(unet_channels),
            block_out_channels=tuple(unet_channels),
            layers_per_block=1,
            norm_num_groups=8,
            cross_attention_dim=32,
            attention_head_dim=8,
        )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
    )

    text_encoder.save_pretrained(folder / "text_encoder")
    vae.save_pretrained(folder / "vae")
    unet.save_pretrained(folder / "unet")
    scheduler.save_pretrained(folder / "scheduler")
    write_model_index(folder)
    return folder
