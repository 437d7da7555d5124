#!/usr/bin/env python
"""Prove the viewer's edit preview in a real browser.

Starts `ns-train nerfedit-small` with the viewer on loopback (127.0.0.1), paused before its first
edit step; loads the page in headless Chromium (Debian packages `chromium`, `chromium-driver`)
through selenium; types a target prompt into the nerfedit panel, clicks Preview, waits for the
source | preview image to appear in the GUI and saves a screenshot; then clicks Start/Pause edit and
waits for the edit to start. Prints a JSON summary.

    python scripts/viewer_preview_check.py --out /tmp/viewer_check
    # → /tmp/viewer_check/viewer_preview.png (screenshot), …/previews/preview_001.png (the saved panel)

Install the browser once: apt-get update && apt-get install -y chromium chromium-driver
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_browser() -> Dict[str, str]:
    """Paths of chromium and chromedriver, or a one-line explanation of how to install them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not browser or not driver:
        raise SystemExit("viewer_preview_check: chromium/chromedriver not found: apt-get install -y chromium chromium-driver")
    return {"browser": browser, "driver": driver}


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5, process: Optional[subprocess.Popen] = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"ns-train exited (code {process.returncode}) while waiting for {what}")
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_training(out: Path, port: int, args: argparse.Namespace) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "ns-train"), "nerfedit-small",
        "--data", str(args.data),
        "--output-dir", str(out),
        "--experiment-name", "viewer_check",
        "--timestamp", "check",
        "--vis", "viewer",
        "--viewer.websocket-host", "127.0.0.1",
        "--viewer.websocket-port", str(port),
        "--pipeline.prior", args.prior,
        "--pipeline.source-prompt", args.source_prompt,
        "--pipeline.target-prompt", args.source_prompt,  # the check types the real target in the browser
        "--pipeline.reconstruct-steps", str(args.reconstruct_steps),
        "--pipeline.edit-steps", "100",
        "--pipeline.preview-steps", str(args.preview_steps),
        "--pipeline.start-edit-paused", "True",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    log = open(out / "ns-train.log", "w")
    return subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C semantics even from a background job
    )  # fmt: skip


def stop_training(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # nerfedit saves a checkpoint and exits
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run_check(args: argparse.Namespace) -> Dict[str, object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    paths = find_browser()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    log_path = out / "ns-train.log"
    started = time.time()
    process = start_training(out, port, args)
    driver = None
    summary: Dict[str, object] = {"port": port, "log": str(log_path)}
    try:
        wait_for(lambda: "paused before the first edit step" in log_path.read_text() or "editing from step" in log_path.read_text(),
                 args.timeout, "the reconstruction to finish", process=process)  # fmt: skip
        summary["reconstruction_s"] = round(time.time() - started, 1)

        options = webdriver.ChromeOptions()
        options.binary_location = paths["browser"]
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='nerfedit-chromium-')}")
        driver = webdriver.Chrome(service=Service(paths["driver"]), options=options)
        driver.get(f"http://127.0.0.1:{port}")

        label = "Target prompt"
        wait_for(lambda: label in driver.page_source, 120, "the nerfedit panel in the page")
        prompt_input = driver.find_element(By.XPATH, f"//*[normalize-space(text())='{label}']/following::input[1]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", prompt_input)
        prompt_input.click()
        prompt_input.send_keys(Keys.CONTROL, "a")
        prompt_input.send_keys(Keys.DELETE)
        prompt_input.send_keys(args.target_prompt)
        driver.execute_script("arguments[0].blur();", prompt_input)
        time.sleep(2)  # let the websocket deliver the new value

        button = driver.find_element(By.XPATH, "//button[normalize-space(.)='Preview']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        time.sleep(1)
        clicked = time.time()
        driver.execute_script("arguments[0].click();", button)  # a hint tooltip may overlap the button

        image_xpath = "//img[starts-with(@src, 'data:image/png;base64')]"
        image = wait_for(lambda: (driver.find_elements(By.XPATH, image_xpath) or [None])[0], args.timeout, "the preview image in the GUI")
        summary["preview_s"] = round(time.time() - clicked, 1)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
        time.sleep(2)  # the 3D view keeps rendering; give it a moment so the screenshot shows the scene too
        screenshot = out / "viewer_preview.png"
        driver.save_screenshot(str(screenshot))
        image.screenshot(str(out / "viewer_preview_panel.png"))
        previews = sorted((out / "viewer_check" / "nerfedit-small" / "check" / "previews").glob("preview_*.png"))
        prompt_ok = f"'{args.target_prompt}'" in driver.page_source

        # Start/Pause edit: the run was paused before its first edit step; this starts the edit.
        start = driver.find_element(By.XPATH, "//button[normalize-space(.)='Start/Pause edit']")
        driver.execute_script("arguments[0].click();", start)
        status_xpath = "//strong[normalize-space(.)='editing']"
        started_editing = bool(wait_for(lambda: driver.find_elements(By.XPATH, status_xpath), 120, "the edit to start"))
        summary.update(
            screenshot=str(screenshot),
            saved_preview=str(previews[-1]) if previews else None,
            prompt_reached_pipeline=prompt_ok,
            start_pause_started_edit=started_editing,
            ok=bool(previews) and prompt_ok and started_editing,
        )
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(out / "viewer_failure.png"))
        raise
    finally:
        if driver is not None:
            driver.quit()
        stop_training(process)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/viewer_check"), help="folder for the run, log and screenshots")
    parser.add_argument("--data", type=Path, default=REPO / "scenes" / "red_cube", help="nerfstudio scene")
    parser.add_argument("--prior", default="toy", help="toy | a local diffusers folder | sd15 …")
    parser.add_argument("--source-prompt", default="a red cube on a wooden floor")
    parser.add_argument("--target-prompt", default="a blue cube on a wooden floor", help="typed into the browser")
    parser.add_argument("--reconstruct-steps", type=int, default=300)
    parser.add_argument("--preview-steps", type=int, default=200)
    parser.add_argument("--port", type=int, default=0, help="viewer port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each stage")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    summary = run_check(args)
    print(json.dumps(summary, indent=2))
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
