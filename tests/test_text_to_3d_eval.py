"""Text-to-3D's evaluation (`scripts/run_text_to_3d_eval.py`, `nerfedit.eval.text_to_3d`): the matrix's prompts,
the floor read off world renders, the bars' summary and the script's options (no training here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from nerfedit.eval.judging import read_and_score
from nerfedit.eval.text_to_3d import PROMPTS, markdown_table, matrix_prompts, prompted_words, summarize
from nerfedit.orbit import OrbitCamera
from nerfedit.world.scene import render_views, scene_object
from nerfedit.world.vocab import COLORS, FLOORS, SHAPES, caption

REPO = Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location("run_text_to_3d_eval", REPO / "scripts" / "run_text_to_3d_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matrix_has_one_canonical_prompt_per_shape_without_repeated_pairings():
    prompts = matrix_prompts()
    assert prompts == matrix_prompts()  # deterministic
    words = [prompted_words(p) for p in prompts]
    assert [w["shape"] for w in words] == list(SHAPES)
    assert all(p == caption(w["shape"], w["color"], w["floor"]) for p, w in zip(prompts, words))  # canonical form
    assert len({w["color"] for w in words}) == len(SHAPES)  # so no colour/floor pairing repeats
    assert {w["floor"] for w in words} == set(FLOORS)  # every floor used
    assert all(w["color"] in COLORS for w in words)


def test_prompted_words_name_the_floor_phrase():
    assert prompted_words("a red cube on a wooden floor") == {"color": "red", "shape": "cube", "floor": "wooden floor"}
    assert prompted_words("an orange torus on grass")["floor"] == "grass"
    assert prompted_words("a red cube")["floor"] is None
    assert all(prompted_words(p)["floor"] in FLOORS for p in PROMPTS)


def test_floor_is_scored_on_world_renders_with_a_known_floor():
    """World renders at the judged orbit (30° elevation, distance 3.5, focal 1.5), one per floor: the judge's floor
    read agrees with the floor rendered, and scores 0 against another floor."""
    cameras = [OrbitCamera(30.0, azimuth, 3.5, 1.5) for azimuth in (0.0, 120.0, 240.0)]
    for floor in FLOORS:
        images = torch.from_numpy(render_views(scene_object("cube", "red", floor), cameras)["images"]).permute(0, 3, 1, 2)
        scores = read_and_score(None, images, {"floor": floor})
        assert scores["floor_rate"] >= 2 / 3, (floor, scores["read"])
        other = FLOORS[(FLOORS.index(floor) + 1) % len(FLOORS)]
        assert read_and_score(None, images, {"floor": other})["floor_rate"] <= 1 / 3


def test_summary_counts_runs_meeting_both_bars_and_the_mean_floor():
    runs = [
        {"prompt": "a red cube on grass", "loss": "lmc", "seed": s, "color_rate": c, "shape_rate": sh, "floor_rate": f, "object_pixels": 0.2}
        for s, (c, sh, f) in enumerate([(0.75, 0.5, 1.0), (1.0, 0.4, 0.5), (0.7, 1.0, 0.75), (1.0, 1.0, 0.75), (0.8, 0.6, 1.0)])
    ]
    summary = summarize(runs, runs_bar=0.8)
    assert summary["bars_met"] == 3 and summary["runs_needed"] == 4 and not summary["runs_pass"]
    assert summary["mean_floor"] == pytest.approx(0.8) and summary["floor_pass"]
    table = markdown_table(runs, {"lmc": summary})
    assert "| lmc | 3 / 5 (bar 4) | 85% | 70% | 80% |" in table
    assert table.count("\n") == 2 + len(runs) + 1 + 3  # runs, a blank line, the summary


def test_script_options_pick_the_prompt_set_and_seeds():
    script = load_script()
    default = script.parse_args([])
    assert default.prompt_set == list(PROMPTS) and default.seeds == [0] and not default.matrix
    matrix = script.parse_args(["--matrix"])
    assert matrix.prompt_set == matrix_prompts() and matrix.seeds == [0, 1, 2] and matrix.prompts == len(SHAPES)
    assert script.parse_args(["--matrix", "--seeds", "0"]).seeds == [0]
    assert script.parse_args(["--seed", "3"]).seeds == [3]  # today's flag still works
    with pytest.raises(SystemExit):
        script.parse_args(["--seeds", "0,x"])
    own = script.parse_args(["--prompt", "a yellow  cylinder on grass", "--prompt", "a red cube", "--", "--pipeline.distill-into", "latent"])
    assert own.prompt_set == ["a yellow cylinder on grass", "a red cube"] and own.extra == ["--pipeline.distill-into", "latent"]
    for bad in (["--prompt", "a red cube", "--matrix"], ["--prompt", " "]):
        with pytest.raises(SystemExit):
            script.parse_args(bad)


def test_background_colour_is_the_mean_where_the_field_covers_nothing():
    lit = torch.zeros(2, 3, 4, 4)
    lit[:, 1] = 0.5
    accumulation = torch.zeros(2, 1, 4, 4)
    accumulation[:, :, :2] = 1.0
    lit[:, :, :2] = 1.0  # the object, not counted
    assert load_script().background_colour({"lit": lit, "accumulation": accumulation}) == [0.0, 0.5, 0.0]
