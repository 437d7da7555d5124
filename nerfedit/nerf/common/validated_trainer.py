"""A TrainerConfig / Trainer pair that checks the user's input before ns-train prints, writes or trains.

ns-train prints the config, then saves it into a new run folder, then builds the trainer. Validating in
`print_to_terminal` means bad input leaves no run folder behind; validating again in `Trainer.setup` covers
configs that reach the trainer another way (`--load-config`, Python). Either way the user sees one line,
`PROG: error: …`, and exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from nerfstudio.engine.trainer import Trainer, TrainerConfig

from nerfedit.errors import UserError, exit_with
from nerfedit.threads import warn_if_oversubscribed


@dataclass
class ValidatedTrainerConfig(TrainerConfig):
    """TrainerConfig whose `validate` runs before ns-train prints or saves anything."""

    prog: ClassVar[str] = "nerfedit"
    """The command's name in error lines."""

    def validate(self) -> None:
        """Every check that can fail before training; raises `UserError`."""
        raise NotImplementedError

    def print_to_terminal(self) -> None:
        try:
            self.validate()
        except UserError as error:
            exit_with(error, self.prog)
        # ns-train has no --threads: torch reads OMP_NUM_THREADS at start-up (see nerfedit.threads)
        warn_if_oversubscribed(self.prog, how="OMP_NUM_THREADS={n}")
        super().print_to_terminal()


class ValidatedTrainer(Trainer):
    """nerfstudio's Trainer; a bad input or an unloadable prior is one line, before training."""

    config: ValidatedTrainerConfig

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        try:
            self.config.validate()
            super().setup(test_mode)
        except UserError as error:
            exit_with(error, self.config.prog)
