"""scripts/bench_methods.py and its tables (nerfedit/eval/method_tables.py): plumbing on the tiny prior, and the
tables' and plot's arithmetic on known inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from nerfedit.eval import method_tables as mt

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary(success: float, psnr: float):
    return {"dds": {"full": {"all": {"edits": 4, "success": success, "keep_psnr_median": psnr, "ssim": 0.5}}}}


def test_the_tradeoff_points_rise_by_scale_and_the_plot_is_written(tmp_path):
    runs = {7.5: {"summary": summary(0.9, 22.0)}, 1.5: {"summary": summary(0.2, 28.0)}, 2.5: {"summary": summary(0.6, 26.0)}}
    points = mt.tradeoff_points(runs)
    assert [p["scale"] for p in points["dds"]] == [1.5, 2.5, 7.5]
    assert [p["success"] for p in points["dds"]] == [0.2, 0.6, 0.9]
    assert mt.tradeoff_rows(points)[0] == ["dds", "1.5", "20.0%", "28.00"]
    path = mt.plot_tradeoff(points, tmp_path / "plot.png", "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    no_judge = {1.5: {"summary": {"dds": {"full": {"all": {"edits": 4, "keep_psnr_median": 28.0, "ssim": 0.5}}}}}}
    assert mt.plot_tradeoff(mt.tradeoff_points(no_judge), tmp_path / "none.png", "t") is None
    assert not (tmp_path / "none.png").exists()


def test_edit_rows_take_time_per_edit_from_timing_and_step_cost_from_the_speed_table():
    rows = mt.edit_rows(summary(0.75, 25.5), {"dds": {"seconds": 10.0, "edits": 4}}, {"dds": {"ms": 12.34, "peak_mb": 99.6}})
    assert rows == [["dds", "full", "4", "75.0%", "25.50", "0.500", "2.50", "12.3", "100"]]
    assert mt.edit_rows(summary(0.75, 25.5), {"dds": {"seconds": 1.0, "edits": 1}}, {})[0][-2:] == ["", ""]


def test_bench_methods_builds_every_cheap_table_on_the_tiny_prior(tiny_prior_dir, tmp_path):
    out = tmp_path / "methods"
    argv = ["--out", str(out), "--prior", str(tiny_prior_dir), "--judge", "none", "--num", "2", "--steps", "1",
            "--scales", "2.5,7.5", "--threads", "1", "--tables", "speed,edit,cfg,generate"]  # fmt: skip
    assert load_script("bench_methods").main(argv) == 0
    text = (out / "methods.md").read_text()
    for title in ("Time per step", "2D editing, every loss", "CFG scale", "Text-to-image by optimisation"):
        assert f"## {title}" in text
    assert "dds (official arrangement)" in text and "[non-default]" in text
    built = json.loads((out / "methods.json").read_text())
    assert sorted(built["cfg"]["points"]) == ["cds", "dds"] and len(built["cfg"]["points"]["dds"]) == 2
    assert {"sds", "dds", "cds"} <= set(built["edit"]["summary"])
    assert (out / "generate.png").is_file() and (out / "edit" / "sheet.png").is_file()


@pytest.mark.parametrize("argv, words", [
    (["--tables", "speed,nope"], "--tables"),
    (["--scales", "2.5,x"], "--scales"),
    (["--losses", "dds,nope"], "--losses"),
])  # fmt: skip
def test_bench_methods_refuses_bad_input_in_one_line_before_any_work(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_info:
        load_script("bench_methods").main(["--out", str(tmp_path / "m"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    assert not (tmp_path / "m").exists()


def test_bench_methods_never_replaces_an_earlier_run_without_overwrite(tmp_path, capsys):
    (tmp_path / "methods.md").write_text("earlier\n")
    with pytest.raises(SystemExit) as exit_info:
        load_script("bench_methods").main(["--out", str(tmp_path), "--tables", "speed"])
    assert exit_info.value.code == 2 and (tmp_path / "methods.md").read_text() == "earlier\n"


def test_nerf_and_text_to_3d_rows_read_the_evaluations_own_records():
    evaluation = {"scene": "/x/scenes/red_cube", "color_rate": 1.0, "shape_rate": 0.875, "psnr_outside": {"mean_of_views": 26.94},
                  "passed": False, "seconds": {"train": 812.4}}  # fmt: skip
    assert mt.nerf_rows({"dds": [evaluation, {"scene": "s", "failed": True}]}) == [
        ["dds", "red_cube", "100.0%", "87.5%", "26.9", "fail", "812"], ["dds", "s", "n/a", "n/a", "n/a", "fail", "0"]]
    summary = {"bars_met": 3, "runs": 4, "mean_color": 0.8, "mean_shape": 0.755, "mean_floor": 0.5}
    assert mt.text_to_3d_rows({"lmc": summary}) == [["lmc", "3 / 4", "80%", "76%", "50%"]]
