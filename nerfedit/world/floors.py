"""The world's floors and sky: procedural textures, pure functions of floor coordinates so that every view agrees,
anti-aliased by each pixel's footprint on the floor."""

from __future__ import annotations

import torch
from torch import Tensor

from nerfedit.shading import SKY_HORIZON, SKY_ZENITH


def _hash2(ix: Tensor, iy: Tensor, seed: float = 0.0) -> Tensor:
    """A deterministic pseudo-random number in [0, 1) per integer lattice point."""
    h = torch.sin(ix * 127.1 + iy * 311.7 + seed * 74.7) * 43758.5453
    return h - torch.floor(h)


def _value_noise(x: Tensor, y: Tensor, seed: float = 0.0) -> Tensor:
    """Smooth value noise in [0, 1) with unit feature size."""
    ix, iy = torch.floor(x), torch.floor(y)
    fx, fy = x - ix, y - iy
    ux, uy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash2(ix, iy, seed), _hash2(ix + 1, iy, seed)
    c, d = _hash2(ix, iy + 1, seed), _hash2(ix + 1, iy + 1, seed)
    return a + (b - a) * ux + (c - a) * uy + (a - b - c + d) * ux * uy


def _detail(footprint: Tensor, feature: float) -> Tensor:
    """1 where a texture feature of this size is well resolved by a pixel, fading to 0 when not (anti-aliasing)."""
    return (1.5 - footprint / feature).clamp(0.0, 1.0)


def _lines(coord: Tensor, period: float, width: float, footprint: Tensor) -> Tensor:
    """1 on thin lines every `period` (e.g. gaps between tiles), area-averaged when a pixel is coarser."""
    phase = coord / period - torch.floor(coord / period)
    on = (phase < width / period).float()
    return torch.lerp(on, torch.full_like(on, width / period), 1 - _detail(footprint, 2 * width))


def _wood(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    plank_w, plank_l = 0.32, 1.6
    row = torch.floor(y / plank_w)
    shifted = x + _hash2(row, row, 3.0) * plank_l
    col = torch.floor(shifted / plank_l)
    tone = _hash2(row, col, 1.0)
    light, dark = torch.tensor([0.66, 0.45, 0.26]), torch.tensor([0.50, 0.31, 0.16])
    base = dark + (light - dark) * tone[:, None]
    grain = torch.sin(shifted * 9.0 + 6.0 * _value_noise(shifted * 1.5, y * 14.0, 2.0) + tone * 20)
    base = base * (1 + 0.10 * grain * _detail(footprint, 0.15))[:, None]
    gaps = torch.maximum(_lines(y, plank_w, 0.012, footprint), _lines(shifted, plank_l, 0.012, footprint))
    return torch.lerp(base, torch.tensor([0.22, 0.13, 0.07]).expand_as(base), 0.85 * gaps[:, None])


def _grass(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    coarse = _value_noise(x * 1.3, y * 1.3, 4.0)
    fine = _value_noise(x * 9.0, y * 9.0, 5.0) * _detail(footprint, 0.11) + 0.5 * (1 - _detail(footprint, 0.11))
    lush, dry = torch.tensor([0.22, 0.44, 0.12]), torch.tensor([0.42, 0.50, 0.20])
    base = lush + (dry - lush) * coarse[:, None]
    return base * (0.78 + 0.40 * fine)[:, None]


def _checker(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    tile = 0.5
    # Box-filtered checkerboard (Quilez): exact pixel-area average, so distant tiles blur to grey, not moiré.
    w = (footprint / tile).clamp(min=1e-4)

    def filtered(u: Tensor) -> Tensor:
        a = (u - 0.5 * w) * 0.5
        b = (u + 0.5 * w) * 0.5
        fa = (a - torch.floor(a) - 0.5).abs()
        fb = (b - torch.floor(b) - 0.5).abs()
        return 2 * (fa - fb) / w

    s = 0.5 - 0.5 * filtered(x / tile) * filtered(y / tile)
    light, dark = torch.tensor([0.86, 0.85, 0.82]), torch.tensor([0.20, 0.20, 0.23])
    return dark + (light - dark) * s[:, None]


def _stone(x: Tensor, y: Tensor, footprint: Tensor) -> Tensor:
    tile_w, tile_h = 0.55, 0.36
    row = torch.floor(y / tile_h)
    shifted = x + 0.5 * tile_w * (row - 2 * torch.floor(row / 2))
    col = torch.floor(shifted / tile_w)
    tone = _hash2(row, col, 7.0)
    grit = _value_noise(x * 7.0, y * 7.0, 8.0) * _detail(footprint, 0.14) + 0.5 * (1 - _detail(footprint, 0.14))
    grey = (0.46 + 0.16 * tone + 0.10 * (grit - 0.5))[:, None]
    base = grey * torch.tensor([1.0, 0.97, 0.92])
    mortar = torch.maximum(_lines(y, tile_h, 0.02, footprint), _lines(shifted, tile_w, 0.02, footprint))
    return torch.lerp(base, torch.tensor([0.30, 0.29, 0.27]).expand_as(base), 0.9 * mortar[:, None])


FLOOR_TEXTURES = {"wooden floor": _wood, "grass": _grass, "checkered floor": _checker, "stone floor": _stone}


def sky_colour(directions: Tensor) -> Tensor:
    g = directions[:, 2].clamp(0.0, 1.0).pow(0.6)[:, None]
    horizon, zenith = torch.tensor(SKY_HORIZON), torch.tensor(SKY_ZENITH)
    return horizon + (zenith - horizon) * g

