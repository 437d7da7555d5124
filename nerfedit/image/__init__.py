"""2D editing and text-to-image on the loss core: `edit_image`, `edit_latents`, `generate_image` (see `edit`),
their settings, optimiser, schedule and history (see `optim`), images of any size (see `fit`), file I/O (see `io`),
and the `edit-image`/`generate-image` commands (see `cli`).

Attributes are imported lazily so that `nerfedit.image.io` (and `nerfedit --help`) don't import torch.
"""

from __future__ import annotations

_EDIT_NAMES = (
    "EditConfig",
    "EditHistory",
    "edit_image",
    "edit_latents",
    "generate_config",
    "generate_image",
    "optimize_latents",
)

__all__ = list(_EDIT_NAMES)


def __getattr__(name: str):
    if name in _EDIT_NAMES:
        from nerfedit.image import edit

        return getattr(edit, name)
    raise AttributeError(f"module 'nerfedit.image' has no attribute {name!r}")
