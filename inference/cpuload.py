"""How many CPU threads a latency-critical step should use now, given what else is running.

On a shared CPU an OpenMP team larger than the free cores is slower than a smaller one: a descheduled thread
holds up every barrier. Measured on the 2-core machine with one other busy process, the first slab's network
took 0.32 s with 2 threads and 0.16 s with 1 (0.10 s and 0.15 s when idle). :class:`CpuWindow` measures the
CPU time the rest of the machine used during a window (system busy time from ``/proc/stat`` minus this
thread's own) and :meth:`CpuWindow.threads` turns the free cores into a thread count.
"""

from __future__ import annotations

import math
import os
import time

__all__ = ["CpuWindow", "threads_for"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds() -> float | None:
    """Seconds all CPUs spent busy since boot (user, nice, system, irq, softirq, steal), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    values = [int(v) for v in fields[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values + [0] * (8 - len(values))
    return (user + nice + system + irq + softirq + steal) / _TICK


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_for(others_busy: float, cpus: int, wanted: int) -> int:
    """Threads to use when other work keeps ``others_busy`` cores busy: the free cores, at least 1, at most
    ``wanted``."""
    free = cpus - max(0.0, others_busy)
    return max(1, min(wanted, math.floor(free + 0.25)))


class CpuWindow:
    """Start it, do single-threaded work (reading, resampling), then ask :meth:`threads`."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.own = time.thread_time()
        self.busy = _busy_seconds()

    def others_busy(self) -> float | None:
        """Cores the rest of the machine kept busy since the window opened (None if unknown or too short)."""
        busy = _busy_seconds()
        wall = time.monotonic() - self.wall
        if busy is None or self.busy is None or wall < 0.03:
            return None
        return max(0.0, (busy - self.busy) - (time.thread_time() - self.own)) / wall

    def threads(self, wanted: int) -> int:
        others = self.others_busy()
        return wanted if others is None else threads_for(others, _cpus(), wanted)
