"""Errors that are the user's to fix: reported as one line and exit code 2, never as a traceback."""

from __future__ import annotations

import sys

USAGE_EXIT_CODE = 2


class UserError(Exception):
    """Bad input (a missing file, an empty prompt, an unknown name): one line, exit code 2."""


def exit_with(error: Exception, prog: str = "nerfedit") -> None:
    """Print `prog: error: message` on one line and exit with code 2."""
    message = " ".join(str(error).split())
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)
