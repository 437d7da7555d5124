"""What a run prints that is not the user's business, silenced in ONE place; our own warnings, errors and progress stay.

Measured on `ns-train nerfedit-small` (CPU, torch 2.13, nerfstudio 1.1.5) and `nerfedit edit-image`:

    FutureWarning  torch.cuda.amp.custom_fwd / custom_bwd is deprecated     nerfstudio, at import
    FutureWarning  torch.cuda.amp.GradScaler(args...) is deprecated          nerfstudio's trainer
    UserWarning    torch.cuda.amp.GradScaler is enabled, but CUDA is not available   (CPU runs)
    UserWarning    This DataLoader will create 4 worker processes …          nerfstudio's datamanager
    UserWarning    Using a non-tuple sequence for multidimensional indexing  nerfstudio's cameras (×6)
    UserWarning    Converting a tensor with requires_grad=True to a scalar   nerfstudio's writer
    notice         "WARNING: Using a slow implementation … Install tcnn"    nerfstudio, per field module (×10);
                   tiny-cuda-nn needs CUDA, so on a machine without it the notice is silenced (`quiet_nerfstudio`)
    progress bar   "Loading weights" of transformers / diffusers            (`quiet_libraries`)

Each filter names the message (and the module where the warning is attributed), so a new warning from the
same libraries still shows. `install()` is cheap (no imports) and is called by the `nerfedit` command, by the
plugin (`nerfedit.nerf`), and at interpreter start-up through the `nerfedit_quiet.pth` that the set-up command
writes (`python -m nerfedit.compat --apply`): nerfstudio imports its fields, and warns, before ns-train loads
any plugin.
"""

from __future__ import annotations

import warnings

THIRD_PARTY_WARNINGS = (
    (FutureWarning, r"`torch\.cuda\.amp\.(custom_fwd|custom_bwd|GradScaler)\(args\.\.\.\)` is deprecated", r"nerfstudio\."),
    (UserWarning, r"torch\.cuda\.amp\.GradScaler is enabled, but CUDA is not available", r"torch\.cuda\.amp"),
    (UserWarning, r"This DataLoader will create \d+ worker processes", r"torch\.utils\.data"),
    (UserWarning, r"Using a non-tuple sequence for multidimensional indexing is deprecated", r"nerfstudio\."),
    (UserWarning, r"Converting a tensor with requires_grad=True to a scalar", r"nerfstudio\."),
)
"""(category, message regex, module regex): third-party warnings that say nothing the user can act on."""


def install() -> None:
    """Add the filters of `THIRD_PARTY_WARNINGS` (idempotent: `filterwarnings` drops duplicates)."""
    for category, message, module in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def quiet_libraries() -> None:
    """Silence diffusers/transformers info chatter and their loading bars (our own bars stay)."""
    install()
    try:
        import diffusers.utils.logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    except Exception:
        pass
    try:
        import transformers.utils.logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except Exception:
        pass


def quiet_nerfstudio() -> None:
    """Without CUDA, tiny-cuda-nn cannot be installed: drop nerfstudio's per-module "Install tcnn" notice."""
    import torch

    if torch.cuda.is_available():
        return
    import nerfstudio.field_components.encodings as encodings
    import nerfstudio.field_components.mlp as mlp

    for module in (encodings, mlp):
        module.print_tcnn_speed_warning = lambda module_name: None
