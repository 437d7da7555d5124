"""The argparse conventions every `nerfedit` command (and the scripts in `scripts/`) share.

- Bad input is the user's to fix: ONE line `nerfedit: error: …` on stderr, exit code 2, nothing
  written — found before the prior is loaded or any long work starts (`NerfeditArgumentParser`,
  the bounded number types, `check_outputs`). An existing output file is replaced only with
  `--overwrite` (`nerfedit.outputs`); a prompt word the prior does not know is refused
  (`nerfedit.priors.words`).
- `--threads N` sets torch's threads; a busy machine gets one warning line (`nerfedit.threads`).
- `--help` shows `(default: …)` beside every option that has one (`HelpFormatter`).
- torch is imported only inside the functions that need it, so building a parser stays fast.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Callable, Dict, List, Optional, Sequence

from nerfedit.errors import UserError, exit_with

PROG = "nerfedit"


class NerfeditArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line `nerfedit: error: …` and exit code 2 (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        exit_with(UserError(message), PROG)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
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


def bounded(parse: Callable[[str], float], accept: Callable[[float], bool], what: str) -> Callable[[str], float]:
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


positive_int = bounded(int, lambda v: v > 0, "a positive integer")
non_negative_int = bounded(int, lambda v: v >= 0, "an integer ≥ 0")
positive_float = bounded(float, lambda v: v > 0, "a positive number")
non_negative_float = bounded(float, lambda v: v >= 0, "a number ≥ 0")


def paragraph(text: str) -> str:
    """`text` wrapped at 100 columns, for descriptions shown by `HelpFormatter` (which keeps line breaks)."""
    return textwrap.fill(text, 100)


def prompt_text(text: Optional[str], option: str) -> str:
    """`text` with its whitespace collapsed; an empty or blank prompt is a `UserError` naming `option`."""
    text = " ".join((text or "").split())
    if not text:
        raise UserError(f"{option} is empty: say what the image should show")
    return text


def source_prompt_text(text: Optional[str], loss: str, option: str = "--source") -> Optional[str]:
    """The source prompt, whitespace collapsed; missing or blank is a `UserError` when `loss` needs one
    (`catalog.check_source_prompt`), None when it does not and none was given."""
    from nerfedit.losses import catalog

    text = " ".join(text.split()) if text is not None else None
    catalog.check_source_prompt(loss, text, option)
    return text


# ---- prior and device --------------------------------------------------------------------------------


def add_prior_options(parser: argparse.ArgumentParser) -> None:
    """--prior, --device, --dtype in a group of their own."""
    group = parser.add_argument_group("prior and device")
    group.add_argument(
        "--prior",
        default="toy",
        help="toy (embedded, offline), sd14, sd15, sd21b, a hub id or a local diffusers folder",
    )
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default: cuda if available, else cpu)")
    group.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="network precision (default: fp16 on CUDA, fp32 on CPU)")
    add_threads_option(group)


def add_threads_option(parser) -> None:
    """--threads N (torch.set_num_threads); see `nerfedit.threads` for why it matters on shared machines."""
    from nerfedit.threads import THREADS_HELP

    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help=THREADS_HELP)


def add_overwrite_option(parser) -> None:
    """--overwrite: without it an existing output file is an error (`nerfedit.outputs.check_new_file`)."""
    from nerfedit.outputs import OVERWRITE_HELP

    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def resolve_device(name: Optional[str]):
    """`--device` as a torch device (None: cuda if available, else cpu); one that can't run is a `UserError`."""
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


def load_prior_from_args(args: argparse.Namespace):
    """Threads and device, then the prior of `--prior/--device/--dtype` (the one slow part of start-up)."""
    from nerfedit.threads import set_threads

    set_threads(getattr(args, "threads", None))
    device = resolve_device(args.device)
    from nerfedit.priors import load_prior

    return load_prior(args.prior, device=device, dtype=args.dtype)


def check_words_then_start(prior, prompts: Dict[str, Optional[str]]) -> None:
    """The last check before the work: the one rule of `nerfedit.priors.words` (a prompt word the prior does not
    know is a one-line error); then, input known good, the one-line warning of a busy machine (`nerfedit.threads`)."""
    from nerfedit.priors.words import refuse_unknown_words
    from nerfedit.threads import warn_if_oversubscribed

    refuse_unknown_words(prior.unknown_words, prior.name, prompts)
    warn_if_oversubscribed(PROG)


# ---- outputs -----------------------------------------------------------------------------------------


def check_outputs(out: str, save_progress: Optional[str], inputs: Sequence[str], overwrite: bool = False) -> None:
    """`--out` (an image) and `--save-progress` (a strip or video) are writable, new to the inputs, of a known type,
    and not existing files unless `overwrite`."""
    from nerfedit.image.io import PROGRESS_SUFFIXES, check_output_path

    check_output_path(out, inputs=inputs, overwrite=overwrite)
    if save_progress:
        check_output_path(save_progress, inputs=[*inputs, out], suffixes=PROGRESS_SUFFIXES, what="--save-progress", overwrite=overwrite)
        if save_progress.lower().endswith(".mp4"):
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError:
                raise UserError("--save-progress .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or use .gif or .png") from None


def run_reporting_errors(func: Callable[[argparse.Namespace], Optional[int]], args: argparse.Namespace, prog: str = PROG) -> int:
    """Run a command: a `UserError` is one line and exit code 2, Ctrl-C is one line and exit code 130."""
    try:
        code = func(args)
    except UserError as error:
        exit_with(error, prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
