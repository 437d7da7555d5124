"""`nerfedit judge IMAGE… [--json]`: what colour, shape and floor the judge sees in each image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from nerfedit.errors import UserError


def add_parser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `judge` command to a sub-parser collection."""
    parser = subparsers.add_parser(
        "judge",
        help="predict the colour, shape and floor of world images",
        description="Predict the main object's colour and shape and the floor of each image, with probabilities.",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (any size; resized to 64×64)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line: file, color, shape, floor, p_color, p_shape, p_floor")
    parser.add_argument("--weights", type=Path, default=None, help="judge weights (default: the shipped ones)")
    parser.set_defaults(func=run_judge)
    return parser


def read_image(path: Path) -> torch.Tensor:
    """An image file as float32 [3,H,W] in [0,1]; grey is repeated, alpha dropped. UserError if unreadable."""
    import imageio.v2 as imageio

    if not path.is_file():
        raise UserError(f"no such image: {path}")
    try:
        array = np.asarray(imageio.imread(path))
    except Exception as error:  # imageio raises many types for bad files; all mean "not an image"
        raise UserError(f"cannot read image {path}: {type(error).__name__}") from error
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise UserError(f"cannot read image {path}: unexpected shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    scale = float(np.iinfo(array.dtype).max) if np.issubdtype(array.dtype, np.integer) else 1.0
    return torch.from_numpy(array.astype(np.float32) / scale).permute(2, 0, 1).clamp(0.0, 1.0)


def run_judge(args: argparse.Namespace) -> None:
    """Read every image first (so a bad path fails before any output), then judge and print them."""
    from nerfedit.judge.model import judge_images, load_judge, prepare_images

    images = [prepare_images(read_image(path)) for path in args.images]
    judge = load_judge(args.weights)
    result = judge_images(torch.cat(images), judge)
    for i, path in enumerate(args.images):
        row = {
            "file": str(path),
            "color": result["color"][i],
            "shape": result["shape"][i],
            "floor": result["floor"][i],
            "p_color": round(result["p_color"][i], 4),
            "p_shape": round(result["p_shape"][i], 4),
            "p_floor": round(result["p_floor"][i], 4),
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{path}: {row['color']} ({row['p_color']:.2f})  {row['shape']} ({row['p_shape']:.2f})  "
                f"{row['floor']} ({row['p_floor']:.2f})"
            )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`nerfedit ARGV`, with ARGV starting with "judge" (as tests call it): the `nerfedit` dispatcher mounts this module."""
    from nerfedit.cli import main as nerfedit_main

    return nerfedit_main(argv)
