"""Reading and writing images for the 2D commands, and the rule that maps any image onto the prior's square.

The resize/crop rule (`--fit`, shown in `nerfedit edit-image --help`):

    crop    (default) the largest centred square of the input is resized to the prior's resolution
            (e.g. 64×64 for `toy`, 512×512 for SD), edited, resized back to the square's size and
            pasted into the input at the same place. Pixels outside that square are the input's,
            untouched; the output has exactly the input's width and height.
    squash  the whole input is resized (aspect ratio not kept) to the prior's square, edited, and
            resized back to the input's width and height.

`--paste` says what is pasted back:

    replace the edited image itself, as decoded by the prior's VAE.
    delta   the input plus the change the edit made (decoded edit − decoded source, resized back):
            regions the edit left alone keep the input's full resolution and lose no detail to
            the VAE; only what changed is brought over.
    blend   (default) delta where the edit changed a pixel little, replace where it changed it a lot: the input's
            detail comes back where the edit kept the content, and does not haunt what it replaced (an
            object moved or reshaped leaves no ghost of its sharp edges). `paste_change` has the formula.

Only numpy and imageio here (no torch), so the command line can check its inputs before it
imports torch or loads a prior.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Sequence, Tuple, Union, get_args

import numpy as np

from nerfedit.errors import UserError
from nerfedit.outputs import atomic_write, check_new_file, check_writable_folder

PathLike = Union[str, os.PathLike]
Fit = Literal["crop", "squash"]
Paste = Literal["replace", "delta", "blend"]
PASTES: Tuple[str, ...] = get_args(Paste)

BLEND_CHANGE = 0.1
"""`blend`: a pixel whose decoded colour the edit moved by this much or more (largest channel, on the [0, 1] scale)
is the decoded edit alone; below it the input's detail comes back in proportion (`changed_weight`)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Output formats `save_image` writes (by the file's suffix)."""
PROGRESS_SUFFIXES = (".png", ".gif", ".mp4")
"""`--save-progress` formats: a strip of frames (PNG), an animated GIF, an H.264 video."""
STRIP_COLUMNS = 12
"""Most frames per row of a progress strip; more frames wrap onto rows of equal length."""
PROGRESS_FRAME_SIDE = 256
"""Longest side of a progress frame (pixels); frames of small images are upscaled to it for viewing."""


# ---- reading --------------------------------------------------------------------------------------


def load_image(path: PathLike) -> np.ndarray:
    """Read an image file as float32 [H, W, 3] in [0, 1].

    Greyscale is repeated to RGB, an alpha channel is composited over white, 16-bit and float
    images are scaled to [0, 1]. Missing or unreadable files raise `UserError` with one line.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"image '{path}' does not exist")
    if path.is_dir():
        raise UserError(f"image '{path}' is a folder, not an image file")
    import imageio.v3 as iio

    try:
        array = np.asarray(iio.imread(path))
    except Exception as error:  # imageio raises many kinds for a file it can't decode
        raise UserError(f"cannot read image '{path}': {type(error).__name__}: {error}") from None
    return _to_float_rgb(array, path)


def _to_float_rgb(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 4:  # an animated file: its first frame
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
        raise UserError(f"cannot read image '{path}': unexpected shape {tuple(array.shape)}")
    if np.issubdtype(array.dtype, np.integer):
        image = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    elif array.dtype == np.bool_:
        image = array.astype(np.float32)
    else:
        image = array.astype(np.float32)
    if image.shape[2] in (2, 4):  # composite the alpha channel over white
        alpha = image[:, :, -1:]
        image = image[:, :, :-1] * alpha + (1.0 - alpha)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if not np.isfinite(image).all():
        raise UserError(f"cannot read image '{path}': it holds NaN or Inf values")
    return np.clip(image, 0.0, 1.0)


# ---- writing --------------------------------------------------------------------------------------


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [H, W, 3] in [0, 1] → uint8, rounded."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path: PathLike, image: np.ndarray) -> Path:
    """Write float [H, W, 3] in [0, 1] (or uint8) as an 8-bit image; format from the suffix."""
    import imageio.v3 as iio

    path = Path(path)
    data = image if image.dtype == np.uint8 else to_uint8(image)
    atomic_write(path, lambda tmp: iio.imwrite(tmp, data, extension=path.suffix.lower()))
    return path


def save_progress(path: PathLike, frames: Sequence[np.ndarray], fps: int = 8) -> Path:
    """Write optimisation snapshots: `.png` a strip (rows of at most `STRIP_COLUMNS` frames), `.gif`/`.mp4` an animation.

    Frames are float [H, W, 3] in [0, 1], all the same size; they are scaled so the longest side
    is `PROGRESS_FRAME_SIDE` (nearest-neighbour when enlarging, to show the prior's real pixels).
    """
    import imageio.v3 as iio

    path = Path(path)
    if not frames:
        raise ValueError("no frames to save")
    frames = [to_uint8(_fit_side(f, PROGRESS_FRAME_SIDE)) for f in frames]
    suffix = path.suffix.lower()
    if suffix == ".png":
        rows = -(-len(frames) // STRIP_COLUMNS)
        data = strip(frames, -(-len(frames) // rows))
        atomic_write(path, lambda tmp: iio.imwrite(tmp, data, extension=".png"))
    elif suffix == ".gif":
        stack = np.stack(frames)
        atomic_write(path, lambda tmp: iio.imwrite(tmp, stack, extension=".gif", duration=1000 / fps, loop=0))
    elif suffix == ".mp4":
        stack = np.stack([_pad_to_even(f) for f in frames])
        atomic_write(
            path,
            lambda tmp: iio.imwrite(tmp, stack, extension=".mp4", plugin="FFMPEG", fps=fps, macro_block_size=1),
        )
    else:
        raise UserError(f"--save-progress '{path}': use a .png (strip), .gif or .mp4 file")
    return path


def strip(frames: Sequence[np.ndarray], columns: int = STRIP_COLUMNS, gap: int = 2) -> np.ndarray:
    """Frames side by side, `columns` per row, on white with a `gap`-pixel margin (uint8 or float in, same out)."""
    h, w = frames[0].shape[:2]
    rows = (len(frames) + columns - 1) // columns
    cols = min(columns, len(frames))
    white = 255 if frames[0].dtype == np.uint8 else 1.0
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), white, dtype=frames[0].dtype)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frame
    return sheet


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _fit_side(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return resize(image, size, nearest=scale > 1)


# ---- checks made before any work ------------------------------------------------------------------


def check_output_path(
    out: PathLike,
    *,
    inputs: Sequence[PathLike] = (),
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
    what: str = "--out",
    overwrite: bool = False,
) -> Path:
    """Raise `UserError` unless `out` can be written: a known suffix, an existing writable folder, not an input,
    and not an existing file unless `overwrite` (`nerfedit.outputs`). Checks only; nothing is left behind."""
    out = Path(out)
    if out.suffix.lower() not in suffixes:
        raise UserError(f"{what} '{out}': unsupported file type '{out.suffix}'; use one of {', '.join(suffixes)}")
    if out.is_dir():
        raise UserError(f"{what} '{out}' is a folder; give a file name such as {out / ('out' + suffixes[0])}")
    for other in inputs:
        if _same_file(out, Path(other)):
            raise UserError(f"{what} '{out}' is the input image; choose another name (nerfedit never overwrites its input)")
    check_writable_folder(out.parent, f"{what} '{out}'")
    check_new_file(out, what, overwrite)
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


# ---- the crop/resize rule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where the prior's square sits in the input image (see the module docstring for the rule)."""

    fit: Fit
    height: int
    width: int
    top: int
    left: int
    crop_height: int
    crop_width: int

    @classmethod
    def of(cls, height: int, width: int, fit: Fit = "crop") -> "Placement":
        if fit == "squash":
            return cls(fit, height, width, 0, 0, height, width)
        if fit != "crop":
            raise UserError(f"unknown --fit '{fit}': use crop or squash")
        side = min(height, width)
        return cls(fit, height, width, (height - side) // 2, (width - side) // 2, side, side)

    def window(self) -> Tuple[slice, slice]:
        return slice(self.top, self.top + self.crop_height), slice(self.left, self.left + self.crop_width)


def to_square(image: np.ndarray, resolution: int, fit: Fit = "crop") -> Tuple[np.ndarray, Placement]:
    """The prior's view of `image` (float [H, W, 3]): a `resolution`² image and where it came from."""
    placement = Placement.of(image.shape[0], image.shape[1], fit)
    rows, cols = placement.window()
    return resize(image[rows, cols], (resolution, resolution)), placement


def from_square(
    original: np.ndarray,
    edited: np.ndarray,
    placement: Placement,
    *,
    paste: Paste = "replace",
    reconstructed: np.ndarray | None = None,
) -> np.ndarray:
    """Put an edited square back into `original` at the input's size (see the module docstring).

    `paste` "delta" and "blend" need `reconstructed`, the unedited source as the prior decodes it (`paste_change`).
    """
    rows, cols = placement.window()
    size = (placement.crop_height, placement.crop_width)
    out = original.copy()
    if paste not in PASTES:
        raise UserError(f"unknown --paste '{paste}': use {', '.join(PASTES)}")
    if paste != "replace" and reconstructed is None:
        raise ValueError(f"paste='{paste}' needs the decoded unedited source")
    weight = changed_weight(edited, reconstructed) if paste == "blend" else None
    edited = resize(edited, size)
    if paste == "replace":
        out[rows, cols] = edited
        return out
    weight = None if weight is None else resize(weight, size)
    out[rows, cols] = paste_change(original[rows, cols], edited, resize(reconstructed, size), paste, weight)
    return out


def changed_weight(edited: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """m [H, W, 1] in [0, 1] of `blend`: min(1, max_c |edited − reconstructed| / BLEND_CHANGE), taken as the largest
    over each pixel's 3×3 neighbourhood so that an edge beside a changed pixel counts as changed too."""
    change = np.abs(edited - reconstructed).max(axis=2) / BLEND_CHANGE
    padded = np.pad(change, 1, mode="edge")
    h, w = change.shape
    grown = np.max([padded[i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=0)
    return np.minimum(grown, 1.0)[..., None].astype(np.float32)


def paste_change(
    original: np.ndarray, edited: np.ndarray, reconstructed: np.ndarray, paste: Paste, weight: np.ndarray | None = None
) -> np.ndarray:
    """The pasted pixels [H, W, 3] from the input x, the decoded edit D(z) and the decoded source D(E(x)), all one size:

        replace   D(z)
        delta     x + D(z) − D(E(x))                    (= D(z) + (x − D(E(x))): the VAE's loss given back everywhere)
        blend     D(z) + (1 − m) · (x − D(E(x)))       (given back where the edit changed little; m = `changed_weight`)

    clipped to [0, 1]. `weight`: m, when computed at another size (`from_square` computes it on the prior's square)."""
    if paste == "replace":
        return edited.copy()
    out = original + (edited - reconstructed)  # this order: exactly the input where the edit changed nothing
    if paste == "blend":
        out = out - (changed_weight(edited, reconstructed) if weight is None else weight) * (original - reconstructed)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def resize(image: np.ndarray, size: Tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize float [H, W, C] to `size` = (height, width): area-averaging down, bicubic up (or nearest).

    Done with PIL per channel in float32 mode, so no torch is needed and values are not quantised.
    """
    from PIL import Image

    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image.astype(np.float32, copy=True)
    if nearest:
        method = Image.Resampling.NEAREST
    elif size[0] <= h and size[1] <= w:
        method = Image.Resampling.BOX
    else:
        method = Image.Resampling.BICUBIC
    channels: List[np.ndarray] = []
    for c in range(image.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32))
        channels.append(np.asarray(plane.resize((size[1], size[0]), method), dtype=np.float32))
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0) if not nearest else np.stack(channels, axis=2)


__all__ = [
    "BLEND_CHANGE",
    "IMAGE_SUFFIXES",
    "PASTES",
    "PROGRESS_SUFFIXES",
    "Placement",
    "check_output_path",
    "changed_weight",
    "from_square",
    "load_image",
    "paste_change",
    "resize",
    "save_image",
    "save_progress",
    "strip",
    "to_square",
    "to_uint8",
]
