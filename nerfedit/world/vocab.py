"""The world's words: shapes, colours, floors, and the caption templates that combine them.

Floors have two spellings: a short key ("wood") for command lines and file names, and the phrase
used in captions ("wooden floor"). `FLOORS` holds the phrases, `FLOOR_KEYS` the keys in the same
order; `resolve_floor` accepts either and returns the phrase. Every label index (as in
`sample_batch`'s `floor` tensor) indexes both tuples.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from nerfedit.errors import UserError

SHAPES: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus")
"""The main object's primitive."""

COLORS: tuple[str, ...] = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
"""Colour words, one word each; all saturated hues so that shading cannot turn one into another."""

FLOORS: tuple[str, ...] = ("wooden floor", "grass", "checkered floor", "stone floor")
"""Floor phrases as they appear in captions."""

FLOOR_KEYS: tuple[str, ...] = ("wood", "grass", "checker", "stone")
"""Short names of the floors (same order as `FLOORS`), accepted wherever a floor is asked for."""

# The article in front of each floor phrase ("on a wooden floor", but "on grass").
_FLOOR_WITH_ARTICLE = {
    "wooden floor": "a wooden floor",
    "grass": "grass",
    "checkered floor": "a checkered floor",
    "stone floor": "a stone floor",
}

TEMPLATES: tuple[str, ...] = (
    "{a} {color} {shape} on {floor}",
    "a photo of {a} {color} {shape} on {floor}",
    "{a} {color} {shape} standing on {floor}",
    "a rendering of {a} {color} {shape} on {floor}",
    "{floor} with {a} {color} {shape}",
)
"""Caption templates; template 0 is the canonical one ("a red cube on a wooden floor").
`{a}` is the article of the colour word ("an orange cone")."""

SHORT_TEMPLATES: tuple[str, ...] = ("{a} {color} {shape}", "a photo of {a} {color} {shape}", "a rendering of {a} {color} {shape}")
"""Captions without the floor: the phrase a user types ("a red cube"), and two of `TEMPLATES` without their floor.
Used only in training (`Config.short_caption_prob`), so that a prior knows an object named without its floor."""


def _lookup(word: str, valid: Sequence[str], what: str, aliases: Sequence[str] = ()) -> int:
    """Index of `word` in `valid` (or in `aliases`, same order); UserError naming the valid words."""
    key = " ".join(str(word).lower().replace("_", " ").replace("-", " ").split())
    if key in valid:
        return list(valid).index(key)
    if key in aliases:
        return list(aliases).index(key)
    listed = ", ".join(valid)
    if aliases:
        listed += " (or " + ", ".join(aliases) + ")"
    raise UserError(f"unknown {what} {word!r}; valid: {listed}")


def shape_index(word: str) -> int:
    """Index into `SHAPES` of a shape word; UserError listing the valid shapes otherwise."""
    return _lookup(word, SHAPES, "shape")


def color_index(word: str) -> int:
    """Index into `COLORS` of a colour word (British "colour" spelling in the message); UserError otherwise."""
    return _lookup(word, COLORS, "colour")


def floor_index(word: str) -> int:
    """Index into `FLOORS`/`FLOOR_KEYS` of a floor phrase ("wooden floor") or key ("wood")."""
    return _lookup(word, FLOORS, "floor", aliases=FLOOR_KEYS)


def resolve_shape(word: str) -> str:
    """The canonical shape word for `word` (case and spacing normalised)."""
    return SHAPES[shape_index(word)]


def resolve_color(word: str) -> str:
    """The canonical colour word for `word`."""
    return COLORS[color_index(word)]


def resolve_floor(word: str) -> str:
    """The floor phrase for a phrase or a key: resolve_floor("wood") == "wooden floor"."""
    return FLOORS[floor_index(word)]


def caption(
    shape: str,
    color: str,
    floor: str,
    template: Optional[int] = None,
    rng: Optional[np.random.Generator] = None,
) -> str:
    """The caption of a scene, e.g. caption("cube", "red", "wood") == "a red cube on a wooden floor".

    Args:
        shape, color, floor: words of the vocabulary (floor as phrase or key); unknown words raise UserError.
        template: index into `TEMPLATES`. If None, drawn from `rng`; if `rng` is None too, template 0.
        rng: generator used only when `template` is None.
    """
    shape, color, floor = resolve_shape(shape), resolve_color(color), resolve_floor(floor)
    if template is None:
        template = 0 if rng is None else int(rng.integers(len(TEMPLATES)))
    return TEMPLATES[template].format(a=_article(color), color=color, shape=shape, floor=_FLOOR_WITH_ARTICLE[floor])


def short_caption(shape: str, color: str, template: int = 0) -> str:
    """The caption of an object without its floor, e.g. short_caption("cube", "red") == "a red cube"."""
    shape, color = resolve_shape(shape), resolve_color(color)
    return SHORT_TEMPLATES[template].format(a=_article(color), color=color, shape=shape)


def _article(color: str) -> str:
    """The article before a colour word ("an orange", "a red")."""
    return "an" if color[0] in "aeiou" else "a"


def caption_words(text: str) -> List[str]:
    """Lowercase words of a caption, split on spaces and commas (the tokenisation `vocabulary` uses)."""
    return text.lower().replace(",", " ").split()


def vocabulary() -> List[str]:
    """Every word any caption can contain, sorted, lowercase, split on spaces/commas."""
    words = set()
    for template in range(len(TEMPLATES)):
        for shape in SHAPES:
            for color in COLORS:
                for floor in FLOORS:
                    words.update(caption_words(caption(shape, color, floor, template)))
    return sorted(words)
