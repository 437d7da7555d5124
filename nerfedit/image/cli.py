"""`nerfedit edit-image` and `nerfedit generate-image`: their arguments, checks, and calls into `nerfedit.image`.

Everything the user gave is checked (prompts, loss, output paths, the input image) before torch is
imported or the prior loaded; the work itself is `edit_image_any_size` and `generate_image`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from nerfedit import commandline as cl
from nerfedit.errors import UserError
from nerfedit.image.io import PASTES
from nerfedit.losses import catalog
from nerfedit.region.masks import REGION_HELP

EDIT_SUMMARY = "edit an image from a source prompt towards a target prompt"
GENERATE_SUMMARY = "text-to-image by optimisation from a grey image"

FIT_HELP = """\
how an image of any size meets the prior's square resolution (64 for toy, 512 for SD):
  crop    (default) the largest centred square is resized to the prior's resolution, edited,
          resized back and pasted into the input at the same place; pixels outside that
          square are left as they are; the output has the input's width and height.
  squash  the whole image is resized to the square (aspect ratio not kept), edited and
          resized back to the input's width and height."""

PASTE_HELP = """\
what is pasted back into the input:
  blend   (default) delta where the edit changed a pixel little, replace where it changed it
          a lot: what the edit kept keeps the input's detail, what it replaced leaves no ghost.
  replace the edited square as the prior's VAE decodes it.
  delta   the input plus the change the edit made (decoded edit - decoded source):
          untouched regions keep the input's full resolution and detail."""


# ---- arguments ---------------------------------------------------------------------------------------


def add_loss_options(p: argparse.ArgumentParser, names: Sequence[str], editing: bool) -> None:
    """The `DistillationConfig` settings a user may change; unset ones take the chosen loss's paper defaults."""
    names = tuple(names)
    group = p.add_argument_group("loss (unset: the prior's own default where its loss_defaults.json has one, else the loss's paper default)")
    group.add_argument(
        "--guidance-scale",
        type=cl.non_negative_float,
        default=None,
        help=f"CFG scale s in eps(0) + s*(eps(y) - eps(0)) (default: {catalog.defaults_text('guidance_scale', names)})",
    )
    group.add_argument(
        "--t-min", type=cl.non_negative_int, default=None, help=f"smallest timestep sampled, of 1000 (default: {catalog.defaults_text('t_min', names)})"
    )
    group.add_argument(
        "--t-max", type=cl.positive_int, default=None, help=f"timesteps are sampled below this (default: {catalog.defaults_text('t_max', names)})"
    )
    group.add_argument(
        "--grad-scale",
        type=cl.positive_float,
        default=None,
        help=f"multiplies the loss's gradient (default: {catalog.defaults_text('grad_scale', names)}; 0.4883 = the DDS code's 2000/64^2)",
    )
    if editing:
        group.add_argument("--patchnce-weight", type=cl.non_negative_float, default=None, help="cds: weight of PatchNCE (default: 3.0)")
    group.add_argument("--corrective", default=None, help="lmc: path of the learned corrective (default: the one shipped with the prior)")
    group.add_argument("--fixed-eps", action="store_true", help="lmc: draw the noise once and keep it (diverse results across seeds)")
    group.add_argument("--bridge-switch", type=cl.non_negative_int, default=None, help="bridge: step of the switch to stage 2 (default: half of --steps; paper: 500 of 1000)")


def add_optimiser_options(p: argparse.ArgumentParser, optimizers: Sequence[str], default: str, schedule: str, lr_help: str) -> None:
    """The `EditConfig` settings: optimiser, learning rate and its schedule, seed."""
    group = p.add_argument_group("optimisation")
    group.add_argument("--optimizer", choices=optimizers, default=default, help="optimiser of the latent")
    group.add_argument("--lr", type=cl.positive_float, default=None, help=lr_help)
    group.add_argument(
        "--lr-schedule",
        choices=("step", "constant", "cosine"),
        default=schedule,
        help="step: x0.9 every 20 steps (DDS supplement); cosine: to 0 at the last step",
    )
    group.add_argument("--seed", type=int, default=0, help="seeds t, noise and patch sampling: the same seed gives the same result")


def add_output_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("output")
    group.add_argument("--out", required=True, help="output image (.png, .jpg, …); never the input")
    group.add_argument("--save-progress", metavar="PATH", default=None, help="also write the optimisation as a strip (.png) or a video (.gif, .mp4)")
    group.add_argument("--progress-every", type=cl.positive_int, default=None, help="steps between frames of --save-progress (default: steps/10)")
    cl.add_overwrite_option(group)
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _command_parser(subparsers, name: str, summary: str, about: str, example: str, losses: Sequence[str], default_loss: str):
    """A command's parser: its summary, a paragraph about it, an example, and the list of its losses."""
    description = f"{cl.paragraph(about)}\n\nExample:\n  {example}\n\n{catalog.loss_list_help(tuple(losses), default_loss)}"
    return subparsers.add_parser(name, help=summary, description=description, formatter_class=cl.HelpFormatter)


def _shared_options(p: argparse.ArgumentParser, losses: Sequence[str], editing: bool, optimiser: Sequence, func) -> None:
    """The option groups both commands have, after their own arguments; `optimiser` = add_optimiser_options' arguments."""
    add_optimiser_options(p, *optimiser)
    add_loss_options(p, losses, editing=editing)
    cl.add_prior_options(p)
    add_output_options(p)
    p.set_defaults(func=func)


def add_edit_image(subparsers) -> argparse.ArgumentParser:
    """Add `edit-image` to the `nerfedit` sub-parsers."""
    p = _command_parser(
        subparsers,
        "edit-image",
        EDIT_SUMMARY,
        "Edit IMAGE so that it matches --target instead of --source, by optimising its latent against a "
        "score-distillation loss (default DDS: 200 SGD steps from the input's latent). The output has the "
        "input's size (see --fit).",
        'nerfedit edit-image cube.png --source "a red cube on a wooden floor" --target "a blue cube on a wooden floor" --out blue.png',
        catalog.LOSS_NAMES,
        catalog.DEFAULT_EDIT_LOSS,
    )
    p.add_argument("image", metavar="IMAGE", help="input image, any size (see --fit)")
    p.add_argument("--source", default=None, help="what the input shows, e.g. \"a red cube on a wooden floor\" (required by dds and cds; unused by sds, lmc, nfsd)")
    p.add_argument("--target", required=True, help="what the result should show, e.g. \"a blue cube on a wooden floor\"")
    p.add_argument("--loss", choices=catalog.LOSS_NAMES, default=catalog.DEFAULT_EDIT_LOSS, help="score-distillation loss (list below)")
    p.add_argument("--steps", type=cl.positive_int, default=200, help="optimisation steps (DDS: 200)")
    p.add_argument("--fit", choices=("crop", "squash"), default="crop", help=FIT_HELP)
    p.add_argument("--paste", choices=PASTES, default="blend", help=PASTE_HELP)
    p.add_argument("--edit-region", metavar="auto|none|PATH", default="none", help=REGION_HELP)
    sgd = (("sgd", "adam"), "sgd", "step", "learning rate (default: 0.1 for sgd, the DDS notebook; 0.01 for adam)")
    _shared_options(p, catalog.LOSS_NAMES, True, sgd, run_edit_image)
    return p


def add_generate_image(subparsers) -> argparse.ArgumentParser:
    """Add `generate-image` to the `nerfedit` sub-parsers."""
    p = _command_parser(
        subparsers,
        "generate-image",
        GENERATE_SUMMARY,
        "Generate an image for --prompt by optimising a latent, starting from a grey image (LMC-SDS, "
        "SDS-Bridge 2D experiments): 1000 AdamW steps, lr 0.01 by default. The image has the prior's "
        "resolution (64x64 for toy).",
        'nerfedit generate-image --prompt "a yellow sphere on grass" --loss bridge --out sphere.png',
        catalog.GENERATING_LOSS_NAMES,
        catalog.DEFAULT_GENERATE_IMAGE_LOSS,
    )
    p.add_argument("--prompt", required=True, help="what the image should show")
    p.add_argument("--loss", choices=catalog.GENERATING_LOSS_NAMES, default=catalog.DEFAULT_GENERATE_IMAGE_LOSS, help="score-distillation loss (list below)")
    p.add_argument("--steps", type=cl.positive_int, default=1000, help="optimisation steps (SDS-Bridge 2D: 1000)")
    p.add_argument("--init", choices=("grey", "randn"), default="grey", help="start from a grey image's latent, or from a unit Gaussian latent")
    adamw = (("adamw", "adam", "sgd"), "adamw", "constant", "learning rate (default: 0.01 for adam/adamw; 0.1 for sgd)")
    _shared_options(p, catalog.GENERATING_LOSS_NAMES, False, adamw, run_generate_image)
    return p


# ---- from arguments to configs -----------------------------------------------------------------------


def region_argument(args: argparse.Namespace, source, target: str, image_shape):
    """`--edit-region` checked before any model is loaded: None, "auto", or the image's mask (bool [H, W]).

    A mask file must exist and have the image's size; `auto` needs two different prompts (whether the prior
    knows the differing words is checked as soon as it is loaded)."""
    from nerfedit.region.masks import load_mask, mask_path, parse_region

    option = parse_region(args.edit_region)
    if option.kind == "none":
        return None
    if option.kind == "auto":
        if source is None:
            raise UserError("--edit-region auto needs --source (it reads the words that differ from --target)")
        if source.split() == target.split():
            raise UserError("--edit-region auto: --source and --target are the same words, so no region can be read from them")
        return "auto"
    return load_mask(mask_path(option, args.image), image_shape[:2])


def region_output(out: str) -> str:
    """Where the region used is written for the user to look at: `<output stem>_region.png` beside the output."""
    from pathlib import Path

    return str(Path(out).with_name(Path(out).stem + "_region.png"))



def check_outputs(args: argparse.Namespace, inputs: Sequence[str]) -> None:
    """The output paths, and a timestep range that is not empty, before any work."""
    cl.check_outputs(args.out, args.save_progress, inputs, overwrite=args.overwrite)
    if args.t_min is not None and args.t_max is not None and args.t_min >= args.t_max:
        raise UserError(f"--t-min ({args.t_min}) must be below --t-max ({args.t_max})")


def loss_config(args: argparse.Namespace):
    """`DistillationConfig` of the loss options; the ones left unset keep the loss's paper defaults (None)."""
    from nerfedit.losses.base import DistillationConfig

    overrides = dict(
        guidance_scale=args.guidance_scale,
        t_min=args.t_min,
        t_max=args.t_max,
        patchnce_weight=getattr(args, "patchnce_weight", None),
        corrective=args.corrective,
        grad_scale=args.grad_scale,
    )
    return DistillationConfig(
        name=args.loss,
        fixed_eps=args.fixed_eps,
        bridge_switch_step=args.bridge_switch if args.bridge_switch is not None else args.steps // 2,
        **{k: v for k, v in overrides.items() if v is not None},
    )


def build_loss(args: argparse.Namespace, prior):
    """The loss of the options, once its timestep range is known to fit the prior's schedule."""
    from nerfedit.losses import build_loss as build

    config = loss_config(args)
    full = config.with_defaults(prior.loss_defaults)
    if full.t_min is not None and full.t_max is not None:
        if not (0 <= full.t_min < full.t_max <= prior.num_train_timesteps):
            raise UserError(f"timestep range [{full.t_min}, {full.t_max}) is not inside [0, {prior.num_train_timesteps}] for this prior")
    return build(config, prior)


def edit_config(args: argparse.Namespace):
    """`EditConfig` of the optimiser options (a snapshot every --progress-every steps when --save-progress)."""
    from nerfedit.image.edit import EditConfig

    every = 0
    if args.save_progress:
        every = args.progress_every or max(1, args.steps // 10)
    return EditConfig(
        steps=args.steps, optimizer=args.optimizer, lr=args.lr, schedule=args.lr_schedule, seed=args.seed, save_progress_every=every
    ).validate()


def report(history, what: str) -> None:
    """The run's one-line summary, and a warning on stderr if steps were skipped for NaN/Inf gradients."""
    print(f"{what}: {history.summary()}")
    if history.skipped:
        print(
            f"{cl.PROG}: warning: {history.skipped} of {history.steps} steps had a NaN/Inf gradient and were skipped "
            f"(first at step {history.skipped_steps[0]}); try a lower --lr or --guidance-scale",
            file=sys.stderr,
        )


# ---- commands ----------------------------------------------------------------------------------------


def run_edit_image(args: argparse.Namespace) -> int:
    """`nerfedit edit-image`: validate everything, load the prior, edit, write at the input's size."""
    from nerfedit.image import io

    target = cl.prompt_text(args.target, "--target")
    source = cl.source_prompt_text(args.source, args.loss)
    check_outputs(args, inputs=[args.image])
    original = io.load_image(args.image)  # missing/unreadable → UserError, before any model is loaded
    region = region_argument(args, source, target, original.shape)

    from nerfedit.image.fit import edit_image_any_size

    prior = cl.load_prior_from_args(args)
    loss = build_loss(args, prior)
    config = edit_config(args)
    cl.check_words_then_start(prior, {"--source": source, "--target": target})
    if isinstance(region, str):  # auto: the prior must read the differing words, before the edit runs
        from nerfedit.region.words import differing_tokens

        differing_tokens(prior, source, target)
    result = edit_image_any_size(
        prior,
        original,
        target=target,
        source=source,
        loss=loss,
        config=config,
        fit=args.fit,
        paste=args.paste,
        progress=not args.quiet,
        region=region,
    )
    io.save_image(args.out, result.image)
    if result.region is not None:
        io.save_image(region_output(args.out), result.region)
        print(f"wrote {region_output(args.out)} (the edit region, white = editable)")
    if args.save_progress:
        io.save_progress(args.save_progress, result.frames)
    height, width = original.shape[:2]
    report(result.history, f"wrote {args.out} ({width}x{height}, {args.loss})")
    if args.save_progress:
        print(f"wrote {args.save_progress} ({len(result.frames)} frames)")
    return 0


def run_generate_image(args: argparse.Namespace) -> int:
    """`nerfedit generate-image`: validate, load the prior, optimise from grey, write."""
    from nerfedit.image import io

    prompt = cl.prompt_text(args.prompt, "--prompt")
    check_outputs(args, inputs=[])

    from nerfedit.image.edit import generate_image
    from nerfedit.image.fit import to_hwc

    prior = cl.load_prior_from_args(args)
    loss = build_loss(args, prior)
    config = edit_config(args)
    cl.check_words_then_start(prior, {"--prompt": prompt})
    images, history = generate_image(prior, prompt, loss=loss, config=config, init=args.init, progress=not args.quiet)
    frames = [to_hwc(frame) for _, frame in history.snapshot_images]
    io.save_image(args.out, to_hwc(images))
    if args.save_progress:
        io.save_progress(args.save_progress, frames)
    report(history, f"wrote {args.out} ({prior.resolution}x{prior.resolution}, {args.loss})")
    if args.save_progress:
        print(f"wrote {args.save_progress} ({len(frames)} frames)")
    return 0
