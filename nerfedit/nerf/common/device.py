"""The device both ns-train methods train on by default."""

import torch

DEFAULT_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
"""nerfstudio's default is cuda; on a CPU-only machine that can only fail, so we default to the CPU there."""
