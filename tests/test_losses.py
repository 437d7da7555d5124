"""Properties of the score-distillation losses on a tiny random SD model (CPU, no network).

Each test checks something that could be wrong — against an explicit re-computation with separate UNet calls,
a call count, an exact zero, or an exact equality — not just shapes.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from nerfedit.errors import UserError
from nerfedit.losses import LOSS_NAMES, DistillationConfig, WeightedSum, build_loss
from nerfedit.losses.base import classifier_free_guidance, draw_t_and_eps, timestep_weight
from nerfedit.losses.catalog import DDS_CODE_GRAD_SCALE
from nerfedit.losses.output import inject_gradient
from nerfedit.losses.corrective import (
    CorrectiveConfig,
    CorrectiveUNet,
    denoised_triplets,
    load_corrective,
    normalised_loss,
    save_corrective,
    train_step,
)
from nerfedit.losses.lmc import LearnedManifoldCorrective
from nerfedit.losses.patchnce import feature_map, patchnce

SMALL_CORRECTIVE = CorrectiveConfig(base_filters=8, levels=2)
TARGET, SOURCE = "a blue cube", "a red cube"


def make_loss(name, prior, **overrides):
    config = DistillationConfig(name=name, **overrides)
    if name == "lmc":
        with torch.random.fork_rng():
            torch.manual_seed(0)
            corrective = CorrectiveUNet(SMALL_CORRECTIVE)
        return LearnedManifoldCorrective(config, prior, corrective=corrective)
    return build_loss(config, prior)


def latents(seed=0, batch=1):
    g = torch.Generator().manual_seed(seed)
    z_source = torch.randn(batch, 4, 16, 16, generator=g)
    z = (z_source + 0.3 * torch.randn(batch, 4, 16, 16, generator=g)).requires_grad_(True)
    return z, z_source


def run(loss, z, z_source, seed=0, step=0, prompt=TARGET, source_prompt=SOURCE):
    return loss(z, prompt=prompt, source_prompt=source_prompt, z_source=z_source, step=step,
                generator=torch.Generator().manual_seed(seed))


@contextmanager
def count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda mod, args, kwargs, out: calls.append(args[0].shape[0]), with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def eps(prior, z_t, t, prompt):
    """ε(z_t; prompt, t) from its own UNet call."""
    return prior.predict_eps(z_t, t, prior.encode_text([prompt] * z_t.shape[0]))


# ---- the contract ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_backward_gives_exactly_out_grad_through_a_non_leaf(tiny_prior, name):
    loss = make_loss(name, tiny_prior, bridge_switch_step=1)
    leaf, z_source = latents()
    z = leaf * 2.0  # as a VAE-encoded render: the latent is not a leaf
    out = run(loss, z, z_source, step=1)
    out.loss.backward()
    assert not out.skipped and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    assert torch.equal(leaf.grad, 2.0 * out.grad)
    assert out.t.shape == (1,) and "t" in out.terms
    value = out.terms["dds"] + 3.0 * (16 * 16 / 64**2) * out.terms["patchnce"] if name == "cds" else out.terms[name]
    assert float(out.loss.detach()) == pytest.approx(value)


@pytest.mark.parametrize("side", [8, 16])
def test_cds_weighs_patchnce_as_the_official_code_at_every_latent_size(tiny_prior, side):
    """Official step 2000/(h·w)·δ + λ∇ℓ_con; ours 2000/64²·δ + λ'∇ℓ_con: the same direction iff λ' = λ·(h·w)/64²."""
    g = torch.Generator().manual_seed(side)
    z_source = torch.randn(1, 4, side, side, generator=g)
    z = (z_source + 0.3 * torch.randn(1, 4, side, side, generator=g)).requires_grad_(True)
    cds = run(make_loss("cds", tiny_prior), z, z_source, seed=3)
    dds = run(make_loss("cds", tiny_prior, patchnce_weight=0.0), z, z_source, seed=3)
    weight = 3.0 * side * side / 64**2
    assert float(cds.loss.detach()) == pytest.approx(cds.terms["dds"] + weight * cds.terms["patchnce"])
    assert torch.equal(cds.t, dds.t) and cds.terms["dds"] == pytest.approx(dds.terms["dds"])
    assert not torch.allclose(cds.grad, dds.grad)  # PatchNCE still acts


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_fixed_seed_gives_bit_identical_gradients(tiny_prior, name):
    loss = make_loss(name, tiny_prior)
    z, z_source = latents(batch=2)
    first, second = run(loss, z, z_source, seed=7), run(loss, z, z_source, seed=7)
    other = run(loss, z, z_source, seed=8)
    assert torch.equal(first.grad, second.grad) and torch.equal(first.t, second.t)
    assert not torch.equal(first.grad, other.grad)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_nan_in_latents_is_skipped_with_zero_gradient(tiny_prior, name):
    loss = make_loss(name, tiny_prior)
    z, z_source = latents()
    with torch.no_grad():
        z[0, 0, 3, 3] = float("nan")
    out = run(loss, z, z_source)
    assert out.skipped and out.terms.get("skipped") == 1.0
    assert float(out.loss.detach()) == 0.0 and torch.count_nonzero(out.grad) == 0
    out.loss.backward()
    assert torch.count_nonzero(z.grad) == 0 and torch.isfinite(z.grad).all()


def test_inject_gradient_value_and_gradient_are_exact():
    z = torch.randn(2, 3, requires_grad=True)
    g = torch.randn(2, 3)
    loss = inject_gradient(z, g, 1.25)
    (3.0 * loss).backward()
    assert float(loss.detach()) == 1.25 and torch.equal(z.grad, 3.0 * g)


def test_weighted_sum_adds_weighted_gradients(tiny_prior):
    sds, nfsd = make_loss("sds", tiny_prior), make_loss("nfsd", tiny_prior)
    both = WeightedSum([(1.0, "sds", sds), (0.5, "nfsd", nfsd)])
    z, _ = latents()
    out = both(z, prompt=TARGET, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the parts draw from the generator in order
    a, b = sds(z, prompt=TARGET, generator=g), nfsd(z, prompt=TARGET, generator=g)
    torch.testing.assert_close(out.grad, a.grad + 0.5 * b.grad, atol=0, rtol=0)
    assert out.terms["sds"] == pytest.approx(float(a.loss.detach())) and out.terms["nfsd"] == pytest.approx(float(b.loss.detach()))
    out.loss.backward()
    assert torch.equal(z.grad, out.grad)


def test_unknown_loss_is_a_user_error(tiny_prior):
    with pytest.raises(UserError, match="unknown loss 'xyz'"):
        build_loss(DistillationConfig(name="xyz"), tiny_prior)  # type: ignore[arg-type]


# ---- DDS -------------------------------------------------------------------------------------
def test_dds_gradient_is_exactly_zero_for_identical_latents_and_prompts(tiny_prior):
    loss = make_loss("dds", tiny_prior)
    _, z_source = latents(batch=2)
    z = z_source.clone().requires_grad_(True)
    prompts = ["a red cube", "a green cone"]
    out = run(loss, z, z_source, prompt=prompts, source_prompt=prompts)
    assert not out.skipped and torch.count_nonzero(out.grad) == 0


def test_dds_gradient_equals_cfg_difference_of_two_separate_calls(tiny_prior):
    loss = make_loss("dds", tiny_prior)
    z, z_source = latents(batch=2)
    out = run(loss, z, z_source, seed=5)
    t, noise = draw_t_and_eps(z, loss.config, 1000, torch.Generator().manual_seed(5))
    assert torch.equal(t, out.t)
    with torch.no_grad():
        z_t, z_t_src = tiny_prior.add_noise(z, noise, t), tiny_prior.add_noise(z_source, noise, t)
        tgt = tiny_prior.predict_eps(torch.cat([z_t, z_t]), torch.cat([t, t]), tiny_prior.encode_text(["", ""] + [TARGET] * 2))
        src = tiny_prior.predict_eps(torch.cat([z_t_src] * 2), torch.cat([t, t]), tiny_prior.encode_text(["", ""] + [SOURCE] * 2))
    expected = classifier_free_guidance(*tgt.chunk(2), 7.5) - classifier_free_guidance(*src.chunk(2), 7.5)
    torch.testing.assert_close(out.grad, DDS_CODE_GRAD_SCALE * expected, atol=1e-5, rtol=1e-4)


def test_dds_makes_one_unet_call_per_step_and_no_vae_work(tiny_prior, monkeypatch):
    loss = make_loss("dds", tiny_prior)
    z, z_source = latents(batch=2)
    vae_calls = []
    monkeypatch.setattr(tiny_prior.vae, "encode", lambda *a, **k: vae_calls.append(1))
    monkeypatch.setattr(tiny_prior.vae, "decode", lambda *a, **k: vae_calls.append(1))
    with count_calls(tiny_prior.unet) as calls:
        for step in range(3):
            run(loss, z, z_source, seed=step, step=step)
    assert calls == [8, 8, 8] and vae_calls == []  # one call of 4B rows per step


def test_dds_without_source_latent_is_an_error(tiny_prior):
    z, _ = latents()
    with pytest.raises(ValueError, match="z_source"):
        make_loss("dds", tiny_prior)(z, prompt=TARGET)


# ---- PatchNCE / CDS --------------------------------------------------------------------------
def test_patchnce_is_lower_for_identical_than_for_shuffled_features():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 16, 8, 8, generator=g)
    perm = torch.randperm(64, generator=g)
    shuffled = features.flatten(2)[:, :, perm].reshape(2, 16, 8, 8)
    same = patchnce(features, features, generator=torch.Generator().manual_seed(1))
    other = patchnce(features, shuffled, generator=torch.Generator().manual_seed(1))
    assert float(same) < float(other)


def test_patchnce_gradient_reaches_the_target_features_only():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(1, 8, 6, 6, generator=g).requires_grad_(True)
    target = torch.randn(1, 8, 6, 6, generator=g).requires_grad_(True)
    patchnce(source, target, generator=g).backward()
    assert source.grad is None and target.grad.abs().sum() > 0


def test_patchnce_treats_each_image_of_a_batch_as_its_own_problem():
    """Batch loss = sum of the single-image losses (same locations), so a row's gradient does not depend on B."""
    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(2, 8, 6, 6, generator=g), torch.randn(2, 8, 6, 6, generator=g)
    batch = patchnce(source, target, generator=torch.Generator().manual_seed(3))
    alone = [patchnce(source[i : i + 1], target[i : i + 1], generator=torch.Generator().manual_seed(3)) for i in range(2)]
    torch.testing.assert_close(batch, alone[0] + alone[1])


def test_feature_map_finds_non_square_layer_sizes():
    tokens = torch.arange(2 * 12 * 3, dtype=torch.float32).reshape(2, 12, 3)
    assert feature_map(tokens, (5, 7)).shape == (2, 3, 3, 4)  # 5×7 → 3×4 after one halving (rounded up)


def test_cds_gradient_reaches_the_target_latent_only(tiny_prior):
    cds, dds = make_loss("cds", tiny_prior), make_loss("dds", tiny_prior)
    z, z_source = latents()
    z_source.requires_grad_(True)
    out = run(cds, z, z_source, seed=4)
    out.loss.backward()
    assert z_source.grad is None
    assert torch.equal(z.grad, out.grad)
    # CDS draws t and ε exactly as DDS does: what remains is λ·∇PatchNCE, and it is not zero.
    dds_out = run(dds, z.detach().clone(), z_source.detach(), seed=4)
    assert torch.equal(out.t, dds_out.t)
    nce_grad = out.grad - dds_out.grad
    assert nce_grad.abs().sum() > 0 and out.terms["patchnce"] > 0


def test_cds_adds_one_differentiable_pass_and_uses_conditional_source_features(tiny_prior):
    cds = make_loss("cds", tiny_prior)
    z, z_source = latents()
    seen = []
    original = tiny_prior.predict_eps

    def spy(z_t, t, emb):
        seen.append((z_t.shape[0], torch.is_grad_enabled() and z_t.requires_grad))
        return original(z_t, t, emb)

    tiny_prior.predict_eps = spy
    with count_calls(tiny_prior.unet) as calls:
        run(cds, z, z_source)
    assert calls == [4, 1] and seen == [(4, False), (1, True)]


def test_cds_patchnce_is_lower_when_target_equals_source(tiny_prior):
    """With z = ẑ and y_tgt = y_src both passes see the same input: the PatchNCE positive is the exact match."""
    cds = make_loss("cds", tiny_prior)
    _, z_source = latents()
    same = run(cds, z_source.clone().requires_grad_(True), z_source, prompt=SOURCE, source_prompt=SOURCE)
    z, _ = latents(seed=1)
    different = run(cds, z, z_source, prompt=SOURCE, source_prompt=SOURCE)
    assert same.terms["patchnce"] < different.terms["patchnce"]


# ---- SDS, NFSD, SDS-Bridge against explicit formulas ------------------------------------------
def test_sds_gradient_matches_the_formula(tiny_prior):
    loss = make_loss("sds", tiny_prior, guidance_scale=20.0)
    z, _ = latents()
    out = run(loss, z, None, seed=2)
    t, noise = draw_t_and_eps(z, loss.config, 1000, torch.Generator().manual_seed(2))
    with torch.no_grad():
        z_t = tiny_prior.add_noise(z, noise, t)
        cfg = classifier_free_guidance(eps(tiny_prior, z_t, t, ""), eps(tiny_prior, z_t, t, TARGET), 20.0)
    expected = DDS_CODE_GRAD_SCALE * timestep_weight(tiny_prior.alpha_bar(t), "sds") * (cfg - noise)
    torch.testing.assert_close(out.grad, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("t_range", [(100, 101), (600, 601)])
def test_nfsd_gradient_matches_the_formula_on_both_sides_of_t_200(tiny_prior, t_range):
    loss = make_loss("nfsd", tiny_prior, t_min=t_range[0], t_max=t_range[1])
    z, _ = latents()
    out = run(loss, z, None, seed=3)
    t, noise = draw_t_and_eps(z, loss.config, 1000, torch.Generator().manual_seed(3))
    assert int(t) == t_range[0]
    with torch.no_grad():
        z_t = tiny_prior.add_noise(z, noise, t)
        uncond, cond = eps(tiny_prior, z_t, t, ""), eps(tiny_prior, z_t, t, TARGET)
        delta_d = uncond if int(t) < 200 else uncond - eps(tiny_prior, z_t, t, loss.config.negative_prompt)
    expected = (1 - tiny_prior.alpha_bar(t)) * (delta_d + 7.5 * (cond - uncond))
    torch.testing.assert_close(out.grad, expected, atol=1e-5, rtol=1e-4)


def test_bridge_switches_stage_exactly_at_the_configured_step(tiny_prior, monkeypatch):
    loss = make_loss("bridge", tiny_prior, bridge_switch_step=3)
    cfg = loss.config
    z, _ = latents()
    requested = []
    original = tiny_prior.encode_text
    monkeypatch.setattr(tiny_prior, "encode_text", lambda prompts: requested.append(list(prompts)) or original(prompts))
    stages = [run(loss, z, None, step=step).terms["stage"] for step in range(6)]
    assert stages == [1, 1, 1, 2, 2, 2]
    stage1, stage2 = ["", TARGET], [TARGET + cfg.bridge_target_modifiers, TARGET + cfg.bridge_source_modifiers]
    assert requested == [stage1] * 3 + [stage2] * 3


def test_bridge_stage_two_matches_the_formula(tiny_prior):
    loss = make_loss("bridge", tiny_prior, bridge_switch_step=0)
    z, _ = latents()
    out = run(loss, z, None, seed=6, step=10)
    t, noise = draw_t_and_eps(z, loss.config, 1000, torch.Generator().manual_seed(6))
    with torch.no_grad():
        z_t = tiny_prior.add_noise(z, noise, t)
        delta = eps(tiny_prior, z_t, t, TARGET + loss.config.bridge_target_modifiers) - eps(
            tiny_prior, z_t, t, TARGET + loss.config.bridge_source_modifiers
        )
    expected = (1 - tiny_prior.alpha_bar(t)) * 40.0 * delta
    torch.testing.assert_close(out.grad, expected, atol=40 * 5e-6, rtol=1e-3)


# ---- LMC-SDS and its corrective ---------------------------------------------------------------
def blurred_triplets(n, generator):
    """(z, ẑ, t) with a learnable, t-dependent blur: ẑ = (1 − t)·z + t·blur₇(z) + noise (the bias b̂ψ models)."""
    z = F.avg_pool2d(torch.randn(n, 4, 18, 18, generator=generator), 3, stride=1)
    t = torch.rand(n, generator=generator) * 0.96 + 0.02
    blurred = F.avg_pool2d(z, 7, stride=1, padding=3, count_include_pad=False)
    mix = t.view(-1, 1, 1, 1)
    return z, (1 - mix) * z + mix * blurred + 0.05 * torch.randn(z.shape, generator=generator), t


def test_corrective_training_lowers_normalised_loss_on_held_out_triplets():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CorrectiveUNet(SMALL_CORRECTIVE)
    g = torch.Generator().manual_seed(0)
    held = blurred_triplets(16, torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = float(normalised_loss(model(held[0], held[2]), held[1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(90):
        train_step(model, optimizer, *blurred_triplets(32, g))
    with torch.no_grad():
        after = float(normalised_loss(model(held[0], held[2]), held[1]))
    # b̂ψ starts as the identity (residual), so `before` is the identity corrective's L_k: training beats it.
    assert after < 0.9 * before, (before, after)


def test_residual_corrective_starts_as_the_identity_and_paper_files_load_as_tanh(tmp_path):
    z, _, t = blurred_triplets(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(CorrectiveUNet(SMALL_CORRECTIVE)(z, t), z)
        paper = CorrectiveUNet(replace(SMALL_CORRECTIVE, residual=False))
        assert float(paper(z, t).abs().max()) < 1.0  # tanh head
    # A file written before `residual` existed holds the paper's tanh head.
    path = tmp_path / "old.pt"
    save_corrective(path, paper)
    state = torch.load(path, weights_only=False)
    del state["config"]["residual"]
    torch.save(state, path)
    loaded = load_corrective(path)
    assert loaded.config.residual is False
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, t), paper(z, t))


def test_corrective_trains_on_the_priors_denoised_triplets(tiny_prior):
    """The trainer's path: (z, ẑ_t, t) with ẑ_t the prior's one-step estimate (unconditional), then Adam on L_k."""
    g = torch.Generator().manual_seed(0)
    z = F.avg_pool2d(torch.randn(16, 4, 20, 20, generator=g), 5, stride=1)
    z, z_hat, t = denoised_triplets(tiny_prior, z, torch.Generator().manual_seed(1))
    # Same draws, explicit formula: t ~ U{20, …, 979}, ε ~ N(0, I), ẑ_t = (z_t − √(1−ᾱ) ε(z_t; ∅)) / √ᾱ.
    g = torch.Generator().manual_seed(1)
    steps = torch.randint(20, 980, (16,), generator=g)
    noise = torch.randn(z.shape, generator=g)
    with torch.no_grad():
        z_t = tiny_prior.add_noise(z, noise, steps)
        ab = tiny_prior.alpha_bar(steps)
        expected = (z_t - (1 - ab).sqrt() * eps(tiny_prior, z_t, steps, "")) / ab.sqrt()
    assert torch.equal(t, steps.float() / 1000)
    torch.testing.assert_close(z_hat, expected, atol=1e-4, rtol=1e-4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CorrectiveUNet(SMALL_CORRECTIVE)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    history = [train_step(model, optimizer, z, z_hat, t) for _ in range(25)]
    assert history[-1] < 0.97 * history[0], history


def test_lmc_needs_a_corrective_and_finds_the_prior_folders_one(tiny_prior_dir, tmp_path):
    from nerfedit.priors import load_prior

    folder = tmp_path / "prior"
    shutil.copytree(tiny_prior_dir, folder)
    prior = load_prior(str(folder), device="cpu")
    with pytest.raises(UserError) as info:
        build_loss(DistillationConfig(name="lmc"), prior)
    message = str(info.value)
    assert "\n" not in message and "train_corrective.py" in message and str(folder / "corrective") in message
    save_corrective(folder / "corrective" / "corrective.pt", CorrectiveUNet(SMALL_CORRECTIVE))
    loss = build_loss(DistillationConfig(name="lmc"), prior)
    assert loss.corrective.config == SMALL_CORRECTIVE


def test_lmc_gradient_matches_the_formula(tiny_prior):
    loss = make_loss("lmc", tiny_prior)
    z, _ = latents()
    out = run(loss, z, None, seed=9)
    t, noise = draw_t_and_eps(z, loss.config, 1000, torch.Generator().manual_seed(9))
    with torch.no_grad():
        z_t = tiny_prior.add_noise(z, noise, t)
        uncond, cond = eps(tiny_prior, z_t, t, ""), eps(tiny_prior, z_t, t, TARGET)
        ab = tiny_prior.alpha_bar(t)
        z_hat = (z_t - (1 - ab).sqrt() * uncond) / ab.sqrt()
        b = loss.corrective(z, t.float() / 1000)
        b = (z_hat.std(unbiased=False) / b.std(unbiased=False)) * (b - b.mean()) + b.mean()
    expected = (cond - uncond) + (b - z_hat) / 15.0
    torch.testing.assert_close(out.grad, expected, atol=1e-5, rtol=1e-4)


def test_lmc_fixed_eps_keeps_the_conditioning_noise_and_redraws_at_step_zero(tiny_prior):
    loss = make_loss("lmc", tiny_prior, fixed_eps=True)
    z, _ = latents()
    g = torch.Generator().manual_seed(0)
    with count_calls(tiny_prior.unet) as calls:
        for step in range(3):
            loss(z, prompt=TARGET, step=step, generator=g)
    kept = loss._fixed_eps.clone()
    loss(z, prompt=TARGET, step=3, generator=g)
    assert torch.equal(loss._fixed_eps, kept)
    loss(z, prompt=TARGET, step=0, generator=g)  # a new optimisation
    assert not torch.equal(loss._fixed_eps, kept)
    assert calls == [3, 3, 3]  # [∅, y] on the fixed-ε z_t and ∅ on the fresh-ε z_t, in one call


@pytest.mark.parametrize("name", ["dds", "cds"])
def test_the_official_arrangement_timed_beside_ours_computes_our_step_times_hw_over_64_squared(tiny_prior, name):
    """bench_losses.py's baselines (nerfedit/eval/official_steps.py) must do the official code's maths: with the same
    t, ε and patches, its gradient is ours × 64²/(h·w) (our scale is the code's at 64², module docstring of cds.py)."""
    from nerfedit.eval.official_steps import official_dds_loss, official_cds_loss

    official = {"dds": official_dds_loss, "cds": official_cds_loss}[name]
    z, z_source = latents(seed=5)
    ours = run(make_loss(name, tiny_prior), z, z_source, seed=9)
    config = DistillationConfig(name=name).with_defaults(tiny_prior.loss_defaults)
    leaf = z.detach().clone().requires_grad_(True)
    official(tiny_prior, leaf, z_source, torch.Generator().manual_seed(9), config, SOURCE, TARGET).backward()
    expected = ours.grad * 64**2 / (16 * 16)
    assert torch.allclose(leaf.grad, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))
    assert not torch.allclose(leaf.grad, expected * 1.01, rtol=1e-4, atol=0)  # the tolerance can tell a 1 % change
