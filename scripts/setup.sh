#!/usr/bin/env bash
# One set-up command for nerfedit.
# Installs into the active virtualenv/conda env if there is one, else into ./.venv.
# torch: an already installed torch (e.g. a CUDA user's build) is kept and pinned;
# otherwise torch==${NERFEDIT_TORCH:-2.13.0} is installed first, so no dependency
# can pull a different (multi-GB CUDA) build in behind our back.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  PY=python
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY=.venv/bin/python
fi

if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install "torch==${NERFEDIT_TORCH:-2.13.0}"
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PY" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > "$constraints"
echo "pinning $(cat "$constraints")"

"$PY" -m pip install -c "$constraints" -e ".[dev]"
# Fixes only what is broken on this machine (CPU-only torchvision); a no-op on CUDA machines.
"$PY" -m nerfedit.compat --apply
# System libraries that nerfstudio's commands need and pip cannot install (open3d, for ns-export, needs libusb):
# installed here when running as root with apt-get, else the exact command is printed and ns-train still works.
bash scripts/system_libraries.sh "$PY" || echo "nerfedit: ns-export will not work until the library above is installed"
echo "nerfedit is set up. Activate with: source .venv/bin/activate (unless you used your own env)"
