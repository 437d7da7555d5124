"""`ns-train nerfedit-small` end to end on the CPU: reconstruct, edit, outputs, resume, bad input.

One short real run (module fixture, ~1 min on 2 cores): the bundled red-cube scene, the `toy` prior
(the tiny random SD model until the toy prior is shipped), 40 reconstruction steps and 8 CDS edit
steps at 32×32. The assertions read its checkpoints and output folder; the rest runs in-process on
the pipeline nerfstudio's own `eval_setup` loads from that folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nerfedit.nerf  # noqa: F401  (the plugin's import applies its run-time CPU workarounds: checkpoint loading)

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "scenes" / "red_cube"
TOY = REPO / "nerfedit" / "assets" / "toy"
NS_TRAIN = str(Path(sys.executable).parent / "ns-train")
SOURCE_PROMPT = "a red cube on a wooden floor"
TARGET_PROMPT = "a blue cube on a wooden floor"
RECONSTRUCT, EDIT = 40, 8


def _env() -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = os.environ.get("NERFEDIT_TEST_THREADS", "1")  # see conftest: spin-waiting threads
    env["HF_HUB_OFFLINE"] = "1"
    return env


def ns_train(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([NS_TRAIN, *args], capture_output=True, text=True, env=_env(), timeout=timeout, cwd=REPO)


def digest(folder: Path) -> str:
    """Content hash of every file under `folder` (to prove the input data is never modified)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory) -> Path:
    """The embedded toy prior if shipped, else the tiny random SD model (nerfedit/priors/tiny.py)."""
    if (TOY / "unet").is_dir():
        return TOY
    from nerfedit.priors.tiny import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_nerf"))


def run_args(out: Path, prior: Path, *extra: str) -> list:
    return [
        "nerfedit-small",
        "--data", str(SCENE),
        "--output-dir", str(out),
        "--experiment-name", "ci",
        "--vis", "tensorboard",
        "--pipeline.prior", str(prior),
        "--pipeline.source-prompt", SOURCE_PROMPT,
        "--pipeline.target-prompt", TARGET_PROMPT,
        "--pipeline.reconstruct-steps", str(RECONSTRUCT),
        "--pipeline.edit-resolution", "32",
        "--pipeline.turntable-frames", "4",
        "--steps-per-save", str(RECONSTRUCT),
        "--save-only-latest-checkpoint", "False",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def edit_run(tmp_path_factory, prior_dir):
    """One real `ns-train nerfedit-small` run: its folder and the scene's digest before it."""
    if not SCENE.is_dir():
        pytest.skip("scenes/red_cube is not in the checkout")
    out = tmp_path_factory.mktemp("ns_outputs")
    before = digest(SCENE)
    result = ns_train(*run_args(out, prior_dir, "--timestamp", "run", "--pipeline.edit-steps", str(EDIT)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = out / "ci" / "nerfedit-small" / "run"
    return {"run": run, "out": out, "scene_digest": before, "stdout": result.stdout}


def checkpoint(run: Path, step: int) -> dict:
    return torch.load(run / "nerfstudio_models" / f"step-{step:09d}.ckpt", map_location="cpu")


def field_params(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state["pipeline"].items() if k.startswith(prefix)}


# ---- the run ----------------------------------------------------------------------------------
def test_run_writes_nerfstudio_layout_and_turntable(edit_run):
    run = edit_run["run"]
    assert (run / "config.yml").is_file()
    assert (run / "dataparser_transforms.json").is_file()
    assert (run / "nerfstudio_models" / f"step-{RECONSTRUCT + EDIT - 1:09d}.ckpt").is_file()
    video = run / "turntable.mp4"
    assert video.is_file() and video.stat().st_size > 1000
    import imageio.v2 as imageio

    frames = imageio.mimread(video)
    assert len(frames) == 4 and frames[0].shape[1] > frames[0].shape[0]  # source | edited, side by side
    assert digest(SCENE) == edit_run["scene_digest"], "the input scene was modified"


def test_source_frozen_and_target_changed(edit_run):
    run = edit_run["run"]
    first_edit = checkpoint(run, RECONSTRUCT)  # saved after the first edit step
    last = checkpoint(run, RECONSTRUCT + EDIT - 1)
    assert int(last["pipeline"]["_model.edit_start_step"]) == RECONSTRUCT
    source_first = field_params(first_edit, "_model.source.field.")
    source_last = field_params(last, "_model.source.field.")
    target_last = field_params(last, "_model.field.")
    assert source_first.keys() == source_last.keys() == target_last.keys() and source_last
    for name in source_last:
        assert torch.equal(source_first[name], source_last[name]), f"source {name} changed during the edit"
    changed = [n for n in target_last if not torch.allclose(target_last[n], source_last[n], atol=1e-6)]
    assert changed, "no target field parameter moved during the edit"


@pytest.fixture(scope="module")
def loaded(edit_run):
    """The run's pipeline as nerfstudio's eval_setup (ns-render, ns-viewer, ns-eval) loads it."""
    from nerfstudio.utils.eval_utils import eval_setup

    config, pipeline, path, step = eval_setup(edit_run["run"] / "config.yml", test_mode="test")
    return config, pipeline, step


def test_eval_setup_loads_and_renders(loaded):
    from nerfedit.nerf.edit.pipeline import NerfEditPipeline

    config, pipeline, step = loaded
    assert isinstance(pipeline, NerfEditPipeline) and step == RECONSTRUCT + EDIT - 1
    assert pipeline.model.source_frozen
    camera = pipeline.datamanager.train_dataset.cameras[0:1].to(pipeline.device)
    camera.rescale_output_resolution(0.25)
    outputs = pipeline.model.get_outputs_for_camera(camera)
    assert outputs["rgb"].shape == (16, 16, 3) and torch.isfinite(outputs["rgb"]).all()


def test_resume_continues_in_the_same_folder(edit_run, prior_dir):
    """Same folder, same source; the views' 2D edits continue from the ones saved beside the checkpoint."""
    run = edit_run["run"]
    saved = torch.load(run / "view_edits" / f"step-{RECONSTRUCT + EDIT - 1:09d}.pt")
    result = ns_train(*run_args(edit_run["out"], prior_dir, "--load-dir", str(run / "nerfstudio_models"), "--pipeline.edit-steps", str(EDIT + 2)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "resuming" in result.stdout
    resumed = checkpoint(run, RECONSTRUCT + EDIT + 1)  # two more steps, same folder
    assert int(resumed["pipeline"]["_model.edit_start_step"]) == RECONSTRUCT
    continued = torch.load(run / "view_edits" / f"step-{RECONSTRUCT + EDIT + 1:09d}.pt")
    steps = lambda edits: sum(edit["steps"] for edit in edits.values())  # noqa: E731
    assert saved and steps(continued) == steps(saved) + 2 * 16  # two visits of --pipeline.view-steps-per-visit
    assert sorted(p.name for p in (edit_run["out"] / "ci" / "nerfedit-small").iterdir()) == ["run"]


def test_reuse_source_starts_a_new_edit_of_the_same_source(edit_run, prior_dir):
    run = edit_run["run"]
    result = ns_train(*run_args(edit_run["out"], prior_dir, "--load-dir", str(run / "nerfstudio_models"),
                                "--pipeline.reuse-source", "True", "--timestamp", "again", "--pipeline.edit-steps", "2"))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    again = edit_run["out"] / "ci" / "nerfedit-small" / "again"
    new = checkpoint(again, 1)
    old = checkpoint(run, RECONSTRUCT + EDIT - 1)
    assert int(new["pipeline"]["_model.edit_start_step"]) == 0
    for name, value in field_params(old, "_model.source.field.").items():
        assert torch.equal(new["pipeline"]["_model.source.field." + name], value), name
    from nerfstudio.utils.eval_utils import eval_setup  # the new run loads as itself (its edit, not its source)

    _, pipeline, _, _ = eval_setup(again / "config.yml", test_mode="inference")
    for name, value in field_params(new, "_model.field.").items():
        assert torch.equal(pipeline.model.field.state_dict()[name], value), name


# ---- bad input: one line, exit code 2, nothing written ----------------------------------------
@pytest.mark.parametrize("change, message", [({"--pipeline.target-prompt": ""}, "empty target prompt")])
def test_bad_input_is_one_line_before_training(tmp_path, prior_dir, change, message):
    """Through the real CLI (each other bad input is checked by the same `validate`, below, in-process)."""
    if not SCENE.is_dir():
        pytest.skip("scenes/red_cube is not in the checkout")
    args = run_args(tmp_path, prior_dir, "--pipeline.edit-steps", "1")
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    result = ns_train(*args, timeout=300)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("nerfedit: error:") and message in lines[-1]
    assert "Traceback" not in result.stderr + result.stdout
    assert not any(tmp_path.iterdir()), "a run folder was written for bad input"


def _config(prior_dir: Path, **pipeline):
    from nerfedit.nerf.edit.method_configs import nerfedit_small_config

    config = nerfedit_small_config()
    config.pipeline.datamanager.data = SCENE
    config.pipeline.prior = str(prior_dir)
    config.pipeline.source_prompt = SOURCE_PROMPT
    config.pipeline.target_prompt = TARGET_PROMPT
    for key, value in pipeline.items():
        setattr(config.pipeline, key, value)
    return config


def test_validation_rejects_each_bad_input(tmp_path, prior_dir, monkeypatch):
    from nerfedit.errors import UserError
    from nerfedit.nerf.edit.trainer import validate

    validate(_config(prior_dir))  # the good one passes

    config = _config(prior_dir)
    config.pipeline.datamanager.data = tmp_path / "no_scene"
    with pytest.raises(UserError, match="no such file or folder"):
        validate(config)
    (tmp_path / "empty_scene").mkdir()
    config.pipeline.datamanager.data = tmp_path / "empty_scene"
    with pytest.raises(UserError, match="no transforms.json"):
        validate(config)

    with pytest.raises(UserError, match="empty target prompt"):
        validate(_config(prior_dir, target_prompt="  "))

    config = _config(prior_dir)
    config.pipeline.loss.name = "sdss"
    with pytest.raises(UserError, match="unknown loss 'sdss'"):
        validate(config)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not available"):
        validate(_config(prior_dir, prior="stabilityai/not-a-cached-model"))

    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "step-000000100.ckpt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    config = _config(prior_dir)
    config.load_dir = tmp_path / "corrupt"
    with pytest.raises(UserError, match="cannot be loaded"):
        validate(config)

    (tmp_path / "foreign").mkdir()
    torch.save({"step": 1, "pipeline": {"weights": torch.zeros(1)}}, tmp_path / "foreign" / "step-000000001.ckpt")
    config.load_dir = tmp_path / "foreign"
    with pytest.raises(UserError, match="not a nerfacto"):
        validate(config)

    config.load_dir = tmp_path / "missing"
    with pytest.raises(UserError, match="no such folder"):
        validate(config)

    with pytest.raises(UserError, match="reconstruct-steps"):
        validate(_config(prior_dir, reconstruct_steps=0))

    with pytest.raises(UserError, match="crops and novel views need --pipeline.distill-into field"):
        validate(_config(prior_dir, novel_view_prob=0.5))
    validate(_config(prior_dir, novel_view_prob=0.5, distill_into="field"))


# ---- in-process pieces ------------------------------------------------------------------------
def test_nerfacto_checkpoint_becomes_the_source(loaded):
    from nerfedit.nerf.edit.source import load_source

    _, pipeline, _ = loaded
    model = pipeline.model
    saved = {k: v.clone() for k, v in pipeline.state_dict().items()}
    nerfacto_state = {f"_model.{k}": v.clone() + 0.5 for k, v in model.target_state_dict().items() if k != "device_indicator_param"}
    load_source(model, nerfacto_state, step=1234)
    assert int(model.edit_start_step) == 0
    for key, value in model.source.state_dict().items():
        if key in model.target_state_dict():
            assert torch.equal(value, model.target_state_dict()[key]), key
    field_key = next(k for k in nerfacto_state if k.startswith("_model.field."))
    assert torch.equal(model.source.state_dict()[field_key[len("_model.field.") - len("field.") :]], nerfacto_state[field_key])
    pipeline.load_state_dict(saved)  # the next tests use the edited run again


def test_appearance_only_freezes_geometry(loaded):
    _, pipeline, _ = loaded
    model = pipeline.model
    model.set_edit_trainable(appearance_only=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and p.numel()}
    assert trainable and all(n.startswith(("field.mlp_head", "field.embedding_appearance")) for n in trainable)
    model.set_edit_trainable(appearance_only=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and p.numel()}
    assert any(n.startswith("field.mlp_base") for n in trainable) and any(n.startswith("proposal_networks") for n in trainable)
    assert not any(n.startswith(("source.", "camera_optimizer.")) for n in trainable)


def test_deferred_backprop_reproduces_the_rendered_image(loaded):
    """Pass 2 (re-render with a graph, chunk by chunk) gives the gradient of exactly pass 1's image."""
    from nerfedit.nerf.common.render import seeded_rng, deferred_backward, ray_bundle, render_image, scaled_camera

    _, pipeline, _ = loaded
    model = pipeline.model
    model.set_edit_trainable(appearance_only=False)
    model.train()
    camera = scaled_camera(pipeline.datamanager.train_dataset.cameras, 3, 12)
    bundle, height, width = ray_bundle(camera, 3, pipeline.device)
    chunk, seed = 50, 7
    image = render_image(model, bundle, chunk, seed)
    upstream = torch.randn_like(image)

    model.zero_grad(set_to_none=True)
    deferred_backward(model, bundle, upstream, chunk, seed=seed)
    deferred = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.zero_grad(set_to_none=True)
    total = 0
    for i, s in enumerate(range(0, len(bundle), chunk)):
        with seeded_rng(bundle, seed, i):
            rgb = model(bundle[s : s + chunk])["rgb"]
        assert torch.allclose(rgb.detach(), image[s : s + chunk], atol=1e-5), "pass 2 did not reproduce pass 1"
        total = total + (rgb * upstream[s : s + chunk]).sum()
    total.backward()
    for name, grad in deferred.items():
        assert torch.allclose(grad, model.get_parameter(name).grad, atol=1e-5, rtol=1e-4), name
    model.zero_grad(set_to_none=True)


def test_preview_without_viewer_saves_source_and_preview(loaded, tmp_path, monkeypatch):
    from nerfedit.nerf.edit.viewer import preview

    _, pipeline, _ = loaded
    monkeypatch.chdir(tmp_path)
    pipeline.config.preview_steps = 2
    path = preview(pipeline)
    import imageio.v2 as imageio

    panel = imageio.imread(path)
    size = pipeline.edit_resolution()
    assert panel.shape == (size, 2 * size + 2, 3)
    assert "data:image/png;base64," in pipeline.nerfedit.e8_preview_image.content


def test_appearance_only_step_reuses_frozen_geometry(loaded, monkeypatch):
    """Appearance-only edits render from cached geometry: same RGB as nerfacto's forward, colour head only."""
    from nerfedit.nerf.common.render import ray_bundle, render_with_graph, scaled_camera, seeded_rng

    _, pipeline, _ = loaded
    model = pipeline.model
    monkeypatch.setattr(pipeline.config, "edit_appearance_only", True)
    monkeypatch.setattr(pipeline.config, "edit_resolution", 16)
    pipeline.prepare_edit()
    pipeline.train()

    camera = scaled_camera(pipeline.datamanager.train_dataset.cameras, 2, 16)
    bundle, _, _ = ray_bundle(camera, 2, pipeline.device)
    with seeded_rng(bundle, 5, 0):
        geometry = model.frozen_geometry(bundle)
    full, _ = render_with_graph(model, bundle, seed=5)
    assert torch.allclose(model.render_appearance(geometry), full, atol=1e-5)

    step = int(model.edit_start_step) + 3
    stats = pipeline.datamanager.stats
    hits = dict(stats)
    for _ in range(2):  # the same step twice: the same view
        model.zero_grad(set_to_none=True)
        pipeline.edit_step(step)  # back-propagates itself
    assert stats["geometry_cache_hits"] == hits["geometry_cache_hits"] + 1
    assert stats["source_cache_hits"] == hits["source_cache_hits"] + 1
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and all(n.startswith(("field.mlp_head", "field.embedding_appearance")) for n in with_grad)
    model.zero_grad(set_to_none=True)
    model.set_edit_trainable(appearance_only=False)
    pipeline.prepare_edit()


@pytest.mark.parametrize("route, render_chunk", [("views", 1 << 15), ("views", 100), ("field", 1 << 15), ("field", 100)])
def test_edit_step_on_each_route_trains_only_the_colour_head(loaded, monkeypatch, route, render_chunk):
    """views: the drawn view's latent takes view_steps_per_visit loss steps and the render is fitted to it;
    field: the loss back-propagates through the encoder. Either way only the colour head gets gradients, also when
    the 16² render (256 rays) is above --pipeline.render-chunk and goes through deferred back-propagation."""
    _, pipeline, _ = loaded
    model = pipeline.model
    monkeypatch.setattr(pipeline.config, "distill_into", route)
    monkeypatch.setattr(pipeline.config, "render_chunk", render_chunk)
    monkeypatch.setattr(pipeline.config, "edit_appearance_only", True)
    monkeypatch.setattr(pipeline.config, "edit_resolution", 16)
    monkeypatch.setattr(pipeline.config, "view_steps_per_visit", 3)
    pipeline.prepare_edit()
    pipeline.train()
    step = int(model.edit_start_step) + 5
    model.zero_grad(set_to_none=True)
    renders = []
    source_image = pipeline.source_image
    monkeypatch.setattr(pipeline, "source_image", lambda *a, **k: renders.append(1) or source_image(*a, **k))
    loss_dict, metrics = pipeline.edit_step(step)
    assert len(renders) == 1  # a view's first visit renders its source once (the views route reuses that render)
    edits = pipeline.datamanager.view_edits
    if route == "views":
        assert len(edits) == 1 and next(iter(edits.values())).steps == 3 and metrics["view_edit_steps"] == 3
        pipeline.edit_step(step)  # the same view again: three more steps on its latent
        assert next(iter(edits.values())).steps == 6
    else:
        assert not edits
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and all(n.startswith(("field.mlp_head", "field.embedding_appearance")) for n in with_grad)
    model.zero_grad(set_to_none=True)
    model.set_edit_trainable(appearance_only=False)
    pipeline.prepare_edit()


PRESET_SETTINGS = {  # what configs/{loss}.args set before a loss name brought its own defaults (catalogue);
    # DDS/CDS then edited the whole field, now colours only (the scored recipe, issue 17)
    # loss: (guidance scale, edit lr, appearance only)
    "sds": (100.0, 0.005, True),
    "dds": (7.5, 0.01, True),
    "cds": (7.5, 0.01, True),
    "lmc": (15.0, 0.005, True),
    "bridge": (40.0, 0.005, True),
    "nfsd": (7.5, 0.005, True),
}


def test_loss_name_alone_brings_the_presets_settings():
    """`--pipeline.loss.name X` alone gives what the old configs/X.args preset set (loss, guidance, edit lr,
    appearance-only, SDS-Bridge's switch at half the edit), for nerfedit and nerfedit-small; cpu-fast still parses."""
    import tyro

    from nerfedit.losses.catalog import LOSS_NAMES
    from nerfedit.nerf.edit.loss_config import apply_loss_defaults
    from nerfedit.nerf.edit.method_configs import nerfedit_config, nerfedit_small_config

    assert set(PRESET_SETTINGS) == set(LOSS_NAMES)
    for name, (guidance, lr, appearance_only) in PRESET_SETTINGS.items():
        for default in (nerfedit_config(), nerfedit_small_config()):
            args = ["--pipeline.loss.name", name]
            config = tyro.cli(type(default), default=default, args=args, config=(tyro.conf.FlagConversionOff,))
            pipeline = config.pipeline
            apply_loss_defaults(pipeline)
            assert pipeline.loss.name == name
            assert pipeline.loss.with_defaults().guidance_scale == guidance
            assert (pipeline.edit_lr, pipeline.edit_appearance_only) == (lr, appearance_only)
            assert pipeline.loss.bridge_switch_step == pipeline.edit_steps // 2
    assert nerfedit_small_config().pipeline.edit_steps // 2 == 200  # the bridge preset's 200 of 400
    for default in (nerfedit_config(), nerfedit_small_config()):
        preset = REPO / "configs" / "cpu-fast.args"
        config = tyro.cli(type(default), default=default, args=preset.read_text().split(), config=(tyro.conf.FlagConversionOff,))
        assert config.pipeline.edit_appearance_only is True and config.pipeline.edit_resolution == 32
