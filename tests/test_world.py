"""The procedural world: determinism, masks, captions, multi-view consistency, scene files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nerfedit.errors import UserError
from nerfedit.world import cli as world_cli
from nerfedit.world.render import ALBEDO, ObjectSpec, OrbitCamera, random_camera, random_object, render, sample_batch
from nerfedit.world.scene import load_scene, make_scene, orbit_cameras, render_views
from nerfedit.world.vocab import COLORS, FLOOR_KEYS, FLOORS, SHAPES, caption, caption_words, vocabulary


def test_sample_batch_is_deterministic_and_well_formed():
    a = sample_batch(6, np.random.default_rng(7), size=32)
    b = sample_batch(6, np.random.default_rng(7), size=32)
    c = sample_batch(6, np.random.default_rng(8), size=32)
    assert torch.equal(a["images"], b["images"]) and a["captions"] == b["captions"]
    assert not torch.equal(a["images"], c["images"])
    assert a["images"].shape == (6, 3, 32, 32) and a["images"].dtype == torch.float32
    assert a["masks"].shape == (6, 32, 32) and a["masks"].dtype == torch.bool
    assert 0.0 <= a["images"].min() and a["images"].max() <= 1.0
    for key, words in (("shape", SHAPES), ("color", COLORS), ("floor", FLOORS)):
        assert a[key].dtype == torch.long and int(a[key].max()) < len(words)
    # The caption names the labelled shape, colour and floor.
    for i, text in enumerate(a["captions"]):
        assert SHAPES[a["shape"][i]] in text and COLORS[a["color"][i]] in text and FLOORS[a["floor"][i]] in text


def test_render_numpy_outputs_are_deterministic():
    obj, cam = random_object(np.random.default_rng(3)), random_camera(np.random.default_rng(4))
    first, second = render(obj, cam, 48), render(obj, cam, 48)
    assert first["image"].shape == (48, 48, 3) and first["image"].dtype == np.float32
    assert first["mask"].dtype == bool and first["depth"].dtype == np.float32
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def _hue_match(pixels: np.ndarray, color: str) -> str:
    """The palette colour whose normalised RGB direction is closest to the pixels' mean."""
    mean = pixels.mean(axis=0)
    mean = mean / np.linalg.norm(mean)
    scores = {c: float(np.dot(mean, np.array(ALBEDO[c]) / np.linalg.norm(ALBEDO[c]))) for c in COLORS}
    return max(scores, key=scores.get)


@pytest.mark.parametrize("shape", SHAPES)
def test_mask_covers_the_object_and_only_the_object(shape):
    # Each colour shows up under its mask; outside the mask, that hue is (almost) absent.
    for i, color in enumerate(("red", "blue", "yellow", "purple")):
        obj = ObjectSpec(shape, color, FLOORS[i % len(FLOORS)], yaw_deg=20.0 * i)
        out = render(obj, OrbitCamera(elevation_deg=25 + 5 * i, azimuth_deg=70 * i), 64)
        area = out["mask"].mean()
        assert 0.02 < area < 0.5, f"{shape}: implausible mask area {area:.3f}"
        assert _hue_match(out["image"][out["mask"]], color) == color
        # The object is in front of the floor behind it: masked depths are finite and not the farthest.
        assert np.isfinite(out["depth"][out["mask"]]).all()
        assert out["depth"][out["mask"]].max() < np.percentile(out["depth"][np.isfinite(out["depth"])], 99)


def test_camera_looks_at_the_origin_opengl_convention():
    cam = OrbitCamera(elevation_deg=30.0, azimuth_deg=45.0, distance=3.5, focal=1.4)
    c2w = cam.c2w()
    np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-9)
    point_cam = np.linalg.inv(c2w) @ np.array([0.0, 0.0, 0.0, 1.0])
    assert point_cam[2] < 0  # in front of an OpenGL camera means negative z
    np.testing.assert_allclose(point_cam[:2], 0.0, atol=1e-9)
    assert c2w[2, 1] > 0  # the camera's up axis points up in the world (z up)
    fx, fy, cx, cy = cam.intrinsics(64)
    assert fx == fy == pytest.approx(1.4 * 64) and cx == cy == 32.0


def _unproject(depth: np.ndarray, c2w: np.ndarray, intr) -> np.ndarray:
    fx, fy, cx, cy = intr
    v, u = np.nonzero(np.ones_like(depth, dtype=bool))
    z = depth[v, u]
    cam = np.stack([(u + 0.5 - cx) / fx * z, -(v + 0.5 - cy) / fy * z, -z, np.ones_like(z)], axis=-1)
    return (cam @ c2w.T)[:, :3].reshape(depth.shape + (3,))


def _project(points: np.ndarray, c2w: np.ndarray, intr):
    fx, fy, cx, cy = intr
    p = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], -1) @ np.linalg.inv(c2w).T
    z = -p[..., 2]
    return p[..., 0] / z * fx + cx - 0.5, -p[..., 1] / z * fy + cy - 0.5, z


def test_scene_views_are_geometrically_consistent(tmp_path):
    # Lift the object pixels of view A to 3D with A's depth and the poses read back from
    # transforms.json, project them into view B: where B sees the same point, it is object and same colour.
    make_scene("cube", "orange", "stone", tmp_path / "s", views=4, size=64, seed=5)
    scene = load_scene(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "transforms.json").read_text())
    intr = (meta["fl_x"], meta["fl_y"], meta["cx"], meta["cy"])
    views = render_views(scene["object"], scene["cameras"], scene["size"])
    checked = 0
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 0)):
        points = _unproject(views["depths"][a], scene["c2w"][a], intr)[views["masks"][a]]
        colors_a = views["images"][a][views["masks"][a]]
        u, v, z = _project(points, scene["c2w"][b], intr)
        ui, vi = np.round(u).astype(int), np.round(v).astype(int)
        inside = (ui >= 0) & (ui < 64) & (vi >= 0) & (vi < 64)
        ui, vi, z, colors_a = ui[inside], vi[inside], z[inside], colors_a[inside]
        visible = np.abs(views["depths"][b][vi, ui] - z) < 0.03
        assert visible.sum() > 20
        assert views["masks"][b][vi[visible], ui[visible]].mean() > 0.97
        diff = np.abs(views["images"][b][vi[visible], ui[visible]] - colors_a[visible]).max(-1)
        assert np.median(diff) < 0.03
        checked += int(visible.sum())
    assert checked > 200


def test_scene_files_round_trip(tmp_path):
    out = make_scene("torus", "green", "checkered floor", tmp_path / "scene", views=3, size=32, seed=2)
    meta = json.loads((out / "transforms.json").read_text())
    assert meta["camera_model"] == "OPENCV" and meta["w"] == meta["h"] == 32
    assert len(meta["frames"]) == 3
    for frame, cam in zip(meta["frames"], orbit_cameras(3, seed=2)):
        assert (out / frame["file_path"]).is_file() and (out / frame["object_mask_path"]).is_file()
        np.testing.assert_allclose(np.array(frame["transform_matrix"]), cam.c2w(), atol=1e-7)
    scene = load_scene(out)
    assert (scene["object"].shape, scene["object"].color, scene["object"].floor) == ("torus", "green", "checkered floor")
    assert meta["nerfedit"]["caption"] == "a green torus on a checkered floor"


def test_scene_writer_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        make_scene("cube", "red", "wood", tmp_path, views=2, size=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    # An empty directory is fine.
    (tmp_path / "empty").mkdir()
    make_scene("cube", "red", "wood", tmp_path / "empty", views=2, size=16)


def test_captions_and_vocabulary():
    assert caption("cube", "red", "wood") == "a red cube on a wooden floor"
    assert caption("cone", "orange", "grass") == "an orange cone on grass"
    words = set(vocabulary())
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        for color in COLORS:
            for key, floor in zip(FLOOR_KEYS, FLOORS):
                text = caption(shape, color, key, rng=rng)
                assert shape in text and color in text and floor in text
                assert set(caption_words(text)) <= words


def test_unknown_words_are_user_errors_listing_the_valid_ones():
    with pytest.raises(UserError) as info:
        ObjectSpec("cube", "magenta", "wood")
    assert "magenta" in str(info.value) and all(c in str(info.value) for c in COLORS)
    with pytest.raises(UserError, match="sphere, cube, cylinder, cone, torus"):
        caption("pyramid", "red", "wood")
    with pytest.raises(UserError, match="wooden floor"):
        ObjectSpec("cube", "red", "lava")


def test_cli_bad_colour_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.png"
    with pytest.raises(SystemExit) as info:
        world_cli.main(["world", "render", "--shape", "cube", "--color", "magenta", "--floor", "wood", "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "red, orange, yellow" in err
    assert not out.exists()
    with pytest.raises(SystemExit):
        world_cli.main(["world", "scene", "--shape", "cube", "--color", "red", "--floor", "moon", "--out", str(tmp_path / "s")])
    assert not (tmp_path / "s").exists()


def test_cli_render_writes_image_and_mask(tmp_path):
    import imageio.v2 as imageio

    world_cli.main(["world", "render", "--shape", "sphere", "--color", "cyan", "--floor", "grass", "--seed", "1",
                    "--elevation", "30", "--size", "32", "--out", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png")])
    image, mask = imageio.imread(tmp_path / "a.png"), imageio.imread(tmp_path / "m.png")
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    assert 0 < (mask > 127).mean() < 0.6
