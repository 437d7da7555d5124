"""The networks of the embedded `toy` prior, built from diffusers / transformers classes.

The toy prior is a miniature Stable Diffusion 1.x: the same four components in the same layout,
so that the loader (and `StableDiffusionPipeline`) treat it exactly like the real thing:

    vae/           AutoencoderKL          64×64×3 image  ↔  16×16×4 latent (downsampling 4)
    tokenizer/     CLIPTokenizer          one token per word of the world's vocabulary
    text_encoder/  CLIPTextModel          tiny causal transformer, trained from scratch on the diffusion loss
    unet/          UNet2DConditionModel   ε-prediction, cross- and self-attention in the decoder (CDS needs `attn1`)
    scheduler/     DDPMScheduler          SD's scaled-linear schedule, 1000 steps

Everything here is construction and (de)serialisation only; training lives in `scripts/train_prior.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

import torch

# ---- tokenizer ------------------------------------------------------------------------------
BOS_TOKEN = "<|startoftext|>"
"""CLIP's start-of-text token (the name SD's tokenizer uses)."""
EOS_TOKEN = "<|endoftext|>"
"""CLIP's end-of-text token; SD 1.x also pads with it, and so do we."""
UNK_TOKEN = "<|unk|>"
"""Our own unknown token. SD's CLIP reuses <|endoftext|> for unknowns; a distinct token lets the project
detect unknown words (`unk_token in tokenizer.tokenize(word)`) without confusing them with padding."""
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)
"""Ids 0, 1, 2 of the vocabulary, in this order."""
MODEL_MAX_LENGTH = 16
"""Tokens per prompt including BOS/EOS. The longest world caption has 10 words (12 tokens)."""

# ---- noise schedule (Stable Diffusion 1.x scheduler/scheduler_config.json) --------------------
SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    prediction_type="epsilon",
    clip_sample=False,
    set_alpha_to_one=False,  # not a DDPM argument, but kept in the config so DDIM/PNDM read it as SD's does
    skip_prk_steps=True,
    steps_offset=1,
    trained_betas=None,
)

# ---- architectures ------------------------------------------------------------------------------
IMAGE_SIZE = 64
"""Side length of the images the prior is trained on (pixels)."""
LATENT_CHANNELS = 4
"""As Stable Diffusion."""
WEIGHTS_BUDGET_BYTES = 25_000_000
"""All weight files of the shipped prior together (issue 3: ≤ 25 MB in git)."""

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(24, 48, 64),  # 3 levels → 2 downsamplings → 64² image / 4 = 16² latent
    layers_per_block=1,
    act_fn="silu",
    latent_channels=LATENT_CHANNELS,
    norm_num_groups=8,
    sample_size=IMAGE_SIZE,
    # No attention in the mid block (SD has one): the VAE is then fully convolutional, so training it on
    # random crops (4× cheaper) is exactly training it on whole images.
    mid_block_add_attention=False,
    scaling_factor=1.0,  # replaced after VAE training by 1 / std(latents), as SD's 0.18215 was computed
)

TEXT_ENCODER_CONFIG = dict(
    hidden_size=128,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=MODEL_MAX_LENGTH,
    hidden_act="quick_gelu",  # CLIP's
    projection_dim=128,
    bos_token_id=0,
    eos_token_id=1,
    pad_token_id=1,
)

UNET_CONFIG = dict(
    sample_size=IMAGE_SIZE // 4,
    in_channels=LATENT_CHANNELS,
    out_channels=LATENT_CHANNELS,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    # 16² → 8² → 4². Narrow at 16² where the FLOPs are: 0.77 GFLOP per sample forward + backward
    # (64 channels at 16² would cost 2.2× as much), 3.2 M parameters.
    block_out_channels=(32, 64, 128),
    layers_per_block=1,
    attention_head_dim=(4, 8, 8),  # diffusers' name for the NUMBER of heads per level: 8 channels per head
    cross_attention_dim=TEXT_ENCODER_CONFIG["hidden_size"],
    norm_num_groups=16,
)


# ---- tokenizer ------------------------------------------------------------------------------------
def build_tokenizer(words: Iterable[str], folder: Union[str, Path]):
    """Write a word-level `CLIPTokenizer` for `words` into `folder` and return it loaded from there.

    Every world word is ONE token and there are no character tokens at all, so any other word
    tokenizes to `UNK_TOKEN` (one per character): `unk_token in tokenizer.tokenize(word)` detects it.

    How: the words are whole-word "added tokens" (`single_word=True`), which the tokenizer splits off
    before its BPE model sees the text ("reds" or "ared" do not match "red"). The BPE model itself
    knows only the three special tokens and has no merges, so whatever reaches it is unknown.
    A classic CLIP BPE vocabulary cannot do this: the `tokenizers` library refuses merges whose parts
    are not themselves tokens, so building "red</w>" from merges needs "r", "e" and "d</w>" in the
    vocabulary, and then unknown words come out as known characters instead of unknown tokens.

    Ids: 0 <|startoftext|>, 1 <|endoftext|> (also padding, as SD), 2 <|unk|>, then the words in sorted
    order from 3. Files: vocab.json (special tokens), merges.txt (header only), tokenizer.json,
    tokenizer_config.json (with the words in `added_tokens_decoder`), special_tokens_map.json.
    """
    from tokenizers import AddedToken
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w.lower() for w in words})
    vocab: Dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=1) + "\n")
    (folder / "merges.txt").write_text("#version: 0.2\n")

    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=MODEL_MAX_LENGTH,
    )
    tokenizer.add_tokens([AddedToken(w, single_word=True, normalized=True, lstrip=False, rstrip=False) for w in words])
    tokenizer.save_pretrained(str(folder))

    # Record every token in tokenizer_config.json's "added_tokens_decoder" too (the format transformers
    # 4.x and 5.x both read), so a slow CLIPTokenizer built from vocab.json/merges.txt gets the same ids.
    ids = tokenizer.get_vocab()
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    decoder = {}
    for token in list(SPECIAL_TOKENS) + words:
        special = token in SPECIAL_TOKENS
        decoder[str(ids[token])] = dict(
            content=token,
            lstrip=False,
            rstrip=False,
            normalized=not special,
            single_word=not special,
            special=special,
        )
    config["added_tokens_decoder"] = decoder
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    special_map = dict(bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, unk_token=UNK_TOKEN, pad_token=EOS_TOKEN)
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    loaded = CLIPTokenizer.from_pretrained(str(folder))
    expected = {token: i for i, token in enumerate(list(SPECIAL_TOKENS) + words)}
    if any(loaded.convert_tokens_to_ids(token) != i for token, i in expected.items()):
        raise RuntimeError(f"tokenizer in {folder} did not reload with the expected ids")
    return loaded


def tokenize(tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Prompts → input ids [B, MODEL_MAX_LENGTH], padded with EOS as SD's pipeline does."""
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


# ---- networks -----------------------------------------------------------------------------------------
def build_vae(**overrides):
    """A fresh `AutoencoderKL` (64² RGB ↔ 16²×4)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**{**VAE_CONFIG, **overrides})


def build_text_encoder(vocab_size: int, **overrides):
    """A fresh tiny `CLIPTextModel` for a vocabulary of `vocab_size` tokens."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, **{**TEXT_ENCODER_CONFIG, **overrides}))


def build_unet(**overrides):
    """A fresh `UNet2DConditionModel` on 16²×4 latents, conditioned on the text encoder's hidden states."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**{**UNET_CONFIG, **overrides})


def build_scheduler():
    """SD 1.x's DDPM training schedule: 1000 steps, scaled-linear betas 0.00085 → 0.012, ε-prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(SCHEDULE)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters of `module`."""
    return sum(p.numel() for p in module.parameters())


# ---- saving -----------------------------------------------------------------------------------------
def save_pipeline(
    folder: Union[str, Path],
    vae,
    text_encoder,
    tokenizer_words: Iterable[str],
    unet,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Save the prior in diffusers layout, as `StableDiffusionPipeline.save_pretrained` would.

    model_index.json names the classes of each component (safety_checker/feature_extractor null);
    weights are safetensors in `dtype`. Returns the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(tokenizer_words, folder / "tokenizer")
    build_scheduler().save_pretrained(str(folder / "scheduler"))
    for name, module in (("vae", vae), ("text_encoder", text_encoder), ("unet", unet)):
        module = module.to(dtype)
        module.save_pretrained(str(folder / name), safe_serialization=True)
        module.to(torch.float32)
        # A module loaded from a training folder remembers that path; don't ship it.
        config_path = folder / name / "config.json"
        config = json.loads(config_path.read_text())
        if config.pop("_name_or_path", None) is not None:
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_model_index(folder)
    return folder


def write_model_index(folder: Path) -> None:
    """model_index.json of a DDPM-scheduled SD pipeline without safety checker, as `save_pretrained` writes it."""
    import diffusers

    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (Path(folder) / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")


def weights_size_bytes(folder: Union[str, Path]) -> int:
    """Total size of the weight files (*.safetensors, *.bin) under `folder`."""
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin"))


def load_components(folder: Union[str, Path], dtype: torch.dtype = torch.float32) -> Dict[str, object]:
    """Load the five components of a diffusers-layout prior by subfolder (as the project's loader does)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = str(folder)
    return dict(
        scheduler=DDPMScheduler.from_pretrained(folder, subfolder="scheduler"),
        tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
        text_encoder=CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=dtype),
        vae=AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype),
        unet=UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype),
    )


# ---- sampling ---------------------------------------------------------------------------------------
@torch.no_grad()
def sample_images(
    components: Dict[str, object],
    prompts: Sequence[str],
    num_inference_steps: int = 50,
    guidance_scale: float = 7.5,
    seed: int = 0,
    batch_size: int = 16,
    negative_prompt: str = "",
) -> torch.Tensor:
    """Text → images [B, 3, 64, 64] in [0, 1] by DDIM (η = 0) with classifier-free guidance.

    Guidance in the form of the DDS/CDS code and diffusers' pipelines: ε = ε_u + s · (ε_c − ε_u).
    Prompt i starts from its own noise, drawn from a generator seeded with `seed + i`, so an image does
    not depend on which other prompts share its batch. `components` is what `load_components` returns.
    """
    from diffusers import DDIMScheduler

    unet, vae, text_encoder, tokenizer = (components[k] for k in ("unet", "vae", "text_encoder", "tokenizer"))
    ddim = DDIMScheduler.from_config(components["scheduler"].config)
    device, dtype = unet.device, unet.dtype
    channels, size = unet.config.in_channels, unet.config.sample_size
    noise = torch.stack(
        [torch.randn(channels, size, size, generator=torch.Generator().manual_seed(seed + i)) for i in range(len(prompts))]
    )
    uncond = text_encoder(tokenize(tokenizer, [negative_prompt]).to(device))[0]
    images = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        cond = text_encoder(tokenize(tokenizer, chunk).to(device))[0]
        context = torch.cat([uncond.expand(len(chunk), -1, -1), cond]).to(dtype)
        latents = (noise[start : start + len(chunk)] * ddim.init_noise_sigma).to(device, dtype)
        ddim.set_timesteps(num_inference_steps)
        for t in ddim.timesteps:
            eps_uncond, eps_cond = unet(torch.cat([latents, latents]), t, encoder_hidden_states=context).sample.chunk(2)
            eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
            latents = ddim.step(eps, t, latents).prev_sample
        x = vae.decode(latents / vae.config.scaling_factor).sample
        images.append(((x.float() + 1) / 2).clamp(0, 1).cpu())
    return torch.cat(images)


__all__: List[str] = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "UNK_TOKEN",
    "MODEL_MAX_LENGTH",
    "WEIGHTS_BUDGET_BYTES",
    "SCHEDULE",
    "VAE_CONFIG",
    "TEXT_ENCODER_CONFIG",
    "UNET_CONFIG",
    "build_tokenizer",
    "tokenize",
    "build_vae",
    "build_text_encoder",
    "build_unet",
    "build_scheduler",
    "count_parameters",
    "save_pipeline",
    "weights_size_bytes",
    "load_components",
    "sample_images",
]
