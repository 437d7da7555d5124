#!/usr/bin/env python
"""Benchmark every score-distillation loss on one prior: time per step, peak memory, UNet and VAE calls per step.

    python scripts/bench_losses.py                       # tiny random SD model built in-process (nerfedit/priors/tiny.py)
    python scripts/bench_losses.py --prior toy --steps 20
    python scripts/bench_losses.py --prior sd15 --device cuda

One step = the loss call + `out.loss.backward()` on latents at the prior's resolution, batch 1 (by default).
Beside our DDS and CDS it times the official code's arrangement of the same step, in the same process, on the
same prior (nerfedit/eval/official_steps.py): the DDS notebook's one no-grad UNet call of 4 rows (ours makes the
same call: expect ≈ 1.0), and the CDS code's extra differentiable call over BOTH CFG rows of the target (ours runs
the conditional row only). The "× official" column is each loss's time over the official DDS step (for CDS: over
the official CDS step). All entries run round-robin, one step each per round (so machine load hits them alike);
times are medians over `--steps` rounds after `--warmup`. On a CPU, quote ratios, not absolute times. Peak
memory: the largest per-step peak above the step's start — on CUDA from `max_memory_allocated`, on the CPU from
the resident set sampled every millisecond (an
estimate: small blocks the allocator keeps and reuses are not seen).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

RANDOM_SIZES = {
    "tiny": dict(),
    "small": dict(latent_size=32, unet_channels=(64, 128, 256), vae_channels=(32, 64, 128)),
}
"""Random SD-format models (nerfedit/priors/tiny.py) the benchmark can build when no --prior is given."""
OFFICIAL = {"dds": "dds (official arrangement)", "cds": "cds (official arrangement)"}
"""Baselines timed beside our DDS and CDS: the official code's UNet calls per step (nerfedit/eval/official_steps.py)."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default=None, help="toy | sd15 | … | folder (default: a random SD-format model built here)")
    parser.add_argument("--size", choices=sorted(RANDOM_SIZES), default="tiny",
                        help="shape of the random model when no --prior: tiny (the tests' model, 16² latents) | "
                             "small (32² latents, 3-level UNet and VAE, 128 px images)")
    parser.add_argument("--device", default=None, help="cuda | cpu (default: cuda if available)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per loss (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--batch", type=int, default=1, help="latents per step (default 1)")
    parser.add_argument("--losses", default=None, help="comma-separated subset of the losses (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file (not overwritten)")
    return parser.parse_args(argv)


# ---- measuring --------------------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class MemoryMeter:
    """Peak memory of one step above its start: CUDA `max_memory_allocated`, or on the CPU the resident set
    sampled every millisecond by a thread (an estimate: small blocks the allocator reuses are not seen)."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self.start = device, 0, 0
        self.stop = threading.Event()
        if device.type != "cuda":
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def begin(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.start = self.peak = rss_bytes()

    def end(self) -> float:
        """MB above the start of the step."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        return (max(self.peak, rss_bytes()) - self.start) / 2**20


@contextmanager
def counting(prior):
    """Counts UNet forward calls (and their rows) and VAE encode/decode calls."""
    counts = {"unet": 0, "rows": 0, "vae": 0}

    def hook(module, args, kwargs, out):
        counts["unet"] += 1
        counts["rows"] += int(args[0].shape[0])

    handle = prior.unet.register_forward_hook(hook, with_kwargs=True)
    encode, decode = prior.vae.encode, prior.vae.decode

    def counted(fn):
        def wrapper(*a, **k):
            counts["vae"] += 1
            return fn(*a, **k)

        return wrapper

    prior.vae.encode, prior.vae.decode = counted(encode), counted(decode)
    try:
        yield counts
    finally:
        handle.remove()
        prior.vae.encode, prior.vae.decode = encode, decode


def bench(prior, steps_by_name: Dict[str, Callable[[int], None]], steps: int, warmup: int) -> Dict[str, Dict[str, float]]:
    """Round-robin over the entries, one step each per round, so that all see the same machine load."""
    meter = MemoryMeter(prior.device)
    sync = (lambda: torch.cuda.synchronize(prior.device)) if prior.device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        for step in steps_by_name.values():
            step(i)
    times = {name: [] for name in steps_by_name}
    peaks = {name: 0.0 for name in steps_by_name}
    totals = {name: {"unet": 0, "rows": 0, "vae": 0} for name in steps_by_name}
    for i in range(steps):
        for name, step in steps_by_name.items():
            with counting(prior) as counts:
                meter.begin()
                sync()
                start = time.perf_counter()
                step(warmup + i)
                sync()
                times[name].append(time.perf_counter() - start)
                peaks[name] = max(peaks[name], meter.end())
            for key in counts:
                totals[name][key] += counts[key]
    meter.stop.set()
    return {
        name: {
            "ms": 1000 * statistics.median(times[name]),
            **{key: value / steps for key, value in totals[name].items()},
            "peak_mb": peaks[name],
        }
        for name in steps_by_name
    }


# ---- the steps --------------------------------------------------------------------------------
def build(name: str, prior):
    from nerfedit.losses import DistillationConfig, build_loss
    from nerfedit.losses.corrective import CorrectiveConfig, CorrectiveUNet, default_corrective_path
    from nerfedit.losses.lmc import LearnedManifoldCorrective

    config = DistillationConfig(name=name, bridge_switch_step=0)  # time SDS-Bridge's stage 2 (stage 1 is SDS)
    if name == "lmc":
        path = default_corrective_path(prior)
        if path is None or not path.is_file():  # timing only: a random b̂ψ of the paper's size
            corrective = CorrectiveUNet(CorrectiveConfig(channels=prior.latent_channels, levels=min(4, prior.latent_resolution.bit_length() - 1)))
            return LearnedManifoldCorrective(config, prior, corrective=corrective)
    return build_loss(config, prior)


def loss_step(loss, z: torch.Tensor, z_source: torch.Tensor, generator: torch.Generator) -> Callable[[int], None]:
    def step(i: int) -> None:
        out = loss(z, prompt="a blue cube", source_prompt="a red cube", z_source=z_source, step=i, generator=generator)
        out.loss.backward()
        z.grad = None

    return step


def official_baselines(prior, z_source: torch.Tensor, names: List[str]) -> Dict[str, Callable[[int], None]]:
    """The official steps of the losses among `names` that have one (dds, cds), each on its own leaf and generator."""
    from nerfedit.eval.official_steps import official_step
    from nerfedit.losses import DistillationConfig

    entries = {}
    for name in ("dds", *[n for n in names if n == "cds"]):
        config = DistillationConfig(name=name).with_defaults(prior.loss_defaults)
        z = z_source.clone().requires_grad_(True)
        entries[OFFICIAL[name]] = official_step(name, prior, z, z_source, torch.Generator().manual_seed(0), config)
    return entries


def run_bench(args: argparse.Namespace) -> Dict[str, object]:
    """Build the prior and every entry, time them; {"rows": {entry: …}, "prior", "device", "threads", "latents", "steps"}."""
    from nerfedit.priors import load_prior

    names = args.losses.split(",") if args.losses else None
    with tempfile.TemporaryDirectory() as tmp:
        if args.prior is None:
            from nerfedit.priors.tiny import build_tiny_sd

            prior_name = str(build_tiny_sd(Path(tmp) / "random_sd", **RANDOM_SIZES[args.size]))
            label = f"{args.size} random SD (nerfedit/priors/tiny.py)"
        else:
            prior_name = label = args.prior
        prior = load_prior(prior_name, device=args.device)

        g = torch.Generator().manual_seed(0)
        size = prior.resolution
        source = torch.nn.functional.interpolate(torch.rand(args.batch, 3, 8, 8, generator=g), size=(size, size), mode="bilinear")
        with torch.no_grad():
            z_source = prior.encode_images(source.to(prior.device))
        entries = official_baselines(prior, z_source, names)
        for name in names:
            z = z_source.clone().requires_grad_(True)
            entries[name] = loss_step(build(name, prior), z, z_source, torch.Generator().manual_seed(0))
        rows = bench(prior, entries, args.steps, args.warmup)
    for name, row in rows.items():
        official = rows.get(OFFICIAL.get(name, OFFICIAL["dds"]))
        row["x_official"] = row["ms"] / official["ms"] if name not in OFFICIAL.values() else None
    return {"rows": rows, "prior": label, "device": str(prior.device), "threads": torch.get_num_threads(),
            "latents": list(z_source.shape), "steps": args.steps, "warmup": args.warmup}  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from nerfedit.losses import LOSS_NAMES

    names = args.losses.split(",") if args.losses else list(LOSS_NAMES)
    unknown = [n for n in names if n not in LOSS_NAMES]
    if unknown:
        print(f"bench_losses.py: error: unknown loss(es) {', '.join(unknown)}; use {', '.join(LOSS_NAMES)}", file=sys.stderr)
        return 2
    if args.json and Path(args.json).exists():
        print(f"bench_losses.py: error: --json {args.json} exists; give a new path", file=sys.stderr)
        return 2
    args.losses = ",".join(names)
    result = run_bench(args)
    print(f"\nprior: {result['prior']} on {result['device']} ({result['threads']} CPU threads), latents "
          f"{tuple(result['latents'])}, {args.steps} timed steps after {args.warmup} warm-up, median per step")
    header = f"{'loss':<30} {'UNet calls':>10} {'UNet rows':>9} {'VAE calls':>9} {'ms/step':>9} {'× official':>10} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for name, r in result["rows"].items():
        ratio = "" if r["x_official"] is None else f"{r['x_official']:.2f}"
        print(f"{name:<30} {r['unet']:>10.0f} {r['rows']:>9.0f} {r['vae']:>9.0f} {r['ms']:>9.2f} {ratio:>10} {r['peak_mb']:>8.1f}")
    print("× official: over the official DDS step (cds: over the official CDS step), same prior, process and rounds.")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
