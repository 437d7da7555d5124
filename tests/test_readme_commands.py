"""Every command the README shows at least parses, so the README cannot drift from the code.

The README is read at test time: commands are the lines of its ```bash blocks and its inline `code` spans that
start with `nerfedit `, `ns-train ` or `python scripts/` (inline ones only when they pass a flag: a bare
`ns-train nerfedit` in prose is a name, not a command). Each is parsed, not run:

    nerfedit CMD ARGS        the `nerfedit` argparse parser (one-line error and exit 2 on a bad flag)
    ns-train METHOD FLAGS    tyro with the method's config, as ns-train parses it (nothing is trained)
    python scripts/X ARGS    the script's own argparse parser, stopped right after it parsed

Placeholders are filled in: a "…" after a flag is a value, a trailing one is dropped, IMAGE is an image name.
"""

from __future__ import annotations

import argparse
import re
import runpy
import shlex
import sys
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PREFIXES = ("nerfedit ", "ns-train ", "python scripts/")
PLACEHOLDERS = {"IMAGE": "cube.png", "OUT": "out.png", "NAME": "sds", "S": "0", "DIR": "toy"}


def readme_commands(text: str) -> List[str]:
    """The commands of the README (see the module docstring), continuation lines joined, in order."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith(PREFIXES):
                commands.append(line.strip())
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())
        if span.startswith(PREFIXES) and re.search(r"\s\[?-", span):
            commands.append(span)
    return list(dict.fromkeys(commands))


def argv_of(command: str) -> List[str]:
    """The words of `command` (shell-split, comments dropped) with its placeholders filled in."""
    words = shlex.split(command, comments=True)
    argv: List[str] = []
    for word in words:
        word = word.strip("[]")
        if word == "…":
            if argv and argv[-1].startswith("--"):
                argv.append("a red cube on a wooden floor")
            continue
        word = word.rstrip("…")
        argv.append(PLACEHOLDERS.get(word, word))
    return argv


COMMANDS = readme_commands(README.read_text())


def test_the_readme_has_commands_of_each_kind():
    for prefix in PREFIXES:
        assert any(c.startswith(prefix) for c in COMMANDS), prefix


class Parsed(Exception):
    """Raised right after a script's parser accepted its arguments: nothing else of the script runs."""


def _parse_script(path: Path, args: List[str], monkeypatch) -> None:
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        real(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    monkeypatch.syspath_prepend(str(path.parent))
    with pytest.raises(Parsed):
        runpy.run_path(str(path), run_name="__main__")


def _parse_ns_train(method: str, flags: List[str]) -> None:
    import tyro
    from nerfstudio.configs.method_configs import all_methods

    assert method in all_methods, f"no ns-train method '{method}'"
    default = all_methods[method]
    tyro.cli(tyro.conf.FlagConversionOff[type(default)], default=default, args=flags)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command, monkeypatch, capsys):
    argv = argv_of(command)
    if argv[0] == "nerfedit":
        from nerfedit import cli

        parser = cli.build_parser(argv[1:])
        parser.parse_args(argv[1:])  # a bad flag is SystemExit(2) with one line on stderr
    elif argv[0] == "ns-train":
        _parse_ns_train(argv[1], argv[2:])
    else:
        _parse_script(REPO / argv[1], argv[2:], monkeypatch)
