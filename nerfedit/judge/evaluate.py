"""Accuracy of a judge on fresh renders of the world (optionally degraded like NeRF/diffusion outputs)."""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from tqdm import tqdm

from nerfedit.judge.augment import augment
from nerfedit.judge.model import HEADS, JudgeNet, judge_images
from nerfedit.world.render import sample_batch

EVAL_SEED = 1_000_003
"""Seed of the held-out renders; training uses small seeds, so the scenes never coincide."""


def evaluate(
    judge: JudgeNet,
    n: int = 1000,
    seed: int = EVAL_SEED,
    degrade: bool = False,
    batch_size: int = 128,
    progress: bool = False,
) -> Dict[str, float]:
    """Fraction of `n` fresh renders (seed `seed`) whose colour / shape / floor the judge gets right.

    With `degrade`, each image first goes through the training degradations (blur, noise, shifts,
    down-up sampling) with a fixed generator: a proxy for how well it reads NeRF and diffusion outputs.
    """
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    correct = {name: 0 for name in HEADS}
    done = 0
    was_training = judge.training
    judge.eval()
    with tqdm(total=n, desc="evaluating judge", disable=not progress, leave=False) as bar:
        while done < n:
            k = min(batch_size, n - done)
            batch = sample_batch(k, rng)
            images = augment(batch["images"], generator) if degrade else batch["images"]
            pred = judge_images(images, judge)
            for name in HEADS:
                truth = batch[name].tolist()
                correct[name] += sum(int(p == HEADS[name][t]) for p, t in zip(pred[name], truth))
            done += k
            bar.update(k)
    judge.train(was_training)
    return {name: correct[name] / max(n, 1) for name in HEADS}
