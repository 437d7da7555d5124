"""The edit step's renders and back-propagation, for `NerfEditPipeline` (`edit/pipeline.py`).

    frozen_geometry   the target's frozen samples/weights of a view (appearance-only edits), cached per view
    source_image      the frozen source's render of a view (from that geometry when there is one)
    source_latent     its VAE latent, cached per training view by the datamanager
    render_target     the target's render with its graph, or a leaf image for deferred back-propagation
    backward          the edit's scalar loss of that render into the field (both routes, deferred included)

Kept apart from the pipeline, which orchestrates the step, so that each file has one job.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from nerfedit.nerf.common.render import deferred_backward, from_image, render_image, render_with_graph, seeded_rng, to_image
from nerfedit.nerf.edit.datamanager import EditView


class EditRenders:
    """Mixin of `NerfEditPipeline`: uses its `model`, `datamanager`, `config`, `grad_scaler`, `device` and `encode_source`."""

    def frozen_geometry(self, view: EditView):
        """The target's frozen geometry of the view's edited square (appearance-only edits), cached for training views."""
        geometry = self.datamanager.cached_geometry(view)
        if geometry is None:
            bundle = view.target_bundle()
            with seeded_rng(bundle, view.seed, 0):
                geometry = self.model.frozen_geometry(bundle)
            self.datamanager.store_geometry(view, geometry)
        return geometry

    def source_latent(self, view: EditView, geometry=None) -> torch.Tensor:
        """Latent of the source's render of the view's edited square; a training view's is made once (cached).

        With `geometry` (appearance-only edits, whole views) the source is rendered from the target's
        frozen geometry with the source's colour head: no second sampling/density pass.
        """
        size = view.size
        cached = self.datamanager.cached_source(view)
        if cached is None:
            image = self.source_image(view, geometry)
            if view.novel:
                return self.encode_source(image)
            # the image is kept too: the views route starts the view's 2D edit from it (`rendered_source_image`)
            cached = {"latent": self.encode_source(image), "image": image} if view.whole else {"image": image}
            self.datamanager.store_source(view, cached)
        if view.whole:
            return cached["latent"]
        top, left = view.crop
        return self.encode_source(cached["image"][..., top : top + size, left : left + size])

    def rendered_source_image(self, view: EditView, geometry=None) -> torch.Tensor:
        """`source_image` of the view, from the cache `source_latent` filled when it holds it (a 512² source render
        costs minutes on a CPU), else rendered."""
        cached = None if view.novel else self.datamanager.source_cache.get(view.index)
        return cached["image"] if cached is not None else self.source_image(view, geometry)

    @torch.no_grad()
    def source_image(self, view: EditView, geometry=None) -> torch.Tensor:
        """The source's render of the view: its edited square (novel views, or from `geometry`), else the whole view."""
        size, chunk = view.size, self.config.render_chunk
        if geometry is not None and (view.whole or view.novel):
            return to_image(self.model.render_appearance(geometry, source=True).float(), size, size)
        if view.novel:
            return to_image(render_image(self.model.source, view.target_bundle(), chunk, view.seed), size, size)
        return to_image(render_image(self.model.source, view.bundle, chunk, view.seed), view.height, view.width)

    def render_target(self, view: EditView, geometry, deferred: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """[1, 3, size, size] render of the target (with its graph, or a leaf for deferred back-propagation) and
        nerfacto's interlevel loss of it when the whole field is edited (None otherwise)."""
        size = view.size
        if deferred:  # pass 1 without a graph; `backward` re-renders chunk by chunk
            image = to_image(render_image(self.model, view.target_bundle(), self.config.render_chunk, view.seed), size, size)
            return image.requires_grad_(True), None
        if geometry is not None:
            return to_image(self.model.render_appearance(geometry).float(), size, size), None
        rgb, aux_loss = render_with_graph(self.model, view.target_bundle(), self._aux_loss(), view.seed)
        return to_image(rgb, size, size), aux_loss

    def backward(self, loss: Optional[torch.Tensor], image: torch.Tensor, aux_loss, view: EditView, deferred: bool) -> Dict[str, torch.Tensor]:
        """Back-propagate the edit's scalar `loss` of `image` (and the interlevel loss) into the field, scaled by the
        trainer's grad scaler; deferred: into the leaf image, then pass 2 of `deferred_backward`. None: a skipped
        step, nothing back-propagated."""
        if loss is None:
            return {"edit_loss": torch.zeros((), device=self.device)}
        loss_dict = {"edit_loss": loss.detach().to(self.device)}
        if deferred:
            loss.backward()
            scale = float(self.grad_scaler.get_scale()) if self.grad_scaler is not None and self.grad_scaler.is_enabled() else 1.0
            aux = self._aux_loss()
            aux_total = deferred_backward(
                self.model, view.target_bundle(), from_image(image.grad), self.config.render_chunk, aux, view.seed, scale
            )
            if aux is not None:
                loss_dict["interlevel_loss"] = torch.tensor(aux_total, device=self.device)
            return loss_dict
        total = loss.to(self.device)
        if aux_loss is not None:
            total = total + aux_loss
            loss_dict["interlevel_loss"] = aux_loss.detach()
        (self.grad_scaler.scale(total) if self.grad_scaler is not None else total).backward()
        return loss_dict

    def _aux_loss(self):
        """nerfacto's interlevel loss keeps the proposals on the density when the whole field is edited."""
        return None if self.config.edit_appearance_only else self.model.interlevel_loss

