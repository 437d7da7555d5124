"""The judge: shipped weights read fresh renders, the CLI's output, bad input, augmentation, training smoke run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerfedit.errors import UserError
from nerfedit.judge import cli as judge_cli
from nerfedit.judge.augment import augment
from nerfedit.judge.model import DEFAULT_WEIGHTS, judge_images, load_judge
from nerfedit.world.render import sample_batch
from nerfedit.world.vocab import COLORS, FLOORS, SHAPES

REPO = Path(__file__).resolve().parent.parent


def test_shipped_weights_are_small():
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size < 600_000


def test_shipped_judge_reads_fresh_renders():
    # A loose bound on a few samples (the README quotes the full held-out numbers).
    batch = sample_batch(64, np.random.default_rng(424242))
    pred = judge_images(batch["images"])
    for name, words in (("color", COLORS), ("shape", SHAPES)):
        truth = [words[i] for i in batch[name].tolist()]
        accuracy = np.mean([p == t for p, t in zip(pred[name], truth)])
        assert accuracy >= 0.9, f"{name} accuracy {accuracy:.2f}"
    assert all(0.0 <= p <= 1.0 for p in pred["p_color"])
    assert pred["probs"]["floor"].shape == (64, len(FLOORS))


def test_judge_resizes_other_sizes():
    batch = sample_batch(4, np.random.default_rng(5), size=96)
    pred = judge_images(batch["images"])
    assert len(pred["color"]) == 4 and all(c in COLORS for c in pred["color"])
    single = judge_images(batch["images"][0])  # [3,H,W] is a batch of one
    assert single["shape"] == pred["shape"][:1]


def _write_pngs(tmp_path: Path, n: int):
    import imageio.v2 as imageio

    batch = sample_batch(n, np.random.default_rng(9))
    paths = []
    for i in range(n):
        path = tmp_path / f"im{i}.png"
        imageio.imwrite(path, (batch["images"][i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        paths.append(str(path))
    return paths, batch


def test_judge_cli_json_has_the_keys(tmp_path, capsys):
    paths, batch = _write_pngs(tmp_path, 3)
    judge_cli.main(["judge", *paths, "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for line, path in zip(lines, paths):
        row = json.loads(line)
        assert set(row) == {"file", "color", "shape", "floor", "p_color", "p_shape", "p_floor"}
        assert row["file"] == path and row["color"] in COLORS and row["shape"] in SHAPES and row["floor"] in FLOORS
        assert 0.0 <= row["p_shape"] <= 1.0
    judge_cli.main(["judge", paths[0]])
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_judge_cli_missing_or_unreadable_image_is_a_user_error(tmp_path, capsys):
    paths, _ = _write_pngs(tmp_path, 1)
    with pytest.raises(SystemExit) as info:
        judge_cli.main(["judge", paths[0], str(tmp_path / "missing.png")])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "missing.png" in captured.err  # nothing judged before the error
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read"):
        judge_cli.read_image(tmp_path / "junk.png")


def test_augment_keeps_range_and_is_seeded():
    images = sample_batch(8, np.random.default_rng(1), size=64)["images"]
    a = augment(images, torch.Generator().manual_seed(3))
    b = augment(images, torch.Generator().manual_seed(3))
    assert a.shape == images.shape and torch.equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not torch.equal(a, images)


def test_train_judge_smoke_and_resume(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_judge", REPO / "scripts" / "train_judge.py")
    train_judge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_judge)
    common = ["--data", "16", "--batch", "8", "--eval-n", "8", "--checkpoint", str(tmp_path / "ckpt.pt"),
              "--out", str(tmp_path / "judge.pt"), "--widths", "8", "8", "8", "8", "8"]
    train_judge.main(common + ["--steps", "2", "--save-every", "1"])
    assert (tmp_path / "judge.pt").is_file() and torch.load(tmp_path / "ckpt.pt", weights_only=False)["step"] == 2
    # Resuming a finished run is a no-op for training but still writes and evaluates the weights.
    train_judge.main(common + ["--steps", "2", "--resume"])
    out = capsys.readouterr().out
    assert "resuming from step 2" in out and "held-out accuracy" in out
    judge = load_judge(tmp_path / "judge.pt")
    assert judge_images(torch.rand(2, 3, 64, 64), judge)["color"][0] in COLORS
