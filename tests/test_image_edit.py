"""The 2D optimisation loops (`nerfedit.image.edit`) and image I/O (`nerfedit.image.io`), on the tiny SD model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from nerfedit.image import io
from nerfedit.image.edit import (
    DDS_SGD_LR,
    EditConfig,
    edit_image,
    edit_latents,
    generate_config,
    generate_image,
    initial_latents,
    lr_factor,
    optimize_latents,
)
from nerfedit.losses import DistillationConfig, build_loss
from nerfedit.losses.output import LossOutput

SOURCE = "a red cube on a wooden floor"
TARGET = "a blue cube on a wooden floor"


def world_like_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images [B, 3, size, size] in [0, 1] (a blob on a gradient; no renderer needed)."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    images = []
    for _ in range(batch):
        colour = torch.rand(3, 1, 1, generator=g)
        floor = torch.rand(3, 1, 1, generator=g) * 0.5 + 0.25
        blob = ((xs**2 + ys**2) < 0.3).float()
        images.append(floor * (0.6 + 0.4 * (ys + 1) / 2) * (1 - blob) + colour * blob)
    return torch.stack(images).clamp(0, 1)


# ---- the loop --------------------------------------------------------------------------------------


def test_fixed_seed_gives_bit_identical_edits(tiny_prior):
    x = world_like_images(1, tiny_prior.resolution)
    config = EditConfig(steps=4, seed=7)
    a, _ = edit_image(tiny_prior, x, target=TARGET, source=SOURCE, config=config, progress=False)
    b, _ = edit_image(tiny_prior, x, target=TARGET, source=SOURCE, config=config, progress=False)
    c, _ = edit_image(tiny_prior, x, target=TARGET, source=SOURCE, config=EditConfig(steps=4, seed=8), progress=False)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_seeded_run_leaves_global_rng_alone(tiny_prior):
    x = world_like_images(1, tiny_prior.resolution)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    edit_image(tiny_prior, x, target=TARGET, source=SOURCE, config=EditConfig(steps=2), progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_dds_with_equal_prompts_leaves_the_image_unchanged(tiny_prior):
    """z = ẑ and y = ŷ give a DDS gradient of exactly zero, so the latent never moves."""
    x = world_like_images(2, tiny_prior.resolution)
    with torch.no_grad():
        z_source = tiny_prior.encode_images(x)
        reconstruction = tiny_prior.decode_latents(z_source)
    edited, history = edit_image(tiny_prior, x, target=SOURCE, source=SOURCE, config=EditConfig(steps=5), progress=False)
    assert (edited - reconstruction).abs().max() < 1e-5
    assert max(history.grad_norm) < 1e-5


def test_dds_with_different_prompts_changes_the_image(tiny_prior):
    x = world_like_images(2, tiny_prior.resolution)
    with torch.no_grad():
        reconstruction = tiny_prior.decode_latents(tiny_prior.encode_images(x))
    edited, history = edit_image(tiny_prior, x, target=TARGET, source=SOURCE, config=EditConfig(steps=5), progress=False)
    assert (edited - reconstruction).abs().mean() > 1e-3
    assert min(history.grad_norm) > 0


def test_history_records_every_step_and_the_dds_schedule(tiny_prior):
    x = world_like_images(1, tiny_prior.resolution)
    config = EditConfig(steps=5, lr_decay_every=2, save_progress_every=2)
    _, history = edit_image(tiny_prior, x, target=TARGET, source=SOURCE, config=config, progress=False)
    assert history.steps == 5 and len(history.t) == 5 and len(history.grad_norm) == 5
    assert all(50 <= t < 950 for t in history.t)  # DDS's t range
    assert history.lr == pytest.approx([DDS_SGD_LR * f for f in (1, 1, 0.9, 0.9, 0.81)])
    assert [step for step, _ in history.snapshots] == [0, 2, 4, 5]
    assert [step for step, _ in history.snapshot_images] == [0, 2, 4, 5]
    assert history.snapshot_images[0][1].shape == x.shape
    assert history.skipped == 0


def test_lr_schedules():
    step = EditConfig(steps=200)
    assert lr_factor(19, step) == 1.0 and lr_factor(20, step) == pytest.approx(0.9)
    assert lr_factor(199, step) == pytest.approx(0.9**9)
    cosine = EditConfig(steps=10, schedule="cosine")
    assert lr_factor(0, cosine) == 1.0 and lr_factor(5, cosine) == pytest.approx(0.5)
    assert lr_factor(123, EditConfig(schedule="constant")) == 1.0
    assert EditConfig(optimizer="adam").resolved_lr() == 0.01
    assert generate_config().optimizer == "adamw" and generate_config().steps == 1000


class _ScriptedLoss:
    """A loss whose gradient is z itself, NaN on chosen steps (flagged or not) — to test the NaN guard."""

    def __init__(self, nan_steps, flag):
        self.config = DistillationConfig(name="sds")
        self.nan_steps, self.flag = set(nan_steps), flag

    def __call__(self, z, *, prompt, source_prompt=None, z_source=None, step=0, generator=None):
        t = torch.randint(20, 980, (z.shape[0],), generator=generator)
        grad = z.detach().clone()
        if step in self.nan_steps:
            grad[0, 0, 0, 0] = float("nan")
            if self.flag:
                zero = torch.zeros_like(z)
                return LossOutput((z * zero).sum(), zero, t, skipped=True)
        return LossOutput((z * grad).sum(), grad, t, {"x": 1.0})


@pytest.mark.parametrize("flag", [True, False], ids=["flagged-by-loss", "caught-by-loop"])
def test_nan_steps_are_skipped_counted_and_never_applied(flag):
    z0 = torch.ones(1, 4, 4, 4)
    z, history = optimize_latents(
        _ScriptedLoss({1, 3}, flag), z0, prompt="x", config=EditConfig(steps=5, lr=0.1, schedule="constant"), progress=False
    )
    assert history.skipped == 2 and history.skipped_steps == [1, 3]
    assert torch.isfinite(z).all()
    assert torch.allclose(z, z0 * 0.9**3)  # only the 3 good steps z ← z − 0.1·z were applied
    assert "skipped" in history.summary()


def test_callback_can_stop_early():
    seen = []

    def stop_after_two(step, z, out):
        seen.append(step)
        return step == 1

    _, history = optimize_latents(
        _ScriptedLoss(set(), True), torch.ones(1, 4, 4, 4), prompt="x", config=EditConfig(steps=10), progress=False, callback=stop_after_two
    )
    assert seen == [0, 1] and history.steps == 2


def test_edit_latents_accepts_one_prompt_per_row(tiny_prior):
    loss = build_loss(DistillationConfig(name="dds"), tiny_prior)
    z_source = torch.zeros(2, tiny_prior.latent_channels, tiny_prior.latent_resolution, tiny_prior.latent_resolution)
    z, history = edit_latents(loss, z_source, target=[SOURCE, TARGET], source=[SOURCE, SOURCE], config=EditConfig(steps=2), progress=False)
    assert torch.allclose(z[0], z_source[0], atol=1e-5)  # row 0: same prompt, (numerically) zero gradient
    assert not torch.equal(z[1], z_source[1])


def test_generate_image_starts_from_grey(tiny_prior):
    z0 = initial_latents(tiny_prior, 1, "grey")
    with torch.no_grad():
        grey = tiny_prior.encode_images(torch.full((1, 3, tiny_prior.resolution, tiny_prior.resolution), 0.5))
    assert torch.equal(z0, grey)
    config = generate_config(steps=3, save_progress_every=1)
    images, history = generate_image(tiny_prior, "a yellow sphere on grass", loss="sds", config=config, progress=False)
    assert images.shape == (1, 3, tiny_prior.resolution, tiny_prior.resolution)
    assert 0 <= images.min() and images.max() <= 1
    assert len(history.snapshot_images) == 4 and history.steps == 3
    again, _ = generate_image(tiny_prior, "a yellow sphere on grass", loss="sds", config=generate_config(steps=3), progress=False)
    assert torch.equal(images, again)


def test_edit_module_does_not_import_nerfstudio():
    code = "import sys, nerfedit.image.edit; print(any(m.split('.')[0] == 'nerfstudio' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- I/O and the crop rule ------------------------------------------------------------------------


def test_crop_rule_pastes_back_at_the_input_size_and_leaves_the_rest():
    rng = np.random.default_rng(0)
    image = rng.random((30, 50, 3)).astype(np.float32)
    square, placement = io.to_square(image, 64)
    assert square.shape == (64, 64, 3)
    assert (placement.top, placement.left, placement.crop_height, placement.crop_width) == (0, 10, 30, 30)
    edited = 1.0 - square
    out = io.from_square(image, edited, placement)
    assert out.shape == image.shape
    assert np.array_equal(out[:, :10], image[:, :10]) and np.array_equal(out[:, 40:], image[:, 40:])
    assert not np.allclose(out[:, 10:40], image[:, 10:40])
    tall, p = io.to_square(rng.random((50, 20, 3)).astype(np.float32), 32)
    assert (p.top, p.left, p.crop_height, p.crop_width) == (15, 0, 20, 20)


def test_delta_paste_is_exact_where_the_edit_changed_nothing():
    rng = np.random.default_rng(1)
    image = rng.random((40, 24, 3)).astype(np.float32)
    square, placement = io.to_square(image, 32)
    reconstruction = np.clip(square + 0.05, 0, 1)  # a VAE that is a little off
    out = io.from_square(image, reconstruction, placement, paste="delta", reconstructed=reconstruction)
    assert np.array_equal(out, image)


def test_squash_rule_covers_the_whole_image():
    image = np.zeros((20, 60, 3), np.float32)
    square, placement = io.to_square(image, 32, fit="squash")
    out = io.from_square(image, np.ones_like(square), placement)
    assert out.shape == image.shape and out.min() > 0.99


def test_load_image_handles_grey_alpha_and_16_bit(tmp_path):
    import imageio.v3 as iio

    grey = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    iio.imwrite(tmp_path / "grey.png", grey)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, half transparent → pink on white
    rgba[..., 3] = 128
    iio.imwrite(tmp_path / "rgba.png", rgba)
    deep = np.full((3, 4), 65535, np.uint16)  # 16-bit grey (PIL writes no 16-bit RGB)
    iio.imwrite(tmp_path / "deep.png", deep)

    g = io.load_image(tmp_path / "grey.png")
    assert g.shape == (3, 4, 3) and g.dtype == np.float32 and np.allclose(g[..., 0], g[..., 2])
    r = io.load_image(tmp_path / "rgba.png")
    assert r[0, 0, 0] == pytest.approx(1.0) and r[0, 0, 1] == pytest.approx(127 / 255, abs=0.01)
    assert io.load_image(tmp_path / "deep.png").min() == pytest.approx(1.0)


def test_save_image_round_trips_and_progress_formats(tmp_path):
    image = np.random.default_rng(2).random((10, 14, 3)).astype(np.float32)
    io.save_image(tmp_path / "x.png", image)
    back = io.load_image(tmp_path / "x.png")
    assert back.shape == image.shape and np.abs(back - image).max() <= 0.5 / 255 + 1e-6
    frames = [image * k / 12 for k in range(13)]
    for name in ("p.png", "p.gif", "p.mp4"):
        io.save_progress(tmp_path / name, frames)
        assert (tmp_path / name).stat().st_size > 0
    strip_image = io.load_image(tmp_path / "p.png")
    assert strip_image.shape[0] > strip_image.shape[1] / 12  # 13 frames wrap onto two rows
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
