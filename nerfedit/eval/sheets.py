"""Contact sheets: rows of image cells, upscaled with nearest-neighbour so the prior's real pixels show.

    contact_sheet(rows, …) → uint8 [H, W, 3]       rows of `Cell`s, optional row labels, column titles,
                                                   captions under cells and pass/fail bars
    grid(images, columns)  → rows of `Cell`s       a flat batch laid out `columns` to a row
    save_sheet(path, sheet)                        writes the PNG (creating its folder)

Layout: an optional label column on the left (`label_width`), an optional header line of column
titles, then one band per row: the cells (side `size · scale`, `gap` apart), under each an optional
coloured bar (`bar_height`) and caption lines (`caption_height`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
from torch import Tensor

LINE = 14
"""Vertical distance between the lines of a row label (pixels)."""
CAPTION_LINE = 11
"""Vertical distance between the caption lines under a cell (pixels)."""
HEADER = 16
"""Height of the column-title line."""
GREEN, RED = (40, 170, 60), (210, 40, 40)
"""Bar colours: the judge read what was asked for, or not."""


@dataclass
class Cell:
    """One image of a sheet and what is drawn with it."""

    image: Tensor
    """[3, H, W] in [0, 1]."""
    text: Optional[str] = None
    """Written in white on the image's top-left corner (e.g. what the judge read)."""
    bar: Optional[Tuple[int, int, int]] = None
    """Colour of a bar under the image (needs `bar_height` > 0)."""
    caption: Sequence[str] = ()
    """Lines under the image (needs `caption_height`); a line starting with "!" is drawn in red, without the "!"."""


def grid(images: Tensor, columns: int = 8, captions: Optional[Sequence[Sequence[str]]] = None) -> list:
    """Images [B, 3, H, W] as rows of at most `columns` cells, with optional caption lines per image."""
    cells = [Cell(images[i], caption=captions[i] if captions is not None else ()) for i in range(len(images))]
    return [cells[i : i + columns] for i in range(0, len(cells), columns)]


def _tile(image: Tensor, side: int):
    from PIL import Image

    array = (image.detach().float().permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(array).resize((side, side), Image.Resampling.NEAREST)


def contact_sheet(
    rows: Sequence[Sequence[Cell]],
    *,
    scale: int = 2,
    gap: int = 2,
    label_width: int = 0,
    row_labels: Optional[Sequence[Sequence[str]]] = None,
    titles: Optional[Sequence[str]] = None,
    bar_height: int = 0,
    caption_height: int = 0,
) -> np.ndarray:
    """The sheet of `rows` as uint8 [H, W, 3] on white (see the module docstring for the layout).

    Every cell is resized to the first image's side × `scale`. `row_labels[r]` are text lines left of row
    r; `titles[c]` is written above column c.
    """
    from PIL import Image, ImageDraw

    side = rows[0][0].image.shape[-1] * scale
    header = HEADER if titles else 0
    band = side + bar_height + caption_height + gap
    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (label_width + columns * (side + gap), header + len(rows) * band), "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(titles or ()):
        draw.text((label_width + c * (side + gap) + 2, 2), title, fill="black")
    for r, row in enumerate(rows):
        y = header + r * band
        for k, line in enumerate(row_labels[r] if row_labels else ()):
            draw.text((2, y + 2 + LINE * k), line, fill="black")
        for c, cell in enumerate(row):
            x = label_width + c * (side + gap)
            sheet.paste(_tile(cell.image, side), (x, y))
            if cell.bar is not None and bar_height:
                draw.rectangle([x, y + side, x + side - 1, y + side + bar_height - 1], fill=cell.bar)
            if cell.text:
                draw.text((x + 2, y + 2), cell.text, fill="white")
            for k, line in enumerate(cell.caption):
                fill = (200, 0, 0) if line.startswith("!") else (0, 0, 0)
                draw.text((x + 2, y + side + bar_height + 1 + CAPTION_LINE * k), line.lstrip("!"), fill=fill)
    return np.asarray(sheet)


def save_sheet(path, sheet: np.ndarray) -> Path:
    """Write a sheet as PNG at `path`, creating its folder."""
    from nerfedit.image.io import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_image(path, sheet)
