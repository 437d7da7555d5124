"""The training progress table with phases: which phase a step is in, an ETA per phase from measured step times,
and percentages of the whole run (a resumed run included).

nerfstudio's table (`nerfstudio.utils.writer.LocalWriter`) knows one number of steps, `max_num_iterations`, and
one running average of the step time. Our runs have phases of very different speed (a nerfedit-small edit step
is ~4× a reconstruction step), and a resumed nerfedit run sets `max_num_iterations` to the steps *left* while the
step counter stays absolute: at step 1190 of 1200 + 400 the ETA said 2 min with ~9 left, and after a resume
"% Done" passed 100 % and the ETA went negative (printed as 23 h). `PhaseProgressWriter` replaces that writer
(through `LocalWriterConfig._target`, set by `LifecycleTrainer`): a Phase column, an ETA that adds each phase's
remaining steps × that phase's own measured step time, and the percentage of the run's absolute last step. Once
a phase has a few measured steps it prints the phase's expected time (the run's, once every phase is measured).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Sequence, Tuple

# nerfstudio's writer through base_config: imported first, the writer's circular import with base_config fails
from nerfstudio.configs.base_config import writer

GLOBAL_BUFFER, EventName, LocalWriter = writer.GLOBAL_BUFFER, writer.EventName, writer.LocalWriter

ANNOUNCE_AFTER = 3
"""Measured steps of a phase (after its first) before its expected time is printed."""
WINDOW = 20
"""Recent steps averaged per phase: edit steps speed up once every view's source latent is cached."""
PHASE_COLUMN, ETA_COLUMN = "Phase", "ETA"


@dataclass(frozen=True)
class Phase:
    """Steps `start` … `end` − 1 of a run (absolute step numbers, as checkpoints count them)."""

    name: str
    start: int
    end: int

    @property
    def steps(self) -> int:
        return self.end - self.start


def last_step(phases: Sequence[Phase]) -> int:
    return phases[-1].end - 1


def phase_at(phases: Sequence[Phase], step: int) -> Phase:
    """The phase `step` belongs to (the last one past the end)."""
    for phase in phases:
        if step < phase.end:
            return phase
    return phases[-1]


class StepTimes:
    """Seconds per step of each phase: the mean of its last `WINDOW` steps. A phase's first step is left out:
    it builds what later steps reuse (the edit's prior, caches), 10-30× a normal step."""

    def __init__(self, phases: Sequence[Phase], window: int = WINDOW):
        self.phases = list(phases)
        self._recent: Dict[str, Deque[float]] = {phase.name: deque(maxlen=window) for phase in self.phases}
        self._counted: Dict[str, int] = {phase.name: 0 for phase in self.phases}
        self._first_seen: Dict[str, bool] = {phase.name: False for phase in self.phases}

    def record(self, step: int, seconds: float) -> None:
        phase = phase_at(self.phases, step)
        if not self._first_seen[phase.name]:
            self._first_seen[phase.name] = True
            return
        self._recent[phase.name].append(seconds)
        self._counted[phase.name] += 1

    def measured_steps(self, phase: Phase) -> int:
        return self._counted[phase.name]

    def seconds_per_step(self, phase: Phase) -> Optional[float]:
        recent = self._recent[phase.name]
        return sum(recent) / len(recent) if recent else None


def remaining_by_phase(phases: Sequence[Phase], step: int, times: StepTimes) -> List[Tuple[Phase, int, Optional[float]]]:
    """After step `step` is done: (phase, steps left in it, their seconds or None if not measured yet), for the
    phases that have steps left."""
    left = []
    for phase in phases:
        steps = phase.end - max(phase.start, step + 1)
        if steps > 0:
            per_step = times.seconds_per_step(phase)
            left.append((phase, steps, None if per_step is None else steps * per_step))
    return left


def format_duration(seconds: float) -> str:
    """2 h 3 m, 9 m 20 s, 42 s: two units at most (an ETA needs no milliseconds)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} m"
    if minutes:
        return f"{minutes} m {secs} s"
    return f"{secs} s"


def eta_text(left: List[Tuple[Phase, int, Optional[float]]]) -> str:
    """"9 m 23 s (reconstruct 3 s + edit 9 m 20 s)"; an unmeasured phase reads "edit ?" and the total "≥ …"."""
    if not left:
        return "0 s"
    known = sum(seconds for _, _, seconds in left if seconds is not None)
    unknown = any(seconds is None for _, _, seconds in left)
    if all(seconds is None for _, _, seconds in left):
        return " + ".join(f"{phase.name} ?" for phase, _, _ in left)
    total = ("≥ " if unknown else "") + format_duration(known)
    if len(left) == 1 and not unknown:
        return total
    parts = [f"{phase.name} {'?' if seconds is None else format_duration(seconds)}" for phase, _, seconds in left]
    return f"{total} ({' + '.join(parts)})"


def progress_cells(phases: Sequence[Phase], step: int, times: StepTimes) -> Dict[str, object]:
    """What the table shows for step `step` (just done): its phase, % of the run done (of its last step, as in
    nerfstudio's column: 100 % at the last step), the ETA text."""
    return {
        PHASE_COLUMN: phase_at(phases, step).name,
        "percent": 100.0 * min(step, last_step(phases)) / max(1, last_step(phases)),
        ETA_COLUMN: eta_text(remaining_by_phase(phases, step, times)),
    }


def expected_time_message(prog: str, phases: Sequence[Phase], step: int, times: StepTimes, phase: Phase) -> str:
    """The line printed once `phase` has been measured: its time, and the run's when every phase left is known."""
    per_step = times.seconds_per_step(phase)
    steps = phase.end - phase.start
    message = f"{prog}: {phase.name}: {per_step:.2f} s per step, about {format_duration(steps * per_step)} for its {steps} steps"
    left = remaining_by_phase(phases, step, times)
    if all(seconds is not None for _, _, seconds in left):
        message += f"; the run ends in about {format_duration(sum(s for _, _, s in left))}"
    else:
        message += "; " + ", ".join(f"{p.name}: timed once it starts" for p, _, s in left if s is None)
    return message


class _Cell(str):
    """Text in a column of nerfstudio's table, which formats every non-time value with `:0.4f`."""

    def __format__(self, spec: str) -> str:
        return str(self)


class PhaseProgressWriter(LocalWriter):
    """nerfstudio's terminal table with a Phase column, a per-phase ETA and the run's true percentage; it also
    prints each phase's expected time once measured. Without `attach` (no phases known) it is nerfstudio's table."""

    prog = "nerfedit"
    phases: Optional[List[Phase]] = None
    times: Optional[StepTimes] = None

    def attach(self, phases: Sequence[Phase], prog: str) -> None:
        """Use these phases. nerfstudio's "% Done" is step / `GLOBAL_BUFFER["max_iter"]`, which it sets to the steps
        this process runs: make it the run's last step number (`max(1, …)`: a one-step run)."""
        self.phases, self.prog = list(phases), prog
        self.times = StepTimes(self.phases)
        self._announced: set = set()
        GLOBAL_BUFFER["max_iter"] = max(1, last_step(self.phases))
        for column in (PHASE_COLUMN, ETA_COLUMN):
            if column not in self.stats_to_track:
                self.stats_to_track.append(column)

    def write_stats_log(self, step: int) -> None:
        """Called by nerfstudio after every step (it prints only every `steps_per_log`): time it, then print."""
        if self.times is not None:
            iteration = GLOBAL_BUFFER.get("events", {}).get(EventName.ITER_TRAIN_TIME.value)
            if iteration and iteration["buffer"]:
                self.times.record(step, iteration["buffer"][-1])
            for message in self._new_announcements(step):
                self._print_above_table(message)
        super().write_stats_log(step)

    def _consolidate_events(self):
        latest_map, new_key = super()._consolidate_events()
        if self.times is None:
            return latest_map, new_key
        cells = progress_cells(self.phases, GLOBAL_BUFFER["step"], self.times)
        latest_map.pop(EventName.ETA.value, None)  # nerfstudio's single-average ETA, replaced by ours
        new_key = new_key or PHASE_COLUMN not in self.keys
        self.keys.update((PHASE_COLUMN, ETA_COLUMN))
        return {PHASE_COLUMN: _Cell(cells[PHASE_COLUMN]), **latest_map, ETA_COLUMN: _Cell(cells[ETA_COLUMN])}, new_key

    def _new_announcements(self, step: int) -> List[str]:
        phase = phase_at(self.phases, step)
        if step >= phase.end - 1:  # the phase is over: its expected time is no news
            return []
        if phase.name in self._announced or self.times.measured_steps(phase) < min(ANNOUNCE_AFTER, phase.steps - 1):
            return []
        if self.times.seconds_per_step(phase) is None:
            return []
        self._announced.add(phase.name)
        return [expected_time_message(self.prog, self.phases, step, self.times, phase)]

    def _print_above_table(self, message: str) -> None:
        """Print a line, then start the table afresh below it: with `max_log_size` nerfstudio redraws its last
        rows by moving the cursor up, which would overwrite a line printed in between."""
        print(message)
        if self.config.max_log_size and self.has_printed:
            self.past_mssgs = self.past_mssgs[:2] + (self.past_mssgs[-self.banner_len :] if self.banner_len else [])
            print(self.past_mssgs[0])
            print(self.past_mssgs[1])
            self.has_printed = False


def attach_phases(phases: Sequence[Phase], prog: str) -> Optional[PhaseProgressWriter]:
    """Give the phases to this run's table (the last `PhaseProgressWriter` set up; None if the table is off)."""
    ours = [w for w in writer.EVENT_WRITERS if isinstance(w, PhaseProgressWriter)]
    if not ours:
        return None
    ours[-1].attach(phases, prog)
    return ours[-1]
