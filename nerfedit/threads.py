"""CPU threads: `--threads N`, and one warning line when the machine is already busy.

torch's OpenMP threads spin-wait for each other; when the cores are shared with other jobs, a thread that
waits for a descheduled sibling burns its time slice, and two jobs with torch's default threads on a 2-core
machine ran 10–50× slower than either alone. So at start-up we compare the load the machine already has
(`os.getloadavg`: runnable processes, averaged over a minute) plus the threads this run would use with the
cores this process may run on, and say so in one line when they do not fit. The check is cheap and never
changes anything by itself; the fix is the user's choice (`--threads N` or OMP_NUM_THREADS=N).
"""

from __future__ import annotations

import os
import sys
from typing import Optional

THREADS_HELP = "CPU threads for torch (default: torch's own, one per core; on a shared machine 1 is often fastest)"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's share), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_cores() -> float:
    """The machine's one-minute load average (0 where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def oversubscription_warning(threads: int, how: str, load: Optional[float] = None, cores: Optional[int] = None) -> Optional[str]:
    """The warning line when `threads` (> 1) threads on top of `load` would not fit the cores, else None (one
    thread has nothing to give back). `how` says how to choose the count ("--threads {n}", "OMP_NUM_THREADS={n}")."""
    if threads <= 1:
        return None
    load = busy_cores() if load is None else load
    cores = usable_cores() if cores is None else cores
    if load + threads <= cores + 0.5:  # half a core of slack: a load average is noisy
        return None
    free = max(1, min(threads - 1, int(cores - load + 0.5)))
    return (
        f"warning: {threads} torch threads on {cores} core(s) already running {load:.1f} jobs: "
        f"this can run many times slower; try {how.format(n=free)}"
    )


def set_threads(threads: Optional[int]) -> None:
    """Apply `--threads` (None: keep torch's own, which OMP_NUM_THREADS sets)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def warn_if_oversubscribed(prog: str, how: str = "--threads {n}") -> None:
    """One warning line on stderr when this run's torch threads do not fit the free cores (call it once the input
    is known to be good, just before the work starts)."""
    import torch

    line = oversubscription_warning(torch.get_num_threads(), how)
    if line:
        print(f"{prog}: {line}", file=sys.stderr)
