"""Interleaved measurement: each figure is a probe per target, run round by round, targets alternating.

The machine is shared (2 cores, other work may run beside the bench): measuring Orthanc for a minute and then
Lightbox for a minute would let a burst of background load land on one side only. So every figure is cut into
rounds (one request for a latency, a slice of seconds or of instances for a throughput) and the targets take
turns, the first one changing every round.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .measure import percentile


@dataclass
class Probe:
    """One figure against one target: ``step(r)`` measures round ``r`` and returns its part; ``finish`` turns
    the parts into the figure's values (and may check the result, raising BenchError)."""
    step: Callable[[int], dict]
    finish: Callable[[list[dict]], dict]
    extra: dict = field(default_factory=dict)


def latency_probe(call: Callable[[], object], warmup: int = 2, extra: dict | None = None) -> Probe:
    """Each round times one ``call``; the figure is the median and p95 in milliseconds."""
    for _ in range(warmup):
        call()

    def step(_r: int) -> dict:
        t = time.perf_counter()
        call()
        return {"ms": (time.perf_counter() - t) * 1000}

    def finish(parts: list[dict]) -> dict:
        times = [p["ms"] for p in parts]
        return {"median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95), "n": len(times)}

    return Probe(step, finish, extra or {})


def rate_finish(unit_key: str = "done") -> Callable[[list[dict]], dict]:
    """Sum the rounds' counts and seconds into a rate (``per_second``)."""
    def finish(parts: list[dict]) -> dict:
        done = sum(p[unit_key] for p in parts)
        seconds = sum(p["seconds"] for p in parts)
        out = {"per_second": done / seconds if seconds else 0.0, unit_key: done, "seconds": seconds}
        if all("bytes" in p for p in parts):
            out["mb_per_second"] = sum(p["bytes"] for p in parts) / seconds / 1e6 if seconds else 0.0
        return out
    return finish


def run_interleaved(probes: dict[str, Probe], rounds: int, errors: dict[str, str],
                    on_error: Callable[[BaseException], str]) -> dict[str, dict]:
    """Run ``rounds`` rounds over every probe, rotating which target goes first; a target whose step raises is
    dropped (its error recorded) and the others go on."""
    names = list(probes)
    parts: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if name in errors:
                continue
            try:
                parts[name].append(probes[name].step(r))
            except Exception as exc:  # noqa: BLE001 - one failing target must not stop the others
                errors[name] = on_error(exc)
    values = {}
    for name in names:
        if name in errors:
            continue
        try:
            values[name] = {**probes[name].finish(parts[name]), **probes[name].extra}
        except Exception as exc:  # noqa: BLE001
            errors[name] = on_error(exc)
    return values
