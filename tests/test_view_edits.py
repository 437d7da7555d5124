"""The "views" NeRF edit (`nerfedit/nerf/edit/view_edits.py`): each view's latent edited in 2D, the field fitted to it."""

from __future__ import annotations

import torch

from nerfedit.image.optim import EditConfig, lr_factor
from nerfedit.losses import DistillationConfig, build_loss
from nerfedit.losses.output import SkippedSteps, skipped_output
from nerfedit.nerf.edit.view_edits import advance, start_view_edit, view_fit_loss

SOURCE, TARGET = "a red cube on a wooden floor", "a blue cube on a wooden floor"


def _view(prior, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, prior.resolution, prior.resolution, generator=generator)
    with torch.no_grad():
        return image, prior.encode_images(image)


def _distill(prior):
    loss = build_loss(DistillationConfig(name="dds"), prior)

    def distill(z, z_source, step, seed):
        generator = torch.Generator().manual_seed(seed)
        return loss(z, prompt=TARGET, source_prompt=SOURCE, z_source=z_source, step=step, generator=generator)

    return distill


def test_an_unedited_view_targets_the_source_render_itself(tiny_prior):
    """x* = D(z_v) + (x_src − D(z_src)): before any step the VAE's reconstruction error cancels exactly."""
    image, latent = _view(tiny_prior)
    edit = start_view_edit(tiny_prior, image, latent)
    assert edit.steps == 0
    assert torch.allclose(edit.target(tiny_prior), image, atol=1e-5)
    assert float(view_fit_loss(image, edit.target(tiny_prior))) < 1e-9


def test_advance_takes_sgd_steps_on_the_schedule_and_stops_at_the_edit_length(tiny_prior):
    image, latent = _view(tiny_prior)
    config = EditConfig(steps=5, lr_decay_every=2)
    distill, skipped = _distill(tiny_prior), SkippedSteps()

    edit = start_view_edit(tiny_prior, image, latent)
    z = edit.latent.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(distill(z, latent, 0, 7 * 1_000).loss, z)
    advance(edit, distill, config, 1, seed=7, skipped=skipped)
    assert edit.steps == 1
    assert torch.allclose(edit.latent, latent - config.resolved_lr() * lr_factor(0, config) * grad, atol=1e-6)

    advance(edit, distill, config, 3, seed=7, skipped=skipped)
    assert edit.steps == 4 and lr_factor(3, config) < 1.0
    advance(edit, distill, config, 3, seed=7, skipped=skipped)  # only one step is left of the 5
    assert edit.steps == 5
    frozen = edit.latent.clone()
    advance(edit, distill, config, 3, seed=7, skipped=skipped)
    assert edit.steps == 5 and torch.equal(edit.latent, frozen)
    assert not torch.allclose(edit.target(tiny_prior), image, atol=1e-3), "five DDS steps left the view unchanged"
    assert skipped.count == 0


def test_a_non_finite_step_is_skipped_counted_and_leaves_the_latent(tiny_prior):
    image, latent = _view(tiny_prior)
    edit, skipped = start_view_edit(tiny_prior, image, latent), SkippedSteps()

    def broken(z, z_source, step, seed):
        return skipped_output(z, torch.tensor([500]))

    advance(edit, broken, EditConfig(), 2, seed=0, skipped=skipped)
    assert skipped.count == 2 and edit.steps == 2 and torch.equal(edit.latent, latent)
