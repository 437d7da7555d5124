"""Capture inside the UNet's attention: the decoder's self-attention outputs (the features CDS contrasts) and the
cross-attention probabilities (the maps the edit region's `auto` reads).

diffusers' extension point is the attention processor, so capture is a processor: a subclass
of the SDPA processor (`AttnProcessor2_0`, ~1.6x faster on CPU than the classic one) that also
records what it is asked for while a capture is active — the self-attention output after the output
projection (as in the CDS code), or the cross-attention probabilities softmax(QKᵀ/√d).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List

import torch
from diffusers.models.attention_processor import AttnProcessor2_0


@dataclass
class SelfAttentionStore:
    """Self-attention outputs [B, tokens, channels] of the last UNet call, by processor name."""

    active: bool = False
    features: Dict[str, torch.Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.features.clear()



@contextmanager
def active(store):
    """A capture store, emptied and recording for the block's UNet calls (its processors pass through otherwise)."""
    store.clear()
    store.active = True
    try:
        yield store
    finally:
        store.active = False

class CapturingAttnProcessor(AttnProcessor2_0):
    """SDPA attention that hands its output to a `SelfAttentionStore` while the store is active."""

    def __init__(self, store: SelfAttentionStore, name: str):
        super().__init__()
        self.store = store
        self.name = name

    def __call__(self, attn, hidden_states, *args, **kwargs):
        out = super().__call__(attn, hidden_states, *args, **kwargs)
        if self.store.active:
            self.store.features[self.name] = out
        return out


def decoder_self_attention_names(unet: torch.nn.Module) -> List[str]:
    """Processor names of the self-attention (`attn1`) modules in the UNet's decoder (`up_blocks`)."""
    return [n for n in unet.attn_processors if n.startswith("up_blocks.") and ".attn1." in n]


def install_self_attention_capture(unet: torch.nn.Module) -> SelfAttentionStore:
    """Swap the decoder's `attn1` processors for capturing ones; all other processors are kept."""
    store = SelfAttentionStore()
    names = decoder_self_attention_names(unet)
    if not names:
        raise ValueError("this UNet has no self-attention in its decoder (up_blocks.*.attn1); CDS needs it")
    swap_processors(unet, {name: CapturingAttnProcessor(store, name) for name in names})
    return store


def swap_processors(unet: torch.nn.Module, replacements) -> None:
    """Install `replacements` {processor name: processor}, keeping every other processor of the UNet."""
    unet.set_attn_processor({**unet.attn_processors, **replacements})


# ---- cross-attention probabilities (the edit region's `auto` maps) ------------------------------
@dataclass
class CrossAttentionStore:
    """Cross-attention probabilities of the last UNet call, by processor name, averaged over heads:

        A_l = mean_heads softmax(Q_l K_lᵀ / √d)   [B, h_l·w_l, L]   (Q from the image tokens, K from the text's L tokens)
    """

    active: bool = False
    maps: Dict[str, torch.Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.maps.clear()


class CrossAttentionProbsProcessor(AttnProcessor2_0):
    """SDPA attention that, while its store is active, also records softmax(QKᵀ/√d) averaged over heads.

    SDPA never materialises the probabilities, so they are computed explicitly beside it — only for the
    cross-attention (`attn2`) layers it is installed on and only while capturing. The output is always
    SDPA's: the UNet's result is the same with or without the capture.
    """

    def __init__(self, store: CrossAttentionStore, name: str):
        super().__init__()
        self.store = store
        self.name = name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if self.store.active and encoder_hidden_states is not None:
            self.store.maps[self.name] = attention_probabilities(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


@torch.no_grad()
def attention_probabilities(attn, hidden_states, encoder_hidden_states, attention_mask=None, temb=None) -> torch.Tensor:
    """mean_heads softmax(QKᵀ/√d) [B, N, L] of `attn` (the classic `AttnProcessor`'s path up to the probabilities)."""
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    if hidden_states.ndim == 4:
        batch, channels, height, width = hidden_states.shape
        hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
    batch = hidden_states.shape[0]
    mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    if attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    query = attn.head_to_batch_dim(attn.to_q(hidden_states))
    key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
    probs = attn.get_attention_scores(query, key, mask)  # [B·heads, N, L]
    return probs.float().view(batch, attn.heads, *probs.shape[1:]).mean(1)


def cross_attention_names(unet: torch.nn.Module) -> List[str]:
    """Processor names of every cross-attention (`attn2`) module of the UNet (down, mid and up blocks)."""
    return [n for n in unet.attn_processors if ".attn2." in n]


def install_cross_attention_capture(unet: torch.nn.Module) -> CrossAttentionStore:
    """Swap every `attn2` processor for a recording one; all other processors (CDS's `attn1` capture too) are kept."""
    store = CrossAttentionStore()
    names = cross_attention_names(unet)
    if not names:
        raise ValueError("this UNet has no cross-attention (attn2); the edit region's 'auto' needs it")
    swap_processors(unet, {name: CrossAttentionProbsProcessor(store, name) for name in names})
    return store
