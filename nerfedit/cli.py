"""The `nerfedit` command: a dispatcher to the command groups that live beside the code they drive.

    edit-image, generate-image   nerfedit/image/cli.py
    world                        nerfedit/world/cli.py
    judge                        nerfedit/judge/cli.py
    eval                         nerfedit/eval/cli.py

Each entry of `COMMANDS` names a function `add_…(subparsers)` that adds the command's parser and sets
`func` (called with the parsed namespace; it may return an exit code). Only the command being run is
imported (the others are listed by name and summary), so `nerfedit --help` never imports torch. The
shared conventions (one-line errors, exit code 2) are in `nerfedit.commandline`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Optional, Sequence

from nerfedit.commandline import PROG, HelpFormatter, NerfeditArgumentParser, paragraph, run_reporting_errors
from nerfedit.errors import UserError, exit_with
from nerfedit.losses import catalog

COMMANDS = {
    "edit-image": ("nerfedit.image.cli", "add_edit_image", "edit an image from a source prompt towards a target prompt"),
    "generate-image": ("nerfedit.image.cli", "add_generate_image", "text-to-image by optimisation from a grey image"),
    "world": ("nerfedit.world.cli", "add_parser", "render images and scenes of the procedural world"),
    "judge": ("nerfedit.judge.cli", "add_parser", "predict the colour, shape and floor of world images"),
    "eval": ("nerfedit.eval.cli", "add_parser", "the papers' metrics of an edit: CLIP score and direction, LPIPS, DINO structure, PSNR, SSIM"),
}
"""command: (module, function of that module that adds its parser, one-line summary)."""


def build_parser(argv: Optional[Sequence[str]] = None) -> NerfeditArgumentParser:
    """The `nerfedit` parser; only the command that `argv` runs is imported and mounted for real."""
    parser = NerfeditArgumentParser(
        prog=PROG,
        description=paragraph(
            "Edit images and NeRF scenes with text, and generate from text, by score distillation from a latent "
            "diffusion model. Offline with the embedded prior (--prior toy)."
        ),
        formatter_class=HelpFormatter,
        epilog="Run `nerfedit COMMAND --help` for a command's options.\n\n"
        + catalog.loss_list_help(catalog.LOSS_NAMES, catalog.DEFAULT_EDIT_LOSS),
    )
    from nerfedit import __version__

    parser.add_argument("--version", action="version", version=f"nerfedit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    invoked = _invoked_command(argv)
    for command, (module_name, function, summary) in COMMANDS.items():
        if invoked == command:
            _mount(subparsers, command, module_name, function, summary)
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


def _mount(subparsers, command: str, module_name: str, function: str, summary: str) -> None:
    """Add `command` with `module_name.function(subparsers)`; a module that fails to import makes only it unavailable."""
    try:
        add = getattr(importlib.import_module(module_name), function)
    except Exception as error:  # a broken module must not take the other commands down with it
        problem = error
    else:
        add(subparsers)
        return

    stub = subparsers.add_parser(command, help=f"{summary} (unavailable)", add_help=False)
    stub.add_argument("rest", nargs=argparse.REMAINDER)

    def unavailable(args: argparse.Namespace) -> int:
        raise UserError(f"'nerfedit {command}' is unavailable: {module_name} failed to import ({type(problem).__name__}: {problem})")

    stub.set_defaults(func=unavailable)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run `nerfedit` with `argv` (default: sys.argv[1:]); returns the exit code (errors exit 2, Ctrl-C 130)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        exit_with(UserError(f"choose a command ({', '.join(COMMANDS)}); see 'nerfedit --help'"), PROG)
    return run_reporting_errors(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
