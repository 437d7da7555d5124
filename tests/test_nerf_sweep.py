"""The NeRF edit sweep without training: scene sampling, scoring on world renders, the summary, resuming, and the
depth warp of `nerfedit.eval.consistency`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from nerfedit.eval.consistency import neighbour_pairs, partner_cameras, read_agreement, warp_psnr
from nerfedit.eval.nerf_edit import EditSpec, held_out_cameras, report_lines, score_edit
from nerfedit.eval.nerf_sweep import run_dir, run_sweep, sample_sweep, source_run, write_summary
from nerfedit.eval.psnr import psnr
from nerfedit.world.scene import orbit_cameras, render_views, scene_object
from nerfedit.world.vocab import COLORS, FLOOR_KEYS, FLOORS, SHAPES

SIZE = 64


def world_renders(obj, cameras):
    views = render_views(obj, cameras, SIZE)
    return torch.from_numpy(views["images"]).permute(0, 3, 1, 2).float(), torch.from_numpy(views["masks"]), torch.from_numpy(views["depths"])


# ---- sampling -----------------------------------------------------------------------------------


def test_sample_sweep_is_deterministic_distinct_and_valid():
    runs = sample_sweep(6, seed=3, edits=("color", "floor"))
    assert runs == sample_sweep(6, seed=3, edits=("color", "floor"))
    assert runs != sample_sweep(6, seed=4, edits=("color", "floor"))
    assert len(runs) == 12 and [r.kind for r in runs] == ["color", "floor"] * 6
    scenes = {(r.shape, r.color, r.floor) for r in runs}
    assert len(scenes) == 6
    assert len({r.scene_name for r in runs}) == 6 and len({r.name for r in runs}) == 12
    for r in runs:
        assert r.shape in SHAPES and r.color in COLORS and r.floor in FLOORS
        if r.kind == "color":
            assert r.target in COLORS and r.target != r.color
        else:
            assert r.target in FLOOR_KEYS and FLOORS[FLOOR_KEYS.index(r.target)] != r.floor
    # The scenes and colour targets do not depend on which edits are swept.
    assert [r for r in runs if r.kind == "color"] == sample_sweep(6, seed=3, edits=("color",))
    with pytest.raises(ValueError):
        sample_sweep(2, seed=0, edits=("shape",))


# ---- scoring on ground-truth renders, as if they were an edited run -----------------------------


@pytest.fixture(scope="module")
def synthetic_runs():
    """Colour and floor edits 'done perfectly': the source renders are the scene, the edited ones the target scene."""
    from nerfedit.judge.model import load_judge

    obj = scene_object("cube", "red", "wood", seed=0)
    cameras = held_out_cameras(4, seed=1)
    images, masks, depths = world_renders(obj, cameras)
    results = {}
    for kind, target in (("color", "blue"), ("floor", "grass")):
        edit = EditSpec(obj, kind, target)
        edited, _, edited_depths = world_renders(edit.target_object, cameras)
        renders = {"source": images, "edited": edited, "source_depth": depths, "edited_depth": edited_depths}
        results[kind] = score_edit(edit, renders, {"images": images, "masks": masks}, load_judge(), cameras, SIZE)
    return results


def test_score_colour_edit_on_world_renders(synthetic_runs):
    r = synthetic_runs["color"]
    assert r["target_prompt"] == "a blue cube on a wooden floor" and r["views"] == 4
    assert r["color_rate"] == 1.0 and r["shape_rate"] == 1.0
    assert r["psnr_outside"]["mean_of_views"] > 40  # only the object changed
    assert r["passed"] and all(r["pass"].values())
    cons = r["consistency"]
    assert cons["edited_color_agreement"] == 1.0 and cons["judge_pairs"] == 8 and cons["warp_pairs"] == 4
    assert cons["edited_warp_psnr"]["mean_of_pairs"] > 28 and abs(cons["warp_psnr_change"]) < 3
    assert any("PASS" in line for line in report_lines(r))


def test_score_floor_edit_on_world_renders(synthetic_runs):
    r = synthetic_runs["floor"]
    assert r["target"] == "grass" and r["floor_rate"] == 1.0 and r["object_kept_rate"] == 1.0
    assert r["psnr_inside"]["mean_of_views"] > 25  # the cube stays (up to the floor's light on it)
    assert r["passed"]


def test_summary_table_aggregate_and_sheet(tmp_path, synthetic_runs):
    runs = sample_sweep(2, seed=0, edits=("color", "floor"))
    results = []
    for k, run in enumerate(runs):
        folder = tmp_path / run.name
        folder.mkdir()
        images = (torch.rand(4, SIZE, SIZE, 3) * 255).to(torch.uint8).numpy()
        np.savez_compressed(folder / "eval_renders.npz", gt=images, source=images, edited=images)
        result = json.loads(json.dumps(synthetic_runs[run.kind]))
        if k == 0:  # one failing colour run
            result["color_rate"], result["pass"]["color"], result["passed"] = 0.5, False, False
        results.append({**result, "name": run.name, "sweep": run.__dict__, "run_dir": str(folder)})
    text = write_summary(results, tmp_path)
    assert "## color edits: 1 of 2 scenes pass all bars" in text and "## floor edits: 2 of 2 scenes pass all bars" in text
    assert text.count("| 0") == 4 and "FAIL" in text and "| mean |" in text and "| median |" in text
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["aggregate"]["color"]["metrics"]["colour %"]["mean"] == pytest.approx(75.0)
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_run_sweep_writes_scenes_and_resumes(tmp_path, synthetic_runs):
    """Scenes written, every run scored once; a floor edit runs after every colour edit and is handed its scene's
    colour run's checkpoint folder (a colour run gets none); a second call runs nothing."""
    runs = sample_sweep(2, seed=5, edits=("color", "floor"))
    assert [source_run(run, runs) for run in runs] == [None, runs[0], None, runs[2]]
    canned = tmp_path / "canned_eval.json"
    canned.write_text(json.dumps(synthetic_runs["color"]))
    script = ("import pathlib, shutil, sys; p = pathlib.Path(sys.argv[2]); (p / 'nerfstudio_models').mkdir(parents=True); "
              "shutil.copy(sys.argv[1], p / 'eval.json')")
    handed = {}

    def fake_eval(run, scene_dir, run_out, source_models):
        assert (scene_dir / "transforms.json").is_file()
        if run.kind == "floor":  # its colour run has finished: its checkpoint folder exists
            assert all((run_dir(tmp_path, r) / "eval.json").is_file() for r in runs if r.kind == "color")
        handed[run.name] = source_models
        return [sys.executable, "-c", script, str(canned), str(run_dir(tmp_path, run))]

    first = run_sweep(runs, tmp_path, fake_eval, workers=2, scene_views=2)
    assert [r["passed"] for r in first] == [True] * 4 and all("error" not in r for r in first)
    for run in runs:
        source = source_run(run, runs)
        assert handed[run.name] == (None if source is None else run_dir(tmp_path, source) / "nerfstudio_models")

    def must_not_run(run, scene_dir, run_out, source_models):
        raise AssertionError(f"{run.name} was scored already")

    assert run_sweep(runs, tmp_path, must_not_run, workers=2, scene_views=2) == first


# ---- the depth warp -----------------------------------------------------------------------------


def test_consistency_warp_on_world_views():
    obj = scene_object("cone", "green", "checker", seed=2)
    cameras = orbit_cameras(2, seed=7, elevation_range=(20.0, 50.0))
    cameras = cameras + partner_cameras(cameras)
    images, _, depths = world_renders(obj, cameras)
    focal = cameras[0].focal * SIZE
    same = warp_psnr(images[0], images[0], depths[0], depths[0], cameras[0].c2w(), cameras[0].c2w(), focal)
    assert same > 60  # identity warp: bilinear sampling at pixel centres returns the image
    for a, b in ((0, 2), (1, 3), (2, 0)):
        warped = warp_psnr(images[a], images[b], depths[a], depths[b], cameras[a].c2w(), cameras[b].c2w(), focal)
        unwarped = psnr(images[a], images[b])
        assert warped > 27 and warped > unwarped + 10  # checkered floor: the hardest texture to resample
        wrong_depth = warp_psnr(images[a], images[b], depths[a] * 1.3, depths[b] * 1.3, cameras[a].c2w(), cameras[b].c2w(), focal)
        assert wrong_depth < warped - 5


def test_neighbour_pairs_and_read_agreement():
    pairs = neighbour_pairs([350.0, 10.0, 180.0, 0.0])
    assert pairs == [(3, 1), (1, 2), (2, 0), (0, 3)]
    assert read_agreement(["red", "red", "blue", "red"], pairs) == 0.5
