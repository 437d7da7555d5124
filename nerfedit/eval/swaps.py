"""Held-out edit pairs of the 2D benchmark (`scripts/eval_edit.py`): one word of a world scene swapped for another.

    held_out_swaps(n, seed, size)     n pairs, kinds taken in turn: colour, shape, floor
    SwapSet.prompts(form)             source/target prompts as full captions or as the short phrase a user types
    SwapSet.keep_masks()              per pair, the pixels the edit should leave as they are

    colour  "a red cube on a wooden floor"  →  "a blue cube on a wooden floor"   (short: "a red cube" → "a blue cube")
    shape   "a red cube on a wooden floor"  →  "a red torus on a wooden floor"  (short: "a red cube" → "a red torus")
    floor   "a red cube on a wooden floor"  →  "a red cube on grass"            (short = full: a floor swap must name the floor)

Because the world is procedural, the TARGET scene is rendered too, at the same camera, pose and sun: the
ground truth of a perfect edit. One quirk: the floor sits at the object's bottom (`ObjectSpec.floor_height`),
so a shape swap's rendered target also moves the floor plane; its pixels outside the objects are then not
the source's, and shape swaps' "kept" region and PSNR against the target are approximate (see `keep_masks`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

KINDS: Tuple[str, ...] = ("colour", "shape", "floor")
"""The kinds of swap, in the order pairs take them."""
PROMPT_FORMS: Tuple[str, ...] = ("full", "short")
"""full: the world's canonical caption (template 0); short: what a user types ("a red cube")."""
JUDGE_HEAD = {"colour": "color", "shape": "shape", "floor": "floor"}
"""The judge head that reads the word each kind swaps (the judge has colour, shape and floor heads)."""


@dataclass
class SwapSet:
    """`n` held-out pairs: source and target scenes, their renders at one camera each, and the swapped words."""

    kinds: List[str]
    """colour | shape | floor, per pair."""
    sources: list
    """`ObjectSpec` of each source scene."""
    targets: list
    """`ObjectSpec` of each target scene (the source with one word swapped)."""
    images: Tensor
    """Source renders [n, 3, R, R] in [0, 1]: what is edited."""
    target_images: Tensor
    """Target renders [n, 3, R, R]: the ground truth of each edit."""
    masks: Tensor
    """Object masks of the sources [n, R, R]."""
    target_masks: Tensor
    """Object masks of the targets [n, R, R]."""
    sky: Tensor
    """Sky pixels of the sources [n, R, R] (neither object nor floor)."""

    def __len__(self) -> int:
        return len(self.kinds)

    def prompts(self, form: str) -> Tuple[List[str], List[str]]:
        """(source prompts, target prompts) in `form` (full | short)."""
        return [prompt(o, kind, form) for o, kind in zip(self.sources, self.kinds)], [
            prompt(o, kind, form) for o, kind in zip(self.targets, self.kinds)
        ]

    def wanted(self, side: str = "target") -> List[str]:
        """Per pair, the swapped word of the target (or `side="source"`): what the judge should read."""
        scenes = self.targets if side == "target" else self.sources
        return [swapped_word(o, kind) for o, kind in zip(scenes, self.kinds)]

    def keep_masks(self) -> Tensor:
        """Per pair [n, R, R], the pixels an ideal edit leaves untouched ("background" of the PSNR).

        colour: outside the object (the world's colour changes nothing else; identical to the old colour-swap
        benchmark). shape: outside both the source and the target object (the new shape may cover other
        pixels); its shadow moves too, so this PSNR is a little pessimistic. floor: the object and the sky
        (objects are shaded by the sun alone, so neither depends on the floor).
        """
        keep = []
        for i, kind in enumerate(self.kinds):
            if kind == "colour":
                keep.append(~self.masks[i])
            elif kind == "shape":
                keep.append(~(self.masks[i] | self.target_masks[i]))
            else:
                keep.append(self.masks[i] | self.sky[i])
        return torch.stack(keep)

    def rows_of_kind(self, kind: str) -> List[int]:
        """Indices of the pairs of `kind`."""
        return [i for i, k in enumerate(self.kinds) if k == kind]


def swapped_word(obj, kind: str) -> str:
    """The word of `obj` that a swap of `kind` changes (its colour, shape or floor phrase)."""
    return {"colour": obj.color, "shape": obj.shape, "floor": obj.floor}[kind]


def prompt(obj, kind: str, form: str) -> str:
    """The prompt of scene `obj` in a pair of `kind`: its caption (`full`) or a user's short phrase (`short`).

    The short phrase is colour + shape ("an orange cone"); for floor swaps it must name the floor, so
    it is the full caption ("a red cube on grass").
    """
    from nerfedit.world.vocab import caption

    full = caption(obj.shape, obj.color, obj.floor, template=0)
    if form == "full" or kind == "floor":
        return full
    if form != "short":
        raise ValueError(f"unknown prompt form {form!r}: use one of {', '.join(PROMPT_FORMS)}")
    article = "an" if obj.color[0] in "aeiou" else "a"
    return f"{article} {obj.color} {obj.shape}"


def swap(obj, kind: str, rng: np.random.Generator):
    """`obj` with its word of `kind` replaced by another one of the vocabulary, drawn uniformly."""
    from nerfedit.world.vocab import COLORS, FLOORS, SHAPES

    field_name, words = {"colour": ("color", COLORS), "shape": ("shape", SHAPES), "floor": ("floor", FLOORS)}[kind]
    others = [w for w in words if w != getattr(obj, field_name)]
    return replace(obj, **{field_name: others[int(rng.integers(len(others)))]})


def held_out_swaps(n: int, seed: int, size: int, kinds: Sequence[str] = KINDS) -> SwapSet:
    """`n` fresh pairs drawn from `seed` (a stream of their own, not the training data's); pair i is of kind
    `kinds[i % len(kinds)]`, so every kind gets ⌊n/3⌋ or ⌈n/3⌉ pairs. Sources and targets are rendered at `size`."""
    from nerfedit.world.render import random_camera, random_object, render_batch

    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown swap kind {kind!r}: use one of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    pair_kinds, sources, targets, cameras = [], [], [], []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        obj = random_object(rng)
        cameras.append(random_camera(rng))
        pair_kinds.append(kind)
        sources.append(obj)
        targets.append(swap(obj, kind, rng))
    source = render_batch(sources, cameras, size)
    target = render_batch(targets, cameras, size)
    return SwapSet(
        kinds=pair_kinds,
        sources=sources,
        targets=targets,
        images=source["image"].permute(0, 3, 1, 2).contiguous().float(),
        target_images=target["image"].permute(0, 3, 1, 2).contiguous().float(),
        masks=source["mask"].bool(),
        target_masks=target["mask"].bool(),
        sky=~source["mask"].bool() & torch.isinf(source["depth"]),
    )
