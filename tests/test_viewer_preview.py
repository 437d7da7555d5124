"""The viewer's Preview in a real browser (slow): ns-train's viewer on loopback, headless Chromium, selenium.

Runs `scripts/viewer_preview_check.py`: types a target prompt into the nerfedit panel, clicks Preview
and waits for the source | preview image in the GUI; the screenshot is kept in the test's tmp folder.
Needs the Debian packages chromium and chromium-driver (skipped without them).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "nerfedit" / "assets" / "toy"


@pytest.mark.slow
def test_preview_button_shows_the_edit_in_the_browser(tmp_path, tiny_prior_dir):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs chromium and chromedriver: apt-get install -y chromium chromium-driver")
    if not (REPO / "scenes" / "red_cube").is_dir():
        pytest.skip("scenes/red_cube is not in the checkout")
    sys.path.insert(0, str(REPO / "scripts"))
    import viewer_preview_check

    prior = str(TOY) if (TOY / "unet").is_dir() else str(tiny_prior_dir)
    args = ["--out", str(tmp_path), "--prior", prior, "--reconstruct-steps", "60", "--preview-steps", "5", "--timeout", "600"]
    summary = viewer_preview_check.run_check(viewer_preview_check.build_parser().parse_args(args))
    assert summary["ok"], summary
    assert summary["prompt_reached_pipeline"]
    assert Path(summary["screenshot"]).stat().st_size > 10_000
    assert Path(summary["saved_preview"]).is_file()
