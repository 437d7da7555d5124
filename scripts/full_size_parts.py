"""The four parts of `bench_full_size.py` (2D DDS/CDS edits, `ns-train nerfedit` edit steps, the viewer's Preview)
and what measures them: peak memory per device, finite gradients, per-step times. Apart from the command's
parsing and checks so that each file stays small; `bench_full_size.py`'s docstring says what each part runs."""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

SOURCE_PROMPT, TARGET_PROMPT = "a red cube on a wooden floor", "a blue cube on a wooden floor"
START = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f} s] {text}", file=sys.stderr, flush=True)


class Meters:
    """Peak memory of a part: the host's resident set (sampled every ms) and each CUDA device's max_memory_allocated."""

    def __init__(self, devices) -> None:
        import torch
        from bench_losses import MemoryMeter

        cuda = sorted({str(d) for d in devices if d.type == "cuda"})
        self.meters = {"rss": MemoryMeter(torch.device("cpu")), **{d: MemoryMeter(torch.device(d)) for d in cuda}}

    def begin(self) -> None:
        for meter in self.meters.values():
            meter.begin()

    def peaks_mb(self) -> Dict[str, float]:
        """Absolute peaks since `begin` in MB (MemoryMeter.end gives them above the start)."""
        return {name: round(m.end() + m.start / 2**20, 1) for name, m in self.meters.items()}

    def close(self) -> None:
        for meter in self.meters.values():
            meter.stop.set()


class GradCheck:
    """Counts the loss steps whose gradient was not finite (the optimiser loops skip such a step and go on)."""

    def __init__(self) -> None:
        self.steps = self.nonfinite = 0

    def wrap(self, loss):
        def checked(*args, **kwargs):
            out = loss(*args, **kwargs)
            self.steps += 1
            self.nonfinite += int(out.skipped or not math.isfinite(out.grad_norm))
            return out

        return checked


def synchronize(*devices) -> None:
    import torch

    for device in {str(d) for d in devices if d.type == "cuda"}:
        torch.cuda.synchronize(device)


def timed_summary(times: List[float], **extra) -> Dict[str, object]:
    return {"s_per_step": round(statistics.median(times), 4), "s_total": round(sum(times), 3), "timed_steps": len(times), **extra}


# ---- the parts ------------------------------------------------------------------------------------------
def edit_2d(args, prior, name: str, image, meters: Meters) -> Dict[str, object]:
    """A 2D edit of `image` with loss `name`: encode, `steps` latent steps (timed one by one), decode."""
    import torch

    from nerfedit.image.edit import EditConfig, edit_latents
    from nerfedit.losses import DistillationConfig, build_loss

    grads = GradCheck()
    loss = grads.wrap(build_loss(DistillationConfig(name=name), prior))
    steps = args.steps[name]
    if args.warmup:
        with torch.no_grad():
            z_warm = prior.encode_images(image)
        edit_latents(loss, z_warm, target=TARGET_PROMPT, source=SOURCE_PROMPT, config=EditConfig(steps=args.warmup), progress=False)
    stamps: List[float] = []

    def each_step(step, z, out) -> bool:
        synchronize(prior.device)
        stamps.append(time.perf_counter())
        if step + 1 == steps or (step + 1) % max(1, steps // 10) == 0:
            say(f"{name}: step {step + 1}/{steps}, {stamps[-1] - stamps[-2]:.2f} s")
        return False  # never stop early

    meters.begin()
    clock = time.perf_counter()
    with torch.no_grad():
        z_source = prior.encode_images(image)
    synchronize(prior.device)
    stamps.append(time.perf_counter())
    z, history = edit_latents(loss, z_source, target=TARGET_PROMPT, source=SOURCE_PROMPT, config=EditConfig(steps=steps),
                              progress=False, callback=each_step)  # fmt: skip
    with torch.no_grad():
        edited = prior.decode_latents(z)
    synchronize(prior.device)
    edit_s = time.perf_counter() - clock
    times = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    finite = grads.nonfinite == 0 and history.skipped == 0 and bool(torch.isfinite(edited).all())
    return timed_summary(times, edit_s=round(edit_s, 3), peak_mb=meters.peaks_mb(), loss_steps=grads.steps,
                         nonfinite_steps=grads.nonfinite, grads_finite=finite)  # fmt: skip


def build_pipeline(args, folder: Path):
    """`ns-train nerfedit`'s pipeline (its method config) with the random prior as --pipeline.prior PATH; untrained field."""
    import torch

    import nerfedit.nerf  # noqa: F401  (run-time CPU workarounds, quiet nerfstudio)
    from nerfedit.nerf.edit.method_configs import nerfedit_config

    trainer = nerfedit_config()
    config = trainer.pipeline
    config.datamanager.data = args.data
    config.prior, config.prior_dtype = str(folder), args.dtype
    config.prior_device = str(args.prior_device) if args.prior_device != args.device else None
    config.source_prompt, config.target_prompt = SOURCE_PROMPT, TARGET_PROMPT
    config.render_chunk, config.distill_into = args.render_chunk, args.distill_into
    mixed = trainer.mixed_precision and args.device.type == "cuda"  # as nerfstudio's trainer: no autocast on the CPU
    scaler = torch.amp.GradScaler("cuda", enabled=mixed)
    pipeline = config.setup(device=str(args.device), test_mode="val", grad_scaler=scaler)  # loads the prior
    pipeline.model.freeze_source(0)
    pipeline.train()
    pipeline.prepare_edit()
    params = [p for p in pipeline.model.parameters() if p.requires_grad and p.numel()]
    optimizer = torch.optim.Adam(params, lr=float(config.edit_lr), eps=1e-15)
    return pipeline, optimizer, scaler, mixed


def nerf_edit(args, pipeline, optimizer, scaler, mixed: bool, meters: Meters) -> Dict[str, object]:
    """Edit steps as the trainer runs them: autocast (CUDA), the pipeline's `edit_step`, the optimiser through the scaler."""
    import torch

    params = [p for group in optimizer.param_groups for p in group["params"]]
    start, steps, devices = int(pipeline.model.edit_start_step), args.steps["nerf"], (args.device, args.prior_device)
    times, splits, bad_fields = [], [], 0
    for i in range(args.warmup + steps):
        if i == args.warmup:
            meters.begin()
        synchronize(*devices)
        clock = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=args.device.type, enabled=mixed):
            pipeline.edit_step(start + i)
        field_grads = [p.grad for p in params if p.grad is not None]
        bad_fields += int(not field_grads or not all(bool(torch.isfinite(g).all()) for g in field_grads))
        if field_grads:  # as nerfstudio's optimizer_scaler_step_some: a skipped step leaves none, and the scaler asserts
            scaler.step(optimizer)
        scaler.update()
        synchronize(*devices)
        if i >= args.warmup:
            times.append(time.perf_counter() - clock)
            splits.append(dict(pipeline.last_timings))
            if len(times) == steps or len(times) % max(1, steps // 10) == 0:
                say(f"nerf: step {len(times)}/{steps}, {times[-1]:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in splits[-1].items())})")
    split = {k: round(statistics.mean(s[k] for s in splits if k in s), 4) for k in splits[0]}
    return timed_summary(times, split_s=split, peak_mb=meters.peaks_mb(), render_px=pipeline.edit_resolution(),
                         render_chunk=args.render_chunk, deferred=pipeline.edit_resolution() ** 2 > args.render_chunk,
                         distill_into=args.distill_into, steps_with_nonfinite_field_grads=bad_fields,
                         grads_finite=bad_fields == 0, field="untrained nerfacto (`nerfedit` method): cost only")  # fmt: skip


def viewer_preview(args, pipeline, run_dir: Path, meters: Meters) -> Dict[str, object]:
    """The Preview button's action, `preview_steps` loss steps."""
    from nerfedit.nerf.edit.viewer import preview

    pipeline.config.preview_steps, pipeline.run_dir = args.steps["preview"], run_dir
    meters.begin()
    synchronize(args.device, args.prior_device)
    clock = time.perf_counter()
    path = preview(pipeline)
    synchronize(args.device, args.prior_device)
    seconds = time.perf_counter() - clock
    say(f"preview: {args.steps['preview']} loss steps in {seconds:.2f} s")
    return {"s_total": round(seconds, 3), "loss_steps": args.steps["preview"], "saved": path is not None, "peak_mb": meters.peaks_mb()}
