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

TINY_LATENT_SIZE = 16
"""Latent side length of the tiny model (its images are 2× that: 32 px)."""
TINY_MAX_TOKENS = 32
"""Tokenizer max length = text encoder positions (SD uses 77)."""

_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]
_CHARS = list(string.ascii_lowercase + string.digits) + list(",.'!?-")
TINY_VOCAB_SIZE = len(_SPECIAL) + 2 * len(_CHARS)
"""Each character alone and at a word's end, and the two specials (`write_tokenizer_files`)."""


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
    from nerfedit.priors.full_size import tiny_config, write_random_sd

    config = tiny_config(latent_size, unet_channels, vae_channels, TINY_VOCAB_SIZE, TINY_MAX_TOKENS, prediction_type)
    write_random_sd(folder, config, seed, weights_dtype="fp32", max_tokens=TINY_MAX_TOKENS)
    return Path(folder)
