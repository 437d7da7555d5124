#!/usr/bin/env python
"""Full-size dry runs: Stable Diffusion's real architectures with random weights — time, memory, finite gradients.

    python scripts/bench_full_size.py --arch sd15 --device cpu --dtype fp32 --threads 2 --json sd15_cpu.json
    python scripts/bench_full_size.py --arch sd15 --device cuda --dtype fp16 --json sd15_cuda_fp16.json
    python scripts/bench_full_size.py --arch sd15 --device cuda:0 --prior-device cuda:1 --dtype bf16 --json …

Cost and memory do not depend on the weights' values: the model (nerfedit/priors/full_size.py: sd15, sd21b, or the
tests' `tiny`) is built with random weights in a child process, saved in diffusers layout (a temporary folder, or
--model-dir to keep and reuse it) and loaded from that folder as `--pipeline.prior PATH` / `--prior PATH` load it.
Parts (--parts), at the prior's resolution (SD: 512² images, 64² latents):

    dds      a 2D DDS edit of a 512² image (`edit_latents`, as `nerfedit edit-image`)
    cds      the same with CDS
    nerf     edit steps of `ns-train nerfedit` (that method's pipeline: nerfacto field, CDS) on a bundled scene
             rendered at 512²: 262144 rays > --render-chunk, so rendered in chunks with deferred back-propagation.
             The field is UNTRAINED (a cost measurement: the work per step does not depend on what it shows).
    preview  the viewer's Preview button (`viewer.preview`): a 512² render, encode, its loss steps, decode

Steps per part: 200 DDS, 200 CDS, 400 NeRF, 200 preview on CUDA (after --warmup); 1 each on the CPU. Reported per part:
seconds per step (median), peak memory (the host's resident set sampled every ms, and on CUDA max_memory_allocated
of each device used) and whether every gradient was finite. fp16 / bf16 and the prior on a second GPU are separate
runs (--dtype, --prior-device). Attention is diffusers' SDPA processor (recorded in the JSON).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_losses' MemoryMeter (scripts/ is not a package)

from nerfedit.commandline import (  # noqa: E402
    PROG, HelpFormatter, NerfeditArgumentParser, add_overwrite_option, add_threads_option, non_negative_int,
    positive_int, resolve_device, run_reporting_errors,
)  # fmt: skip
from nerfedit.errors import UserError  # noqa: E402
from full_size_parts import (  # noqa: E402
    SOURCE_PROMPT, TARGET_PROMPT, GradCheck, Meters, build_pipeline, edit_2d, nerf_edit, say, viewer_preview,
)  # fmt: skip

REPO = Path(__file__).resolve().parents[1]
PARTS = ("dds", "cds", "nerf", "preview")
DTYPES = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16", "bf16": "bf16", "bfloat16": "bf16"}
CUDA_STEPS = {"dds": 200, "cds": 200, "nerf": 400, "preview": 200}
CUDA_WARMUP = 3


def build_parser() -> NerfeditArgumentParser:
    parser = NerfeditArgumentParser(prog="bench_full_size.py", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--arch", choices=("sd15", "sd21b", "tiny"), default="sd15", help="architecture (tiny: the tests')")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N: the field and latents (default: cuda if available, else cpu)")
    parser.add_argument("--prior-device", default=None, help="the prior's device, e.g. cuda:1 (default: --device)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="the prior's precision (default: fp16 on CUDA, fp32 on the CPU)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ", ".join(PARTS))
    for part in PARTS:
        parser.add_argument(f"--{part}-steps", type=positive_int, default=None, metavar="N",
                            help=f"timed {part} steps (default: {CUDA_STEPS[part]} on CUDA, 1 on the CPU)")  # fmt: skip
    parser.add_argument("--warmup", type=non_negative_int, default=None, metavar="N",
                        help=f"untimed dds/cds/nerf steps first (default: {CUDA_WARMUP} on CUDA, 0 on the CPU)")  # fmt: skip
    parser.add_argument("--render-chunk", type=positive_int, default=1 << 15,
                        help="rays per chunk of the NeRF renders (the `nerfedit` method's). On the CPU it sets the NeRF parts' "
                             "peak: nerfacto without tiny-cuda-nn took +10.5 GB per 32768-ray chunk, +2.5 GB per 8192 at the same speed")  # fmt: skip
    parser.add_argument("--distill-into", choices=("views", "field"), default="views", help="the NeRF edit's route")
    parser.add_argument("--data", type=Path, default=REPO / "scenes" / "red_cube", help="nerfstudio scene of the NeRF parts")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="build the random model here and keep it; reused when it holds this --arch (default: a temporary folder)")  # fmt: skip
    parser.add_argument("--weights-dtype", choices=("fp16", "fp32"), default="fp16", help="dtype of the weights on disk")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    add_overwrite_option(parser)
    add_threads_option(parser)
    return parser


def check(args) -> None:
    """Every input, before any long work (one line `nerfedit: error: …`, exit 2). Fills in the run's plan on `args`."""
    import torch

    from nerfedit.outputs import check_new_file, check_writable_folder
    from nerfedit.priors.full_size import read_marker

    args.device = resolve_device(args.device)
    try:
        args.prior_device = resolve_device(args.prior_device) if args.prior_device else args.device
    except UserError as error:  # resolve_device's lines name --device
        raise UserError(str(error).replace("--device", "--prior-device")) from None
    for flag, device in (("--device", args.device), ("--prior-device", args.prior_device)):
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():  # resolve_device checks only CUDA
            raise UserError(f"{flag} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    cuda = args.device.type == "cuda" or args.prior_device.type == "cuda"
    args.dtype = DTYPES[args.dtype] if args.dtype else ("fp16" if args.prior_device.type == "cuda" else "fp32")
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown or not args.parts:
        raise UserError(f"--parts {','.join(unknown) or '(empty)'}: choose from {', '.join(PARTS)}")
    args.steps = {p: getattr(args, f"{p}_steps") or (CUDA_STEPS[p] if cuda else 1) for p in PARTS}
    args.warmup = args.warmup if args.warmup is not None else (CUDA_WARMUP if cuda else 0)
    if {"nerf", "preview"} & set(args.parts) and not (args.data / "transforms.json").is_file():
        raise UserError(f"--data {args.data}: not a nerfstudio scene (no transforms.json)")
    if args.json is not None:
        check_writable_folder(args.json.parent, "--json")
        check_new_file(args.json, "--json", args.overwrite)
    if args.model_dir is not None:
        built = read_marker(args.model_dir).get("arch") if args.model_dir.is_dir() else None
        if built not in (None, args.arch):
            raise UserError(f"--model-dir {args.model_dir} holds a random {built}, not {args.arch}: give another folder")
        if built is None and args.model_dir.is_dir() and any(args.model_dir.iterdir()):
            raise UserError(f"--model-dir {args.model_dir} is not empty and was not built by this script")
        check_writable_folder(args.model_dir, "--model-dir", create=True)


@contextmanager
def model_folder(args) -> Iterator[Path]:
    """The random model's folder: built in a child process (its peak memory stays out of this one's), or reused."""
    from nerfedit.priors.full_size import build_random_sd, read_marker

    with tempfile.TemporaryDirectory(prefix="nerfedit_full_size_") as tmp:
        folder = args.model_dir or Path(tmp) / args.arch
        if read_marker(folder).get("arch") == args.arch:
            say(f"reusing the random {args.arch} in {folder}")
            args.build_s = None
        else:
            say(f"building a random {args.arch} ({args.weights_dtype} weights) in {folder}")
            clock = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(target=build_random_sd, args=(folder, args.arch, 0, args.weights_dtype))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise RuntimeError(f"building the random {args.arch} failed (exit code {child.exitcode})")
            args.build_s = round(time.perf_counter() - clock, 1)
        yield folder


# ---- the run --------------------------------------------------------------------------------------------
def device_names(args) -> Dict[str, str]:
    """What each device is: the GPU's name, or the CPU's model and core count (recorded beside every number)."""
    import torch

    from nerfedit.eval.method_tables import cpu_name

    names = {}
    for device in {str(args.device), str(args.prior_device)}:
        if device.startswith("cuda"):
            names[device] = torch.cuda.get_device_name(device)
            continue
        names[device] = f"{cpu_name()} ({os.cpu_count()} cores)"
    return names


def smooth_image(prior, device):
    """A smooth random image at the prior's resolution (its content does not change the cost)."""
    import torch
    import torch.nn.functional as F

    small = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    return F.interpolate(small, size=(prior.resolution,) * 2, mode="bilinear", align_corners=False).to(device)


def measure(args, folder: Path) -> Dict[str, object]:
    import diffusers
    import torch
    from bench_losses import rss_bytes

    from nerfedit.priors import load_prior
    from nerfedit.priors.full_size import PUBLISHED_PARAMS

    meters = Meters([args.device, args.prior_device])
    pipeline = None
    clock = time.perf_counter()
    if {"nerf", "preview"} & set(args.parts):
        say("setting up the `nerfedit` pipeline (the prior loads from the folder as --pipeline.prior PATH)")
        pipeline, optimizer, scaler, mixed = build_pipeline(args, folder)
        prior = pipeline.get_prior()
        grads = GradCheck()
        current_loss = pipeline.current_loss
        pipeline.current_loss = lambda: grads.wrap(current_loss())  # the views' and the preview's loss steps, checked
    else:
        say("loading the prior from the folder as --prior PATH")
        prior = load_prior(str(folder), device=args.prior_device, dtype=args.dtype)
    load_s = time.perf_counter() - clock
    say(f"loaded in {load_s:.1f} s; resident {rss_bytes() / 2**20:.0f} MB")
    result: Dict[str, object] = {
        "arch": args.arch,
        "params": {name: sum(p.numel() for p in getattr(prior, name).parameters()) for name in ("unet", "vae", "text_encoder")},
        "published_params": PUBLISHED_PARAMS.get(args.arch),
        "device": str(args.device),
        "prior_device": str(prior.device),
        "device_names": device_names(args),
        "dtype": args.dtype,
        "weights_on_disk": args.weights_dtype,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "attention": sorted({type(p).__name__ for p in prior.unet.attn_processors.values()}),
        "resolution": prior.resolution,
        "latent": [prior.latent_channels, prior.latent_resolution, prior.latent_resolution],
        "build_s": args.build_s,
        "load_s": round(load_s, 1),
        "parts": {},
    }
    prior.encode_text(["", SOURCE_PROMPT, TARGET_PROMPT])  # once, as every run does before its first step
    with tempfile.TemporaryDirectory(prefix="nerfedit_full_size_run_") as run_dir:
        for part in args.parts:
            say(f"{part}: {args.steps[part]} step(s)" + (f" after {args.warmup} warm-up" if args.warmup and part != "preview" else ""))
            if part in ("dds", "cds"):
                out = edit_2d(args, prior, part, smooth_image(prior, prior.device), meters)
            elif part == "nerf":
                before = (grads.steps, grads.nonfinite)
                out = nerf_edit(args, pipeline, optimizer, scaler, mixed, meters)
                out.update(loss_steps=grads.steps - before[0], nonfinite_loss_steps=grads.nonfinite - before[1])
                out["grads_finite"] = out["grads_finite"] and out["nonfinite_loss_steps"] == 0
            else:
                before = (grads.steps, grads.nonfinite)
                out = viewer_preview(args, pipeline, Path(run_dir), meters)
                out["grads_finite"] = grads.nonfinite == before[1] and grads.steps > before[0]
            out["devices"] = result["device_names"]
            result["parts"][part] = out
            say(f"{part}: {json.dumps({k: v for k, v in out.items() if k not in ('devices', 'split_s')})}")
    meters.close()
    result["process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["build_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1) if args.build_s else None
    return result


def run(args) -> int:
    check(args)
    from nerfedit.threads import set_threads, warn_if_oversubscribed

    set_threads(args.threads)
    warn_if_oversubscribed(PROG)
    load_before = os.getloadavg()[0]
    with model_folder(args) as folder:
        result = measure(args, folder)
    result["load_average_1min"] = {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)}
    result["command"] = " ".join(["python", "scripts/bench_full_size.py", *args.argv])
    result["ok"] = all(part.get("grads_finite") for part in result["parts"].values())
    text = json.dumps(result, indent=1)
    if args.json is not None:
        from nerfedit.outputs import atomic_write

        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text + "\n"))
        say(f"results written to {args.json}")
    print(text)
    return 0 if result["ok"] else 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(run, args, PROG)


if __name__ == "__main__":
    sys.exit(main())
