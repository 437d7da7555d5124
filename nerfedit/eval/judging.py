"""What the judge reads on images (colour, shape, floor), and how often it matches what was asked for."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from torch import Tensor

JUDGED = ("color", "shape", "floor")
"""The judge's heads, in the order of the world's captions."""


def load_judge_option(option: str, device="cpu"):
    """A `--judge` option: 'default' (the shipped judge), 'none' (no judge: None), or a checkpoint path."""
    if option == "none":
        return None
    from nerfedit.judge.model import load_judge

    return load_judge(None if option == "default" else option, device=device)  # UserError if missing


def read(judge, images: Tensor, heads: Sequence[str] = JUDGED) -> Dict[str, List[str]]:
    """The judge's word per image [B, 3, H, W] in [0, 1] for each of `heads`."""
    from nerfedit.judge.model import judge_images

    verdict = judge_images(images, judge=judge)
    return {head: list(verdict[head]) for head in heads}


def agreement(words: Sequence[str], wanted: Union[str, None, Sequence[Optional[str]]]) -> float:
    """Share of `words` equal to `wanted`: one word for every image, or one word per image."""
    if wanted is None or isinstance(wanted, str):
        wanted = [wanted] * len(words)
    return float(np.mean([word == want for word, want in zip(words, wanted)]))


def read_and_score(judge, images: Tensor, wanted: Dict[str, Union[str, None, Sequence[Optional[str]]]]) -> Dict[str, object]:
    """`read` the heads named in `wanted`, and their `agreement` with it: {"read": {head: words}, "<head>_rate": share}."""
    words = read(judge, images, heads=tuple(wanted))
    scores: Dict[str, object] = {"read": words}
    for head, want in wanted.items():
        scores[f"{head}_rate"] = agreement(words[head], want)
    return scores
