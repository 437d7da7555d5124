"""Loading the models behind `nerfedit eval`'s metrics, from a local folder or file, or the hub's cache — never a stand-in.

    CLIP    transformers' CLIPModel and CLIPProcessor (`--clip`: a hub id or a folder saved with `save_pretrained`)
    DINO    transformers' ViTModel (DINO v1, e.g. facebook/dino-vitb8) or Dinov2Model, chosen by the config's model_type
    LPIPS   torchmetrics' LPIPS network: its linear layers ship inside torchmetrics; its backbone (torchvision's alexnet or
            vgg16 ImageNet weights) is a file torchvision would download, so it comes from `--lpips-backbone FILE` or
            from torch's hub cache (`$TORCH_HOME/hub/checkpoints`, where torchvision keeps its downloads)

A model that cannot be had raises `MetricUnavailable` with one line saying why and what to do: its metric is reported
as unavailable and the others still run. A hub id is looked up in the local cache first and downloaded only when
HF_HUB_OFFLINE is not set (as `nerfedit.priors.loader` does for priors). An option that names a local path that does
not exist is the user's to fix (`check_model_option`: a `UserError`, found before anything is loaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

from nerfedit.errors import UserError

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
"""CLIP ViT-L/14: the model of InstructPix2Pix's CLIP metrics and torchmetrics' CLIPScore default."""
DEFAULT_DINO = "facebook/dino-vitb8"
"""DINO ViT-B/8: the model of Splice's structure loss (and of Plug-and-Play's structure metric)."""
LPIPS_BACKBONES = {"alex": ("alexnet", "AlexNet_Weights"), "vgg": ("vgg16", "VGG16_Weights")}
"""`--lpips-net` → (torchvision model, its weights enum). alex is LPIPS's recommended and torchmetrics' default."""
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}
"""Smallest image side each backbone's pooling stack can take (measured: alexnet fails at 30 px, vgg16 at 15)."""


class MetricUnavailable(Exception):
    """A metric's model cannot be had here; the message is the one-line reason shown in the table and the JSON."""


def offline() -> bool:
    """HF_HUB_OFFLINE is set: a hub id must already be in the local cache."""
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(name: str) -> bool:
    # As `nerfedit.priors.loader.looks_like_path` (not imported: that module loads diffusers, too slow before the checks).
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or name.endswith("/") or "\\" in name


def check_model_option(name: str, flag: str) -> None:
    """A model option meant as a local folder must be one (a `UserError` otherwise); a hub id is checked when loaded."""
    path = Path(name).expanduser()
    if path.is_dir() or not _looks_like_path(name):
        return
    what = "not a folder" if path.exists() else "no such folder"
    raise UserError(f"{flag} {name}: {what} (give a folder saved with save_pretrained, or a hub id like 'org/model')")


def check_file_option(path: Optional[Path], flag: str) -> None:
    """A file option, when given, must name an existing file (a `UserError` otherwise)."""
    if path is not None and not Path(path).expanduser().is_file():
        raise UserError(f"{flag} {path}: {'not a file' if Path(path).expanduser().exists() else 'no such file'}")


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else ""
    line = line if len(line) <= 200 else line[:197] + "…"
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def from_pretrained(cls, name: str, flag: str, **kwargs):
    """`cls.from_pretrained(name)` from a local folder, else the hub's cache, else (online) the hub; `MetricUnavailable`
    with one line if none has it."""
    from nerfedit.quiet import quiet_libraries

    quiet_libraries()
    folder = Path(name).expanduser()
    if folder.is_dir():
        try:
            return cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
        except Exception as error:  # a folder without the model's files raises OSError, ValueError, KeyError, …
            raise MetricUnavailable(f"{flag} {name}: cannot load {cls.__name__} from this folder ({_first_line(error)})") from None
    try:
        return cls.from_pretrained(name, local_files_only=True, **kwargs)
    except Exception:  # not in the cache: try the hub unless told to stay offline
        pass
    if offline():
        raise MetricUnavailable(
            f"{flag} {name}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; download it where there is "
            f"network (hf download {name} --local-dir DIR) and pass {flag} DIR"
        )
    try:
        return cls.from_pretrained(name, **kwargs)
    except Exception as error:
        raise MetricUnavailable(f"{flag} {name}: not in the local cache and not downloadable ({_first_line(error)})") from None


def load_clip(name: str, device) -> Tuple[object, object]:
    """(CLIPModel in eval mode on `device`, its CLIPProcessor) from a hub id or folder; `MetricUnavailable` if absent."""
    from transformers import CLIPModel, CLIPProcessor

    processor = from_pretrained(CLIPProcessor, name, "--clip")
    model = from_pretrained(CLIPModel, name, "--clip")
    return model.eval().to(device), processor


def load_dino(name: str, device):
    """A DINO ViTModel (v1) or Dinov2Model, by the config's model_type, in eval mode on `device`."""
    from transformers import AutoConfig, Dinov2Model, ViTModel

    config = from_pretrained(AutoConfig, name, "--dino")
    if config.model_type == "vit":
        model = from_pretrained(ViTModel, name, "--dino", add_pooling_layer=False)  # the pooler is not used
    elif config.model_type == "dinov2":
        model = from_pretrained(Dinov2Model, name, "--dino")
    else:
        raise MetricUnavailable(f"--dino {name}: a '{config.model_type}' model, not a ViT (DINO) or DINOv2 one")
    return model.eval().to(device)


def cached_backbone(net: str) -> Path:
    """Where torchvision keeps the ImageNet weights of LPIPS's `net` backbone once downloaded (it may not be there)."""
    import torch.hub
    import torchvision.models

    weights = getattr(torchvision.models, LPIPS_BACKBONES[net][1]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_lpips(net: str, backbone: Optional[Path], device):
    """torchmetrics' LPIPS network for `net` (alex, vgg) with its shipped linear layers and the backbone state dict of
    `backbone` (a torchvision model's, whole or its `features` alone), else of torch's hub cache."""
    import torch
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    model_name = LPIPS_BACKBONES[net][0]
    path = Path(backbone).expanduser() if backbone is not None else cached_backbone(net)
    if not path.is_file():
        raise MetricUnavailable(
            f"no {model_name} backbone: torchvision would download it; pass --lpips-backbone FILE (torchvision's "
            f"{path.name}, or any {model_name} state dict) or put that file in {path.parent}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one holding more than tensors
        raise MetricUnavailable(f"LPIPS backbone {path}: cannot read it as a state dict ({_first_line(error)})") from None
    if not isinstance(state, dict):
        raise MetricUnavailable(f"LPIPS backbone {path}: holds a {type(state).__name__}, not a state dict")
    features = {key[len("features.") :]: value for key, value in state.items() if key.startswith("features.")} or state
    # pnet_rand builds the backbone without weights (so torchvision downloads nothing); they are loaded below.
    lpips = _NoTrainLpips(pretrained=True, net=net, pnet_rand=True)
    wanted = {}
    for key, value in lpips.net.state_dict().items():  # "slice2.3.weight" is features[3] of the torchvision model
        source = key.split(".", 1)[1]
        if source not in features or tuple(features[source].shape) != tuple(value.shape):
            other = [n for n in LPIPS_BACKBONES if n != net][0]
            raise MetricUnavailable(
                f"LPIPS backbone {path}: not a torchvision {model_name} state dict (features.{source} is missing or of "
                f"another shape; for a {LPIPS_BACKBONES[other][0]} file use --lpips-net {other})"
            )
        wanted[key] = features[source]
    lpips.net.load_state_dict(wanted)
    return lpips.eval().to(device)
