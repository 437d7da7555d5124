"""The 2D benchmark (`scripts/eval_edit.py`): its held-out pairs, settings, scores, and the script end to end on a tiny budget."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerfedit.eval.edit_runs import rows_to_edit
from nerfedit.eval.edit_scores import score_edits, summarise
from nerfedit.eval.edit_settings import edit_image_settings, settings_record
from nerfedit.eval.structure import ssim_per_image
from nerfedit.eval.swaps import KINDS, held_out_swaps, swapped_word

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def swaps():
    return held_out_swaps(6, seed=3, size=32)


def test_pairs_take_the_three_kinds_in_turn_and_swap_one_word(swaps):
    assert swaps.kinds == list(KINDS) * 2
    for source, target, kind in zip(swaps.sources, swaps.targets, swaps.kinds):
        assert swapped_word(source, kind) != swapped_word(target, kind)
        unchanged = [k for k in KINDS if k != kind]
        assert [swapped_word(source, k) for k in unchanged] == [swapped_word(target, k) for k in unchanged]
        assert (source.size, source.yaw_deg, source.offset) == (target.size, target.yaw_deg, target.offset)


def test_prompt_forms_full_captions_and_short_phrases(swaps):
    full_sources, full_targets = swaps.prompts("full")
    short_sources, short_targets = swaps.prompts("short")
    for i, kind in enumerate(swaps.kinds):
        assert full_sources[i] == swaps.sources[i].caption and full_targets[i] == swaps.targets[i].caption
        if kind == "floor":  # a floor swap must name the floor: its short form is the caption
            assert (short_sources[i], short_targets[i]) == (full_sources[i], full_targets[i])
        else:
            obj = swaps.targets[i]
            assert short_targets[i].endswith(f"{obj.color} {obj.shape}") and " on " not in short_targets[i]
    # the floor swaps' short-form edits would repeat the full-form ones: they are edited once
    rows = rows_to_edit(swaps, ["full", "short"])
    assert rows["full"] == list(range(6))
    assert rows["short"] == [0, 1, 3, 4]


def test_kept_pixels_are_where_the_rendered_target_equals_the_source(swaps):
    keep = swaps.keep_masks()
    for i, kind in enumerate(swaps.kinds):
        same = (swaps.images[i] == swaps.target_images[i]).all(0)
        assert keep[i].any()
        if kind in ("colour", "floor"):  # exact: a colour or floor swap changes nothing else in the world
            assert same[keep[i]].all()
        else:  # shape: outside both objects (the floor plane moves with the shape; see swaps.py)
            assert not (keep[i] & (swaps.masks[i] | swaps.target_masks[i])).any()


def test_settings_are_edit_image_defaults_and_overrides_are_labelled():
    config, loss = edit_image_settings("dds")
    assert (config.steps, config.optimizer, config.resolved_lr(), config.schedule) == (200, "sgd", 0.1, "step")
    assert (loss.guidance_scale, loss.t_min, loss.t_max) == (2.5, 50, 949)  # the toy prior's own CFG (loss_defaults.json)
    assert settings_record("cds")["non_default"] == []
    record = settings_record("cds", ["--lr", "0.025", "--patchnce-weight", "1"])
    assert record["optimiser"]["lr"] == 0.025
    assert sorted(record["non_default"]) == ["loss.patchnce_weight", "optimiser.lr"]
    assert settings_record("cds", ["--paste", "delta"])["non_default"] == ["output.paste"]


def test_delta_paste_of_an_unedited_square_is_the_input_itself(tiny_prior):
    """`--paste delta` adds the decoded change to the input: no change (the source's own decode) gives the input."""
    from nerfedit.image.fit import pasted_squares

    images = torch.rand(2, 3, tiny_prior.resolution, tiny_prior.resolution, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        unedited = tiny_prior.decode_latents(tiny_prior.encode_images(images))
    assert torch.allclose(pasted_squares(tiny_prior, images, unedited, "delta"), images, atol=1e-5)
    assert torch.allclose(pasted_squares(tiny_prior, images, unedited, "blend"), images, atol=1e-5)
    assert not torch.allclose(unedited, images, atol=1e-2)  # while replace would give the VAE's reconstruction


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim_per_image(a, a), torch.ones(2))
    assert (ssim_per_image(a, a.flip(-1)) < 0.5).all()


def test_scores_of_a_perfect_edit_and_of_no_edit(swaps):
    perfect = summarise(score_edits(swaps, swaps.target_images), swaps.kinds)
    unedited = summarise(score_edits(swaps, swaps.images), swaps.kinds)
    assert perfect["colour"]["keep_psnr_median"] == 100.0 and perfect["floor"]["target_psnr"] == 100.0
    assert unedited["all"]["ssim"] == pytest.approx(1.0) and unedited["all"]["keep_psnr_mean"] == 100.0
    assert perfect["all"]["ssim"] < 1.0 and perfect["all"]["edits"] == 6


def test_judge_reads_the_target_word_of_each_kind_on_rendered_targets():
    pairs = held_out_swaps(6, seed=5, size=64)  # the judge's resolution
    from nerfedit.eval.judging import load_judge_option

    judge = load_judge_option("default")
    on_targets = score_edits(pairs, pairs.target_images, judge)
    on_sources = score_edits(pairs, pairs.images, judge)
    assert sum(on_targets["success"]) >= 5 and sum(on_sources["success"]) == 0
    assert sum(on_sources["still_source"]) >= 5


def load_script():
    spec = importlib.util.spec_from_file_location("eval_edit", REPO / "scripts" / "eval_edit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_edit_plumbing_on_the_tiny_prior(tiny_prior_dir, tmp_path, capsys):
    script = load_script()
    argv = ["--prior", str(tiny_prior_dir), "--judge", "none", "-n", "3", "--steps", "2", "--losses", "dds", "--seeds", "0,1",
            "--prompts", "full,short", "--quiet", "--out", str(tmp_path), "--sheet", str(tmp_path / "sheet.png")]  # fmt: skip
    assert script.main(argv) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["kinds"] == ["colour", "shape", "floor"] and report["seeds"] == [0, 1]
    # --steps also moves SDS-Bridge's switch (edit-image: half the steps), a setting of every loss's config
    assert sorted(report["settings"]["dds"]["non_default"]) == ["loss.bridge_switch_step", "optimiser.steps"]
    assert report["timing"]["dds"]["edits"] == 2 * (3 + 2)  # per seed: 3 full-form edits, 2 short (floor reused)
    for form in ("full", "short"):
        assert set(report["summary"]["dds"][form]) == {"colour", "shape", "floor", "all"}
        assert report["summary"]["dds"][form]["all"]["edits"] == 6
    markdown = (tmp_path / "eval_edit.md").read_text()
    assert "| dds | short | shape |" in markdown and "[non-default]" in markdown
    assert (tmp_path / "sheet.png").is_file()
    assert "| dds | full | floor |" in capsys.readouterr().out


def test_a_priors_loss_defaults_fill_what_the_user_left_unset(tiny_prior_dir, tmp_path):
    """A prior folder's loss_defaults.json comes before the paper's default; an explicit setting before both; a folder
    without one (every SD checkpoint) keeps the paper's; a file naming no loss or no setting is one line."""
    import shutil

    from nerfedit.errors import UserError
    from nerfedit.losses import build_loss
    from nerfedit.losses.base import DistillationConfig
    from nerfedit.priors import load_prior
    from nerfedit.priors.loader import LOSS_DEFAULTS_FILE, prior_loss_defaults

    assert prior_loss_defaults(str(tiny_prior_dir)) == {}
    assert edit_image_settings("cds", prior=str(tiny_prior_dir))[1].guidance_scale == 7.5
    folder = tmp_path / "prior"
    shutil.copytree(tiny_prior_dir, folder)
    (folder / LOSS_DEFAULTS_FILE).write_text('{"_why": "a test", "dds": {"guidance_scale": 2.0, "t_max": 700}}')
    prior = load_prior(str(folder), device="cpu")
    assert build_loss(DistillationConfig(name="dds"), prior).config.guidance_scale == 2.0
    assert build_loss(DistillationConfig(name="dds", guidance_scale=6.0), prior).config.t_max == 700
    assert build_loss(DistillationConfig(name="dds", guidance_scale=6.0), prior).config.guidance_scale == 6.0
    assert build_loss(DistillationConfig(name="cds"), prior).config.guidance_scale == 7.5
    assert settings_record("dds", prior=str(folder))["loss"]["guidance_scale"] == 2.0
    for bad in ('{"ddss": {"guidance_scale": 2}}', '{"dds": {"cfg": 2}}', "{not json"):
        (folder / LOSS_DEFAULTS_FILE).write_text(bad)
        with pytest.raises(UserError, match=LOSS_DEFAULTS_FILE):
            prior_loss_defaults(str(folder))


def test_blend_paste_keeps_the_input_where_the_edit_kept_it_and_the_edit_where_it_changed():
    """`blend`: where the decoded edit equals the decoded source the input comes back (its detail, beyond the VAE);
    where it moved by BLEND_CHANGE or more the decoded edit alone (no ghost of the input); 1 px of grown edge."""
    from nerfedit.image.io import BLEND_CHANGE, paste_change

    rng = np.random.default_rng(0)
    original = rng.uniform(0.2, 0.8, (8, 8, 3)).astype(np.float32)
    reconstructed = np.clip(original + rng.normal(0, 0.03, original.shape), 0, 1).astype(np.float32)  # the VAE's loss
    edited = reconstructed.copy()
    edited[:4, :4] = np.clip(edited[:4, :4] + [2 * BLEND_CHANGE, 0, 0], 0, 1)  # the edit recoloured the top-left
    out = paste_change(original, edited, reconstructed, "blend")
    assert np.allclose(out[:5, :5], edited[:5, :5], atol=1e-6)  # changed (and its 1-px edge): the edit, no input detail
    assert np.allclose(out[6:, 6:], original[6:, 6:], atol=1e-6)  # unchanged: the input itself
    delta = paste_change(original, edited, reconstructed, "delta")
    assert not np.allclose(delta[:4, :4], edited[:4, :4], atol=1e-3)  # delta would bring the input's detail back in
    assert np.allclose(paste_change(original, edited, reconstructed, "replace"), edited)
