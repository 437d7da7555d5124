"""The diffusion prior the losses distil from: a latent diffusion model seen as four operations.

    encode_images  x -> z = E(x).mean * scaling_factor        (differentiable, for NeRF renders)
    decode_latents z -> x
    encode_text    prompts -> text embeddings                 (cached per prompt)
    predict_eps    (z_t, t, text embeddings) -> eps_hat        (ONE batched UNet call for all rows)

Nothing here knows about a loss, a NeRF or a device policy beyond what it is given.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from torch import Tensor

from nerfedit.priors import words
from nerfedit.priors.attention import (
    CrossAttentionStore,
    active,
    SelfAttentionStore,
    install_cross_attention_capture,
    install_self_attention_capture,
)


@dataclass
class DiffusionPrior:
    """A Stable-Diffusion-format latent diffusion model: VAE, text encoder, tokenizer, UNet, noise schedule."""

    vae: "torch.nn.Module"
    text_encoder: "torch.nn.Module"
    tokenizer: object
    unet: "torch.nn.Module"
    alphas_cumprod: Tensor
    """ᾱ_t for t = 0 … T−1, float32, on `device`."""
    prediction_type: str = "epsilon"
    """What the UNet predicts: "epsilon" or "v_prediction" (converted to ε in `predict_eps`)."""
    name: str = "prior"
    resolution: int = 512
    """Image side length the model was trained at (pixels)."""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    """Dtype of the networks; latents handed to the losses stay float32."""
    loss_defaults: Dict[str, Dict[str, object]] = field(default_factory=dict)
    """This prior's own defaults of some losses' settings, over the papers' (`loader.LOSS_DEFAULTS_FILE`)."""
    _text_cache: Dict[str, Tensor] = field(default_factory=dict, repr=False)
    _attention: Optional[SelfAttentionStore] = field(default=None, repr=False)
    _cross_attention: Optional[CrossAttentionStore] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for module in (self.vae, self.text_encoder, self.unet):
            module.requires_grad_(False)
            module.eval()

    # ---- schedule -------------------------------------------------------------------------
    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def latent_downsampling(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_resolution(self) -> int:
        return self.resolution // self.latent_downsampling

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    def alpha_bar(self, t: Tensor) -> Tensor:
        """ᾱ_t broadcastable against a latent batch [B, C, H, W]."""
        return self.alphas_cumprod[t.long()].view(-1, 1, 1, 1)

    def add_noise(self, z: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """Forward diffusion q(z_t | z): z_t = √ᾱ_t z + √(1 − ᾱ_t) ε (DDPM, Ho et al. 2020, Eq. 4)."""
        alpha_bar = self.alpha_bar(t)
        return alpha_bar.sqrt() * z + (1 - alpha_bar).sqrt() * eps

    # ---- VAE ------------------------------------------------------------------------------
    def encode_images(self, images: Tensor) -> Tensor:
        """Images [B, 3, H, W] in [0, 1] → latents: posterior mean × scaling factor (as the DDS code).

        Differentiable with respect to `images`, so a NeRF render can be supervised through it.
        """
        x = images.to(self.device, self.dtype) * 2 - 1
        posterior = self.vae.encode(x).latent_dist
        return (posterior.mean * self.scaling_factor).float()

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Latents → images [B, 3, H, W] in [0, 1]."""
        x = self.vae.decode(latents.to(self.device, self.dtype) / self.scaling_factor).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    # ---- text -----------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, prompts: Union[str, Sequence[str]]) -> Tensor:
        """Prompts → text embeddings [B, L, D]; each distinct prompt is encoded once and cached.

        Punctuation the tokenizer does not know is dropped first (`words.readable_prompt`): "… floor." reads as
        "… floor", not as "… floor <unknown>"."""
        prompts = [words.readable_prompt(self.tokenizer, p) for p in ([prompts] if isinstance(prompts, str) else prompts)]
        missing = sorted({p for p in prompts if p not in self._text_cache})
        if missing:
            tokens = self.tokenizer(
                missing,
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            )
            embeddings = self.text_encoder(tokens.input_ids.to(self.device))[0].to(self.dtype)
            self._text_cache.update(zip(missing, embeddings))
        return torch.stack([self._text_cache[p] for p in prompts])

    def unknown_words(self, prompt: str) -> List[str]:
        """Words of `prompt` the tokenizer maps to its unknown token (only word-level vocabularies have any)."""
        return words.unknown_words(self.tokenizer, prompt)

    # ---- UNet -----------------------------------------------------------------------------
    def predict_eps(self, z_t: Tensor, t: Tensor, text_embeddings: Tensor) -> Tensor:
        """ε̂(z_t, t, y) for every row in ONE UNet call; v-prediction is converted to ε.

        v = √ᾱ ε − √(1−ᾱ) z  ⇒  ε = √ᾱ v + √(1−ᾱ) z_t   (Salimans & Ho 2022, Sec. 4).
        Returns float32.
        """
        out = self.unet(
            z_t.to(self.device, self.dtype),
            t.to(self.device),
            encoder_hidden_states=text_embeddings.to(self.device, self.dtype),
        ).sample.float()
        if self.prediction_type == "v_prediction":
            alpha_bar = self.alpha_bar(t)
            out = alpha_bar.sqrt() * out + (1 - alpha_bar).sqrt() * z_t.float()
        return out

    # ---- self-attention features (CDS) ----------------------------------------------------
    @contextmanager
    def capture_self_attention(self) -> Iterator[SelfAttentionStore]:
        """Inside the block, every UNet call records the decoder's self-attention (`attn1`) outputs.

        The processors are installed once (a subclass of diffusers' SDPA processor) and are
        pass-through while no capture is active.
        """
        if self._attention is None:
            self._attention = install_self_attention_capture(self.unet)
        with active(self._attention) as store:
            yield store

    # ---- cross-attention probabilities (edit region `auto`) ---------------------------------
    @contextmanager
    def capture_cross_attention(self) -> Iterator[CrossAttentionStore]:
        """Inside the block, every UNet call records each cross-attention (`attn2`) layer's probabilities
        mean_heads softmax(QKᵀ/√d) [B, h_l·w_l, L]. Installed once; pass-through (SDPA) while no capture is active."""
        if self._cross_attention is None:
            self._cross_attention = install_cross_attention_capture(self.unet)
        with active(self._cross_attention) as store:
            yield store

    def token_ids(self, prompt: str) -> List[int]:
        """The tokenizer's ids of `prompt` as the text encoder sees them: BOS, the words' tokens, EOS (no padding)."""
        ids = self.tokenizer(prompt, truncation=True, max_length=self.tokenizer.model_max_length).input_ids
        return list(ids)

    def to(self, device: Union[str, torch.device]) -> "DiffusionPrior":
        """Move the networks (e.g. the prior on `cuda:1`, the NeRF on `cuda:0`)."""
        self.device = torch.device(device)
        for module in (self.vae, self.text_encoder, self.unet):
            module.to(self.device)
        self.alphas_cumprod = self.alphas_cumprod.to(self.device)
        self._text_cache = {k: v.to(self.device) for k, v in self._text_cache.items()}
        return self
