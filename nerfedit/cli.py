"""The `nerfedit` command line: `edit-image`, `generate-image`, and the `world` and `judge` command groups.

Conventions of every subcommand:
- Bad input is the user's to fix: ONE line `nerfedit: error: …` on stderr, exit code 2, nothing
  written — and it is found before the prior is loaded or any long work starts.
- torch, diffusers and the prior are imported inside the commands, so `nerfedit --help` is fast.
- Subcommand groups mounted from other modules (`nerfedit.world.cli`, `nerfedit.judge.cli`) expose
  `add_parser(subparsers)`, which adds their parser(s) and sets `func` (called with the parsed
  namespace; it may return an exit code) through `set_defaults(func=…)`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Callable, Dict, List, Optional, Sequence

from nerfedit.errors import UserError, exit_with
from nerfedit.losses import catalog

PROG = "nerfedit"

EDIT_LOSSES = catalog.LOSS_NAMES
GENERATE_LOSSES = catalog.GENERATING_LOSS_NAMES

FIT_HELP = """\
how an image of any size meets the prior's square resolution (64 for toy, 512 for SD):
  crop    (default) the largest centred square is resized to the prior's resolution, edited,
          resized back and pasted into the input at the same place; pixels outside that
          square are left as they are; the output has the input's width and height.
  squash  the whole image is resized to the square (aspect ratio not kept), edited and
          resized back to the input's width and height."""

PASTE_HELP = """\
what is pasted back into the input:
  replace (default) the edited square as the prior's VAE decodes it.
  delta   the input plus the change the edit made (decoded edit - decoded source):
          untouched regions keep the input's full resolution and detail."""


# ---- argparse with one-line errors ----------------------------------------------------------------


class NerfeditArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line `nerfedit: error: …` and exit code 2 (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        exit_with(UserError(message), PROG)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps description/epilog layout, and shows `(default: …)` for options that have one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "\n" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"

    def _split_lines(self, text: str, width: int) -> List[str]:
        if "\n" in text:  # pre-formatted help (e.g. --fit): keep its lines
            return text.splitlines()
        return super()._split_lines(text, width)


def _bounded(parse: Callable[[str], float], accept: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse `type` that parses with `parse` and refuses values `accept` rejects (and infinity)."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not '{text}'") from None
        if not accept(value) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value

    return convert


_positive_int = _bounded(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _bounded(int, lambda v: v >= 0, "an integer ≥ 0")
_positive_float = _bounded(float, lambda v: v > 0, "a positive number")
_non_negative_float = _bounded(float, lambda v: v >= 0, "a number ≥ 0")


def _para(text: str) -> str:
    import textwrap

    return textwrap.fill(text, 100)


def _loss_list(names: Sequence[str], default: str) -> str:
    return catalog.loss_list_help(tuple(names), default)


# ---- parser ----------------------------------------------------------------------------------------


MOUNTED = {
    "world": ("nerfedit.world.cli", "render images and scenes of the procedural world"),
    "judge": ("nerfedit.judge.cli", "predict the colour, shape and floor of world images"),
}
"""Command groups that live in other modules: (module with `add_parser(subparsers)`, one-line summary)."""


def build_parser(argv: Optional[Sequence[str]] = None) -> NerfeditArgumentParser:
    """The `nerfedit` parser. `world` and `judge` are imported only when `argv` runs them (their modules
    import torch); otherwise they are listed by name and summary, so `nerfedit --help` stays fast."""
    parser = NerfeditArgumentParser(
        prog=PROG,
        description=_para(
            "Edit images and NeRF scenes with text, and generate from text, by score distillation from a latent "
            "diffusion model. Offline with the embedded prior (--prior toy)."
        ),
        formatter_class=_HelpFormatter,
        epilog="Run `nerfedit COMMAND --help` for a command's options.\n\n" + _loss_list(EDIT_LOSSES, catalog.DEFAULT_EDIT_LOSS),
    )
    from nerfedit import __version__

    parser.add_argument("--version", action="version", version=f"nerfedit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    _add_edit_image(subparsers)
    _add_generate_image(subparsers)
    invoked = _invoked_command(argv)
    for command, (module_name, summary) in MOUNTED.items():
        if invoked == command:
            _mount(subparsers, module_name, command, summary)
        elif importlib.util.find_spec(module_name) is not None:
            _placeholder(subparsers, command, summary)
    return parser


def _invoked_command(argv: Optional[Sequence[str]]) -> Optional[str]:
    """The first word of `argv` that is not an option (the subcommand), if any."""
    for token in sys.argv[1:] if argv is None else argv:
        if not str(token).startswith("-"):
            return str(token)
    return None


def _placeholder(subparsers, command: str, summary: str) -> None:
    """List `command` in the help without importing it (it is mounted for real when it is run)."""
    stub = subparsers.add_parser(command, help=summary, add_help=False)
    stub.add_argument("rest", nargs=argparse.REMAINDER)

    def rerun(args: argparse.Namespace) -> int:  # only reached if the parser was built for another argv
        return main([command, *args.rest])

    stub.set_defaults(func=rerun)


def _add_prior_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("prior and device")
    group.add_argument(
        "--prior",
        default="toy",
        help="toy (embedded, offline), sd14, sd15, sd21b, a hub id or a local diffusers folder",
    )
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default: cuda if available, else cpu)")
    group.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="network precision (default: fp16 on CUDA, fp32 on CPU)")


def _defaults_text(key: str, names: Sequence[str]) -> str:
    return catalog.defaults_text(key, tuple(names))


def _add_loss_options(p: argparse.ArgumentParser, names: Sequence[str], editing: bool) -> None:
    group = p.add_argument_group("loss (unset: the chosen loss's paper defaults)")
    group.add_argument(
        "--guidance-scale",
        type=_non_negative_float,
        default=None,
        help=f"CFG scale s in eps(0) + s*(eps(y) - eps(0)) (default: {_defaults_text('guidance_scale', names)})",
    )
    group.add_argument(
        "--t-min",
        type=_non_negative_int,
        default=None,
        help=f"smallest timestep sampled, of 1000 (default: {_defaults_text('t_min', names)})",
    )
    group.add_argument(
        "--t-max",
        type=_positive_int,
        default=None,
        help=f"timesteps are sampled below this (default: {_defaults_text('t_max', names)})",
    )
    group.add_argument(
        "--grad-scale",
        type=_positive_float,
        default=None,
        help=f"multiplies the loss's gradient (default: {_defaults_text('grad_scale', names)}; 0.4883 = the DDS code's 2000/64^2)",
    )
    if editing:
        group.add_argument("--patchnce-weight", type=_non_negative_float, default=None, help="cds: weight of PatchNCE (default: 3.0)")
    group.add_argument("--corrective", default=None, help="lmc: path of the learned corrective (default: the one shipped with the prior)")
    group.add_argument("--fixed-eps", action="store_true", help="lmc: draw the noise once and keep it (diverse results across seeds)")
    group.add_argument("--bridge-switch", type=_non_negative_int, default=None, help="bridge: step of the switch to stage 2 (default: half of --steps; paper: 500 of 1000)")


def _add_optimiser_options(p: argparse.ArgumentParser, optimizers: Sequence[str], default: str, schedule: str, lr_help: str) -> None:
    group = p.add_argument_group("optimisation")
    group.add_argument("--optimizer", choices=optimizers, default=default, help="optimiser of the latent")
    group.add_argument("--lr", type=_positive_float, default=None, help=lr_help)
    group.add_argument(
        "--lr-schedule",
        choices=("step", "constant", "cosine"),
        default=schedule,
        help="step: x0.9 every 20 steps (DDS supplement); cosine: to 0 at the last step",
    )
    group.add_argument("--seed", type=int, default=0, help="seeds t, noise and patch sampling: the same seed gives the same result")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("output")
    group.add_argument("--out", required=True, help="output image (.png, .jpg, …); never the input")
    group.add_argument("--save-progress", metavar="PATH", default=None, help="also write the optimisation as a strip (.png) or a video (.gif, .mp4)")
    group.add_argument("--progress-every", type=_positive_int, default=None, help="steps between frames of --save-progress (default: steps/10)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_edit_image(subparsers) -> None:
    p = subparsers.add_parser(
        "edit-image",
        help="edit an image from a source prompt towards a target prompt",
        description=_para(
            "Edit IMAGE so that it matches --target instead of --source, by optimising its latent against a "
            "score-distillation loss (default DDS: 200 SGD steps from the input's latent). The output has the "
            "input's size (see --fit)."
        )
        + "\n\n"
        "Example:\n  nerfedit edit-image cube.png --source \"a red cube on a wooden floor\" "
        "--target \"a blue cube on a wooden floor\" --out blue.png\n\n" + _loss_list(EDIT_LOSSES, catalog.DEFAULT_EDIT_LOSS),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="input image, any size (see --fit)")
    p.add_argument("--source", default=None, help="what the input shows, e.g. \"a red cube on a wooden floor\" (required by dds and cds; unused by sds, lmc, nfsd)")
    p.add_argument("--target", required=True, help="what the result should show, e.g. \"a blue cube on a wooden floor\"")
    p.add_argument("--loss", choices=EDIT_LOSSES, default=catalog.DEFAULT_EDIT_LOSS, help="score-distillation loss (list below)")
    p.add_argument("--steps", type=_positive_int, default=200, help="optimisation steps (DDS: 200)")
    p.add_argument("--fit", choices=("crop", "squash"), default="crop", help=FIT_HELP)
    p.add_argument("--paste", choices=("replace", "delta"), default="replace", help=PASTE_HELP)
    _add_optimiser_options(p, ("sgd", "adam"), "sgd", "step", "learning rate (default: 0.1 for sgd, the DDS notebook; 0.01 for adam)")
    _add_loss_options(p, EDIT_LOSSES, editing=True)
    _add_prior_options(p)
    _add_output_options(p)
    p.set_defaults(func=run_edit_image)


def _add_generate_image(subparsers) -> None:
    p = subparsers.add_parser(
        "generate-image",
        help="text-to-image by optimisation from a grey image",
        description=_para(
            "Generate an image for --prompt by optimising a latent, starting from a grey image (LMC-SDS, "
            "SDS-Bridge 2D experiments): 1000 AdamW steps, lr 0.01 by default. The image has the prior's "
            "resolution (64x64 for toy)."
        )
        + "\n\n"
        "Example:\n  nerfedit generate-image --prompt \"a yellow sphere on grass\" --loss bridge --out sphere.png\n\n"
        + _loss_list(GENERATE_LOSSES, catalog.DEFAULT_GENERATE_IMAGE_LOSS),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--prompt", required=True, help="what the image should show")
    p.add_argument("--loss", choices=GENERATE_LOSSES, default=catalog.DEFAULT_GENERATE_IMAGE_LOSS, help="score-distillation loss (list below)")
    p.add_argument("--steps", type=_positive_int, default=1000, help="optimisation steps (SDS-Bridge 2D: 1000)")
    p.add_argument("--init", choices=("grey", "randn"), default="grey", help="start from a grey image's latent, or from a unit Gaussian latent")
    _add_optimiser_options(p, ("adamw", "adam", "sgd"), "adamw", "constant", "learning rate (default: 0.01 for adam/adamw; 0.1 for sgd)")
    _add_loss_options(p, GENERATE_LOSSES, editing=False)
    _add_prior_options(p)
    _add_output_options(p)
    p.set_defaults(func=run_generate_image)


def _mount(subparsers, module_name: str, command: str, summary: str) -> None:
    """Add a command group from `module_name.add_parser`; skip it if the module is not there yet."""
    try:
        module = importlib.import_module(module_name)
        add_parser = getattr(module, "add_parser")
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            return  # that part of nerfedit is not installed/written yet
        problem: Exception = error
    except Exception as error:  # a broken module must not take the other commands down with it
        problem = error
    else:
        add_parser(subparsers)
        return

    stub = subparsers.add_parser(command, help=f"{summary} (unavailable)", add_help=False)
    stub.add_argument("rest", nargs=argparse.REMAINDER)

    def unavailable(args: argparse.Namespace) -> int:
        raise UserError(f"'nerfedit {command}' is unavailable: {module_name} failed to import ({type(problem).__name__}: {problem})")

    stub.set_defaults(func=unavailable)


# ---- checks before any work ------------------------------------------------------------------------


def _prompt(text: Optional[str], option: str) -> str:
    text = " ".join((text or "").split())
    if not text:
        raise UserError(f"{option} is empty: say what the image should show")
    return text


def _check_outputs(args: argparse.Namespace, inputs: Sequence[str]) -> None:
    from nerfedit.image.io import PROGRESS_SUFFIXES, check_output_path

    check_output_path(args.out, inputs=inputs)
    if args.save_progress:
        check_output_path(args.save_progress, inputs=[*inputs, args.out], suffixes=PROGRESS_SUFFIXES, what="--save-progress")
        if args.save_progress.lower().endswith(".mp4"):
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError:
                raise UserError("--save-progress .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or use .gif or .png") from None
    if args.t_min is not None and args.t_max is not None and args.t_min >= args.t_max:
        raise UserError(f"--t-min ({args.t_min}) must be below --t-max ({args.t_max})")


def _device(name: Optional[str]):
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device '{name}': use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name}: unsupported device type '{device.type}'")
    return device


def _quiet_libraries() -> None:
    """Silence diffusers/transformers info chatter and loading bars (our own bar stays)."""
    try:
        import diffusers.utils.logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    except Exception:
        pass
    try:
        import transformers.utils.logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except Exception:
        pass


def _load(args: argparse.Namespace):
    """Device check, then the prior (the one slow part of start-up)."""
    device = _device(args.device)
    _quiet_libraries()
    from nerfedit.priors import load_prior

    return load_prior(args.prior, device=device, dtype=args.dtype)


def _loss_config(args: argparse.Namespace):
    from nerfedit.losses.base import DistillationConfig

    overrides = dict(
        guidance_scale=args.guidance_scale,
        t_min=args.t_min,
        t_max=args.t_max,
        patchnce_weight=getattr(args, "patchnce_weight", None),
        corrective=args.corrective,
        grad_scale=args.grad_scale,
    )
    config = DistillationConfig(
        name=args.loss,
        fixed_eps=args.fixed_eps,
        bridge_switch_step=args.bridge_switch if args.bridge_switch is not None else args.steps // 2,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    return config


def _build_loss(args: argparse.Namespace, prior):
    from nerfedit.losses import build_loss

    config = _loss_config(args)
    full = config.with_defaults()
    if full.t_min is not None and full.t_max is not None:
        if not (0 <= full.t_min < full.t_max <= prior.num_train_timesteps):
            raise UserError(f"timestep range [{full.t_min}, {full.t_max}) is not inside [0, {prior.num_train_timesteps}] for this prior")
    return build_loss(config, prior)


def _warn_unknown_words(prior, prompts: Dict[str, Optional[str]]) -> None:
    for option, text in prompts.items():
        if not text:
            continue
        unknown = prior.unknown_words(text)
        if unknown:
            words = ", ".join(f"'{w}'" for w in dict.fromkeys(unknown))
            print(f"{PROG}: warning: the prior '{prior.name}' does not know {words} in {option}; running anyway", file=sys.stderr)


def _edit_config(args: argparse.Namespace):
    from nerfedit.image.edit import EditConfig

    every = 0
    if args.save_progress:
        every = args.progress_every or max(1, args.steps // 10)
    return EditConfig(
        steps=args.steps,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.lr_schedule,
        seed=args.seed,
        save_progress_every=every,
    ).validate()


def _report(history, what: str) -> None:
    print(f"{what}: {history.summary()}")
    if history.skipped:
        print(
            f"{PROG}: warning: {history.skipped} of {history.steps} steps had a NaN/Inf gradient and were skipped "
            f"(first at step {history.skipped_steps[0]}); try a lower --lr or --guidance-scale",
            file=sys.stderr,
        )


# ---- commands -----------------------------------------------------------------------------------------


def run_edit_image(args: argparse.Namespace) -> int:
    """`nerfedit edit-image`: validate everything, load the prior, edit, write at the input's size."""
    from nerfedit.image import io

    target = _prompt(args.target, "--target")
    source = " ".join(args.source.split()) if args.source is not None else None
    if catalog.CATALOG[args.loss].needs_source and source is None:
        raise UserError(f"--loss {args.loss} needs --source, a description of the input image (e.g. \"a red cube on a wooden floor\")")
    _check_outputs(args, inputs=[args.image])
    original = io.load_image(args.image)  # missing/unreadable → UserError, before any model is loaded

    import torch

    from nerfedit.image.edit import edit_latents

    prior = _load(args)
    loss = _build_loss(args, prior)
    config = _edit_config(args)
    _warn_unknown_words(prior, {"--source": source, "--target": target})

    square, placement = io.to_square(original, prior.resolution, args.fit)
    x = torch.from_numpy(square).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        z_source = prior.encode_images(x.to(prior.device))
    z, history = edit_latents(loss, z_source, target=target, source=source, config=config, progress=not args.quiet)
    with torch.no_grad():
        edited = _hwc(prior.decode_latents(z))
        reconstructed = _hwc(prior.decode_latents(z_source)) if args.paste == "delta" else None
    result = io.from_square(original, edited, placement, paste=args.paste, reconstructed=reconstructed)
    io.save_image(args.out, result)
    if args.save_progress:
        frames = []
        with torch.no_grad():
            for _, zs in history.snapshots:
                frame = _hwc(prior.decode_latents(zs.to(prior.device)))
                frames.append(io.from_square(original, frame, placement, paste=args.paste, reconstructed=reconstructed))
        io.save_progress(args.save_progress, frames)
    height, width = original.shape[:2]
    _report(history, f"wrote {args.out} ({width}x{height}, {args.loss})")
    if args.save_progress:
        print(f"wrote {args.save_progress} ({len(history.snapshots)} frames)")
    return 0


def run_generate_image(args: argparse.Namespace) -> int:
    """`nerfedit generate-image`: validate, load the prior, optimise from grey, write."""
    from nerfedit.image import io

    prompt = _prompt(args.prompt, "--prompt")
    _check_outputs(args, inputs=[])

    import torch

    from nerfedit.image.edit import initial_latents, optimize_latents

    prior = _load(args)
    loss = _build_loss(args, prior)
    config = _edit_config(args)
    _warn_unknown_words(prior, {"--prompt": prompt})

    z0 = initial_latents(prior, 1, args.init, seed=args.seed)
    z, history = optimize_latents(loss, z0, prompt=prompt, config=config, progress=not args.quiet, desc="generating")
    with torch.no_grad():
        image = _hwc(prior.decode_latents(z))
        frames = [_hwc(prior.decode_latents(zs.to(prior.device))) for _, zs in history.snapshots]
    io.save_image(args.out, image)
    if args.save_progress:
        io.save_progress(args.save_progress, frames)
    _report(history, f"wrote {args.out} ({prior.resolution}x{prior.resolution}, {args.loss})")
    if args.save_progress:
        print(f"wrote {args.save_progress} ({len(frames)} frames)")
    return 0


def _hwc(images) -> "object":
    """First image of a [B, 3, H, W] tensor → float32 numpy [H, W, 3]."""
    return images[0].permute(1, 2, 0).float().cpu().numpy()


# ---- entry point -------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run `nerfedit` with `argv` (default: sys.argv[1:]); returns the exit code (errors exit 2)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func: Optional[Callable[[argparse.Namespace], Optional[int]]] = getattr(args, "func", None)
    if func is None:
        commands = ", ".join(parser._subparsers._group_actions[0].choices) if parser._subparsers else ""
        exit_with(UserError(f"choose a command ({commands}); see 'nerfedit --help'"), PROG)
    try:
        code = func(args)
    except UserError as error:
        exit_with(error, PROG)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
