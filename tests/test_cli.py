"""The `nerfedit` command line: help, bad input (one line, exit 2, nothing written, before any model loads), real runs."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from nerfedit import cli
from nerfedit.losses.catalog import CATALOG, GENERATING_LOSS_NAMES, LOSS_NAMES
from nerfedit.image import io

SOURCE = "a red cube on a wooden floor"
TARGET = "a blue cube on a wooden floor"
CONSOLE = shutil.which("nerfedit", path=os.path.dirname(sys.executable)) or shutil.which("nerfedit")


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def image(tmp_path) -> Path:
    """A non-square 40×24 (W×H) input image."""
    rng = np.random.default_rng(0)
    path = tmp_path / "in.png"
    io.save_image(path, rng.random((24, 40, 3)).astype(np.float32))
    return path


def run_main(argv):
    """Run `cli.main` in-process; return the exit code (SystemExit included)."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


# ---- help -----------------------------------------------------------------------------------------------


def test_edit_image_help_lists_every_loss_and_its_meaning(capsys):
    from nerfedit.losses import LOSS_NAMES

    assert run_main(["edit-image", "--help"]) == 0
    text = capsys.readouterr().out
    for name in LOSS_NAMES:
        assert f"  {name} " in text, name
        assert CATALOG[name].summary.split(":")[0] in text
    for words in ("--fit", "centred square", "input's width and height", "(default: 200)", "--save-progress"):
        assert words in text


def test_generate_image_help_lists_its_losses(capsys):
    assert run_main(["generate-image", "--help"]) == 0
    text = capsys.readouterr().out
    for name in GENERATING_LOSS_NAMES:
        assert f"  {name} " in text
    assert "grey" in text


def test_help_defaults_match_the_loss_core(capsys):
    from nerfedit.losses.base import DistillationConfig

    assert run_main(["edit-image", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in CATALOG:
        full = DistillationConfig(name=name).with_defaults()
        for key, flag in (("guidance_scale", "--guidance-scale"), ("t_min", "--t-min"), ("t_max", "--t-max")):
            value = getattr(full, key)
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            assert re.search(rf"{flag} \S+ .*?\(default: [^)]*\b{name}\b[^;)]* {re.escape(shown)}\b", text), (name, key)
    assert set(LOSS_NAMES) == set(CATALOG)


def test_help_needs_no_torch():
    code = "import sys, nerfedit.cli as c\nc.build_parser([]).format_help()\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_world_commands_are_mounted_and_keep_one_line_errors(tmp_path, capsys):
    if importlib.util.find_spec("nerfedit.world.cli") is None:
        pytest.skip("nerfedit.world.cli is not there yet")
    out = tmp_path / "w.png"
    assert run_main(["world", "render", "--shape", "blob", "--color", "red", "--floor", "wood", "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nerfedit: error: ") and "blob" in err[0]
    assert not out.exists()


# ---- bad input: one line, exit 2, nothing written, refused before the prior loads ---------------------


def _bad_cases(image: Path, tmp: Path):
    out = tmp / "out.png"
    base = ["edit-image", image, "--source", SOURCE, "--target", TARGET, "--out", out]
    not_an_image = tmp / "text.png"
    not_an_image.write_text("not a png")
    return {
        "missing image": (["edit-image", tmp / "nope.png", "--source", SOURCE, "--target", TARGET, "--out", out], "does not exist"),
        "unreadable image": (["edit-image", not_an_image, "--source", SOURCE, "--target", TARGET, "--out", out], "cannot read"),
        "image is a folder": (["edit-image", tmp, "--source", SOURCE, "--target", TARGET, "--out", out], "folder"),
        "empty target": (["edit-image", image, "--source", SOURCE, "--target", "", "--out", out], "--target is empty"),
        "blank target": (["edit-image", image, "--source", SOURCE, "--target", "   ", "--out", out], "--target is empty"),
        "unknown loss": ([*base, "--loss", "magic"], "invalid choice"),
        "zero steps": ([*base, "--steps", "0"], "positive integer"),
        "negative steps": ([*base, "--steps", "-3"], "positive integer"),
        "non-numeric steps": ([*base, "--steps", "many"], "positive integer"),
        "zero lr": ([*base, "--lr", "0"], "positive number"),
        "missing output folder": ([*base[:-1], tmp / "no" / "such" / "out.png"], "does not exist"),
        "output is the input": ([*base[:-1], image], "never overwrites its input"),
        "output is the input, other spelling": ([*base[:-1], f"{tmp}/./../{tmp.name}/{image.name}"], "never overwrites its input"),
        "output has no image type": ([*base[:-1], tmp / "out.txt"], "unsupported file type"),
        "dds without source": (["edit-image", image, "--target", TARGET, "--out", out], "needs --source"),
        "bad progress type": ([*base, "--save-progress", tmp / "p.avi"], "--save-progress"),
        "progress overwrites input": ([*base, "--save-progress", image], "never overwrites its input"),
        "t-min above t-max": ([*base, "--t-min", "500", "--t-max", "400"], "--t-min"),
        "missing target": (["edit-image", image, "--source", SOURCE, "--out", out], "--target"),
        "generate: empty prompt": (["generate-image", "--prompt", " ", "--out", out], "--prompt is empty"),
        "generate: editing-only loss": (["generate-image", "--prompt", TARGET, "--loss", "dds", "--out", out], "invalid choice"),
        "no command": ([], "choose a command"),
    }


with tempfile.TemporaryDirectory() as _folder:  # only the names: _bad_cases writes a file into its folder
    CASES = list(_bad_cases(Path("x.png"), Path(_folder)))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, image, tmp_path, capsys, no_prior):
    argv, expected = _bad_cases(image, tmp_path)[case]
    before = digest(image)
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert run_main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nerfedit: error: ") and expected in lines[0], lines[0]
    assert captured.out == ""
    assert digest(image) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # nothing written, not even a temp file


def test_unwritable_output_folder(image, tmp_path, capsys, no_prior, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: make the check see what a user would
        real_access = os.access
        monkeypatch.setattr(io.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    try:
        code = run_main(["edit-image", image, "--source", SOURCE, "--target", TARGET, "--out", locked / "out.png"])
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not writable" in err[0]
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o700)


def test_unknown_prior_is_one_line(image, tmp_path, capsys):
    out = tmp_path / "out.png"
    code = run_main(["edit-image", image, "--source", SOURCE, "--target", TARGET, "--prior", "no-such-prior", "--out", out])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nerfedit: error: ") and "no-such-prior" in err[0]
    assert not out.exists()


@pytest.mark.skipif(CONSOLE is None, reason="the nerfedit console script is not installed")
@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--steps", "0"], "positive integer"),
        (["--loss", "magic"], "invalid choice"),
        (["--target", ""], "--target is empty"),
    ],
)
def test_console_script_exit_codes(extra, expected, image, tmp_path):
    out = tmp_path / "out.png"
    argv = [CONSOLE, "edit-image", str(image), "--source", SOURCE, "--target", TARGET, "--out", str(out), *extra]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nerfedit: error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.skipif(CONSOLE is None, reason="the nerfedit console script is not installed")
def test_console_script_missing_image_and_help(tmp_path):
    result = subprocess.run(
        [CONSOLE, "edit-image", str(tmp_path / "nope.jpg"), "--source", SOURCE, "--target", TARGET, "--out", str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()
    assert subprocess.run([CONSOLE, "edit-image", "--help"], capture_output=True, timeout=60).returncode == 0


# ---- real runs on the tiny prior ----------------------------------------------------------------------


def test_edit_image_writes_the_input_size_and_progress(image, tmp_path, tiny_prior_dir, capsys):
    out, progress = tmp_path / "out.png", tmp_path / "progress.gif"
    before = digest(image)
    argv = [
        "edit-image", image, "--source", SOURCE, "--target", TARGET, "--prior", tiny_prior_dir,
        "--steps", "3", "--seed", "1", "--out", out, "--save-progress", progress, "--quiet",
    ]  # fmt: skip
    assert run_main(argv) == 0
    result = io.load_image(out)
    original = io.load_image(image)
    assert result.shape == original.shape == (24, 40, 3)
    # the crop rule: only the centred 24×24 square is edited; the side strips are the input's pixels
    assert np.array_equal(result[:, :8], original[:, :8]) and np.array_equal(result[:, 32:], original[:, 32:])
    assert progress.stat().st_size > 0
    assert digest(image) == before
    text = capsys.readouterr().out
    assert "wrote" in text and "3 steps" in text


def test_edit_image_is_bit_identical_with_a_fixed_seed(image, tmp_path, tiny_prior_dir):
    outs = []
    for name in ("a.png", "b.png"):
        argv = ["edit-image", image, "--source", SOURCE, "--target", TARGET, "--prior", tiny_prior_dir, "--steps", "2", "--out", tmp_path / name, "--quiet", "--save-progress", tmp_path / (name + ".png")]
        assert run_main(argv) == 0
        outs.append(io.load_image(tmp_path / name))
    assert np.array_equal(outs[0], outs[1])


def test_unknown_words_are_refused(image, tmp_path, tiny_prior_dir, capsys):
    """One rule for every command (`nerfedit.priors.words`): editing towards an unknown token edits towards noise."""
    out = tmp_path / "out.png"
    argv = ["edit-image", image, "--loss", "sds", "--target", "a blue cube ☃", "--prior", tiny_prior_dir, "--steps", "1", "--out", out, "--quiet"]
    assert run_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nerfedit: error: ") and "'☃'" in err[0]
    assert not out.exists()


def test_generate_image_writes_the_prior_resolution(tmp_path, tiny_prior_dir, capsys):
    out = tmp_path / "gen.png"
    argv = ["generate-image", "--prompt", TARGET, "--loss", "sds", "--prior", tiny_prior_dir, "--steps", "2", "--out", out, "--save-progress", tmp_path / "g.png", "--quiet"]
    assert run_main(argv) == 0
    assert io.load_image(out).shape == (32, 32, 3)
    assert (tmp_path / "g.png").exists()
