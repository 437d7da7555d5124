"""A run's life after its steps, on tiny in-process runs: the final checkpoint survives Ctrl-C in the viewer wait
and in the turntable (one line, a documented exit code), the progress table of a resumed run, the turntable's
labels, and `ns-export pointcloud` on the finished run (through the real command, as the README shows it).

Two nerfedit-small runs in the same folder (module fixtures): `finished_run` trains 3 + 2 steps and is "quit"
(Ctrl-C) in the viewer wait; `resumed_run` resumes it with two more edit steps and is interrupted in its turntable.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_runs import SCENE, SOURCE_PROMPT, TARGET_PROMPT, TOY, setup_trainer, tiny_edit_config

pytestmark = pytest.mark.skipif(not SCENE.is_dir() or not (TOY / "unet").is_dir(), reason="needs scenes/ and the toy prior")
NS_EXPORT = str(Path(sys.executable).parent / "ns-export")


class Exited(Exception):
    """Raised instead of os._exit, so the test process survives the trainer's exit."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _fake_exit(code: int) -> None:
    raise Exited(code)


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def _run(trainer) -> tuple:
    """Train with stdout captured: (exit code or None, printed text)."""
    out = io.StringIO()
    code = None
    with contextlib.redirect_stdout(out):
        try:
            trainer.train()
        except Exited as exited:
            code = exited.code
    return code, out.getvalue()


def _checkpoints(run: Path) -> list:
    return sorted(p.name for p in (run / "nerfstudio_models").glob("step-*.ckpt"))


def _after_finish(printed: str) -> list:
    """The lines printed after nerfstudio's "Training Finished" panel that are ours."""
    tail = printed.split("Training Finished", 1)[1]
    return [line for line in tail.splitlines() if line.startswith("nerfedit")]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """3 reconstruction + 2 edit steps, the turntable written (its writer spied on), then Ctrl-C in the viewer wait."""
    from nerfstudio.engine.trainer import Trainer

    import nerfedit.nerf.edit.turntable as turntable

    out = tmp_path_factory.mktemp("lifecycle")
    calls = []
    real_write_video = turntable.write_video

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_write_video(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "_exit", _fake_exit)
        patch.setattr(Trainer, "_train_complete_viewer", _ctrl_c)
        patch.setattr(turntable, "write_video", spy)
        config = tiny_edit_config(out, TOY)
        config.viewer.quit_on_train_completion = False
        trainer = setup_trainer(config)
        code, printed = _run(trainer)
    return {"run": Path(trainer.base_dir), "out": out, "code": code, "printed": printed, "video_calls": calls}


@pytest.fixture(scope="module")
def resumed_run(finished_run):
    """The finished run resumed with two more edit steps (5, 6); Ctrl-C while its turntable renders."""
    import nerfedit.nerf.edit.turntable as turntable

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "_exit", _fake_exit)
        patch.setattr(turntable, "source_and_edited", _ctrl_c)
        trainer = setup_trainer(tiny_edit_config(finished_run["out"], TOY, edit=4))
        code, printed = _run(trainer)
    return {"run": Path(trainer.base_dir), "code": code, "printed": printed}


# ---- item 2: the end of a run -------------------------------------------------------------------
def test_ctrl_c_in_the_viewer_wait_keeps_the_final_checkpoint(finished_run):
    assert finished_run["code"] == 0, finished_run["printed"][-2000:]
    assert _checkpoints(finished_run["run"]) == ["step-000000004.ckpt"]  # the last step's, nothing older
    ours = _after_finish(finished_run["printed"])
    assert len([line for line in ours if "viewer" in line]) == 1, ours
    assert not any("interrupted" in line for line in ours), ours


def test_ctrl_c_in_the_turntable_keeps_the_final_checkpoint_and_says_so(resumed_run):
    assert resumed_run["code"] == 130, resumed_run["printed"][-2000:]
    run = resumed_run["run"]
    assert _checkpoints(run) == ["step-000000006.ckpt"]
    assert torch.load(run / "nerfstudio_models" / "step-000000006.ckpt", map_location="cpu", weights_only=False)["step"] == 6
    ours = [line for line in _after_finish(resumed_run["printed"]) if "turntable" in line]
    assert len(ours) == 1 and "step-000000006.ckpt" in ours[0] and "interrupted" in ours[0], ours
    assert "Traceback" not in resumed_run["printed"]


def test_ctrl_c_in_the_generate_turntable_is_one_line(tmp_path):
    import nerfedit.nerf.generate.pipeline as generate_pipeline
    from nerfedit.nerf.generate.config import nerfedit_generate_config

    config = nerfedit_generate_config()
    config.pipeline.prompt = SOURCE_PROMPT
    config.pipeline.turntable_frames = 2
    config.max_num_iterations = 2
    config.output_dir = tmp_path
    config.vis = "tensorboard"
    config.logging.local_writer.enable = False
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "_exit", _fake_exit)
        patch.setattr(generate_pipeline, "render_outputs", _ctrl_c)
        trainer = setup_trainer(config)
        code, printed = _run(trainer)
    assert code == 130, printed[-2000:]
    assert _checkpoints(Path(trainer.base_dir)) == ["step-000000001.ckpt"]
    ours = [line for line in printed.split("Training Finished", 1)[1].splitlines() if "interrupted" in line]
    assert len(ours) == 1 and ours[0].startswith("nerfedit-generate:") and "turntable" in ours[0], printed[-2000:]


# ---- item 3: progress ---------------------------------------------------------------------------
def test_resumed_run_progress_shows_the_phase_and_never_exceeds_100_percent(resumed_run):
    rows = [line for line in resumed_run["printed"].splitlines() if re.match(r"^\d+ \(\s*[\d.]+%\)", line)]
    # nerfstudio repeats the last row once after training (its total-time event): steps 5, 6 (, 6)
    assert sorted({int(row.split()[0]) for row in rows}) == [5, 6], resumed_run["printed"][-3000:]
    for row in rows:
        percent = float(re.match(r"^\d+ \(\s*([\d.]+)%\)", row).group(1))
        assert percent <= 100.0, row
        assert " edit " in row, row  # the phase column
    assert "6 (100.00%)" in rows[-1]  # 7 steps in all (3 + 4), step 6 is the last


# ---- item 8: the turntable's labels -----------------------------------------------------------
def test_turntable_is_labelled_with_the_prompts(finished_run):
    assert len(finished_run["video_calls"]) == 1
    args, kwargs = finished_run["video_calls"][0]
    labels = kwargs.get("labels")
    assert labels is not None and SOURCE_PROMPT in labels[0] and TARGET_PROMPT in labels[1], kwargs
    import imageio.v2 as imageio

    from nerfedit.nerf.common.video import LABEL_BAND_HEIGHT

    first = imageio.imread(finished_run["run"] / "turntable.png")
    band = first[:LABEL_BAND_HEIGHT]
    assert (band.min(axis=-1) < 100).mean() > 0.01, "no text in the label band"
    halves = band[:, : band.shape[1] // 2], band[:, band.shape[1] // 2 :]
    assert all((half.min(axis=-1) < 100).any() for half in halves), "each panel has its label"
    assert np.abs(first[LABEL_BAND_HEIGHT:].astype(int) - 255).max() > 50  # the renders below the band


# ---- item 1: ns-export on a finished run ------------------------------------------------------
def test_ns_export_pointcloud_writes_a_ply(finished_run, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [NS_EXPORT, "pointcloud", "--load-config", str(finished_run["run"] / "config.yml"), "--output-dir", str(tmp_path),
         "--num-points", "200", "--remove-outliers", "False", "--normal-method", "open3d"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ply = tmp_path / "point_cloud.ply"
    assert ply.is_file() and ply.stat().st_size > 1000
    assert b"element vertex" in ply.read_bytes()[:400]
