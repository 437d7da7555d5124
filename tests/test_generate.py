"""`ns-train nerfedit-generate`: text-to-3D end to end on the CPU, its bad-input lines, viewer prompt, outputs.

The end-to-end runs use the embedded toy prior when it is installed (`nerfedit/assets/toy`), else the tiny
random SD model — with which only the plumbing is checked (a random UNet gives no signal for the loss to fall).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
import tyro

from nerfedit.losses.base import DistillationConfig
from nerfedit.nerf.generate.config import GenerateTrainerConfig, nerfedit_generate_config, slug
from nerfedit.nerf.generate.pipeline import (
    BRIDGE_SWITCH_FRACTION,
    GenerateLossConfig,
    circle_cameras,
    encode_renders,
    lit_renders,
    render_outputs,
    resolve_loss,
    vertical_rotation_range,
)
from nerfedit.priors.loader import TOY_PRIOR_DIR

METHOD_ENV = {"NERFSTUDIO_METHOD_CONFIGS": "nerfedit-generate=nerfedit.nerf.generate.config:nerfedit_generate_method"}
HAVE_TOY = (TOY_PRIOR_DIR / "unet").is_dir()


# ---- configuration -----------------------------------------------------------------------------------
def test_3d_defaults():
    lmc = resolve_loss(GenerateLossConfig(name="lmc"), 1000).with_defaults()
    assert lmc.guidance_scale == 20.0 and lmc.weighting == "sds"  # LMC-SDS's DreamFusion runs: ω = 20, w = 1 − ᾱ
    bridge = resolve_loss(GenerateLossConfig(name="bridge"), 1000).with_defaults()
    assert bridge.guidance_scale == 100.0 and bridge.bridge_switch_step == round(BRIDGE_SWITCH_FRACTION * 1000)
    sds = resolve_loss(GenerateLossConfig(name="sds", guidance_scale=30.0), 1000).with_defaults()
    assert sds.guidance_scale == 30.0 and sds.grad_scale == 1.0  # the user's value wins; 3D gradient unscaled
    assert resolve_loss(GenerateLossConfig(name="bridge", bridge_switch_step=7), 1000).bridge_switch_step == 7
    assert resolve_loss(GenerateLossConfig(name="bridge")).bridge_switch_step == DistillationConfig().bridge_switch_step


def test_vertical_rotation_range_gives_the_elevations():
    """random_train_pose draws polar angles arccos(1 − 2u), u ∈ (range + 90)/180: check our inverse."""
    low, high = vertical_rotation_range((15.0, 50.0))
    for value, elevation in ((low, 50.0), (high, 15.0)):
        polar = torch.rad2deg(torch.arccos(torch.tensor(1 - 2 * (value + 90) / 180)))
        assert float(90 - polar) == pytest.approx(elevation, abs=1e-3)


def test_circle_cameras_look_at_the_origin():
    cameras = circle_cameras(4, 30.0, 3.5, 1.5, 16)
    c2w = cameras.camera_to_worlds
    assert torch.allclose(c2w[:, :, 3].norm(dim=-1), torch.full((4,), 3.5))
    assert torch.allclose(c2w[:, 2, 3], torch.full((4,), 3.5 * 0.5), atol=1e-5)  # elevation 30°: z = r·sin 30°
    forward = -c2w[:, :, 2]  # cameras look down −z
    assert torch.allclose(forward, -c2w[:, :, 3] / 3.5, atol=1e-5)


def test_slug():
    assert slug("A red cube, on a wooden floor!") == "a-red-cube-on-a-wooden-floor"
    assert slug("   ") == "unnamed"


# ---- bad input: one line, exit code 2, nothing written ------------------------------------------------
def _ns_train(args: List[str]) -> None:
    """What `ns-train nerfedit-generate ARGS` does, in-process: tyro parses, then nerfstudio's train main."""
    from nerfstudio.scripts.train import main

    config = tyro.cli(tyro.conf.FlagConversionOff[GenerateTrainerConfig], default=nerfedit_generate_config(), args=args)
    main(config)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "empty prompt"),
        (["--pipeline.prompt", "   "], "empty prompt"),
        (["--pipeline.prompt", "a red cube", "--data", "scenes"], "takes no --data"),
        (["--pipeline.prompt", "a red cube", "--pipeline.datamanager.data", "scenes"], "takes no --data"),
        (["--pipeline.prompt", "a red cube", "--pipeline.loss.name", "dds"], "cannot generate from text"),
        (["--pipeline.prompt", "a red cube", "--pipeline.loss.name", "cds"], "cannot generate from text"),
        (["--pipeline.prompt", "a red cube", "--pipeline.loss.name", "fancy"], "unknown loss 'fancy'"),
        (["--pipeline.prompt", "a red cube", "--pipeline.prior", "/no/such/prior"], "no such folder"),
        (["--pipeline.prompt", "a red cube", "--pipeline.prior", "nobody/no-such-model"], "not available"),
        (["--pipeline.prompt", "a red cube", "--max-num-iterations", "0"], "--max-num-iterations"),
        (["--pipeline.prompt", "a red cube", "--pipeline.loss.name", "sds", "--pipeline.loss.fixed-eps", "True"], "LMC-SDS's option"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit) as exit_info:
        _ns_train(args + ["--output-dir", str(tmp_path / "outputs"), "--vis", "tensorboard"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nerfedit-generate: error:") and message in err[0], err
    assert not (tmp_path / "outputs").exists()  # refused before anything was written


def test_ns_train_command_refuses_bad_input(tmp_path):
    """The registered command itself (plugin discovery, tyro, nerfstudio's main): one line on stderr, exit 2."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ns-train"), "nerfedit-generate", "--pipeline.loss.name", "sds",
         "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, **METHOD_ENV, "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("nerfedit-generate:")]
    assert errors == ['nerfedit-generate: error: empty prompt: pass --pipeline.prompt "what to generate", e.g. "a red cube on a wooden floor"']
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_help_documents_the_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        tyro.cli(tyro.conf.FlagConversionOff[GenerateTrainerConfig], default=nerfedit_generate_config(), args=["--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for flag in ("--pipeline.prompt", "--pipeline.loss.name", "--pipeline.prior", "--pipeline.loss.fixed-eps",
                 "--pipeline.loss.bridge-switch-step", "--pipeline.seed", "--pipeline.datamanager.train-resolution"):  # fmt: skip
        assert flag in help_text
    assert "--pipeline.model.guidance-scale" not in help_text  # generfacto's own guidance settings are hidden
    assert "--pipeline.loss.patchnce-weight" not in help_text


# ---- rendering ---------------------------------------------------------------------------------------
def test_matter_colour_composites_over_the_background_once():
    """generfacto's accumulation · colour + (1 − accumulation) · background is Σ w·c + (1 − Σ w)·background with
    our RGB renderer (nerfstudio's RGBRenderer would mix white into half-transparent matter)."""
    from nerfedit.nerf.generate.model import MatterColourRenderer

    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])  # one ray, two samples
    weights = torch.tensor([[[0.3], [0.2]]])
    background = torch.tensor([[0.0, 1.0, 0.0]])
    accumulation = weights.sum(dim=-2)
    composite = accumulation * MatterColourRenderer()(rgb=rgb, weights=weights) + (1 - accumulation) * background
    assert torch.allclose(composite, torch.tensor([[0.3, 0.5, 0.2]]))


def test_sun_lit_training_render_shades_the_object_only():
    """`sun_lit`: the object's colour times the world's light for its normal, the background as it was."""
    from nerfedit.nerf.generate.model import GenerateModelConfig
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig
    from nerfedit.shading import object_shading, unit_direction

    pipeline = GeneratePipelineConfig(prompt="a red cube", model=GenerateModelConfig(sun_shading=True)).setup(device="cpu", test_mode="inference")
    up = torch.tensor([0.0, 0.0, 1.0])
    colour, background = torch.tensor([0.8, 0.4, 0.2]), torch.tensor([0.1, 0.2, 0.3])
    accumulation = torch.tensor([[1.0], [1.0], [0.0], [0.0]])  # a 2² training image: object above, background below
    outputs = {
        "accumulation": accumulation,
        "rgb_only": colour.expand(4, 3),
        "normals": (up + 1) / 2 * accumulation,  # generfacto's normals output
        "train_output": accumulation * colour + (1 - accumulation) * background,
    }
    sun = unit_direction(55.0, 30.0)
    lit = pipeline.model.sun_lit(outputs, sun)
    assert torch.allclose(lit[2:], background.expand(2, 3))
    assert torch.allclose(lit[:2], colour * object_shading(up, sun))


def test_floor_background_is_a_plane_seen_with_parallax():
    """With `floor_height`, a ray heading down takes the colour of the floor point it lands on (whatever camera it
    comes from, at the same distance: the haze grows with it), a ray heading up the direction-only background's;
    the floor MLP trains in a group of its own, the sky's MLP in the background's."""
    from nerfstudio.cameras.rays import RayBundle
    from nerfstudio.fields.generfacto_field import GenerfactoField

    from nerfedit.nerf.generate.floor import FloorField
    from nerfedit.nerf.generate.model import GenerateModelConfig
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    pipeline = GeneratePipelineConfig(prompt="a red cube", model=GenerateModelConfig(floor_height=-0.5)).setup(device="cpu", test_mode="inference")
    field = pipeline.model.field
    assert isinstance(field, FloorField)
    groups = pipeline.model.get_param_groups()
    assert {id(p) for p in groups["floor"]} == {id(p) for p in field.mlp_floor_color.parameters()}
    assert {id(p) for p in groups["background"]} == {id(p) for p in field.mlp_background_color.parameters()}
    origins = torch.tensor([[2.0, 0.0, 1.5], [0.1, -1.5, 1.5], [2.0, 0.0, 1.5], [0.1, -1.5, 1.5]])
    landing = torch.tensor([0.3, 0.2, -0.5])
    directions = torch.cat([landing - origins[:2], torch.tensor([[0.0, 0.6, 0.8], [0.0, 0.6, 0.8]])])
    directions = directions / directions.norm(dim=-1, keepdim=True)
    bundle = RayBundle(origins=origins, directions=directions, pixel_area=torch.ones(4, 1))
    with torch.no_grad():
        rgb = field.get_background_rgb(bundle)
        sky = GenerfactoField.get_background_rgb(field, bundle)
    assert torch.allclose(rgb[0], rgb[1], atol=1e-5)  # one floor point, two cameras
    assert torch.allclose(rgb[2:], sky[2:])  # upward rays: generfacto's background at infinity
    assert not torch.allclose(rgb[0], sky[0], atol=1e-3)


def test_floor_colour_receives_gradient_and_follows_a_target():
    """The floor's colour receives the gradient of what is rendered over it, and its own optimiser group (the
    method's config) sets how fast it follows: at the default (3e-3) it reaches a grass-green target in 40 steps; at
    the sky's 3e-4 (the default before the image route) it stays near its grey start."""
    from nerfstudio.cameras.rays import RayBundle

    from nerfedit.nerf.generate.config import FLOOR_LR
    from nerfedit.nerf.generate.model import GenerateModelConfig
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    target = torch.tensor([0.30, 0.47, 0.16])  # the world's grass, on average
    floor_group = nerfedit_generate_config().optimizers["floor"]["optimizer"]
    errors = {}
    assert floor_group.lr == FLOOR_LR
    for lr in (FLOOR_LR, 3e-4):
        torch.manual_seed(0)
        model = GeneratePipelineConfig(prompt="a red cube on grass", model=GenerateModelConfig(floor_height=-0.45)).setup(device="cpu", test_mode="inference").model
        optimizer = type(floor_group)(lr=lr, eps=floor_group.eps).setup(params=model.get_param_groups()["floor"])
        origins = torch.tensor([[0.0, -3.0, 1.5]]).expand(64, 3)
        directions = torch.cat([torch.rand(64, 2) * 1.2 - 0.6, torch.full((64, 1), -0.5)], dim=-1) - torch.tensor([0.0, -1.0, 0.0])
        bundle = RayBundle(origins=origins, directions=directions / directions.norm(dim=-1, keepdim=True), pixel_area=torch.ones(64, 1))
        for _ in range(40):
            optimizer.zero_grad()
            error = (model.field.get_background_rgb(bundle) - target).pow(2).mean()
            error.backward()
            optimizer.step()
        errors[lr] = float(error)
    assert errors[FLOOR_LR] < 0.01 and errors[3e-4] > 0.04, errors  # from ≈ 0.06 (grey)


def test_floor_lies_in_the_objects_shadow_under_a_sun():
    """With a sun set, the floor is lit as the world lights its floor: where the field's ball stands between a
    floor point and the sun, the point is darker (ambient only, and that dimmed by the ball close above it: the
    world's contact darkening) than one in the open (ambient + sun)."""
    from nerfedit.nerf.generate.model import GenerateModelConfig
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig
    from nerfedit.shading import CONTACT_DARKENING, floor_shading

    model = GenerateModelConfig(floor_height=-0.5, density_bias_scale=20.0, density_bias_radius=0.35, collider_radius=0.8)
    field = GeneratePipelineConfig(prompt="a red cube", model=model).setup(device="cpu", test_mode="inference").model.field
    sun = torch.tensor([0.0, 0.0, 1.0])  # overhead: the ball's shadow is the disc below it
    landing = torch.tensor([[0.0, 0.0, -0.5], [0.0, 2.0, -0.5]])  # under the ball, in the open
    with torch.no_grad():
        albedo = field.floor_rgb(landing)
        field.sun = sun
        lit = field.floor_rgb(landing)
    shade = lit / albedo
    assert torch.allclose(shade[1], floor_shading(sun, torch.tensor(1.0)).expand(3), atol=1e-4)
    in_shadow = floor_shading(sun, torch.tensor(0.0), contact=torch.tensor([1.0, 1.0 - CONTACT_DARKENING]))
    assert (shade[0] < in_shadow[0] - 0.01).all() and (shade[0] > in_shadow[1]).all()


def test_lit_training_render_with_a_floor():
    """A training step after `start_lambertian_training` with a floor: the render is lit by a random sun (the
    floor too, in the object's shadow), finite, and its gradient reaches the field's density."""
    from nerfedit.nerf.generate.model import GenerateModelConfig
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    model_config = GenerateModelConfig(floor_height=-0.45, sun_shading=True, density_bias_scale=10.0)
    pipeline = GeneratePipelineConfig(prompt="a red cube", model=model_config).setup(device="cpu", test_mode="inference")
    model = pipeline.model
    model.train()
    model.train_shaded = True
    ray_bundle, _ = pipeline.datamanager.next_train(200)
    outputs = model(ray_bundle)
    assert model.field.sun is not None
    assert outputs["train_output"].shape == (len(ray_bundle), 3) and torch.isfinite(outputs["train_output"]).all()
    outputs["train_output"].sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.field.mlp_base.parameters())


def test_collider_radius_and_opacity_weight_are_what_the_config_says():
    """The sphere the rays are sampled in has `collider_radius`; the opacity penalty is weighted once by
    `opacity_loss_mult` (generfacto weights it twice)."""
    from nerfedit.nerf.generate.model import GenerateModelConfig
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    model_config = GenerateModelConfig(collider_radius=0.6, opacity_loss_mult=0.1)
    pipeline = GeneratePipelineConfig(prompt="a red cube", model=model_config).setup(device="cpu", test_mode="inference")
    model = pipeline.model
    assert model.collider.radius == 0.6
    model.train()
    ray_bundle, batch = pipeline.datamanager.next_train(200)
    outputs = model(ray_bundle)
    weights = outputs["weights_list"][-1]
    expected = 0.1 * torch.sqrt(weights.sum(dim=-2) ** 2 + 0.01).mean()
    assert torch.allclose(model.get_loss_dict(outputs, batch)["opacity_loss"], expected)
    ray_bundle = model.collider(ray_bundle)  # rays that meet the sphere are sampled between its two surfaces
    hits = (ray_bundle.fars > ray_bundle.nears).squeeze(-1)
    assert hits.any()
    for ends in (ray_bundle.nears, ray_bundle.fars):
        radii = (ray_bundle.origins + ends * ray_bundle.directions)[hits].norm(dim=-1)
        assert torch.allclose(radii, torch.full_like(radii, 0.6), atol=1e-4)


# ---- end to end ---------------------------------------------------------------------------------------
def _config(tmp_path: Path, prior: str, loss: str, steps: int, resolution: int = 32):
    config = nerfedit_generate_config()
    config.pipeline.prompt = "a red cube on a wooden floor"
    config.pipeline.prior = prior
    config.pipeline.loss.name = loss
    config.pipeline.datamanager.train_resolution = config.pipeline.datamanager.eval_resolution = resolution
    config.pipeline.turntable_frames = 4
    config.pipeline.seed = 0
    config.max_num_iterations = steps
    config.steps_per_save = steps
    config.vis = "tensorboard"
    config.output_dir = tmp_path / "outputs"
    config.logging.local_writer.enable = False
    return config


def _train(config):
    """What ns-train does after parsing (nerfstudio's main and train_loop), keeping the trainer for inspection."""
    from tiny_runs import setup_trainer

    return setup_trainer(config)


def _probe(pipeline, views: int = 4, draws: int = 4) -> float:
    """The loss core's value on fixed orbit views, timesteps and noise (eval-mode renders): before vs after."""
    resolution = pipeline.datamanager.config.eval_resolution
    images = render_outputs(pipeline.model, circle_cameras(views, 30.0, 3.5, 1.5, resolution))["rgb"]
    with torch.no_grad():
        latents = encode_renders(pipeline.get_prior(), images)
    values = []
    for draw in range(draws):
        out = pipeline.get_loss()(latents, prompt=pipeline.prompt, step=0, generator=torch.Generator().manual_seed(draw))
        values.append(float(out.loss))
    return sum(values) / len(values)


def _prior_for_e2e(tiny_prior_dir: Path) -> str:
    return "toy" if HAVE_TOY else str(tiny_prior_dir)


def test_generate_end_to_end(tmp_path, tiny_prior_dir, monkeypatch):
    """A short run: the field changes, the loss on fixed views/timesteps/noise falls, nerfstudio's layout is
    written (config, checkpoint, turntable) and loads the way ns-render / ns-export load it."""
    from nerfstudio.utils.eval_utils import eval_setup

    trainer = _train(_config(tmp_path, _prior_for_e2e(tiny_prior_dir), "sds", steps=12))
    pipeline = trainer.pipeline
    before = _probe(pipeline)
    field = {k: v.clone() for k, v in pipeline.model.field.state_dict().items()}
    trainer.train()
    after = _probe(pipeline)
    change = max(float((v - field[k]).abs().max()) for k, v in pipeline.model.field.state_dict().items())
    assert change > 1e-3
    if HAVE_TOY:
        assert after < before, (before, after)

    run = Path(trainer.base_dir)
    checkpoints = sorted((run / "nerfstudio_models").glob("step-*.ckpt"))
    assert (run / "config.yml").is_file() and checkpoints and (run / "turntable.mp4").stat().st_size > 0
    assert (run / "turntable.png").is_file()
    from nerfstudio.configs.method_configs import all_methods

    monkeypatch.setitem(all_methods, "nerfedit-generate", nerfedit_generate_config())  # as the entry point does
    _, loaded, _, step = eval_setup(run / "config.yml", test_mode="inference")
    assert step == 11 and loaded._prior is None  # the last step; no prior loaded outside training
    views = lit_renders(loaded.model, circle_cameras(2, 30.0, 3.5, 1.5, 16))
    assert views["lit"].shape == views["rgb"].shape == (2, 3, 16, 16) and torch.isfinite(views["lit"]).all()
    empty = (views["accumulation"] < 1e-4).expand_as(views["rgb"])  # the sun lights the object, not the background
    assert torch.allclose(views["lit"][empty], views["rgb"][empty].clamp(0, 1), atol=1e-3)


class _WordPrior:
    """Stands in for a prior with a word-level vocabulary (like toy's): only `known` words are known."""

    name = "words"

    def __init__(self, known):
        self.known = set(known)

    def unknown_words(self, prompt: str):
        return [w for w in prompt.replace(",", " ").split() if w not in self.known]


def _view_prompts(model):
    selector = model.text_embeddings
    return {selector.front_embed, selector.side_embed, selector.back_embed, selector.top_embed}


def test_view_prompts_drop_suffixes_the_prior_does_not_know(capsys):
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    pipeline = GeneratePipelineConfig(prompt="a red cube").setup(device="cpu", test_mode="inference")
    pipeline._prior = _WordPrior("a red cube blue sphere front side back view overhead".split())
    pipeline.set_prompt("a  red cube")
    assert _view_prompts(pipeline.model) == {"a red cube, front view", "a red cube, side view", "a red cube, back view", "a red cube, overhead view"}
    # front/back are views generfacto picks by azimuth (0° front, 180° back), overhead above 50° elevation
    assert pipeline.model.view_prompt({"vertical": torch.tensor([60.0]), "central": torch.tensor([180.0])}) == "a red cube, back view"
    assert pipeline.model.view_prompt({"vertical": torch.tensor([10.0]), "central": torch.tensor([0.0])}) == "a red cube, overhead view"

    pipeline._prior = _WordPrior("a red cube blue sphere".split())
    pipeline.set_prompt("a blue sphere")
    assert _view_prompts(pipeline.model) == {"a blue sphere"}
    assert "does not know the view suffixes" in capsys.readouterr().out


def test_prompt_is_editable_in_the_viewer(tiny_prior_dir):
    """The viewer's Prompt box (a ViewerText on the pipeline) takes effect at the next training step."""
    from nerfstudio.viewer.utils import parse_object
    from nerfstudio.viewer.viewer_elements import ViewerElement

    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    config = GeneratePipelineConfig(prompt="a red cube", prior=str(tiny_prior_dir))
    config.loss.name = "sds"
    config.datamanager.train_resolution = 16
    pipeline = config.setup(device="cpu", test_mode="val")
    elements = dict(parse_object(pipeline, ViewerElement, "Custom Elements"))  # how nerfstudio's viewer finds them
    assert elements == {"Custom Elements/viewer_prompt": pipeline.viewer_prompt}
    pipeline.viewer_prompt.value = "a blue sphere"
    pipeline.train()
    _, loss_dict, metrics = pipeline.get_train_loss_dict(step=0)
    assert pipeline.prompt == "a blue sphere" and pipeline.model.text_embeddings.base_embed == "a blue sphere"
    assert loss_dict["distillation_loss"].requires_grad and "distillation/sds" in metrics


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TOY, reason="needs the embedded toy prior")
def test_lmc_generates_the_prompted_colour_with_toy(tmp_path):
    """A full-length CPU run of the default method (LMC-SDS, toy): the judge reads the prompted colour on most of 16
    lit orbit views, and the shape on half of them, of an object the field really renders (not the background)."""
    from nerfedit.judge.model import judge_images

    config = _config(tmp_path, "toy", "lmc", steps=nerfedit_generate_config().max_num_iterations)
    config.pipeline.datamanager.train_resolution = nerfedit_generate_config().pipeline.datamanager.train_resolution
    config.pipeline.datamanager.eval_resolution = 64
    trainer = _train(config)
    trainer.train()
    views = lit_renders(trainer.pipeline.model, circle_cameras(16, 30.0, 3.5, 1.5, 64))
    read = judge_images(views["lit"])
    assert sum(c == "red" for c in read["color"]) >= 12, read["color"]
    assert sum(s == "cube" for s in read["shape"]) >= 8, read["shape"]
    assert float((views["accumulation"] > 0.5).float().mean()) > 0.03  # an object, not a red background


@pytest.mark.parametrize("route", ["image", "latent"])
def test_each_route_carries_the_loss_into_the_field(route, tiny_prior_dir):
    """--pipeline.distill-into image (the default) and latent both give the field a finite, non-zero gradient."""
    from nerfedit.nerf.generate.pipeline import GeneratePipelineConfig

    config = GeneratePipelineConfig(prompt="a red cube", prior=str(tiny_prior_dir), distill_into=route, seed=0)
    config.loss.name = "sds"
    config.datamanager.train_resolution = 16
    pipeline = config.setup(device="cpu", test_mode="val")
    pipeline.train()
    _, loss_dict, _ = pipeline.get_train_loss_dict(step=0)
    loss_dict["distillation_loss"].backward()
    grads = [p.grad for p in pipeline.model.field.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.skipif(not HAVE_TOY, reason="needs the embedded toy prior")
def test_decoded_step_target_moves_the_latent_along_the_gradient():
    """x* = x + D(z − g) − D(z): no gradient, no change; with g pointing from a goal latent to z, E(x*) lies nearer
    the goal than E(x) (what fitting the render to x* is for)."""
    from nerfedit.nerf.common.prior_options import decoded_step_target
    from nerfedit.priors.loader import load_prior
    from nerfedit.world.render import sample_batch

    prior = load_prior("toy", "cpu")
    images = sample_batch(2, np.random.default_rng(0))["images"]
    x, goal = images[:1], images[1:]
    with torch.no_grad():
        z, z_goal = prior.encode_images(x), prior.encode_images(goal)
        assert torch.equal(decoded_step_target(prior, x, z, torch.zeros_like(z)), x)
        target = decoded_step_target(prior, x, z, 0.5 * (z - z_goal))
        assert float((prior.encode_images(target.clamp(0, 1)) - z_goal).norm()) < 0.8 * float((z - z_goal).norm())
