"""What happens around a run's steps, for both ns-train methods: the progress table with phases (`progress.py`)
and the run's end.

The end, as nerfstudio runs it (`Trainer._after_train`): save the last step's checkpoint, print "Training
Finished", run the after-train callbacks (our turntable), then, unless `--viewer.quit-on-train-completion True`,
wait for Ctrl-C so the viewer stays up. A Ctrl-C in that window reached the code that saves an interrupted
run's last *completed* step, one before the last, which replaced (and with `--save-only-latest-checkpoint`,
deleted) the final checkpoint, and exited 130 "interrupted". Here a finished run's final checkpoint is never
touched again:

    Ctrl-C in the viewer wait          → one line ("viewer closed", the final checkpoint), exit code 0
    Ctrl-C while the turntable renders → one line ("interrupted while writing the turntable", the final
                                         checkpoint kept, no turntable.mp4), exit code 130
    Ctrl-C during the steps            → `interrupted_while_training` (nerfedit: save the last completed step,
                                         exit code 130; nerfedit-generate: nerfstudio's own handling)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Literal, Optional

from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.utils.writer import LocalWriter

from nerfedit.nerf.common.progress import Phase, PhaseProgressWriter, attach_phases
from nerfedit.nerf.common.validated_trainer import ValidatedTrainer

INTERRUPTED_EXIT_CODE = 130
"""Exit status after Ctrl-C before the run's outputs are complete (128 + SIGINT)."""
VIEWER_CLOSED_EXIT_CODE = 0
"""Exit status after Ctrl-C in the viewer wait: the run had finished, and Ctrl-C is how nerfstudio says to quit."""


class LifecycleTrainer(ValidatedTrainer):
    """nerfstudio's Trainer with a phase-aware progress table and a run end that keeps the final checkpoint."""

    _final_checkpoint: Optional[Path] = None
    """The checkpoint `_after_train` saved once every step was done."""
    _in_viewer_wait = False

    # ---- progress -------------------------------------------------------------------------
    def phases(self) -> List[Phase]:
        """The run's phases in absolute steps (a resumed run's too); the last one's end is the run's length."""
        return [Phase("train", 0, self._start_step + self.config.max_num_iterations)]

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        logging = self.config.logging.local_writer
        if logging._target is LocalWriter:  # nerfstudio builds the table from this class (a user's own is kept)
            logging._target = PhaseProgressWriter
        super().setup(test_mode)
        attach_phases(self.phases(), self.config.prog)

    # ---- the end --------------------------------------------------------------------------
    def save_checkpoint(self, step: int) -> None:
        super().save_checkpoint(step)
        if self.training_state == "completed":  # set by nerfstudio's _after_train just before its final save
            self._final_checkpoint = self.checkpoint_dir / f"step-{step:09d}.ckpt"

    def _train_complete_viewer(self) -> None:
        self._in_viewer_wait = True
        super()._train_complete_viewer()

    def train(self) -> None:
        try:
            super().train()
        except KeyboardInterrupt:
            if self.training_state == "completed":
                self._interrupted_after_training()
            else:
                self.interrupted_while_training()

    def interrupted_while_training(self) -> None:
        """Ctrl-C during the steps. Here: nerfstudio's handling (it prints the traceback and ends)."""
        raise KeyboardInterrupt

    def _interrupted_after_training(self) -> None:
        if self._final_checkpoint is None:  # Ctrl-C came during the final save itself: every step is done, redo it
            self.save_checkpoint(self.step)
        prog, kept = self.config.prog, self._final_checkpoint
        if self._in_viewer_wait:
            CONSOLE.print(f"{prog}: viewer closed; the run finished at step {self.step}: {kept}", soft_wrap=True)
            self.exit_now(VIEWER_CLOSED_EXIT_CODE)
        CONSOLE.print(
            f"{prog}: interrupted while writing the turntable; training had finished and its final checkpoint is "
            f"kept: {kept} (no turntable.mp4 written)",
            soft_wrap=True,
        )
        self.exit_now(INTERRUPTED_EXIT_CODE)

    def exit_now(self, code: int) -> None:
        """Stop the viewer and leave with `code` at once. os._exit, not sys.exit: the viewer's and torch's native
        threads can abort interpreter teardown ("terminate called without an active exception"); everything
        worth keeping is on disk."""
        self.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
