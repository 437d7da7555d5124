"""The prior loader and wrapper on tiny SD models saved in diffusers layout: loading, ε from v, offline failures."""

from __future__ import annotations

import shutil
import uuid

import pytest
import torch

from nerfedit.errors import UserError
from nerfedit.priors import PriorUnavailable, load_prior


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and text.strip(), repr(text)
    return text


def test_loaded_prior_matches_the_saved_model(tiny_prior, tiny_prior_dir):
    assert tiny_prior.prediction_type == "epsilon"
    assert tiny_prior.resolution == 32 and tiny_prior.latent_resolution == 16
    # The schedule is SD's scaled-linear one: ᾱ decreases from ~1 to ~0.0047 (SD 1.x's last value).
    ab = tiny_prior.alphas_cumprod
    assert ab.shape == (1000,) and bool((ab[1:] < ab[:-1]).all())
    assert abs(float(ab[-1]) - 0.0047) < 5e-4
    # Text embeddings are cached: the second request returns the cached rows, and prompts differ.
    first = tiny_prior.encode_text(["a red cube", "a blue cube"])
    again = tiny_prior.encode_text("a red cube")
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], first[1])


def test_one_batched_unet_call_equals_separate_calls(tiny_prior):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([100, 700])
    emb = tiny_prior.encode_text(["", "a red cube"])
    batched = tiny_prior.predict_eps(z, t, emb)
    for i in range(2):
        alone = tiny_prior.predict_eps(z[i : i + 1], t[i : i + 1], emb[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_v_prediction_prior_gives_finite_eps_by_the_conversion_formula(tiny_prior_v):
    prior = tiny_prior_v
    assert prior.prediction_type == "v_prediction"
    g = torch.Generator().manual_seed(1)
    z_t = torch.randn(3, 4, 16, 16, generator=g)
    t = torch.tensor([10, 500, 990])
    emb = prior.encode_text(["", "a cube", "a red cube"])
    eps = prior.predict_eps(z_t, t, emb)
    assert torch.isfinite(eps).all()
    v = prior.unet(z_t, t, encoder_hidden_states=emb).sample
    ab = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(eps, ab.sqrt() * v + (1 - ab).sqrt() * z_t)


def test_v_prediction_conversion_recovers_the_true_noise(tiny_prior_v, monkeypatch):
    """If the UNet predicted the exact v = √ᾱ ε − √(1−ᾱ) z of a known (z, ε), predict_eps must return that ε."""
    prior = tiny_prior_v
    g = torch.Generator().manual_seed(2)
    z0, eps = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([50, 900])
    ab = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = prior.add_noise(z0, eps, t)
    v = ab.sqrt() * eps - (1 - ab).sqrt() * z0

    class Oracle(torch.nn.Module):
        def forward(self, sample, timestep, encoder_hidden_states):
            return type("Out", (), {"sample": v})()

    monkeypatch.setattr(prior, "unet", Oracle())
    torch.testing.assert_close(prior.predict_eps(z_t, t, prior.encode_text(["", ""])), eps, atol=1e-5, rtol=1e-5)


def test_unknown_prior_name_is_a_one_line_user_error():
    with pytest.raises(PriorUnavailable) as info:
        load_prior("no-such-prior-name")
    assert isinstance(info.value, UserError)
    assert "no-such-prior-name" in one_line(info.value)


def test_hub_id_offline_and_not_cached_names_the_offline_prior(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_id = f"nerfedit-tests/not-cached-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PriorUnavailable) as info:
        load_prior(hub_id, device="cpu")
    text = one_line(info.value)
    assert hub_id in text and "--prior toy" in text and "--prior DIR" in text and f"hf download {hub_id}" in text


def test_folder_without_unet_is_unavailable(tiny_prior_dir, tmp_path):
    folder = tmp_path / "no_unet"
    shutil.copytree(tiny_prior_dir, folder)
    shutil.rmtree(folder / "unet")
    with pytest.raises(PriorUnavailable) as info:
        load_prior(str(folder), device="cpu")
    assert "unet" in one_line(info.value)


def test_folder_with_broken_weights_is_unavailable(tiny_prior_dir, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_prior_dir, folder)
    for weights in (folder / "unet").iterdir():
        if weights.suffix in (".safetensors", ".bin"):
            weights.write_bytes(b"not a checkpoint")
    with pytest.raises(PriorUnavailable) as info:
        load_prior(str(folder), device="cpu")
    assert str(folder) in one_line(info.value)
