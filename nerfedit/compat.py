"""Workarounds for running nerfstudio 1.1.5 on CPU-only machines. Each one is a no-op where nothing is broken.

Run by the set-up command (`python -m nerfedit.compat --apply`); without `--apply` it only reports.

1. torchvision from the registry is a CUDA build whose compiled ops don't load next to CPU torch.
   `torchvision/_meta_registrations.py` then registers fake kernels for `torchvision::nms` and
   `torchvision::qnms`, which don't exist, and `import torchvision` raises. We guard those two
   registrations on `torchvision.extension._has_ops()` — the same guard the file already uses for
   every other op — so a torchvision whose ops DO load (every CUDA install) is left as it is.
2. nerfstudio imports its fields, which emit torch's deprecation warnings, before ns-train loads any plugin;
   so the filters of `nerfedit.quiet` are installed at interpreter start-up by a one-line `nerfedit_quiet.pth`
   in site-packages (it only adds warning filters, and does nothing if nerfedit is not importable).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

_UNGUARDED = '@torch.library.register_fake("torchvision::{op}")'
_GUARDED = (
    '@(torch.library.register_fake("torchvision::{op}") if torchvision.extension._has_ops() '
    "else (lambda fn: fn))  # nerfedit: guarded, see nerfedit/compat.py"
)
_PATCHED_OPS = ("nms", "qnms")
QUIET_PTH = "nerfedit_quiet.pth"
_QUIET_PTH_LINE = 'import sys; exec("try:\\n import nerfedit.quiet as q; q.install()\\nexcept Exception:\\n pass")\n'


def torchvision_imports() -> bool:
    """Whether `import torchvision` works, tried in a fresh interpreter (a failed import poisons this one)."""
    return subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode == 0


def _meta_registrations_file() -> Path | None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "_meta_registrations.py"


def guard_torchvision_meta_registrations() -> str:
    """Patch torchvision's fake nms/qnms registrations if (and only if) `import torchvision` fails."""
    if torchvision_imports():
        return "torchvision imports: nothing to do"
    path = _meta_registrations_file()
    if path is None or not path.exists():
        return "torchvision is not installed: nothing to do"
    text = path.read_text()
    patched = text
    for op in _PATCHED_OPS:
        patched = patched.replace(_UNGUARDED.format(op=op), _GUARDED.format(op=op))
    if patched == text:
        return f"torchvision does not import, and {path} is not the known file: not patched"
    path.write_text(patched)
    ok = torchvision_imports()
    return f"patched {path}: torchvision {'imports now' if ok else 'STILL FAILS to import'}"


def install_quiet_pth() -> str:
    """Write `nerfedit_quiet.pth` into the site-packages nerfedit is installed in (see item 2 above)."""
    import sysconfig

    path = Path(sysconfig.get_paths()["purelib"]) / QUIET_PTH
    if path.exists() and path.read_text() == _QUIET_PTH_LINE:
        return f"{path}: already there"
    path.write_text(_QUIET_PTH_LINE)
    return f"wrote {path}: third-party deprecation warnings are filtered from start-up"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nerfedit.compat", description=__doc__.split("\n")[0])
    parser.add_argument("--apply", action="store_true", help="apply the workarounds this machine needs")
    args = parser.parse_args(argv)
    if args.apply:
        print(f"nerfedit.compat: {guard_torchvision_meta_registrations()}")
        print(f"nerfedit.compat: {install_quiet_pth()}")
        return 0 if torchvision_imports() else 1
    print(f"nerfedit.compat: torchvision {'imports' if torchvision_imports() else 'does NOT import (run --apply)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
