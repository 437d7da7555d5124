"""The embedded `toy` prior: it loads through diffusers like Stable Diffusion, fits the size budget,
knows its words, follows a colour prompt, and its trainer runs (smoke mode)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerfedit.priors import toy_models

REPO = Path(__file__).resolve().parent.parent
TOY = REPO / "nerfedit" / "assets" / "toy"

pytestmark = pytest.mark.skipif(not (TOY / "model_index.json").exists(), reason="toy prior not exported yet")


@pytest.fixture(scope="module")
def components():
    parts = toy_models.load_components(TOY)
    for name in ("unet", "vae", "text_encoder"):
        parts[name].eval()
    return parts


def test_loads_like_stable_diffusion(components):
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    assert isinstance(components["vae"], AutoencoderKL)
    assert isinstance(components["unet"], UNet2DConditionModel)
    assert isinstance(components["text_encoder"], CLIPTextModel)
    assert isinstance(components["tokenizer"], CLIPTokenizer)
    assert isinstance(components["scheduler"], DDPMScheduler)
    index = json.loads((TOY / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["safety_checker"] == [None, None]

    vae, unet, scheduler = components["vae"], components["unet"], components["scheduler"]
    resolution = unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)
    assert resolution == 64 and vae.config.latent_channels == unet.config.in_channels == 4
    assert unet.config.cross_attention_dim == components["text_encoder"].config.hidden_size
    assert scheduler.config.beta_schedule == "scaled_linear" and scheduler.config.num_train_timesteps == 1000
    assert scheduler.config.prediction_type == "epsilon"
    # CDS reads the decoder's self-attention.
    assert any(".attn1" in name and name.startswith("up_blocks.") for name, _ in unet.named_modules())

    # Latents have about unit std (scaling_factor = 1/std, as SD's 0.18215).
    from nerfedit.world.render import sample_batch
    import numpy as np

    images = sample_batch(16, np.random.default_rng(123))["images"]
    with torch.no_grad():
        z = vae.encode(images * 2 - 1).latent_dist.mean * vae.config.scaling_factor
        rec = (vae.decode(z / vae.config.scaling_factor).sample + 1) / 2
    assert 0.5 < float(z.std()) < 2.0
    psnr = -10 * torch.log10(((rec.clamp(0, 1) - images) ** 2).mean())
    assert psnr > 25, f"VAE round trip PSNR {psnr:.1f} dB"


def test_whole_pipeline_loads():
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(TOY), safety_checker=None, requires_safety_checker=False)
    assert pipe.unet.config.sample_size == 16


def test_weights_within_budget():
    size = toy_models.weights_size_bytes(TOY)
    assert 0 < size <= 25_000_000, f"{size / 1e6:.2f} MB"


def test_tokenizer_words_and_unknowns(components):
    from nerfedit.world.vocab import vocabulary

    tokenizer = components["tokenizer"]
    for word in vocabulary():
        tokens = tokenizer.tokenize(word)
        assert len(tokens) == 1 and tokens[0] != tokenizer.unk_token, (word, tokens)
    assert tokenizer.unk_token in tokenizer.tokenize("banana")
    assert tokenizer.unk_token in tokenizer.tokenize("reds")  # no partial matches
    assert tokenizer.unk_token not in tokenizer.tokenize("a RED cube on a wooden floor")
    ids = tokenizer("a red cube on a wooden floor").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and len(ids) == 9
    config = components["text_encoder"].config
    assert config.vocab_size == len(tokenizer)
    assert (config.bos_token_id, config.eos_token_id) == (tokenizer.bos_token_id, tokenizer.eos_token_id)


def test_generation_follows_the_colour(components):
    pytest.importorskip("nerfedit.judge.model")
    from nerfedit.judge.model import DEFAULT_WEIGHTS, judge_images

    if not DEFAULT_WEIGHTS.exists():
        pytest.skip("judge weights not shipped yet")
    prompts = [f"a {c} {s} on a wooden floor" for c in ("red", "blue") for s in ("cube", "sphere", "cone", "torus")]
    torch.manual_seed(0)
    images = toy_models.sample_images(components, prompts, num_inference_steps=20, guidance_scale=7.5, seed=0)
    assert images.shape == (8, 3, 64, 64)
    colours = judge_images(images)["color"]
    hits = sum(c == p.split()[1] for c, p in zip(colours, prompts))
    assert hits >= 6, list(zip(prompts, colours))


def test_train_prior_smoke(tmp_path):
    out = tmp_path / "toy"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_prior.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["probe_loss_after"] < result["probe_loss_before"]
    parts = toy_models.load_components(out)
    assert parts["unet"].config.sample_size == 16


def test_fine_tune_keeps_the_vae_and_starts_from_the_prior(tmp_path):
    """`--init-from`: the VAE and its scaling factor are the folder's, the UNet moves only a little from the
    folder's weights (a few steps of fine-tuning, not a fresh network), on captions that may drop the floor."""
    from nerfedit.priors.training.common import Config
    from nerfedit.priors.training.denoiser import short_caption_ids
    from nerfedit.priors.training.stages import run_stages

    cfg = Config(num_images=16, chunk=16, unet_steps=2, unet_batch=4, warmup=0, ckpt_every=2, val_images=4,
                 short_caption_prob=1.0, init_from=str(TOY))  # fmt: skip
    out = tmp_path / "toy"
    run_stages(cfg, ["data", "vae", "latents", "unet", "export"], tmp_path / "work", out, tmp_path / "judge.pt", resume=False)
    before, after = toy_models.load_components(TOY), toy_models.load_components(out)
    assert after["vae"].config.scaling_factor == before["vae"].config.scaling_factor
    for name in ("vae", "unet"):
        old = torch.cat([p.detach().flatten() for p in before[name].parameters()])
        new = torch.cat([p.detach().flatten() for p in after[name].parameters()])
        change = float((new - old).norm() / old.norm())
        assert (change == 0.0) if name == "vae" else (0.0 < change < 0.05), (name, change)
    tokenizer = after["tokenizer"]
    ids = short_caption_ids(tokenizer)[1, 0, 0]  # cube, red, the phrase a user types
    words = [w for w in tokenizer.convert_ids_to_tokens(ids.tolist()) if w not in tokenizer.all_special_tokens]
    assert [w.replace("</w>", "") for w in words] == ["a", "red", "cube"], words


@pytest.mark.parametrize("flags, says", [(["--init-from", "no/such/prior"], "--init-from"), (["--short-captions", "1.5"], "--short-captions")])
def test_train_prior_bad_input_exits_2(tmp_path, flags, says, capsys):
    work = tmp_path / "work"
    script = runpy.run_path(str(REPO / "scripts" / "train_prior.py"))  # defines main without running it
    with pytest.raises(SystemExit) as exit_info:
        script["main"](["--workdir", str(work), *flags])
    assert exit_info.value.code == 2 and says in capsys.readouterr().err and not work.exists()
