"""The nerfedit panel of nerfstudio's viewer (viser): plain viewer-element attributes with callbacks.

nerfstudio finds viewer elements by walking the pipeline's public attributes and modules, and runs
their callbacks between training steps (holding the train lock). Nothing else in the pipeline knows
the viewer exists: without a viewer every `.value` is the config's default. The actions behind the
buttons live here too: `preview` (a 2D edit of the current view) and `start_pause`.

Elements are listed in attribute-name order, hence the `e1_…` prefixes.

nerfstudio wraps every element's callback so that it holds the train lock and then re-renders the
3D view. None of ours changes the 3D view, and on a CPU a re-render per keystroke (the viewport at
512 px) queues minutes of work, so our elements register their callbacks themselves: the inputs
have none (their `.value` is read when needed) and the buttons call the pipeline directly, which
takes the train lock only where it touches the model (Preview).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from contextlib import nullcontext
from typing import Callable, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from viser import ViserServer

from nerfstudio.viewer.viewer_elements import (
    ViewerButton,
    ViewerControl,
    ViewerDropdown,
    ViewerElement,
    ViewerSlider,
    ViewerText,
)
from nerfstudio.utils.rich_utils import CONSOLE

from nerfedit.errors import UserError
from nerfedit.losses.catalog import LOSS_NAMES, entry
from nerfedit.nerf.common.render import crop_bundle, ray_bundle, render_image, scaled_camera, to_image
from nerfedit.nerf.common.video import side_by_side

PREVIEW_DISPLAY_HEIGHT = 192
"""Pixel height the source | preview panel is shown at in the GUI (small renders are upscaled, nearest)."""


class PassiveText(ViewerText):
    """A ViewerText whose edits trigger nothing (no re-render); the pipeline reads `.value`."""

    def install(self, viser_server: ViserServer) -> None:
        self._create_gui_handle(viser_server)


class PassiveDropdown(ViewerDropdown):
    """A ViewerDropdown whose changes trigger nothing; the pipeline reads `.value`."""

    def install(self, viser_server: ViserServer) -> None:
        self._create_gui_handle(viser_server)


class PassiveSlider(ViewerSlider):
    """A ViewerSlider whose changes trigger nothing; the pipeline reads `.value`."""

    def install(self, viser_server: ViserServer) -> None:
        self._create_gui_handle(viser_server)


class ActionButton(ViewerButton):
    """A ViewerButton that calls its hook directly: no train lock, no re-render of the 3D view afterwards."""

    def install(self, viser_server: ViserServer) -> None:
        self._create_gui_handle(viser_server)
        hook = self.cb_hook  # captured before nerfstudio wraps it
        self.gui_handle.on_click(lambda _: hook(self))


class ViewerMarkdown(ViewerElement[str]):
    """A markdown block in the GUI (viser's `add_markdown`); shows images given as data URLs."""

    def __init__(self, name: str, content: str = "", visible: bool = True) -> None:
        super().__init__(name, visible=visible)
        self.content = content

    def _create_gui_handle(self, viser_server: ViserServer) -> None:
        # image_root only silences viser's warning about relative image paths: ours are data URLs
        self.gui_handle = viser_server.gui.add_markdown(self.content, image_root=Path.cwd(), visible=self.visible)  # type: ignore[assignment]

    def install(self, viser_server: ViserServer) -> None:
        self._create_gui_handle(viser_server)

    def set_content(self, content: str) -> None:
        self.content = content
        if self.gui_handle is not None:
            self.gui_handle.content = content  # type: ignore[union-attr]


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] → PNG bytes."""
    import imageio.v2 as imageio

    buffer = io.BytesIO()
    imageio.imwrite(buffer, image, format="png")
    return buffer.getvalue()


def image_markdown(image: np.ndarray, caption: str, height: int = PREVIEW_DISPLAY_HEIGHT) -> str:
    """Markdown showing `image` (uint8 [H, W, 3]) upscaled to about `height` px, under a caption."""
    factor = max(1, height // max(1, image.shape[0]))
    big = image.repeat(factor, axis=0).repeat(factor, axis=1)
    data = base64.b64encode(png_bytes(big)).decode("ascii")
    return f"{caption}\n\n![source | preview](data:image/png;base64,{data})"


InitialView = Callable[[], Tuple[np.ndarray, np.ndarray, np.ndarray, float]]
"""() → (camera position, look-at point, up direction, vertical fov in radians), nerfstudio world units."""


class EditViewerControl(ViewerControl):
    """nerfstudio's ViewerControl (gives Preview the browser's camera), which also starts every new
    browser at a training view looking at the capture's focus, so the first Preview shows the scene."""

    def __init__(self, initial_view: Optional[InitialView] = None, max_res: Optional[int] = None) -> None:
        self.initial_view = initial_view
        self.max_res = max_res

    def _setup(self, viewer) -> None:
        super()._setup(viewer)
        if self.initial_view is not None:
            self.viser_server.on_client_connect(self._place_new_client)
        slider = getattr(getattr(viewer, "control_panel", None), "_max_res", None)
        if self.max_res and slider is not None:  # the viewport's render resolution (nerfstudio's "Max res")
            slider.value = int(self.max_res)

    def _place_new_client(self, client) -> None:
        placed = []

        @client.camera.on_update
        def _(camera) -> None:  # camera properties are readable only after the browser's first update
            if placed or self.initial_view is None:
                return
            placed.append(True)
            from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO as SCALE

            position, look_at, up, fov = self.initial_view()
            with client.atomic():
                camera.up_direction = tuple(float(v) for v in up)
                camera.position = tuple(float(v) * SCALE for v in position)
                camera.look_at = tuple(float(v) * SCALE for v in look_at)
                camera.fov = float(fov)


class EditControls(torch.nn.Module):
    """Source/target prompts, loss, guidance, Preview and Start/Pause edit — the viewer's "nerfedit" folder."""

    def __init__(
        self,
        source_prompt: str,
        target_prompt: str,
        loss_name: str,
        guidance_scale: float,
        on_preview: Callable[[], object],
        on_start_pause: Callable[[], object],
        initial_view: Optional[InitialView] = None,
        viewer_max_res: Optional[int] = None,
    ) -> None:
        super().__init__()
        losses = list(LOSS_NAMES)
        self.e1_source_prompt = PassiveText("Source prompt", source_prompt, hint="What the scene shows now")
        self.e2_target_prompt = PassiveText("Target prompt", target_prompt, hint="What the scene should show")
        self.e3_loss = PassiveDropdown("Loss", loss_name if loss_name in losses else losses[0], losses)
        self.e4_guidance = PassiveSlider("Guidance", float(guidance_scale), 1.0, 100.0, 0.5, hint="CFG scale s")
        self.e5_preview = ActionButton("Preview", cb_hook=lambda _: on_preview())
        self.e6_start_pause = ActionButton("Start/Pause edit", cb_hook=lambda _: on_start_pause())
        self.e7_status = ViewerMarkdown("Status", "")
        self.e8_preview_image = ViewerMarkdown("Preview image", "")
        self.camera = EditViewerControl(initial_view, viewer_max_res)
        self.default_guidance = float(guidance_scale)
        self.previews = 0  # numbers the saved preview files

    @property
    def guidance_changed(self) -> bool:
        """Whether the slider was moved away from the config's guidance."""
        return abs(float(self.e4_guidance.value) - self.default_guidance) > 1e-9

    def viewer_camera(self, height: int, width: int):
        """The browser's current camera as nerfstudio `Cameras`, or None without a connected viewer."""
        if getattr(self.camera, "viser_server", None) is None:
            return None
        return self.camera.get_camera(height, width)

    def status(self, text: str) -> None:
        self.e7_status.set_content(text)

    def show_preview(self, panel: np.ndarray, caption: str) -> None:
        self.e8_preview_image.set_content(image_markdown(panel, caption))


# ---- the buttons' actions ---------------------------------------------------------------------
def preview(pipeline) -> Optional[Path]:
    """A short 2D edit of the viewer's current view with the same loss core; shown and saved as PNG.

    Renders the source (or, before editing starts, the reconstruction so far) from the browser's
    camera — the first training camera without a viewer —, optimises its latent for
    `preview_steps` steps with `nerfedit.image.edit.edit_latents`, and shows source | preview.
    """
    controls: EditControls = pipeline.nerfedit
    lock = getattr(pipeline.trainer, "train_lock", None) or nullcontext()  # the model is shared with training
    controls.status("**preview** running…")
    CONSOLE.log("nerfedit: preview requested")
    try:
        with lock:
            CONSOLE.log("nerfedit: preview started")
            return _preview(pipeline, pipeline.edit_resolution())
    except UserError as error:  # e.g. an unknown loss typed in the viewer: say so there, keep training
        controls.status(f"**error**: {error}")
        CONSOLE.print(f"nerfedit: preview failed: {error}")
        return None


def _preview(pipeline, size: int) -> Path:
    from nerfedit.image.edit import EditConfig, edit_latents

    controls: EditControls = pipeline.nerfedit
    model = pipeline.model
    was_training = pipeline.training
    pipeline.eval()
    try:
        camera = controls.viewer_camera(size, size)
        if camera is None:
            camera = scaled_camera(pipeline.datamanager.cameras, 0, size)
        bundle, height, width = ray_bundle(camera, 0, pipeline.device)
        bundle = crop_bundle(bundle, height, width, (height - size) // 2, (width - size) // 2, size)
        field = model.source if model.source_frozen else model
        image = to_image(render_image(field, bundle, pipeline.config.render_chunk), size, size)
        source_prompt, target_prompt = pipeline.prompts()
        entry(controls.e3_loss.value, "--pipeline.loss.name")
        z, history = edit_latents(
            pipeline.current_loss(),
            pipeline.encode_source(image),
            target=target_prompt,
            source=source_prompt,
            config=EditConfig(steps=pipeline.config.preview_steps, seed=pipeline.config.seed),
            progress=False,
        )
        with torch.no_grad():
            edited = pipeline.get_prior().decode_latents(z).float()
            if edited.shape[-1] != size:
                edited = F.interpolate(edited, size=(size, size), mode="bilinear", align_corners=False)
        panel = side_by_side(image.cpu(), edited.cpu())
    finally:
        pipeline.train(was_training)
    controls.previews += 1
    folder = (pipeline.run_dir or Path.cwd() / "nerfedit_previews") / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"preview_{controls.previews:03d}.png"
    import imageio.v2 as imageio

    imageio.imwrite(path, panel)
    controls.show_preview(panel, f"**Preview** ({controls.e3_loss.value}, {history.steps} steps): source | '{target_prompt}'")
    state = getattr(pipeline.trainer, "training_state", "")
    controls.status(f"preview saved as previews/{path.name}" + (f"; training is {state}" if state else ""))
    CONSOLE.print(f"nerfedit: preview saved to {path} ({history.summary()})")
    return path


def start_pause(pipeline) -> str:
    """Start/Pause edit: toggles the trainer between training and paused; returns the new state."""
    trainer = pipeline.trainer
    if trainer is None or trainer.training_state == "completed":
        return "completed" if trainer is not None else "no trainer"
    trainer.training_state = "paused" if trainer.training_state == "training" else "training"
    running = "editing" if pipeline.model.source_frozen else "reconstructing"
    pipeline.nerfedit.status(f"**{'paused' if trainer.training_state == 'paused' else running}**")
    return trainer.training_state


__all__ = ["EditControls", "EditViewerControl", "ViewerMarkdown", "image_markdown", "png_bytes", "preview", "start_pause"]
