"""Run-time workarounds nerfstudio 1.1.5 needs on CPU-only / offline machines. Each is a no-op where nothing is broken.

Applied once, when `nerfedit.nerf` is imported (by `ns-train` through the plugin entry point, and by
`ns-render` / `ns-viewer` / `ns-export` when they read a nerfedit `config.yml`). The set-up-time fix
(torchvision's fake-kernel registrations) lives in `nerfedit/compat.py`.

1. LPIPS. nerfacto builds torchmetrics' LPIPS at start-up, which downloads AlexNet's weights; offline
   that raises `URLError` and nothing starts. Training does not need LPIPS, and a metric computed
   with stand-in weights would be a lie, so when the real network cannot be built we put an
   `UnavailableLPIPS` in its place: it has no weights and returns NaN, and nerfedit's model drops the
   value from its metrics (reported as unavailable). Where AlexNet loads (cached or online — every
   normal CUDA install), the real metric is built, unchanged.
2. `weights_only` loading. torch >= 2.6 loads checkpoints with `weights_only=True`; nerfstudio's
   checkpoints hold numpy scalars (the schedulers' `_last_lr`), which that unpickler rejects, so
   `--load-dir`, `ns-render` and `ns-eval` fail. We allow-list exactly those numpy types with
   `torch.serialization.add_safe_globals` (nothing else becomes loadable). On torch < 2.6 it is a no-op.
3. ffmpeg for `ns-render`. nerfstudio checks for an `ffmpeg` on PATH and writes videos through
   mediapy; pip-only installs have none, but imageio-ffmpeg (a nerfedit dependency) ships a binary.
   When no `ffmpeg` is on PATH we link that binary as `~/.cache/nerfedit/bin/ffmpeg` and append that
   folder to this process's PATH (children inherit it); with a system ffmpeg nothing changes.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, List, Optional

import torch

_APPLIED = False
_REAL_LPIPS: Optional[type] = None
LPIPS_UNAVAILABLE_REASON: Optional[str] = None
"""Why the real LPIPS could not be built in this process (None while it could, or was never asked for)."""


class UnavailableLPIPS(torch.nn.Module):
    """Stands in for torchmetrics' LPIPS when AlexNet's weights can't be had: no weights, returns NaN."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return torch.tensor(math.nan)


def _lpips_factory(real: type) -> Callable[..., torch.nn.Module]:
    def build(*args: Any, **kwargs: Any) -> torch.nn.Module:
        global LPIPS_UNAVAILABLE_REASON
        if LPIPS_UNAVAILABLE_REASON is not None:  # already failed once: don't retry the download per model
            return UnavailableLPIPS(LPIPS_UNAVAILABLE_REASON)
        try:
            return real(*args, **kwargs)
        except (OSError, RuntimeError) as error:  # URLError is an OSError; a truncated download a RuntimeError
            LPIPS_UNAVAILABLE_REASON = f"AlexNet weights for LPIPS are not available ({type(error).__name__})"
            warnings.warn(f"nerfedit: {LPIPS_UNAVAILABLE_REASON}: LPIPS is reported as unavailable", stacklevel=2)
            return UnavailableLPIPS(LPIPS_UNAVAILABLE_REASON)

    return build


def patch_lpips() -> str:
    """Make nerfacto's `LearnedPerceptualImagePatchSimilarity(...)` fall back to `UnavailableLPIPS` offline."""
    global _REAL_LPIPS
    try:
        import torchmetrics.image.lpip as lpip_module
    except ImportError:
        return "torchmetrics not installed: nothing to do"
    if _REAL_LPIPS is None:
        _REAL_LPIPS = lpip_module.LearnedPerceptualImagePatchSimilarity
        # nerfacto imports the name from `torchmetrics.image.lpip` inside `populate_modules`, so
        # replacing the module attribute is enough; isinstance checks elsewhere keep the real class.
        lpip_module.LearnedPerceptualImagePatchSimilarity = _lpips_factory(_REAL_LPIPS)  # type: ignore[assignment]
    return "LPIPS falls back to 'unavailable' when AlexNet can't be loaded"


def numpy_safe_globals() -> List[Any]:
    """The numpy types nerfstudio checkpoints contain (scalars and their dtypes)."""
    import importlib

    import numpy as np

    try:  # numpy 2 renamed numpy.core → numpy._core
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")
    types: List[Any] = [multiarray.scalar, np.dtype]
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        dtype_class = getattr(getattr(np, "dtypes", None), name, None)
        if dtype_class is not None:
            types.append(dtype_class)
    return types


def allow_numpy_in_checkpoints() -> str:
    """Allow-list numpy scalar types for `torch.load(weights_only=True)` (torch >= 2.4); else a no-op."""
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is None:
        return "torch has no weights_only allow-list: nothing to do"
    add_safe_globals(numpy_safe_globals())
    return "numpy scalars allowed in weights_only checkpoint loading"


def bundled_ffmpeg_on_path() -> str:
    """Make imageio-ffmpeg's binary the `ffmpeg` of this process if there is no other one."""
    import os
    import shutil
    from pathlib import Path

    if shutil.which("ffmpeg") is not None:
        return "ffmpeg on PATH: nothing to do"
    try:
        import imageio_ffmpeg

        binary = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return "imageio-ffmpeg has no ffmpeg binary: nothing to do"
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nerfedit" / "bin"
    link = folder / "ffmpeg"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not link.exists() or link.resolve() != binary.resolve():
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(binary)
    except OSError:
        return "could not link imageio-ffmpeg's ffmpeg: nothing done"
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + str(folder)
    return f"ffmpeg: using imageio-ffmpeg's binary ({link})"


def apply() -> List[str]:
    """Apply every run-time workaround once per process; returns what each one did."""
    global _APPLIED
    if _APPLIED:
        return []
    _APPLIED = True
    return [patch_lpips(), allow_numpy_in_checkpoints(), bundled_ffmpeg_on_path()]


def lpips_available(module: Optional[torch.nn.Module]) -> bool:
    """Whether `module` (a model's `.lpips`) is the real metric rather than the stand-in."""
    return module is not None and not isinstance(module, UnavailableLPIPS)
