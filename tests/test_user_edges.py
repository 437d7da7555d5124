"""A new user's first hour: bad input is ONE line and exit code 2 before any work, and nothing they gave is
overwritten; one rule for unknown prompt words; umask-respecting outputs; --threads; no third-party noise.

ns-train cases run nerfstudio's own `train.main` in-process on the tyro-parsed config (what `ns-train` does), so
"no run folder left behind" is checked on the real code path without a new interpreter per case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nerfedit import cli
from nerfedit.image import io

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "scenes" / "red_cube"
TOY = REPO / "nerfedit" / "assets" / "toy"
SOURCE = "a red cube on a wooden floor"
TARGET = "a blue cube on a wooden floor"
UNWRITABLE = Path("/proc/nerfedit-test-out")
"""A folder no one, root included, can create files in (permission bits do not stop root; /proc does)."""


def run_main(argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nerfedit: error: "), lines
    return lines[0]


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in.png"
    io.save_image(path, np.random.default_rng(0).random((24, 40, 3)).astype(np.float32))
    return path


needs_proc = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")


# ---- 4: bad input that used to get through --------------------------------------------------------------
@needs_proc
@pytest.mark.parametrize("command", ["edit-image", "generate-image"])
def test_unwritable_out_is_refused_before_the_prior(command, image, capsys, no_prior):
    out = Path("/proc") / "nerfedit-out.png"
    argv = ["edit-image", image, "--source", SOURCE, "--target", TARGET] if command == "edit-image" else ["generate-image", "--prompt", TARGET]
    assert run_main([*argv, "--out", out]) == 2
    assert "not writable" in one_error_line(capsys)


def test_existing_output_needs_overwrite(image, tmp_path, capsys, no_prior):
    out = tmp_path / "out.png"
    out.write_bytes(b"mine")
    for argv in (["edit-image", image, "--source", SOURCE, "--target", TARGET], ["generate-image", "--prompt", TARGET],
                 ["world", "render", "--shape", "cube", "--color", "red", "--floor", "wood"]):  # fmt: skip
        assert run_main([*argv, "--out", out]) == 2
        assert "already exists; pass --overwrite" in one_error_line(capsys)
        assert out.read_bytes() == b"mine"


def test_overwrite_replaces_the_output(image, tmp_path, tiny_prior_dir):
    out = tmp_path / "out.png"
    out.write_bytes(b"mine")
    argv = ["edit-image", image, "--source", SOURCE, "--target", TARGET, "--prior", tiny_prior_dir, "--steps", "1", "--quiet", "--overwrite", "--out", out]
    assert run_main(argv) == 0
    assert io.load_image(out).shape == (24, 40, 3)


@pytest.mark.parametrize("source", ["", "   "])
def test_edit_image_empty_source_is_refused_for_losses_that_need_one(source, image, tmp_path, capsys, no_prior):
    argv = ["edit-image", image, "--source", source, "--target", TARGET, "--loss", "cds", "--out", tmp_path / "o.png"]
    assert run_main(argv) == 2
    assert "needs --source" in one_error_line(capsys)


@pytest.mark.parametrize("prior", ["./no-such-prior", "~/no/such/prior", "/no/such/prior"])
def test_prior_path_that_does_not_exist_says_no_such_folder(prior, image, tmp_path, capsys):
    argv = ["edit-image", image, "--source", SOURCE, "--target", TARGET, "--prior", prior, "--out", tmp_path / "o.png"]
    assert run_main(argv) == 2
    line = one_error_line(capsys)
    assert "no such folder" in line and "unknown prior" not in line


# ---- 4: ns-train, before any run folder -----------------------------------------------------------------
def _ns_train(method: str, flags, tmp_path: Path) -> int:
    """`ns-train METHOD FLAGS` in-process (tyro, then nerfstudio's train main); its exit code."""
    import tyro
    from nerfstudio.configs.method_configs import all_methods
    from nerfstudio.scripts.train import main

    default = all_methods[method]
    config = tyro.cli(tyro.conf.FlagConversionOff[type(default)], default=default, args=[*flags, "--vis", "tensorboard"])
    try:
        main(config)
    except SystemExit as exit:
        return exit.code
    return 0


def _small_flags(data: Path, out: Path, *extra: str):
    """A tiny budget, so that input that is NOT refused (a regression) costs seconds, not a whole run."""
    return ["--data", str(data), "--output-dir", str(out), "--pipeline.prior", str(TOY),
            "--pipeline.source-prompt", SOURCE, "--pipeline.target-prompt", TARGET,
            "--pipeline.reconstruct-steps", "2", "--pipeline.edit-steps", "1", "--pipeline.edit-resolution", "32",
            "--pipeline.turntable-frames", "0", *extra]  # fmt: skip


@pytest.fixture
def ns_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_ns_train_corrupt_scene_image_is_one_line_and_no_run_folder(tmp_path, capsys, ns_env):
    scene = tmp_path / "scene"
    shutil.copytree(SCENE, scene)
    corrupt = scene / "images" / "frame_00005.png"
    corrupt.write_bytes(corrupt.read_bytes()[:200])  # a truncated PNG: its header still opens
    out = tmp_path / "outputs"
    assert _ns_train("nerfedit-small", _small_flags(scene, out), tmp_path) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("nerfedit: error:") and "frame_00005.png" in line
    assert not out.exists()


def test_ns_train_without_source_prompt_is_refused_for_cds(tmp_path, capsys, ns_env):
    out = tmp_path / "outputs"
    flags = [f for f in _small_flags(SCENE, out) if f not in ("--pipeline.source-prompt", SOURCE)]
    assert _ns_train("nerfedit-small", flags, tmp_path) == 2
    assert "needs --pipeline.source-prompt" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not out.exists()


@needs_proc
def test_ns_train_unwritable_output_dir_is_refused(tmp_path, capsys, ns_env):
    assert _ns_train("nerfedit-small", _small_flags(SCENE, UNWRITABLE), tmp_path) == 2
    assert "--output-dir" in capsys.readouterr().err.strip().splitlines()[-1]


def test_ns_train_load_dir_of_other_field_settings_leaves_no_run_folder(tmp_path, capsys, ns_env):
    """A nerfacto checkpoint of other field sizes (here 4 hash levels, not nerfedit-small's 8)."""
    from nerfedit.nerf.edit.method_configs import nerfedit_small_config
    from nerfedit.nerf.edit.source import nerfacto_shapes

    model_config = nerfedit_small_config().pipeline.model
    model_config.num_levels = 4
    state = {"_model." + k: torch.zeros(shape) for k, shape in nerfacto_shapes(model_config, 29).items()}
    models = tmp_path / "nerfacto_run" / "nerfstudio_models"
    models.mkdir(parents=True)
    torch.save({"step": 10, "pipeline": state}, models / "step-000000010.ckpt")
    out = tmp_path / "outputs"
    assert _ns_train("nerfedit-small", _small_flags(SCENE, out, "--load-dir", str(models)), tmp_path) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("nerfedit: error:") and "other settings" in line
    assert not out.exists(), "a run folder was left behind"


# ---- 5: one rule for unknown words; umask ---------------------------------------------------------------
def test_edit_image_refuses_unknown_words(image, tmp_path, tiny_prior_dir, capsys):
    out = tmp_path / "out.png"
    argv = ["edit-image", image, "--loss", "sds", "--target", "a blue cube ☃", "--prior", tiny_prior_dir, "--steps", "1", "--out", out, "--quiet"]
    assert run_main(argv) == 2
    line = one_error_line(capsys)
    assert "'☃'" in line and "--target" in line
    assert not out.exists()


def test_trailing_punctuation_is_not_an_unknown_word_and_encodes_the_same():
    from nerfedit.priors import load_prior

    prior = load_prior("toy", device="cpu")
    assert prior.unknown_words("a red cube on a wooden floor.") == []
    assert prior.unknown_words("a red cube, on a wooden floor!") == []
    assert prior.unknown_words("a red cube on a velvet floor.") == ["velvet"]
    plain, dotted = prior.encode_text(["a red cube on a wooden floor", "a red cube on a wooden floor."])
    assert torch.equal(plain, dotted)


def test_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        io.save_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
        io.save_progress(tmp_path / "p.png", [np.zeros((4, 4, 3), np.float32)] * 2)
    finally:
        os.umask(old)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o644


# ---- 6: the prior-unavailable message names the command's flag and today's hub command ------------------
def test_prior_unavailable_names_the_flag_of_the_command(monkeypatch):
    from nerfedit.errors import UserError
    from nerfedit.nerf.common.validate import check_prior

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as info:
        check_prior("nerfedit-tests/not-cached-model", None, "auto")
    text = str(info.value)
    assert "--pipeline.prior DIR" in text and "--prior DIR" not in text.replace("--pipeline.prior DIR", "")
    assert "hf download nerfedit-tests/not-cached-model" in text and "huggingface-cli" not in text


# ---- 7: threads ---------------------------------------------------------------------------------------
def test_oversubscription_is_one_warning_line_naming_the_fix():
    from nerfedit.threads import oversubscription_warning

    assert oversubscription_warning(2, "--threads {n}", load=0.0, cores=2) is None
    assert oversubscription_warning(1, "--threads {n}", load=9.0, cores=2) is None  # one thread: nothing to give back
    line = oversubscription_warning(2, "--threads {n}", load=2.0, cores=2)
    assert line is not None and "\n" not in line and "--threads 1" in line
    assert "OMP_NUM_THREADS=1" in oversubscription_warning(4, "OMP_NUM_THREADS={n}", load=1.0, cores=2)


def test_threads_option_sets_torch_threads(image, tmp_path, tiny_prior_dir):
    before = torch.get_num_threads()
    try:
        argv = ["edit-image", image, "--source", SOURCE, "--target", TARGET, "--prior", tiny_prior_dir, "--steps", "1", "--quiet", "--threads", "1", "--out", tmp_path / "o.png"]
        assert run_main(argv) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ---- 9: no third-party deprecation noise ----------------------------------------------------------------
def test_ns_train_help_prints_no_deprecation_warnings():
    ns_train = str(Path(sys.executable).parent / "ns-train")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run([ns_train, "nerfedit-small", "--help"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0
    noise = [line for line in result.stderr.splitlines() if "DeprecationWarning" in line or "FutureWarning" in line]
    assert not noise, noise
