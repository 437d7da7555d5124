"""scripts/diagnose_word_pull.py: the pull is zero for an unchanged prompt and positive for a swap; bad input exits 2."""

from __future__ import annotations

import dataclasses
import math
import runpy
from pathlib import Path

import pytest

from nerfedit.eval.swaps import held_out_swaps
from nerfedit.priors.loader import load_prior

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "diagnose_word_pull.py"


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(SCRIPT))


def test_pull_is_zero_without_a_swap_and_positive_with_one(script):
    pairs, prior = held_out_swaps(3, 20250917, 64), load_prior("toy", device="cpu", dtype="fp32")
    swapped = script["word_pull"](prior, pairs, [500], relative=False)
    unchanged = script["word_pull"](prior, dataclasses.replace(pairs, targets=pairs.sources), [500], relative=True)
    assert all(v[0] > 0.1 and math.isfinite(v[0]) for v in swapped.values())
    assert all(v[0] == 0.0 for v in unchanged.values())


@pytest.mark.parametrize("argv", [["--priors", "/no/such/prior"], ["--timesteps", "1200"], ["--timesteps", "x"], ["-n", "0"]])
def test_bad_input_exits_2(script, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script["main"](argv)
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
