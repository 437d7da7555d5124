"""The judge network: a small CNN with three heads (colour, shape, floor) over 64×64 RGB images.

`judge_images` is the one call most code needs: images in, predicted words and probabilities out.
The shipped weights (`nerfedit/assets/judge/judge.pt`) are trained by `scripts/train_judge.py`
on the world's renders only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nerfedit.world.vocab import COLORS, FLOORS, SHAPES

JUDGE_SIZE = 64
"""Input side length; other sizes are resized to it."""

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "judge" / "judge.pt"

HEADS: Dict[str, Sequence[str]] = {"color": COLORS, "shape": SHAPES, "floor": FLOORS}
"""Head name → the words its classes stand for, in class-index order."""


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class JudgeNet(nn.Module):
    """Strided 3×3 conv stack (64→32→16→8 px), global average + max pooling, one linear head per label.

    Average pooling reads the floor (it is everywhere); max pooling lets a small object's colour
    and outline win over the background.
    """

    def __init__(self, widths: Sequence[int] = (24, 32, 48, 48, 64)):
        super().__init__()
        w = list(widths)
        self.widths = tuple(w)
        self.features = nn.Sequential(
            _conv(3, w[0], 2),  # 32×32
            _conv(w[0], w[1]),
            _conv(w[1], w[2], 2),  # 16×16
            _conv(w[2], w[3]),
            _conv(w[3], w[4], 2),  # 8×8
        )
        self.dropout = nn.Dropout(0.1)
        self.heads = nn.ModuleDict({name: nn.Linear(2 * w[4], len(words)) for name, words in HEADS.items()})

    def forward(self, images: Tensor) -> Dict[str, Tensor]:
        """images [B,3,64,64] in [0,1] → logits per head {name: [B, classes]}."""
        h = self.features(images - 0.5)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        pooled = self.dropout(pooled)
        return {name: head(pooled) for name, head in self.heads.items()}


def prepare_images(images: Tensor) -> Tensor:
    """[B,3,H,W] or [3,H,W], any float range near [0,1] → float32 [B,3,64,64] clamped to [0,1]."""
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B,3,H,W], got {tuple(images.shape)}")
    images = images.detach().float().clamp(0.0, 1.0)
    if images.shape[-2:] != (JUDGE_SIZE, JUDGE_SIZE):
        images = F.interpolate(images, size=(JUDGE_SIZE, JUDGE_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return images


def save_judge(model: JudgeNet, path: Union[str, Path], **info) -> None:
    """Save inference weights (float16, to keep the shipped file small) with the label words and `info`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "widths": list(model.widths), "labels": {k: list(v) for k, v in HEADS.items()}, "info": info}, path)


_CACHE: Dict[str, JudgeNet] = {}


def load_judge(path: Optional[Union[str, Path]] = None, device: Union[str, torch.device] = "cpu") -> JudgeNet:
    """Load a judge (default: the shipped weights), in eval mode, float32. Cached per path and device."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    key = f"{path.resolve()}@{device}"
    if key not in _CACHE:
        if not path.is_file():
            from nerfedit.errors import UserError

            raise UserError(f"judge weights not found: {path} (train them with scripts/train_judge.py)")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        for name, words in HEADS.items():
            if list(blob["labels"][name]) != list(words):
                raise ValueError(f"{path}: judge was trained for {name} labels {blob['labels'][name]}, the world has {list(words)}")
        model = JudgeNet(blob["widths"])
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
        _CACHE[key] = model.eval().to(device)
    return _CACHE[key]


@torch.no_grad()
def judge_images(images: Tensor, judge: Optional[JudgeNet] = None, batch_size: int = 256) -> Dict[str, object]:
    """Predict colour, shape and floor of each image.

    Args:
        images: [B,3,H,W] (or [3,H,W]) RGB in [0,1]; resized to 64×64 if needed.
        judge: a loaded judge; default `load_judge()`.

    Returns:
        {"color": [word]*B, "shape": [...], "floor": [...],          # argmax labels
         "p_color": [float]*B, "p_shape": [...], "p_floor": [...],  # probability of that label
         "probs": {"color": Tensor[B,8], "shape": Tensor[B,5], "floor": Tensor[B,4]}}
    """
    judge = judge if judge is not None else load_judge()
    device = next(judge.parameters()).device
    images = prepare_images(images)
    probs: Dict[str, List[Tensor]] = {name: [] for name in HEADS}
    for start in range(0, images.shape[0], batch_size):
        logits = judge(images[start : start + batch_size].to(device))
        for name in HEADS:
            probs[name].append(logits[name].float().softmax(dim=-1).cpu())
    out: Dict[str, object] = {"probs": {}}
    for name, words in HEADS.items():
        p = torch.cat(probs[name]) if probs[name] else torch.zeros(0, len(words))
        best_p, best = p.max(dim=-1)
        out[name] = [words[i] for i in best.tolist()]
        out[f"p_{name}"] = best_p.tolist()
        out["probs"][name] = p
    return out
