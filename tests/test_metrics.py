"""`nerfedit eval` and its metrics, on tiny random models built here (no hub): known properties, bad input, offline.

    tiny_clip      a 2-layer CLIPModel + CLIPProcessor (character-level tokenizer of nerfedit/priors/tiny.py), 32 px
    tiny_dino      a 2-layer ViTModel (DINO v1's architecture), 32 px, patch 8
    tiny_lpips     a random torchvision alexnet backbone saved as a state dict (torchmetrics' linear layers are real)

What is checked is what could fail: distances of identical images are zero, the directional similarity keeps its value
when the pair and the prompts swap together and flips its sign when only the images swap, the CLIP score stays in
[0, 100], the hook catches the last layer's keys, bad input is one line and exit 2 with nothing written and no model
loaded, an unavailable model is reported (exit 0) while the others run, and the end-to-end JSON has every metric.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerfedit.eval import cli as eval_cli
from nerfedit.eval import metric_models as mm
from nerfedit.eval import metrics as m
from nerfedit.world.vocab import COLORS

SIZE = 32


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from nerfedit.priors.tiny import TINY_MAX_TOKENS, write_tokenizer_files

    tokenizer_dir = tmp_path_factory.mktemp("clip_tokenizer")
    vocab = write_tokenizer_files(tokenizer_dir)
    folder = tmp_path_factory.mktemp("tiny_clip")
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
                max_position_embeddings=TINY_MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, image_size=SIZE, patch_size=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    CLIPProcessor(image_processor=image_processor, tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory) -> Path:
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny_dino")
    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=SIZE, patch_size=8)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_lpips(tmp_path_factory) -> Path:
    import torchvision

    path = tmp_path_factory.mktemp("lpips") / "alexnet_features.pth"
    with torch.random.fork_rng():
        torch.manual_seed(2)
        torch.save(torchvision.models.alexnet(weights=None).features.state_dict(), path)  # keys "0.weight", …
    return path


@pytest.fixture
def no_models(monkeypatch):
    """Fail the test if a metric's model is loaded (bad input must be refused before that)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad input was refused")

    for name in ("load_clip", "load_dino", "load_lpips"):
        monkeypatch.setattr(mm, name, refuse)


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _write_views(folder: Path, images: torch.Tensor, names) -> Path:
    import imageio.v2 as imageio

    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        imageio.imwrite(folder / name, (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    return folder


def _run(argv, capsys):
    """`nerfedit eval ARGV` in process: (exit code, stdout, stderr)."""
    try:
        code = eval_cli.main(["eval", *map(str, argv)])
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


# ---- the metrics -------------------------------------------------------------------------------------


def test_identical_images_have_no_distance(tiny_dino, tiny_lpips):
    a, b = _images(2, 0), _images(2, 1)
    lpips, dino = mm.load_lpips("alex", tiny_lpips, "cpu"), mm.load_dino(str(tiny_dino), "cpu")
    assert torch.allclose(m.lpips_distance(lpips, a, a), torch.zeros(2), atol=1e-7)
    assert torch.allclose(m.structure_distance(dino, a, a), torch.zeros(2), atol=1e-10)
    assert (m.psnr_per_image(a, a) >= 99.0).all()
    assert torch.allclose(m.ssim(a, a), torch.ones(2), atol=1e-5)
    # ... and different images do (so the zeros above are not a constant).
    assert (m.lpips_distance(lpips, a, b) > 0).all() and (m.structure_distance(dino, a, b) > 0).all()
    assert (m.psnr_per_image(a, b) < 20).all() and (m.ssim(a, b) < 0.5).all()


def test_structure_distance_runs_on_dinov2_too():
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(3)
    model = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=SIZE, patch_size=8)).eval()
    a, b = _images(1, 2), _images(1, 3)
    similarity = m.dino_key_self_similarity(model, a)
    tokens = 1 + (m.SPLICE_SIDE // 8) ** 2  # CLS and every patch of the 224 px input
    assert similarity.shape == (1, tokens, tokens)
    assert torch.allclose(torch.diagonal(similarity, dim1=1, dim2=2), torch.ones(1, tokens), atol=1e-5)
    assert m.structure_distance(model, a, a).item() == pytest.approx(0.0, abs=1e-10) and m.structure_distance(model, a, b).item() > 0


def test_the_hook_catches_the_last_layers_keys(tiny_dino):
    model = mm.load_dino(str(tiny_dino), "cpu")
    key = m.last_key_projection(model)
    parts = {module: name for name, module in model.named_modules()}[key].split(".")
    last = str(model.config.num_hidden_layers - 1)
    assert last in parts and parts[-1] in ("k_proj", "key")
    # Splice's keys: the last layer's key projection of its LayerNorm-ed input, the second-to-last hidden state.
    images = _images(1, 4)
    hidden = m.dino_forward(model, m.dino_input(model, images), output_hidden_states=True).hidden_states[-2]
    norm = model.get_submodule(".".join(parts[: parts.index(last) + 1]) + ".layernorm_before")
    with torch.no_grad():
        keys = torch.nn.functional.normalize(key(norm(hidden)), dim=-1)
    assert torch.allclose(m.dino_key_self_similarity(model, images), keys @ keys.transpose(1, 2), atol=1e-5)
    # A view that is not square keeps its aspect ratio, as in Splice (whole patches, shorter side 224).
    assert m.dino_input(model, torch.rand(1, 3, 32, 48)).shape == (1, 3, 224, 336)
    assert m.structure_distance(model, torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)).shape == (1,)


def test_clip_score_formula_and_range(tiny_clip):
    text = torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 0.0]), dim=0)
    images = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-1.0, 0.0, 0.0]])
    assert m.clip_score(images, text).tolist() == pytest.approx([100.0, 60.0, 0.0])  # negative cosines count as 0
    model, processor = mm.load_clip(str(tiny_clip), "cpu")
    scores = m.clip_score(m.clip_image_embeddings(model, processor, _images(4, 5)), m.clip_text_embeddings(model, processor, ["a red cube"])[0])
    assert scores.shape == (4,) and ((0 <= scores) & (scores <= 100)).all()


def test_directional_similarity_swaps(tiny_clip):
    model, processor = mm.load_clip(str(tiny_clip), "cpu")
    source, edited = m.clip_image_embeddings(model, processor, _images(3, 6)), m.clip_image_embeddings(model, processor, _images(3, 7))
    red, blue = m.clip_text_embeddings(model, processor, ["a red cube", "a blue sphere"])
    forward = m.clip_directional_similarity(source, edited, red, blue)
    assert ((-1 <= forward) & (forward <= 1)).all() and forward.abs().min() > 1e-4
    assert torch.allclose(m.clip_directional_similarity(edited, source, blue, red), forward, atol=1e-6)  # both swapped
    assert torch.allclose(m.clip_directional_similarity(edited, source, red, blue), -forward, atol=1e-6)  # images only
    assert torch.allclose(m.clip_directional_similarity(source, source, red, blue), torch.zeros(3))  # no change, no direction


# ---- the command: bad input --------------------------------------------------------------------------


def test_mismatched_folders_are_one_line_and_write_nothing(tmp_path, capsys, no_models):
    source = _write_views(tmp_path / "source", _images(2, 8), ["a.png", "b.png"])
    edited = _write_views(tmp_path / "edited", _images(2, 9), ["a.png", "c.png"])
    out = tmp_path / "scores.json"
    code, stdout, err = _run(["--source", source, "--edited", edited, "--target-prompt", "a cube", "--source-prompt", "a ball", "--json", out], capsys)
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("nerfedit: error:") and "b.png" in err and "c.png" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metrics", "psnr,fid"], "unknown metric 'fid'"),
        (["--metrics", "judge"], "--prior toy"),
        (["--metrics", "clip_direction", "--target-prompt", "a cube", "--source-prompt", " "], "--source-prompt is empty"),
        (["--metrics", "clip_score", "--target-prompt", "a cube", "--clip", "./no/such/clip"], "no such folder"),
        (["--metrics", "lpips", "--lpips-backbone", "missing.pth"], "no such file"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path, capsys, no_models, extra, message):
    source = _write_views(tmp_path / "source", _images(1, 10), ["a.png"])
    edited = _write_views(tmp_path / "edited", _images(1, 11), ["a.png"])
    code, stdout, err = _run(["--source", source, "--edited", edited, *extra, "--json", tmp_path / "s.json"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "s.json").exists()


def test_other_bad_input(tmp_path, capsys, no_models):
    images = _images(1, 12)
    a = _write_views(tmp_path / "a", images, ["x.png"]) / "x.png"
    big = _write_views(tmp_path / "b", torch.nn.functional.interpolate(images, size=(48, 48)), ["x.png"]) / "x.png"
    code, _, err = _run(["--source", a, "--edited", big, "--metrics", "psnr"], capsys)
    assert code == 2 and "one size" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(["--source", a, "--edited", tmp_path / "a", "--metrics", "psnr"], capsys)
    assert code == 2 and "two images or two folders" in err
    code, _, err = _run(["--source", a, "--edited", tmp_path / "none.png", "--metrics", "psnr"], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = _run(["--source", a, "--edited", a, "--metrics", "clip_score"], capsys)
    assert code == 2 and "needs --target-prompt" in err
    existing = tmp_path / "old.json"
    existing.write_text("keep")
    code, _, err = _run(["--source", a, "--edited", a, "--metrics", "psnr", "--json", existing], capsys)
    assert code == 2 and "--overwrite" in err and existing.read_text() == "keep"


# ---- the command: offline and end to end -------------------------------------------------------------


def test_unavailable_models_are_reported_and_the_rest_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty hub cache: no LPIPS backbone there
    source = _write_views(tmp_path / "source", _images(2, 13), ["0.png", "1.png"])
    edited = _write_views(tmp_path / "edited", _images(2, 14), ["0.png", "1.png"])
    out = tmp_path / "scores.json"
    code, stdout, err = _run(["--source", source, "--edited", edited, "--source-prompt", "a cube", "--target-prompt", "a ball",
                              "--clip", "nerfedit-tests/no-such-clip", "--dino", "nerfedit-tests/no-such-dino", "--json", out], capsys)
    assert code == 0, err
    metrics = json.loads(out.read_text())["metrics"]
    for name in ("clip_score", "clip_direction", "lpips", "dino_structure"):
        reason = metrics[name]["unavailable"]
        assert "\n" not in reason and "mean" not in metrics[name]
        assert f"unavailable: {reason}" in stdout
    assert "HF_HUB_OFFLINE" in metrics["clip_score"]["unavailable"] and "--lpips-backbone" in metrics["lpips"]["unavailable"]
    assert len(metrics["psnr"]["per_view"]) == 2 and 0 < metrics["ssim"]["mean"] < 1


def test_images_too_small_for_lpips_are_reported(tmp_path, capsys, tiny_lpips):
    small = _write_views(tmp_path / "small", _images(1, 15)[..., :24, :24], ["a.png"]) / "a.png"
    code, stdout, err = _run(["--source", small, "--edited", small, "--metrics", "lpips,psnr", "--lpips-backbone", tiny_lpips], capsys)
    assert code == 0 and "unavailable: images of 24 px a side; the alex backbone needs 31 px" in stdout and "psnr" in stdout


def test_a_whole_torchvision_state_dict_is_a_backbone_too(tmp_path, tiny_lpips):
    features = torch.load(tiny_lpips, weights_only=True)
    whole = tmp_path / "alexnet_whole.pth"
    torch.save({**{f"features.{k}": v for k, v in features.items()}, "classifier.1.weight": torch.zeros(2, 2)}, whole)
    a, b = _images(1, 16), _images(1, 17)
    expected = m.lpips_distance(mm.load_lpips("alex", tiny_lpips, "cpu"), a, b)
    assert torch.equal(m.lpips_distance(mm.load_lpips("alex", whole, "cpu"), a, b), expected)


def test_a_bad_backbone_file_is_unavailable_not_a_crash(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(mm.MetricUnavailable, match="cannot read it as a state dict"):
        mm.load_lpips("alex", junk, "cpu")
    torch.save({"0.weight": torch.zeros(3)}, junk)
    with pytest.raises(mm.MetricUnavailable, match="not a torchvision alexnet state dict"):
        mm.load_lpips("alex", junk, "cpu")


def test_end_to_end_with_tiny_models(tmp_path, capsys, tiny_clip, tiny_dino, tiny_lpips):
    from nerfedit.world.render import sample_batch

    renders = sample_batch(4, np.random.default_rng(7), size=SIZE)["images"]
    larger = sample_batch(2, np.random.default_rng(8), size=40)["images"]  # views of a folder may differ in size
    names = ["view_000.png", "view_001.png", "view_002.png"]
    _write_views(tmp_path / "source", larger[:1], names[2:])
    _write_views(tmp_path / "edited", larger[1:], names[2:])
    source = _write_views(tmp_path / "source", renders[:2], names[:2])
    edited = _write_views(tmp_path / "edited", renders[2:], names[:2])
    out = tmp_path / "scores.json"
    out.write_text("old")
    argv = ["--source", source, "--edited", edited, "--source-prompt", "a red cube", "--target-prompt", "a blue cube",
            "--clip", tiny_clip, "--dino", tiny_dino, "--lpips-backbone", tiny_lpips, "--prior", "toy", "--json", out, "--overwrite"]
    code, stdout, err = _run(argv, capsys)
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["views"] == names and report["target_prompt"] == "a blue cube"
    assert list(report["metrics"]) == list(eval_cli.METRICS)
    for name, result in report["metrics"].items():
        assert "unavailable" not in result, (name, result)
        assert len(result["per_view"]) == 3
    assert 0 <= report["metrics"]["clip_score"]["mean"] <= 100 and -1 <= report["metrics"]["clip_direction"]["mean"] <= 1
    assert report["metrics"]["lpips"]["mean"] > 0 and report["metrics"]["dino_structure"]["mean"] > 0
    assert all(view["edited"]["color"] in COLORS for view in report["metrics"]["judge"]["per_view"])
    assert "clip_score" in stdout and "view_002.png:" in stdout and f"wrote {out}" in stdout

    # Scoring the source against itself: no distance, and the same numbers again for the same input.
    code, stdout, _ = _run(["--source", source, "--edited", source, "--metrics", "lpips,dino_structure,psnr,ssim",
                            "--dino", tiny_dino, "--lpips-backbone", tiny_lpips], capsys)
    assert code == 0
    rows = {line.split()[0]: float(line.split()[1]) for line in stdout.splitlines()[2:]}
    assert rows["lpips"] == pytest.approx(0, abs=1e-6) and rows["dino_structure"] == pytest.approx(0, abs=1e-8)
    assert rows["psnr"] == pytest.approx(100) and rows["ssim"] == pytest.approx(1, abs=1e-4)
