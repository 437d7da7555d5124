"""Text-to-image by optimisation, per loss, as `nerfedit generate-image` makes it, read by the judge.

    generate_and_judge(prior, judge, loss, prompts, seeds)   one batch per seed (every prompt a row), at the
                                                             command's own settings; the judge's reads and rates
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence

import torch

from nerfedit.eval.judging import read_and_score
from nerfedit.eval.text_to_3d import prompted_words


def generate_and_judge(prior, judge, loss: str, prompts: Sequence[str], seeds: Sequence[int], steps: Optional[int] = None) -> Dict[str, object]:
    """Generate every prompt at every seed with `loss` at generate-image's defaults (prompts as rows of one batch:
    the rows are independent), then read colour, shape and floor; "all_rate" is the share where all three match.
    `steps` overrides the command's step count (plumbing runs)."""
    from nerfedit.eval.edit_settings import generate_image_settings
    from nerfedit.image.edit import generate_image

    images, wanted = [], {head: [] for head in ("color", "shape", "floor")}
    started = time.perf_counter()
    for seed in seeds:
        config, loss_config, init = generate_image_settings(loss, prior.name)
        config.seed = seed
        if steps:
            config.steps = steps
        batch, _ = generate_image(prior, list(prompts), loss=loss_config, config=config, init=init, batch=len(prompts), progress=False)
        images.append(batch)
        for prompt in prompts:
            for head, word in prompted_words(prompt).items():
                wanted[head].append(word)
    seconds = time.perf_counter() - started
    images = torch.cat(images)
    result: Dict[str, object] = {"images": len(images), "seconds": seconds, "prompts": list(prompts), "seeds": list(seeds)}
    if judge is not None:
        scores = read_and_score(judge, images, wanted)
        reads = scores["read"]
        result.update({f"{head}_rate": scores[f"{head}_rate"] for head in wanted})
        result["all_rate"] = float(sum(all(reads[h][i] == wanted[h][i] for h in wanted) for i in range(len(images))) / len(images))
        result["read"] = reads
    else:
        result.update({key: None for key in ("color_rate", "shape_rate", "floor_rate", "all_rate")})
    result["tensor"] = images
    return result
