"""The settings an evaluation edits with: exactly those of `nerfedit edit-image`, from the same place.

An evaluation must measure what a user gets, so it does not restate any default: it parses the
`edit-image` command line a user would type (`nerfedit.image.cli`'s parser, its `edit_config` and
`loss_config`), with the evaluation's explicit overrides appended as that command's own options. A setting
is "non-default" when it differs from what the same command line without overrides gives.

    edit_image_settings(loss, overrides, prior)  → (EditConfig, DistillationConfig with the prior's / catalogue's defaults filled in)
    generate_image_settings(loss, prior)         → the same for `nerfedit generate-image` (and its --init)
    OVERRIDE_OPTIONS                        the edit-image options an evaluation may forward
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Dict, List, Sequence, Tuple

OVERRIDE_OPTIONS: Tuple[str, ...] = (
    "--steps", "--optimizer", "--lr", "--lr-schedule", "--guidance-scale", "--t-min", "--t-max", "--grad-scale", "--patchnce-weight",
    "--paste",
)  # fmt: skip
"""`nerfedit edit-image` options an evaluation forwards when given (each takes one value)."""


def edit_image_parser() -> argparse.ArgumentParser:
    """The parser of `nerfedit edit-image`, as `nerfedit` builds it."""
    from nerfedit.commandline import NerfeditArgumentParser
    from nerfedit.image.cli import add_edit_image

    root = NerfeditArgumentParser(prog="nerfedit")
    return add_edit_image(root.add_subparsers())


def edit_image_namespace(loss: str, overrides: Sequence[str] = ()) -> argparse.Namespace:
    """The namespace `nerfedit edit-image IMAGE --target … --loss LOSS [overrides] --out …` parses to."""
    argv = ["source.png", "--source", "source", "--target", "target", "--out", "edit.png", "--loss", loss, *overrides]
    return edit_image_parser().parse_args(argv)


def edit_image_settings(loss: str, overrides: Sequence[str] = (), prior: str = "toy"):
    """(EditConfig, full DistillationConfig) of `nerfedit edit-image --prior PRIOR --loss LOSS [overrides]`.

    The `DistillationConfig` has every unset field filled as the loss fills it on that prior (`with_defaults`:
    the prior's own `loss_defaults.json`, else the catalogue), so it can be printed and stored as the settings
    actually used — read from the prior's folder without loading it.
    """
    from nerfedit.image.cli import edit_config, loss_config
    from nerfedit.priors.loader import prior_loss_defaults

    args = edit_image_namespace(loss, overrides)
    return edit_config(args), loss_config(args).with_defaults(prior_loss_defaults(prior))


def generate_image_settings(loss: str, prior: str = "toy"):
    """(EditConfig, full DistillationConfig, init) of `nerfedit generate-image --prior PRIOR --loss LOSS`, read from
    that command's parser as `edit_image_settings` reads edit-image's."""
    from nerfedit.commandline import NerfeditArgumentParser
    from nerfedit.image.cli import add_generate_image, edit_config, loss_config
    from nerfedit.priors.loader import prior_loss_defaults

    root = NerfeditArgumentParser(prog="nerfedit")
    args = add_generate_image(root.add_subparsers()).parse_args(["--prompt", "prompt", "--out", "image.png", "--loss", loss])
    return edit_config(args), loss_config(args).with_defaults(prior_loss_defaults(prior)), args.init


def edit_image_paste(loss: str, overrides: Sequence[str] = ()) -> str:
    """What `nerfedit edit-image --loss LOSS [overrides]` pastes back: "blend" (its default), "replace" or "delta"."""
    return edit_image_namespace(loss, overrides).paste


def settings_record(loss: str, overrides: Sequence[str] = (), prior: str = "toy") -> Dict[str, object]:
    """The settings of `loss` on `prior` as plain values, and the names of those that differ from edit-image's defaults."""
    config, distillation = edit_image_settings(loss, overrides, prior)
    default_config, default_distillation = edit_image_settings(loss, prior=prior)
    used = {"optimiser": _optimiser_fields(config), "loss": _plain(asdict(distillation)), "output": {"paste": edit_image_paste(loss, overrides)}}
    defaults = {"optimiser": _optimiser_fields(default_config), "loss": _plain(asdict(default_distillation)), "output": {"paste": edit_image_paste(loss)}}
    changed = [f"{group}.{key}" for group in used for key in used[group] if used[group][key] != defaults[group][key]]
    return {**used, "non_default": changed}


def overrides_from_args(args: argparse.Namespace) -> List[str]:
    """The `OVERRIDE_OPTIONS` set in `args` (attribute names with underscores), as edit-image command-line words."""
    words: List[str] = []
    for option in OVERRIDE_OPTIONS:
        value = getattr(args, option[2:].replace("-", "_"), None)
        if value is not None:
            words += [option, str(value)]
    return words


def _optimiser_fields(config) -> Dict[str, object]:
    """The `EditConfig` fields that shape an edit (the seed varies per edit; snapshots are not settings)."""
    return {
        "steps": config.steps,
        "optimizer": config.optimizer,
        "lr": config.resolved_lr(),
        "schedule": config.schedule,
        "lr_decay": config.lr_decay,
        "lr_decay_every": config.lr_decay_every,
    }


def _plain(values: Dict[str, object]) -> Dict[str, object]:
    """JSON-friendly values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def describe(record: Dict[str, object]) -> str:
    """One line of the settings: "200 × sgd lr 0.1 (step ×0.9/20), CFG 7.5, t ∈ [50, 949), …", non-defaults marked."""
    opt, loss = record["optimiser"], record["loss"]
    changed = set(record["non_default"])

    def mark(group: str, key: str, text: str) -> str:
        return f"{text} [non-default]" if f"{group}.{key}" in changed else text

    parts = [
        mark("optimiser", "steps", f"{opt['steps']} steps"),
        mark("optimiser", "optimizer", opt["optimizer"]),
        mark("optimiser", "lr", f"lr {opt['lr']:g}"),
        mark("optimiser", "schedule", f"{opt['schedule']} schedule"),
        mark("loss", "guidance_scale", f"CFG {loss['guidance_scale']:g}"),
        mark("loss", "t_min", f"t_min {loss['t_min']}"),
        mark("loss", "t_max", f"t_max {loss['t_max']}"),
        mark("loss", "grad_scale", f"grad_scale {loss['grad_scale']:.4g}"),
    ]
    if loss.get("patchnce_weight") is not None:
        parts.append(mark("loss", "patchnce_weight", f"PatchNCE {loss['patchnce_weight']:g}"))
    parts.append(mark("output", "paste", f"paste {record['output']['paste']}"))
    return ", ".join(parts)
