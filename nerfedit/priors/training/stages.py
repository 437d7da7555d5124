"""The stages of training the toy prior, in order, and the two that train other models for it (corrective, judge)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Sequence, Tuple

from nerfedit.priors.training.autoencoder import stage_data, stage_latents, stage_vae
from nerfedit.priors.training.common import Config, log
from nerfedit.priors.training.denoiser import stage_export, stage_unet

STAGES = ("data", "vae", "latents", "unet", "export", "corrective", "judge")
"""Every stage, in the order they run; each reads what the previous ones left in the work folder."""


def stage_corrective(cfg: Config, out: Path, resume: bool) -> None:
    """LMC-SDS's corrective for the exported prior, on fresh world renders (`train_corrective.py`)."""
    from nerfedit.losses import corrective_training

    target = out / "corrective" / "corrective.pt"
    argv = [
        "--prior", str(out), "--world", str(cfg.corrective_images), "--steps", str(cfg.corrective_steps),
        "--batch", str(cfg.corrective_batch), "--lr", str(cfg.corrective_lr), "--filters", str(cfg.corrective_filters),
        "--levels", str(cfg.corrective_levels), "--seed", str(cfg.seed), "--out", str(target),
        "--eval-triplets", str(min(256, 8 * cfg.corrective_batch)), "--checkpoint-every", "100",
    ]  # fmt: skip
    if resume and target.with_name(target.name + ".ckpt").is_file():
        argv.append("--resume")
    corrective_training.main(argv)


def stage_judge(cfg: Config, work: Path, judge_out: Path, resume: bool) -> None:
    """The judge, trained on renders only (`train_judge.py`)."""
    from nerfedit.judge import train

    checkpoint = work / "judge" / "last.pt"
    argv = [
        "--steps", str(cfg.judge_steps), "--data", str(cfg.judge_images), "--eval-n", str(cfg.judge_eval),
        "--seed", str(cfg.seed), "--out", str(judge_out), "--checkpoint", str(checkpoint),
    ]  # fmt: skip
    if resume and checkpoint.is_file():
        argv.append("--resume")
    train.main(argv)


def run_stages(
    cfg: Config, stages: Sequence[str], work: Path, out: Path, judge_out: Path, resume: bool, smoke: bool = False
) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Run the chosen `stages` in `STAGES` order; returns (seconds per stage, the UNet stage's statistics)."""
    timings: Dict[str, float] = {}
    stats: Dict[str, float] = {}
    for stage in STAGES:
        if stage not in stages:
            continue
        t0 = time.time()
        if stage == "data":
            stage_data(cfg, work, resume)
        elif stage == "vae":
            stage_vae(cfg, work, resume)
        elif stage == "latents":
            stage_latents(cfg, work, resume)
        elif stage == "unet":
            stats.update(stage_unet(cfg, work, resume, smoke=smoke))
        elif stage == "export":
            stage_export(cfg, work, out)
        elif stage == "corrective":
            stage_corrective(cfg, out, resume)
        elif stage == "judge":
            stage_judge(cfg, work, judge_out, resume)
        timings[stage] = time.time() - t0
    log("wall time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return timings, stats
