"""The image-editing papers' metrics, on already-loaded models and images [N, 3, H, W] in [0, 1] (one value per image).

    clip_image_embeddings / clip_text_embeddings   CLIP embeddings, L2-normalised (Radford et al. 2021)
    clip_score               100 · max(cos(E_I(edited), E_T(target)), 0): CLIPScore (Hessel et al. 2021) as torchmetrics
                             and the text-to-image literature report it (the 2.5 weight of the paper's CLIP-S is left out)
    clip_directional_similarity
                             cos(E_I(edited) − E_I(source), E_T(target) − E_T(source)), each embedding L2-normalised
                             before the difference: StyleGAN-NADA's directional CLIP loss (Gal et al. 2022) used as a
                             score by InstructPix2Pix (Brooks et al. 2023) and Instruct-NeRF2NeRF (Haque et al. 2023)
    lpips_distance           LPIPS (Zhang et al. 2018) through torchmetrics' network, on images in [0, 1]
    dino_key_self_similarity / structure_distance
                             Splice's structure distance (Tumanyan et al. 2022, §3): the MSE between the cosine
                             self-similarity matrices of the keys of DINO-ViT's last attention layer (the paper writes
                             a Frobenius norm; Splice's code, and Plug-and-Play's metric after it, take the mean square)
    psnr_per_image / ssim    the project's own (`nerfedit.eval.psnr`, `nerfedit.eval.structure`), per image

Nothing here loads a model (`nerfedit.eval.metric_models` does); the models run under `torch.no_grad`.
"""

from __future__ import annotations

import inspect
from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nerfedit.eval.psnr import psnr
from nerfedit.eval.structure import ssim_per_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""DINO (v1 and v2) was trained on images normalised with ImageNet's statistics, and Splice feeds it the same."""
SPLICE_SIDE = 224
"""Splice's `dino_global_patch_size`: the shorter side the whole image is resized to before DINO reads its structure."""


def _as_uint8_images(images: Tensor) -> List[np.ndarray]:
    # CLIP's published preprocessing (resize, crop, normalise) is defined on 8-bit images, as read from a file.
    array = (images.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(array)


def _pooled(output) -> Tensor:
    # transformers < 5 returns the projected embedding itself; 5 returns an output whose pooler_output holds it.
    return output if isinstance(output, Tensor) else output.pooler_output


@torch.no_grad()
def clip_image_embeddings(model, processor, images: Tensor) -> Tensor:
    """L2-normalised CLIP image embeddings [N, D] of images [N, 3, H, W] in [0, 1], preprocessed by the model's own
    image processor (`processor.image_processor`, or `processor` itself)."""
    image_processor = getattr(processor, "image_processor", processor)
    device = next(model.parameters()).device
    pixels = image_processor(images=_as_uint8_images(images), return_tensors="pt")["pixel_values"].to(device)
    return F.normalize(_pooled(model.get_image_features(pixel_values=pixels)).float(), dim=-1)


@torch.no_grad()
def clip_text_embeddings(model, processor, texts: Sequence[str]) -> Tensor:
    """L2-normalised CLIP text embeddings [M, D]; texts longer than the model's context are truncated, as in CLIP."""
    tokenizer = getattr(processor, "tokenizer", processor)
    device = next(model.parameters()).device
    tokens = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    features = model.get_text_features(input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device))
    return F.normalize(_pooled(features).float(), dim=-1)


def clip_score(image_embeddings: Tensor, text_embedding: Tensor) -> Tensor:
    """CLIP score [N] of normalised image embeddings [N, D] against one normalised text embedding [D] (or [1, D]):
    100 · max(cos, 0), in [0, 100]."""
    cosine = (image_embeddings * text_embedding.reshape(1, -1)).sum(-1)
    return 100.0 * cosine.clamp_min(0.0)


def clip_directional_similarity(
    source_images: Tensor, edited_images: Tensor, source_text: Tensor, target_text: Tensor, eps: float = 1e-8
) -> Tensor:
    """Directional CLIP similarity [N] in [−1, 1] from normalised embeddings: images [N, D], texts [D] (or [1, D]).

    An unchanged image (or two equal prompts) has no direction; its cosine is 0 (the `eps` of `F.cosine_similarity`).
    Swapping source and edit together with the prompts keeps the value; swapping only the images negates it.
    """
    image_change = edited_images - source_images
    text_change = (target_text - source_text).reshape(1, -1).expand_as(image_change)
    return F.cosine_similarity(image_change, text_change, dim=-1, eps=eps)


@torch.no_grad()
def lpips_distance(net: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    """LPIPS [N] between images `a`, `b` [N, 3, H, W] in [0, 1] with a torchmetrics `_LPIPS` network (0 = identical).

    `normalize=True` maps [0, 1] to the [−1, 1] the network was trained on."""
    device = next(net.parameters()).device
    a = a.float().clamp(0, 1).to(device)
    b = b.float().clamp(0, 1).to(device)
    return net(a, b, normalize=True).reshape(a.shape[0]).float().cpu()


def last_key_projection(model: nn.Module) -> nn.Linear:
    """The key projection of the last self-attention layer of a transformers ViT / DINOv2 model.

    transformers computes each layer's keys with one `nn.Linear` (named `key` before transformers 5, `k_proj` since)
    and never returns them; the last such layer in module order is the deepest block's. Its output [N, T, heads·d]
    is the heads' keys side by side, as Splice concatenates them (their order does not change a cosine).
    """
    keys = [module for name, module in model.named_modules() if name.rsplit(".", 1)[-1] in ("k_proj", "key") and isinstance(module, nn.Linear)]
    if not keys:
        raise ValueError(f"{type(model).__name__} has no attention key projection (expected a ViT or DINOv2 model)")
    return keys[-1]


def dino_input(model: nn.Module, images: Tensor, side: int = SPLICE_SIDE) -> Tensor:
    """Images [N, 3, H, W] in [0, 1] → DINO's input as Splice makes it: the whole image (not cropped), its shorter side
    resized to `side` (Splice's 224) and both sides rounded to whole patches, normalised with ImageNet's statistics."""
    patch = model.config.patch_size
    patch = patch if isinstance(patch, int) else patch[0]
    height, width = images.shape[-2:]
    scale = side / min(height, width)
    size = (max(patch, round(height * scale / patch) * patch), max(patch, round(width * scale / patch) * patch))
    images = images.float().clamp(0, 1)
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).reshape(1, 3, 1, 1)
    return (images - mean) / std


def dino_forward(model: nn.Module, pixels: Tensor, **kwargs):
    """`model(pixel_values=pixels)`; a ViTModel is told to interpolate its position embeddings to the input's size
    (DINOv2 always does), since `dino_input` keeps the image's aspect ratio."""
    if "interpolate_pos_encoding" in inspect.signature(model.forward).parameters:
        kwargs["interpolate_pos_encoding"] = True
    return model(pixel_values=pixels, **kwargs)


@torch.no_grad()
def dino_key_self_similarity(model: nn.Module, images: Tensor) -> Tensor:
    """Splice's S(K): the cosine self-similarity [N, T, T] of the last layer's keys over all T tokens (CLS included).

    The keys are caught by a forward hook on the last attention layer's key projection (`last_key_projection`):
    transformers' ViTModel / Dinov2Model return hidden states and attention maps but not keys."""
    device = next(model.parameters()).device
    caught: List[Tensor] = []
    hook = last_key_projection(model).register_forward_hook(lambda module, inputs, output: caught.append(output))
    try:
        dino_forward(model, dino_input(model, images.to(device)))
    finally:
        hook.remove()
    keys = F.normalize(caught[-1].float(), dim=-1)
    return keys @ keys.transpose(1, 2)


def structure_distance(model: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    """Splice's structure distance [N]: the mean squared difference of `dino_key_self_similarity` of `a` and `b`."""
    return ((dino_key_self_similarity(model, a) - dino_key_self_similarity(model, b)) ** 2).flatten(1).mean(1).cpu()


def psnr_per_image(a: Tensor, b: Tensor) -> Tensor:
    """PSNR [N] in dB of each image pair (`nerfedit.eval.psnr.psnr`: identical images score 100 dB, not infinity)."""
    return torch.tensor([psnr(a[i : i + 1], b[i : i + 1]) for i in range(a.shape[0])])


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """SSIM [N] of each image pair (`nerfedit.eval.structure.ssim_per_image`; 1 = identical)."""
    return ssim_per_image(a, b).cpu()
