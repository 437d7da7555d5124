"""In-process tiny `nerfedit-small` runs for the tests of a run's life (progress, end, export, turntable).

In-process, not through `ns-train`: on a loaded 2-core machine a fresh `ns-train` spends about a minute importing
before its first step, and these tests need several runs. `train` does what ns-train does after parsing.
"""

from __future__ import annotations

from pathlib import Path

from nerfedit.nerf.edit.method_configs import nerfedit_small_config

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "scenes" / "red_cube"
TOY = REPO / "nerfedit" / "assets" / "toy"
SOURCE_PROMPT = "a red cube on a wooden floor"
TARGET_PROMPT = "a blue cube on a wooden floor"


def tiny_edit_config(out: Path, prior: Path, reconstruct: int = 3, edit: int = 2, timestamp: str = "run"):
    """nerfedit-small at test size: a few steps at 32², a two-frame turntable, the table printed every step."""
    config = nerfedit_small_config()
    config.pipeline.datamanager.data = SCENE
    config.pipeline.prior = str(prior)
    config.pipeline.source_prompt = SOURCE_PROMPT
    config.pipeline.target_prompt = TARGET_PROMPT
    config.pipeline.reconstruct_steps = reconstruct
    config.pipeline.edit_steps = edit
    config.pipeline.edit_resolution = 32
    config.pipeline.turntable_frames = 2
    config.output_dir = Path(out)
    config.experiment_name = "ci"
    config.timestamp = timestamp
    config.vis = "tensorboard"
    config.logging.steps_per_log = 1
    config.logging.local_writer.max_log_size = 0  # plain lines, no cursor moves: the test reads them
    return config


def setup_trainer(config):
    """What ns-train does after parsing (nerfstudio's main and train_loop), up to `trainer.train()`."""
    from nerfstudio.scripts.train import _set_random_seed
    from nerfstudio.utils import writer

    writer.EVENT_WRITERS.clear()  # one process, several runs: drop the writers of the runs before
    config.set_timestamp()
    config.print_to_terminal()
    config.save_config()
    _set_random_seed(config.machine.seed)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer
