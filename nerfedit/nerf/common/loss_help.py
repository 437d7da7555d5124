"""`--help` for settings whose default depends on the loss: the per-loss defaults from the catalogue instead of
tyro's "(default: None)". Used as `Annotated[Optional[float], per_loss_default("guidance_scale")]`."""

from __future__ import annotations

from typing import Callable, Tuple

import tyro

from nerfedit.losses.catalog import LOSS_NAMES, LOSSES, NerfEditDefaults, defaults_text, grouped_text


def per_loss_default(key: str, names: Tuple[str, ...] = LOSS_NAMES, which: str = "paper") -> object:
    """tyro marker: the field's help ends with "(default: per loss: sds 100; dds/cds/nfsd 7.5; …)" for the
    catalogue's defaults of `key` (`which`: "paper" or "text_to_3d"); the field's docstring stays its help."""
    return tyro.conf.arg(help_behavior_hint=f"(default per loss: {defaults_text(key, names, which)})")


def nerf_edit_default(read: Callable[[NerfEditDefaults], object]) -> object:
    """tyro marker like `per_loss_default`, for a NeRF-editing default (`LossEntry.nerf`) of every loss."""
    text = grouped_text({item.name: read(item.nerf) for item in LOSSES})
    return tyro.conf.arg(help_behavior_hint=f"(default per loss: {text})")


def loss_choice(names: Tuple[str, ...], default: str) -> object:
    """tyro marker of a loss-name field: `--help` lists `names`, and any other name still parses, so that
    validation reports it as one line (`PROG: error: unknown loss …`, exit 2) instead of tyro's usage box."""
    return tyro.conf.arg(constructor=str, metavar="{" + ",".join(names) + "}", help_behavior_hint=f"(default: {default})")
