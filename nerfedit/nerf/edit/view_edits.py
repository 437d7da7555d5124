"""The "views" edit: each training view's latent is edited in 2D by the loss, and the field is fitted to the views.

    z_v ← z_v − η(k)·∇_z L(z_v)            per visit, `steps_per_visit` steps of the loss on view v's own latent,
                                           with `nerfedit edit-image`'s optimiser and schedule (`EditConfig`: DDS's
                                           200 steps, lr 0.1, ×0.9 every 20), until the view has had its 200
    x*_v = x_src,v + D(z_v) − D(z_src,v)   the edited view: the source render plus the change the edit decodes to
                                           (the VAE's reconstruction error of the source cancels)
    L_field = ‖R_v(θ) − x*_v‖²             the field follows by an RGB loss, as in its reconstruction

Why not back-propagate the loss through the VAE encoder into the render (the "field" route, the DDS/CDS reference
code's way): a pixel step along the gradient that reaches the render does not make the change the loss asks for.
`scripts/diagnose_colour_edit.py route --scene scenes/yellow_sphere --target-color purple` (toy prior, 8 held-out
views, DDS's gradient g at the source) gives the mean RGB of each pixel step on the sphere's lit side:

    J_Eᵀ·g (back-propagation)           (−0.89, +0.43, +0.71)  cyan      J_E·J_Eᵀ over the 4 channels: condition ≈ 1700
    J_D·g  (first-order decoded change) (−0.26, +0.40, +0.16)  green
    D(z − 0.5·g) − D(z) (a latent step) (−0.07, −0.30, +0.42)  purple

so only a finite step in latent space, then decoded, is the edit. A colours-only field fed J_Eᵀ·g kept a green cap
(purple on 0 % of held-out views); fed J_D·g (a route tried on 2026-12-07 and removed) it saturated the whole scene
green (9 dB outside the sphere). Editing each view's latent is `edit-image`'s edit, and the field then only has to
fit images, which its colour head can (`diagnose_colour_edit.py run`: the head fitted to exact purple renders).
Instruct-NeRF2NeRF edits the dataset likewise, with a 2D editor in place of score distillation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import Tensor

from nerfedit.image.optim import EditConfig, make_optimizer, optimiser_step


@dataclass
class ViewEdit:
    """One training view's 2D edit."""

    latent: Tensor
    """z_v, the view's edited latent (starts as the source's)."""
    source_latent: Tensor
    """z_src,v."""
    residual: Tensor
    """x_src,v − D(z_src,v) at the prior's resolution: what the VAE loses of the source render."""
    steps: int = 0
    """Loss steps taken on z_v so far."""
    optimizer: Optional[torch.optim.Optimizer] = None
    """`EditConfig.optimizer` on z_v, made at its first step (its state persists between visits)."""

    def target(self, prior) -> Tensor:
        """x*_v = x_src,v + D(z_v) − D(z_src,v) = D(z_v) + residual, in [0, 1]."""
        with torch.no_grad():
            return (prior.decode_latents(self.latent) + self.residual).clamp(0, 1)


def start_view_edit(prior, source_image: Tensor, source_latent: Tensor) -> ViewEdit:
    """A view's edit before any step: z_v = z_src,v; `source_image` at the prior's resolution."""
    with torch.no_grad():
        residual = source_image.to(prior.device).float() - prior.decode_latents(source_latent)
    return ViewEdit(source_latent.detach().clone().requires_grad_(True), source_latent.detach(), residual)


def advance(edit: ViewEdit, distill, config: EditConfig, steps: int, seed: int, skipped) -> ViewEdit:
    """`steps` optimiser steps of the loss on z_v (fewer once it has had `config.steps`), as `edit-image` takes them;
    `distill(z, z_source, step, seed)` returns the loss's `LossOutput`; a non-finite step is skipped and counted."""
    if edit.optimizer is None:
        edit.optimizer = make_optimizer([edit.latent], config)
    for _ in range(min(steps, config.steps - edit.steps)):
        out = distill(edit.latent, edit.source_latent, edit.steps, seed * 1_000 + edit.steps)
        optimiser_step(edit.optimizer, edit.latent, out, edit.steps, config, skipped)
        edit.steps += 1
    return edit


def view_fit_loss(render: Tensor, target: Tensor) -> Tensor:
    """‖R_v(θ) − x*_v‖² (mean over pixels) at the prior's resolution."""
    return ((render - target.to(render.device)) ** 2).mean()


def view_edits_state(edits: Dict[int, ViewEdit]) -> Dict[int, dict]:
    """What a checkpoint keeps of the views' edits, so a resumed run continues them (CPU tensors)."""
    return {
        index: {
            "latent": edit.latent.detach().cpu(),
            "source_latent": edit.source_latent.cpu(),
            "residual": edit.residual.cpu(),
            "steps": edit.steps,
            "optimizer": None if edit.optimizer is None else edit.optimizer.state_dict(),
        }
        for index, edit in edits.items()
    }


def load_view_edits(state: Dict[int, dict], config: EditConfig, device) -> Dict[int, ViewEdit]:
    """The views' edits of `view_edits_state`, on `device`, their optimisers restored."""
    edits = {}
    for index, saved in state.items():
        edit = ViewEdit(saved["latent"].to(device).requires_grad_(True), saved["source_latent"].to(device), saved["residual"].to(device), saved["steps"])
        if saved["optimizer"] is not None:
            edit.optimizer = make_optimizer([edit.latent], config)
            edit.optimizer.load_state_dict(saved["optimizer"])
        edits[int(index)] = edit
    return edits
