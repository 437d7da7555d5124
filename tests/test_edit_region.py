"""Local edits (`--edit-region`): cross-attention capture, the masked gradient of every loss, auto/none/PATH, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nerfedit import cli
from nerfedit.image import io

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "scenes" / "red_cube"
SOURCE = "a red cube on a wooden floor"
TARGET = "a blue cube on a wooden floor"


def run_main(argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


def _unet_inputs(prior, batch=2):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(batch, 4, 16, 16, generator=g)
    t = torch.tensor([500] * batch)
    return z, t, prior.encode_text(["a red cube", "a blue cube"][:batch])


# ---- capture -----------------------------------------------------------------------------------
def test_cross_attention_capture_shapes_and_pass_through(tiny_prior):
    from nerfedit.priors.attention import cross_attention_names

    z, t, emb = _unet_inputs(tiny_prior)
    plain = tiny_prior.predict_eps(z, t, emb)
    with tiny_prior.capture_cross_attention() as store:
        captured = tiny_prior.predict_eps(z, t, emb)
        maps = dict(store.maps)
    after = tiny_prior.predict_eps(z, t, emb)
    assert torch.equal(plain, captured) and torch.equal(plain, after)  # the UNet's output never changes
    assert set(maps) == set(cross_attention_names(tiny_prior.unet)) and maps
    cells = {16 * 16, 8 * 8}
    for probs in maps.values():
        assert probs.shape[0] == 2 and probs.shape[1] in cells and probs.shape[2] == emb.shape[1]
        assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:2]), atol=1e-5)  # softmax over the text tokens
    with tiny_prior.capture_self_attention() as store:  # CDS's capture still works beside it
        tiny_prior.predict_eps(z, t, emb)
        assert store.features


def test_auto_region_is_binary_and_seeded(tiny_prior):
    from nerfedit.region.auto import auto_region

    z, _, _ = _unet_inputs(tiny_prior)
    a = auto_region(tiny_prior, z, ["a red cube"] * 2, ["a blue cube"] * 2, seed=3)
    b = auto_region(tiny_prior, z, ["a red cube"] * 2, ["a blue cube"] * 2, seed=3)
    assert a.shape == (2, 1, 16, 16) and torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and a.sum() > 0


def test_differing_tokens():
    from nerfedit.priors import load_prior
    from nerfedit.region.words import differing_tokens

    prior = load_prior("toy", device="cpu")
    colour = differing_tokens(prior, SOURCE, TARGET)
    assert colour.source[0] == colour.target[0] == 2  # "red" / "blue", then the words after them (causal encoder)
    assert colour.source == tuple(range(2, 8))
    floor = differing_tokens(prior, SOURCE, "a red cube on grass")
    assert floor.source == (5, 6, 7) and floor.target == (5,)


# ---- the masked gradient -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dds", "cds"])
def test_region_zeroes_the_gradient_outside_and_keeps_it_inside(tiny_prior, name):
    from nerfedit.losses import DistillationConfig, build_loss

    loss = build_loss(DistillationConfig(name=name), tiny_prior)
    g = torch.Generator().manual_seed(1)
    z_src = torch.randn(2, 4, 16, 16, generator=g)
    region = torch.zeros(2, 1, 16, 16)
    region[:, :, 4:10, 3:12] = 1

    def step(**kwargs):
        z = (z_src + 0.1 * torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
        out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_src, generator=torch.Generator().manual_seed(5), **kwargs)
        out.loss.backward()
        return out, z.grad

    plain, plain_grad = step()
    none, none_grad = step(region=None)
    masked, masked_grad = step(region=region)
    inside = region.expand_as(plain_grad).bool()
    assert torch.equal(none_grad, plain_grad) and none.terms == plain.terms  # no region: bit-identical
    assert torch.equal(masked_grad[~inside], torch.zeros_like(masked_grad[~inside]))
    assert torch.equal(masked_grad[inside], plain_grad[inside])
    assert torch.equal(masked.grad, masked_grad) and plain_grad[~inside].abs().sum() > 0


def test_edit_image_none_is_bit_identical_and_mask_keeps_outside(tiny_prior):
    from nerfedit.image.edit import EditConfig, edit_image

    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    config = EditConfig(steps=3)
    today, _ = edit_image(tiny_prior, images, target="a blue cube", source="a red cube", config=config, progress=False)
    none, history = edit_image(tiny_prior, images, target="a blue cube", source="a red cube", config=config, progress=False, region="none")
    assert torch.equal(today, none) and history.region is None
    mask = torch.zeros(1, 32, 32, dtype=torch.bool)
    mask[:, 8:16, 8:16] = True
    _, history = edit_image(tiny_prior, images, target="a blue cube", source="a red cube", config=config, progress=False, region=mask)
    assert history.region.shape == (1, 1, 16, 16) and history.region.sum() == 16  # 8×8 pixels = 4×4 latent cells


def _world_renders(n=6):
    """Held-out world renders (64²) with their object masks."""
    from nerfedit.eval.swaps import held_out_swaps

    swaps = held_out_swaps(n, 5, 64)
    return swaps.images, swaps.masks


def test_grabcut_snaps_a_blob_of_cells_to_the_object_edge():
    import torch.nn.functional as F

    from nerfedit.region.pixels import OBJECT_SEED, attention_at_pixels, grabcut

    images, masks = _world_renders()
    iou = lambda a, b: float((a & b).sum() / (a | b).sum())  # noqa: E731
    for image, mask in zip(images, masks):
        cells = F.max_pool2d(mask[None, None].float(), 4)  # a 16² map of the object, as cross-attention gives it,
        attention = F.avg_pool2d(cells, 3, stride=1, padding=1)[0, 0]  # blurred beyond its edge
        pixels = attention_at_pixels(attention[None] / attention.max(), (64, 64))[0]
        cut, trusted = grabcut(image, pixels)
        assert trusted and iou(cut, mask) > 0.85 and iou(cut, mask) > iou(pixels >= OBJECT_SEED, mask)
        assert torch.equal(cut, grabcut(image, pixels)[0])  # seeded: the same cut twice


def test_an_untrusted_cut_falls_back_to_the_latent_region_and_never_to_nothing():
    import torch.nn.functional as F

    from nerfedit.region.auto import region_from_map
    from nerfedit.region.pixels import MIN_SEED_KEPT, OBJECT_SEED, attention_at_pixels, auto_pixel_region, grabcut

    g = torch.Generator().manual_seed(0)
    images, attention = torch.rand(4, 3, 32, 32, generator=g), torch.rand(4, 8, 8, generator=g)  # no edges to cut along
    pixels = attention_at_pixels(attention, (32, 32))
    cells = F.interpolate(region_from_map(attention), size=(32, 32), mode="nearest")[:, 0] > 0
    region = auto_pixel_region(images, images.flip(0), attention, region_from_map(attention))
    for b in range(4):
        cut, trusted = grabcut(images[b], pixels[b])
        seed = pixels[b] >= OBJECT_SEED
        assert trusted == bool((cut & seed).sum() >= MIN_SEED_KEPT * seed.sum())
        assert (region[b] & seed).sum() >= MIN_SEED_KEPT * seed.sum()
        if not trusted:
            assert region[b][cells[b]].all()
    assert grabcut(torch.rand(3, 8, 8), torch.zeros(8, 8))[1] is False  # no seed: nothing to trust


def test_edit_image_keeps_every_pixel_outside_the_region(tiny_prior):
    from nerfedit.image.edit import EditConfig
    from nerfedit.image.fit import edit_image_any_size

    config = EditConfig(steps=3)
    x = _world_renders(1)[0][0, :, ::2, ::2].permute(1, 2, 0).contiguous().numpy()  # the tiny prior's 32²
    mask = np.zeros((32, 32), bool)
    mask[8:20, 10:24] = True
    for paste in ("blend", "replace"):
        result = edit_image_any_size(tiny_prior, x, target="a blue cube", source="a red cube", config=config, paste=paste, region=mask, progress=False)
        assert np.array_equal(result.image[~mask], x[~mask]) and not np.array_equal(result.image[mask], x[mask])
    auto = edit_image_any_size(tiny_prior, x, target="a blue cube", source="a red cube", config=config, region="auto", progress=False)
    kept = auto.history.pixel_region[0].numpy()
    assert kept.shape == (32, 32) and kept.any() and not kept.all()
    assert np.array_equal(auto.image[~kept], x[~kept])


# ---- the command line -----------------------------------------------------------------------------
@pytest.fixture
def cube(tmp_path) -> Path:
    path = tmp_path / "frame_00000.png"
    path.write_bytes((SCENE / "images" / "frame_00000.png").read_bytes())
    return path


def test_edit_image_writes_the_region_beside_the_output(tmp_path, cube):
    out = tmp_path / "out.png"
    args = [cube, "--source", SOURCE, "--target", TARGET, "--out", out, "--steps", "2", "--quiet"]
    assert run_main(["edit-image", *args, "--edit-region", SCENE / "masks"]) == 0
    region = io.load_image(tmp_path / "out_region.png")
    mask = io.load_image(SCENE / "masks" / "frame_00000.png")[..., 0] > 0.5
    assert region.shape[:2] == mask.shape and (region[..., 0] > 0.5)[mask].all()  # the object is editable
    assert 0 < (region[..., 0] > 0.5).mean() < 1


@pytest.mark.parametrize(
    "region, prompts, message",
    [
        ("/no/such/mask", (SOURCE, TARGET), "use none, auto, or an existing"),
        ("{tmp}", (SOURCE, TARGET), "no mask for image"),
        ("{small}", (SOURCE, TARGET), "is 8x8 but its image is 64x64"),
        ("auto", (SOURCE, SOURCE), "same words"),
        ("auto", (SOURCE, "a zorbly cube on a wooden floor"), "does not know 'zorbly'"),
    ],
)
def test_bad_region_is_one_line_exit_2(tmp_path, cube, capsys, region, prompts, message):
    small = tmp_path / "small.png"
    io.save_image(small, np.ones((8, 8, 3), np.float32))
    empty = tmp_path / "masks"
    empty.mkdir()
    region = region.format(tmp=empty, small=small)
    argv = ["edit-image", cube, "--source", prompts[0], "--target", prompts[1], "--out", tmp_path / "o.png", "--edit-region", region]
    assert run_main(argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "error" in line]
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o.png").exists()


# ---- NeRF ------------------------------------------------------------------------------------------
def _nerf_config(**pipeline):
    from nerfedit.nerf.edit.method_configs import nerfedit_small_config

    config = nerfedit_small_config()
    config.pipeline.datamanager.data = SCENE
    config.pipeline.prior = "toy"
    config.pipeline.source_prompt = SOURCE
    config.pipeline.target_prompt = TARGET
    for key, value in pipeline.items():
        setattr(config.pipeline, key, value)
    return config


def test_nerf_edit_region_path_loads_masks_for_training_views(tmp_path):
    from nerfedit.errors import UserError
    from nerfedit.nerf.edit.region import check_edit_region, load_view_masks
    from nerfedit.region.masks import parse_region

    config = _nerf_config(edit_region=str(SCENE / "masks"))
    assert check_edit_region(config.pipeline, SCENE).kind == "path"
    parser = config.pipeline.datamanager.dataparser  # what the datamanager reads its training images with
    parser.data = SCENE
    names = parser.setup().get_dataparser_outputs("train").image_filenames
    masks = load_view_masks(parse_region(str(SCENE / "masks")), names)
    assert len(masks) == len(names) > 1 and masks[0].shape == (64, 64) and masks[0].any()
    expected = io.load_image(SCENE / "masks" / Path(names[3]).name)[..., 0] >= 0.5
    assert np.array_equal(masks[3], expected)

    partial = tmp_path / "masks"
    partial.mkdir()
    (partial / "frame_00000.png").write_bytes((SCENE / "masks" / "frame_00000.png").read_bytes())
    with pytest.raises(UserError, match="no mask for image 'frame_00001.png'"):
        check_edit_region(_nerf_config(edit_region=str(partial)).pipeline, SCENE)
    with pytest.raises(UserError, match="novel-view-prob"):
        check_edit_region(_nerf_config(edit_region=str(SCENE / "masks"), novel_view_prob=0.5).pipeline, SCENE)
    with pytest.raises(UserError, match="same words"):
        check_edit_region(_nerf_config(edit_region="auto", target_prompt=SOURCE).pipeline, SCENE)
