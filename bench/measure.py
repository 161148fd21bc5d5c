"""Timing primitives: latency percentiles, bounded closed-loop throughput with threads, and ``wrk`` runs."""
from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests


class BenchError(RuntimeError):
    """A figure could not be measured (the server answered an error, a tool is missing...)."""


def check(response: requests.Response, what: str) -> requests.Response:
    if not response.ok:
        raise BenchError(f"{what}: HTTP {response.status_code} {response.text[:200]!r}")
    return response


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latency(call: Callable[[], object], n: int, warmup: int = 2) -> dict:
    """Median and p95 in milliseconds of ``n`` sequential calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95), "n": n}


@dataclass
class LoadResult:
    done: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    bytes: int = 0

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def closed_loop(make_session: Callable[[], requests.Session], request: Callable[[requests.Session, int], int],
                clients: int, duration: float, max_requests: int) -> LoadResult:
    """``clients`` threads, each with its own keep-alive session, calling ``request(session, i)`` for i = 0, 1, ...
    (shared) until ``duration`` seconds have passed or ``max_requests`` were made; ``request`` returns the bytes
    received and raises on a bad answer. One untimed warm-up call per client first."""
    counter = iter(range(max_requests))
    lock = threading.Lock()
    result = LoadResult(0, 0.0)
    sessions = [make_session() for _ in range(clients)]
    for s in sessions:
        request(s, 0)
    deadline = time.perf_counter() + duration

    def run(session: requests.Session) -> None:
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                size = request(session, i)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    result.errors.append(str(exc)[:200])
                continue
            with lock:
                result.done += 1
                result.bytes += size

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start
    for s in sessions:
        s.close()
    return result


WRK_SCRIPT = """
local paths = {%(paths)s}
local n = 0
wrk.method = "GET"
%(headers)s
request = function()
  n = n %% #paths + 1
  return wrk.format(nil, paths[n])
end
"""


def wrk(base_url: str, paths: list[str], headers: dict[str, str], connections: int, duration: float) -> dict:
    """Requests done and seconds taken by ``wrk`` cycling through ``paths`` (each thread from the first) with ``headers``."""
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed")

    def lua(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    script = WRK_SCRIPT % {
        "paths": ", ".join(lua(p) for p in paths),
        "headers": "\n".join(f"wrk.headers[{lua(k)}] = {lua(v)}" for k, v in headers.items()),
    }
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        path = Path(tmp) / "frames.lua"
        path.write_text(script)
        threads = min(connections, 2)
        done = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
             "--timeout", "20s", "-s", str(path), base_url],
            capture_output=True, text=True, timeout=duration + 30,
        )
    out = done.stdout
    count = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if done.returncode != 0 or not count:
        raise BenchError(f"wrk failed: {done.stderr[-300:] or out[-300:]}")
    seconds = float(count.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[count.group(3)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    result = {"done": int(count.group(1)), "seconds": seconds, "non_2xx": int(bad.group(1)) if bad else 0,
              "socket_errors": errors.group(0) if errors else ""}
    if result["non_2xx"]:
        raise BenchError(f"wrk: {result['non_2xx']} answers were not 2xx")
    if not result["done"]:
        raise BenchError(f"wrk: no request completed in {seconds:.1f} s ({result['socket_errors'] or 'no errors'})")
    return result
