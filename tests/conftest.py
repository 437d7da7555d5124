"""Shared test fixtures: tiny randomly initialised Stable-Diffusion-format priors loaded through the real loader.

    tiny_prior_dir     (session) folder with a tiny ε-prediction SD model in diffusers layout (nerfedit/priors/tiny.py)
    tiny_prior_dir_v   (session) the same with a v-prediction scheduler (SD 2.x style)
    tiny_prior         a DiffusionPrior loaded from `tiny_prior_dir` with `load_prior` (fresh per test)
    tiny_prior_v       the same from `tiny_prior_dir_v`

The folders are shared by the whole session: copy one before writing into it.

Threads: torch runs on `NERFEDIT_TEST_THREADS` threads (default 1). On a loaded 2-core machine two
OpenMP threads make the tiny UNet ~20× slower than one (spin-waiting on a busy core); set the variable
to use more.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nerfedit.priors.tiny import build_tiny_sd

torch.set_num_threads(int(os.environ.get("NERFEDIT_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def tiny_prior_dir(tmp_path_factory) -> Path:
    """A tiny random ε-prediction SD model saved in diffusers layout (32 px images, 16×16×4 latents)."""
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd"), prediction_type="epsilon")


@pytest.fixture(scope="session")
def tiny_prior_dir_v(tmp_path_factory) -> Path:
    """The tiny model with a v-prediction scheduler."""
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_v"), prediction_type="v_prediction")


@pytest.fixture
def tiny_prior(tiny_prior_dir):
    """A `DiffusionPrior` on the CPU, loaded from `tiny_prior_dir` by `nerfedit.priors.load_prior`."""
    from nerfedit.priors import load_prior

    return load_prior(str(tiny_prior_dir), device="cpu")


@pytest.fixture
def tiny_prior_v(tiny_prior_dir_v):
    """The v-prediction tiny prior, loaded by `load_prior`."""
    from nerfedit.priors import load_prior

    return load_prior(str(tiny_prior_dir_v), device="cpu")


@pytest.fixture
def no_prior(monkeypatch):
    """Fail the test if anything tries to load a prior (bad input must be refused before that)."""
    import nerfedit.priors

    def refuse(*args, **kwargs):
        raise AssertionError("the prior was loaded before the bad input was refused")

    monkeypatch.setattr(nerfedit.priors, "load_prior", refuse)
