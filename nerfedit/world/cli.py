"""`nerfedit world render|scene`: render one image, or write a multi-view nerfstudio scene.

Shapes, colours and floors are checked before anything is written; floors may be given as their
phrase ("wooden floor") or their key ("wood"). Unknown words are a UserError listing the valid ones.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from nerfedit.commandline import add_overwrite_option
from nerfedit.errors import UserError
from nerfedit.outputs import check_new_file, check_writable_folder
from nerfedit.world.vocab import COLORS, FLOOR_KEYS, FLOORS, SHAPES, resolve_color, resolve_floor, resolve_shape

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def add_parser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `world` command (with `render` and `scene` sub-commands) to a sub-parser collection."""
    world = subparsers.add_parser("world", help="render images and scenes of the procedural world")
    commands = world.add_subparsers(dest="world_command", metavar="{render,scene}")
    commands.required = True

    render = commands.add_parser("render", help="render one image (and optionally its object mask)")
    _add_object_args(render)
    render.add_argument("--seed", type=int, default=0, help="draws the object's yaw, the sun and any camera value not given")
    render.add_argument("--elevation", type=float, default=None, help="camera elevation in degrees")
    render.add_argument("--azimuth", type=float, default=None, help="camera azimuth in degrees")
    render.add_argument("--distance", type=float, default=None, help="camera distance from the object")
    render.add_argument("--focal", type=float, default=None, help="focal length in image widths")
    render.add_argument("--size", type=int, default=64, help="image side in pixels")
    render.add_argument("--out", type=Path, required=True, help="output image (.png or .jpg)")
    render.add_argument("--mask", type=Path, default=None, help="also write the object mask here (.png)")
    add_overwrite_option(render)
    render.set_defaults(func=run_render)

    scene = commands.add_parser("scene", help="write a multi-view scene in nerfstudio format")
    _add_object_args(scene)
    scene.add_argument("--views", type=int, default=32, help="number of views")
    scene.add_argument("--size", type=int, default=64, help="image side in pixels")
    scene.add_argument("--seed", type=int, default=0, help="draws the object's yaw, the sun and the camera jitter")
    scene.add_argument("--out", type=Path, required=True, help="scene directory (must not exist or be empty)")
    scene.set_defaults(func=run_scene)
    return world


def _add_object_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shape", required=True, help="one of: " + ", ".join(SHAPES))
    parser.add_argument("--color", "--colour", dest="color", required=True, help="one of: " + ", ".join(COLORS))
    parser.add_argument("--floor", required=True, help="one of: " + ", ".join(FLOOR_KEYS) + " (or the phrase, e.g. 'wooden floor')")


def _check_size(size: int) -> None:
    if not 8 <= size <= 1024:
        raise UserError(f"--size must be between 8 and 1024 pixels, got {size}")


def _check_image_path(path: Path, flag: str, overwrite: bool, suffixes=_IMAGE_SUFFIXES) -> None:
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: expected a file ending in {', '.join(suffixes)}")
    check_writable_folder(path.parent, f"{flag} {path}", create=True)  # render makes the folder
    check_new_file(path, flag, overwrite)


def run_render(args: argparse.Namespace) -> None:
    """Validate everything, then render one view and write the image (and mask)."""
    from nerfedit.world.render import OrbitCamera, random_camera, render
    from nerfedit.world.scene import scene_object, to_uint8

    shape, color, floor = resolve_shape(args.shape), resolve_color(args.color), resolve_floor(args.floor)
    _check_size(args.size)
    _check_image_path(args.out, "--out", args.overwrite)
    if args.mask is not None:
        _check_image_path(args.mask, "--mask", args.overwrite, (".png",))
    if args.distance is not None and args.distance <= 1.0:
        raise UserError(f"--distance must be > 1 (the object is about one unit across), got {args.distance}")
    if args.focal is not None and args.focal <= 0:
        raise UserError(f"--focal must be positive, got {args.focal}")
    if args.elevation is not None and not -89.0 <= args.elevation <= 89.0:
        raise UserError(f"--elevation must be within [-89, 89] degrees, got {args.elevation}")

    obj = scene_object(shape, color, floor, args.seed)
    drawn = random_camera(np.random.default_rng([args.seed, 2]))
    cam = OrbitCamera(
        elevation_deg=drawn.elevation_deg if args.elevation is None else args.elevation,
        azimuth_deg=drawn.azimuth_deg if args.azimuth is None else args.azimuth,
        distance=drawn.distance if args.distance is None else args.distance,
        focal=drawn.focal if args.focal is None else args.focal,
    )
    out = render(obj, cam, args.size)

    import imageio.v2 as imageio

    for path in (args.out, args.mask):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(args.out, to_uint8(out["image"]))
    if args.mask is not None:
        imageio.imwrite(args.mask, out["mask"].astype(np.uint8) * 255)
    print(f"{obj.caption} -> {args.out}" + (f" (mask {args.mask})" if args.mask is not None else ""))


def run_scene(args: argparse.Namespace) -> None:
    """Validate everything, then write the scene directory."""
    from nerfedit.world.scene import check_output_dir, make_scene

    shape, color, floor = resolve_shape(args.shape), resolve_color(args.color), resolve_floor(args.floor)
    _check_size(args.size)
    if args.views < 1:
        raise UserError(f"--views must be at least 1, got {args.views}")
    check_output_dir(args.out)
    command = "nerfedit world scene " + " ".join(
        shlex.quote(a) for a in ["--shape", shape, "--color", color, "--floor", FLOOR_KEYS[FLOORS.index(floor)], "--views", str(args.views),
                                 "--size", str(args.size), "--seed", str(args.seed), "--out", str(args.out)]
    )
    make_scene(shape, color, floor, args.out, views=args.views, size=args.size, seed=args.seed, command=command)
    print(f"wrote {args.views} views of {color} {shape} on {floor} to {args.out}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`nerfedit ARGV`, with ARGV starting with "world" (as tests call it): the `nerfedit` dispatcher mounts this module."""
    from nerfedit.cli import main as nerfedit_main

    return nerfedit_main(argv)
