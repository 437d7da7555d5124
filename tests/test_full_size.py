"""scripts/bench_full_size.py and nerfedit/priors/full_size.py: SD's real architectures with random weights.

The default suite runs the benchmark's whole code path (build in a child process, load through the loader, the DDS,
CDS, NeRF and preview parts, the JSON) on the `tiny` arch, and counts the full-size parameters on the `meta` device.
The full-size CPU run is `slow` (see its docstring for what it took).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerfedit.priors.full_size import PUBLISHED_PARAMS, meta_modules, parameter_counts

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "bench_full_size.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_full_size", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def check_result(result: dict, arch: str, parts) -> None:
    assert result["ok"] is True
    assert result["arch"] == arch
    assert result["params"] == parameter_counts(arch)  # what was loaded is the arch's config
    assert list(result["parts"]) == list(parts)
    for name, part in result["parts"].items():
        assert part["grads_finite"] is True, name
        assert part["peak_mb"]["rss"] > 0, name
        seconds = part["s_per_step"] if "s_per_step" in part else part["s_total"]
        assert math.isfinite(seconds) and seconds > 0, name
        assert part["devices"]["cpu"], name
    assert result["process_peak_rss_mb"] > 0


def test_tiny_arch_runs_every_part(tmp_path):
    """The script's main on the tiny arch: a random model built, saved, loaded through the loader; every part runs
    with finite gradients, and the NeRF step is chunked with deferred back-propagation (32² render, 256-ray chunks)."""
    out = tmp_path / "tiny.json"
    code = load_script().main(["--arch", "tiny", "--device", "cpu", "--threads", "1", "--render-chunk", "256", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    check_result(result, "tiny", ["dds", "cds", "nerf", "preview"])
    nerf = result["parts"]["nerf"]
    assert nerf["deferred"] is True and nerf["render_px"] == 32 and nerf["loss_steps"] == 16  # --pipeline.view-steps-per-visit
    assert result["parts"]["cds"]["loss_steps"] == 1 and result["parts"]["preview"]["saved"] is True
    assert result["build_s"] > 0 and result["build_peak_rss_mb"] > 0
    assert "AttnProcessor2_0" in result["attention"]  # SDPA
    assert result["latent"] == [4, 16, 16] and result["resolution"] == 32


def test_sd15_and_sd21b_configs_have_the_published_sizes():
    """Counted on the meta device: no weights are allocated (a few MB, a few seconds)."""
    before, clock = rss_mb(), time.perf_counter()
    modules = meta_modules("sd15")
    assert all(p.is_meta for module in modules.values() for p in module.parameters())
    counts = parameter_counts("sd15")
    assert 859e6 <= counts["unet"] <= 861e6
    assert abs(counts["vae"] - 83.6e6) < 0.1e6
    assert abs(counts["text_encoder"] - 123e6) < 0.2e6
    assert counts == PUBLISHED_PARAMS["sd15"]
    assert parameter_counts("sd21b") == PUBLISHED_PARAMS["sd21b"]
    assert rss_mb() - before < 300  # 3.4 GB if the sd15 UNet had been allocated
    assert time.perf_counter() - clock < 60


def test_bad_input_is_one_line_before_any_work(tmp_path, capsys):
    script = load_script()
    existing = tmp_path / "out.json"
    existing.write_text("{}")
    other = tmp_path / "model"
    other.mkdir()
    (other / "full_size.json").write_text(json.dumps({"arch": "sd21b"}))
    cases = [
        (["--json", str(existing)], "already exists"),
        (["--arch", "tiny", "--model-dir", str(other)], "holds a random sd21b"),
        (["--parts", "dds,nerf2"], "--parts nerf2"),
        (["--arch", "sd99"], "invalid choice"),
    ]
    if not __import__("torch").cuda.is_available():
        cases.append((["--device", "cuda"], "CUDA is not available"))
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            script.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2, argv
        assert len(err) == 1 and err[0].startswith("nerfedit: error:") and message in err[0], (argv, err)
    assert existing.read_text() == "{}"


def test_help_shows_real_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "(default: sd15)" in text and "(default: 32768)" in text and "200 on CUDA, 1 on the CPU" in text


@pytest.mark.slow
def test_full_size_sd15_on_the_cpu(tmp_path):
    """sd15 at 512², fp32, on the CPU: it must fit in memory and give finite gradients.

    Measured once (2-core AMD EPYC, 24 GiB, 2 torch threads, beside two other training jobs, load average 3–4.7):
    1 h 20 min in all — DDS step 66 s, CDS step 80 s, the NeRF edit step 3812 s (first visit of its view: two
    source renders, 16 CDS steps, deferred render + backward), preview 677 s; peak RSS 17.3 GB, set by the
    untrained nerfacto's 32768-ray render chunks (+10.5 GB each on the CPU; the 2D steps peak at 5.9 / 7.6 GB).
    """
    out = tmp_path / "sd15.json"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    command = [sys.executable, str(SCRIPT), "--arch", "sd15", "--device", "cpu", "--dtype", "fp32", "--threads", "2", "--json", str(out)]
    subprocess.run(command, check=True, env=env, cwd=REPO, timeout=4 * 3600)
    result = json.loads(out.read_text())
    check_result(result, "sd15", ["dds", "cds", "nerf", "preview"])
    assert result["parts"]["nerf"]["render_px"] == 512 and result["parts"]["nerf"]["deferred"] is True
    assert result["process_peak_rss_mb"] < 22 * 1024
