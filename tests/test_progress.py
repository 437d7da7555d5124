"""The progress table's arithmetic: phases, measured step times, ETA per phase, and the turntable's labels."""

from __future__ import annotations

import numpy as np
import pytest

from nerfedit.nerf.common.progress import Phase, StepTimes, phase_at, remaining_by_phase, progress_cells


PHASES = [Phase("reconstruct", 0, 1200), Phase("edit", 1200, 1600)]


def _times(reconstruct=0.3, edit=1.4) -> StepTimes:
    times = StepTimes(PHASES)
    for step in range(1100, 1200):
        times.record(step, reconstruct)
    for step in range(1200, 1230):
        times.record(step, edit)
    return times


def test_eta_adds_each_phases_remaining_steps_at_its_own_step_time():
    times = _times()
    left = remaining_by_phase(PHASES, 1190, times)
    assert [(phase.name, steps) for phase, steps, _ in left] == [("reconstruct", 9), ("edit", 400)]
    assert left[0][2] == pytest.approx(9 * 0.3) and left[1][2] == pytest.approx(400 * 1.4)
    # nerfstudio's single average would have said ~410 × 0.3 s ≈ 2 min here, not the ~9.4 min that remain


def test_a_phase_not_measured_yet_has_no_eta_and_says_so():
    times = StepTimes(PHASES)
    for step in range(10, 20):
        times.record(step, 0.3)
    left = remaining_by_phase(PHASES, 19, times)
    assert left[1][2] is None
    cells = progress_cells(PHASES, 19, times)
    assert cells["Phase"] == "reconstruct" and "edit ?" in cells["ETA"]


def test_a_phases_first_step_is_left_out_of_its_time():
    times = StepTimes(PHASES)
    times.record(1200, 30.0)  # the edit's first step builds caches and the prior
    times.record(1201, 1.0)
    assert times.seconds_per_step(PHASES[1]) == pytest.approx(1.0)


def test_resumed_run_counts_from_the_runs_own_start_and_never_passes_100_percent():
    times = _times()
    cells = progress_cells(PHASES, 1599, times)
    assert cells["Phase"] == "edit" and cells["ETA"].startswith("0 s")
    for step in (1200, 1400, 1599):
        assert 0 < progress_cells(PHASES, step, times)["percent"] <= 100.0
    assert phase_at(PHASES, 1599).name == "edit" and phase_at(PHASES, 0).name == "reconstruct"


def test_write_video_draws_the_labels_over_each_panel(tmp_path):
    import imageio.v2 as imageio

    from nerfedit.nerf.common.video import LABEL_BAND_HEIGHT, write_video

    frames = [np.full((64, 130, 3), 80, np.uint8) for _ in range(2)]
    path = write_video(tmp_path / "t.mp4", frames, fps=2, labels=("source: a red cube", "edited: a blue cube"))
    first = imageio.imread(path.with_suffix(".png"))
    band = first[:LABEL_BAND_HEIGHT]
    for half in (band[:, : band.shape[1] // 2], band[:, band.shape[1] // 2 :]):
        assert (half.min(axis=-1) < 100).any(), "a label is missing"
    assert (first[LABEL_BAND_HEIGHT + 4 :, :200] == 80).all()  # the frame below is untouched
