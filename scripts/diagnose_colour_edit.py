#!/usr/bin/env python
"""Why a colour edit fails: the checks behind issue 17's "green cap" diagnosis (toy prior, world scenes).

    run RUN --scene SCENE --target-color C     on a finished `ns-train nerfedit-small` run:
        views     the training views judged as the edit saw them (train mode: per-view appearance embedding) and
                  as ns-render sees them (eval mode: the mean embedding), beside the frozen source
        capacity  the colour head alone (geometry frozen, as a colours-only edit) fitted for --steps to the world's
                  EXACT target renders at the training cameras, then scored on the held-out views like the eval:
                  if this reaches the bars, a colours-only edit can represent the target and the loss's signal
                  is what falls short
    image --scene SCENE --target-color C --path latent|pixels
        the loss's gradient applied to the latent (as `edit-image`), or back-propagated through the VAE encoder
        into pixels behind a sigmoid (as a NeRF's colour head receives it), with Adam at --lr; 8 held-out views

    route --scene SCENE --target-color C
        where the loss's latent gradient g goes when carried to pixels: J_Eᵀ·g (back-propagation through the VAE
        encoder, the "field" route), J_D·g (the image change g decodes to, to first order) and a finite latent step
        D(z − ηg) − D(z) (what editing the latent itself does, the "views" route); the mean RGB of each on the
        object's lit and shaded pixels and the background; how well a pixel step along each moves the latent along g
        (cosine of J_E·(pixel step) with g); and the condition number of J_E·J_Eᵀ over the latent channels

    python scripts/diagnose_colour_edit.py run outputs/…/nerfedit-small/TIME --scene scenes/yellow_sphere --target-color purple
    python scripts/diagnose_colour_edit.py image --scene scenes/yellow_sphere --target-color purple --path pixels
    python scripts/diagnose_colour_edit.py route --scene scenes/yellow_sphere --target-color purple

Prints one JSON line per check; run and image write a contact sheet (PNG) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def judged(images: torch.Tensor, color: str, shape: str) -> dict:
    """The judge's colour and shape rates on `images` [N, 3, H, W]."""
    from nerfedit.eval.judging import agreement, read
    from nerfedit.judge.model import load_judge

    reads = read(load_judge(), images.clamp(0, 1))
    return {"color": agreement(reads["color"], color), "shape": agreement(reads["shape"], shape), "colors": reads["color"]}


def training_views(pipeline) -> dict:
    """Renders [N, 3, H, W] of every training camera: target in train and eval mode, and the source."""
    from nerfedit.nerf.common.render import ray_bundle, render_image, to_image

    model, cameras = pipeline.model, pipeline.datamanager.train_dataset.cameras
    out = {"train": [], "eval": [], "source": []}
    with torch.no_grad():
        for i in range(len(cameras)):
            bundle, h, w = ray_bundle(cameras[i : i + 1], i, model.device)
            model.train()
            out["train"].append(to_image(render_image(model, bundle, 1 << 14, 0), h, w))
            model.eval()
            out["eval"].append(to_image(render_image(model, bundle, 1 << 14, 0), h, w))
            out["source"].append(to_image(render_image(model.source, bundle, 1 << 14, 0), h, w))
    return {k: torch.cat(v) for k, v in out.items()}


def fit_colour_head(pipeline, run: Path, scene: dict, target: torch.Tensor, steps: int, lr: float) -> None:
    """Adam on the colour head only, L2 to `target` renders at the training cameras (from the source's head)."""
    from nerfedit.eval.orbit import run_frame_cameras
    from nerfedit.nerf.common.render import ray_bundle, to_image

    model, size = pipeline.model, scene["size"]
    model.field.load_state_dict(model.source.field.state_dict())
    model.eval()
    cameras = run_frame_cameras(scene["cameras"], run, size, model.device)
    geometry = [model.frozen_geometry(ray_bundle(cameras[i : i + 1], i, model.device)[0]) for i in range(len(cameras))]
    model.requires_grad_(False)
    head = list(model.field.mlp_head.parameters())
    for p in head:
        p.requires_grad_(True)
    optimizer, rng = torch.optim.Adam(head, lr=lr), np.random.default_rng(0)
    for _ in range(steps):
        i = int(rng.integers(len(cameras)))
        loss = ((to_image(model.render_appearance(geometry[i]), size, size) - target[i : i + 1]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def check_run(args) -> None:
    import nerfedit.nerf  # noqa: F401  (CPU workarounds)
    from nerfedit.eval.orbit import edit_renders, load_run, run_frame_cameras
    from nerfedit.eval.psnr import psnr_outside_summary
    from nerfedit.eval.sheets import Cell, contact_sheet, save_sheet
    from nerfedit.eval.nerf_edit import held_out_cameras
    from nerfedit.world.scene import load_scene, render_views

    scene = load_scene(args.scene)
    obj, size = scene["object"], scene["size"]
    pipeline, _ = load_run(args.run / "config.yml")
    views = training_views(pipeline)
    print(json.dumps({"check": "views", **{k: judged(v, args.target_color, obj.shape) for k, v in views.items()}}))
    target = torch.from_numpy(render_views(replace(obj, color=args.target_color), scene["cameras"], size)["images"]).permute(0, 3, 1, 2)
    fit_colour_head(pipeline, args.run, scene, target, args.steps, args.lr)
    orbit = held_out_cameras(24, 1234)[:24]  # the scored views of run_nerf_edit_eval.py
    renders = edit_renders(pipeline, run_frame_cameras(orbit, args.run, size, pipeline.device))
    masks = torch.from_numpy(render_views(obj, orbit, size)["masks"])
    result = judged(renders["edited"], args.target_color, obj.shape)
    result["psnr_outside"] = psnr_outside_summary(renders["edited"], renders["source"], masks)["mean_of_views"]
    print(json.dumps({"check": "capacity", "steps": args.steps, **result}))
    rows = [[Cell(views["source"][i]), Cell(views["train"][i].clamp(0, 1)), Cell(views["eval"][i].clamp(0, 1)), Cell(renders["edited"][i])] for i in range(8)]
    save_sheet(Path(args.out), contact_sheet(rows, titles=["source", "edit: train", "edit: eval", "head fitted"]))


def check_image(args) -> None:
    from nerfedit.eval.sheets import Cell, contact_sheet, save_sheet
    from nerfedit.losses import DistillationConfig, build_loss
    from nerfedit.priors.loader import load_prior
    from nerfedit.world.scene import load_scene, orbit_cameras, render_views
    from nerfedit.world.vocab import caption

    obj = load_scene(args.scene)["object"]
    prior = load_prior("toy")
    source = torch.from_numpy(render_views(obj, orbit_cameras(8, seed=3, elevation_range=(20, 50)), 64)["images"]).permute(0, 3, 1, 2)
    prompts = dict(source_prompt=caption(obj.shape, obj.color, obj.floor, template=0), prompt=caption(obj.shape, args.target_color, obj.floor, template=0))
    loss = build_loss(DistillationConfig(name=args.loss), prior)
    with torch.no_grad():
        z_source = prior.encode_images(source)
    if args.path == "latent":
        z = z_source.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([z], lr=0.1)
    else:
        logit = torch.logit(source.clamp(0.02, 0.98)).requires_grad_(True)
        optimizer = torch.optim.Adam([logit], lr=args.lr)
    for step in range(args.steps):
        latent = z if args.path == "latent" else prior.encode_images(torch.sigmoid(logit))
        out = loss(latent, z_source=z_source, step=step, generator=torch.Generator().manual_seed(step), **prompts)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    with torch.no_grad():
        edited = prior.decode_latents(z) if args.path == "latent" else torch.sigmoid(logit)
    print(json.dumps({"check": "image", "path": args.path, "loss": args.loss, **judged(edited, args.target_color, obj.shape)}))
    save_sheet(Path(args.out), contact_sheet([[Cell(source[i]), Cell(edited[i])] for i in range(8)], titles=["source", args.path]))


def held_out_views(scene: Path, count: int = 8):
    """The object of `scene`, and `count` renders [N, 3, 64, 64] with masks [N, 1, 64, 64] of it at 20–50° elevation."""
    from nerfedit.world.scene import load_scene, orbit_cameras, render_views

    obj = load_scene(scene)["object"]
    views = render_views(obj, orbit_cameras(count, seed=3, elevation_range=(20, 50)), 64)
    return obj, torch.from_numpy(views["images"]).permute(0, 3, 1, 2), torch.from_numpy(views["masks"])[:, None].float()


def channel_gram(prior, images: torch.Tensor, probes: int = 4) -> torch.Tensor:
    """J_E·J_Eᵀ averaged over positions as a [C, C] matrix: ⟨J_Eᵀ(e_c⊗n), J_Eᵀ(e_d⊗n)⟩ / ‖n‖² for white noise n."""
    x = images.clone().requires_grad_(True)
    z = prior.encode_images(x)
    channels = z.shape[1]
    gram = torch.zeros(channels, channels)
    for _ in range(probes):
        noise = torch.randn(z.shape[0], 1, *z.shape[2:])
        pulled = []
        for c in range(channels):
            v = torch.zeros_like(z)
            v[:, c : c + 1] = noise
            pulled.append(torch.autograd.grad(z, x, v, retain_graph=True)[0].flatten())
        gram += torch.stack([torch.stack([a @ b for b in pulled]) for a in pulled]) / (noise * noise).sum() / probes
    return gram


def check_route(args) -> None:
    from nerfedit.losses import DistillationConfig, build_loss
    from nerfedit.priors.loader import load_prior
    from nerfedit.world.vocab import caption

    obj, source, mask = held_out_views(args.scene)
    prior = load_prior("toy")
    loss = build_loss(DistillationConfig(name=args.loss), prior)
    prompts = dict(source_prompt=caption(obj.shape, obj.color, obj.floor, template=0), prompt=caption(obj.shape, args.target_color, obj.floor, template=0))
    with torch.no_grad():
        z_source = prior.encode_images(source).contiguous()
    grad = torch.zeros_like(z_source)
    for step in range(args.steps):  # E over t and ε of the loss's gradient at the source
        z = z_source.clone().requires_grad_(True)
        out = loss(z, z_source=z_source, step=step, generator=torch.Generator().manual_seed(step), **prompts)
        grad += torch.autograd.grad(out.loss, z)[0] / args.steps
    x = source.clone().requires_grad_(True)
    steps = {"encoder": -torch.autograd.grad(prior.encode_images(x), x, grad)[0]}
    with torch.no_grad():  # J_D·g by central differences (forward-mode AD trips over the VAE's GroupNorm strides)
        eps = 1e-2 * float(z_source.norm() / grad.norm())
        steps["decoder"] = (prior.decode_latents(z_source - eps * grad) - prior.decode_latents(z_source + eps * grad)) / (2 * eps)
        steps["latent step"] = prior.decode_latents(z_source - args.latent_step * grad) - prior.decode_latents(z_source)
    brightness = source.mean(1, keepdim=True)
    lit = mask * (brightness > (brightness * mask).sum() / mask.sum()).float()
    regions = {"lit": lit, "shaded": mask - lit, "background": 1 - mask}
    for route, pixel_step in steps.items():
        with torch.no_grad():  # J_E·(pixel step), by central differences
            h = 1e-2 * float(source.norm() / pixel_step.norm())
            moved = (prior.encode_images(source + h * pixel_step) - prior.encode_images(source - h * pixel_step)) / (2 * h)
        rgb = {name: [round(float((pixel_step[:, k : k + 1] * m).sum() / m.sum()), 4) for k in range(3)] for name, m in regions.items()}
        cosine = float(-(moved * grad).sum() / moved.norm() / grad.norm())
        print(json.dumps({"check": "route", "route": route, "mean_rgb_step": rgb, "latent_cosine_with_g": round(cosine, 3)}))
    eigenvalues = torch.linalg.eigvalsh(channel_gram(prior, source))
    print(json.dumps({"check": "encoder_gram", "eigenvalues": [round(float(e), 4) for e in eigenvalues], "condition": round(float(eigenvalues.max() / eigenvalues.min()), 1)}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="checks on a finished nerfedit-small run")
    run.add_argument("run", type=Path, help="the run folder (holds config.yml)")
    run.add_argument("--steps", type=int, default=400, help="colour-head fitting steps (default: 400, the edit's)")
    run.add_argument("--lr", type=float, default=0.01, help="Adam lr of the fit (default: 0.01, the edit's)")
    image = sub.add_parser("image", help="the 2D gradient-path check")
    image.add_argument("--path", choices=("latent", "pixels"), default="pixels")
    image.add_argument("--loss", default="cds", help="(default: cds)")
    image.add_argument("--steps", type=int, default=400, help="(default: 400)")
    image.add_argument("--lr", type=float, default=0.01, help="Adam lr on the pixels' logits (default: 0.01)")
    route = sub.add_parser("route", help="J_Eᵀ·g against J_D·g: the gradient's way to pixels")
    route.add_argument("--loss", default="dds", help="(default: dds)")
    route.add_argument("--steps", type=int, default=8, help="draws of t and ε the gradient is averaged over (default: 8)")
    route.add_argument("--latent-step", type=float, default=0.5, help="η of the finite latent step D(z − ηg) − D(z) (default: 0.5)")
    for p in (run, image, route):
        p.add_argument("--scene", type=Path, required=True, help="the world scene (its object and cameras)")
        p.add_argument("--target-color", required=True)
    for p in (run, image):
        p.add_argument("--out", default="diagnosis.png", help="contact sheet (default: diagnosis.png)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    {"run": check_run, "image": check_image, "route": check_route}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
