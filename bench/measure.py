"""Timing primitives: latency percentiles, bounded closed-loop throughput with threads, and ``wrk`` runs."""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


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
    client_cpu_s: float = 0.0  # CPU time the client spent (user + system), all its threads or processes
    codings: set[str] = field(default_factory=set)  # Content-Encoding of the answers (process loops only)

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
    start, cpu = time.perf_counter(), _cpu_s()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start
    result.client_cpu_s = _cpu_s() - cpu
    for s in sessions:
        s.close()
    return result


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def closed_loop_processes(urls: list[str], headers: dict[str, str], auth: tuple[str, str] | None, clients: int,
                          duration: float) -> LoadResult:
    """Like :func:`closed_loop` with ``clients`` *processes*, each one keep-alive ``requests`` session GETting
    ``urls`` in turn (process k takes k, k + clients, ...): independent clients, as viewers in separate browsers
    are. Threads of one Python process share its GIL, and with a fast server six of them spend more time handing
    the GIL to each other than the server spends answering (docs/PERFORMANCE.md). Each process starts, makes
    one untimed warm-up call and says so; the clock starts when all are ready and stops when the last one ends."""
    job = json.dumps({"urls": urls, "headers": headers, "auth": auth, "stride": clients})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-c", "from bench.measure import client_process; client_process()",
                               str(k)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for k in range(clients)]
    result = LoadResult(0, 0.0)
    try:
        for p in procs:
            p.stdin.write(job + "\n")
            p.stdin.flush()
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise BenchError("a client process did not start")
        start = time.monotonic()
        for p in procs:  # CLOCK_MONOTONIC is the same clock in every process
            p.stdin.write(f"{start + duration!r}\n")
            p.stdin.flush()
        ends = []
        for p in procs:
            line = p.stdout.readline()
            if not line:
                raise BenchError("a client process ended without a result")
            part = json.loads(line)
            result.done += part["done"]
            result.bytes += part["bytes"]
            result.errors += part["errors"]
            result.client_cpu_s += part["cpu_s"]
            result.codings.update(part["codings"])
            ends.append(part["end"])
        result.seconds = max(ends) - start
    finally:
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return result


def client_process() -> None:
    """One client of :func:`closed_loop_processes` (its own process): the job as a JSON line on stdin, "ready"
    after the warm-up call, the deadline (monotonic seconds) on stdin, the counts as a JSON line on stdout."""
    k = int(sys.argv[1])
    job = json.loads(sys.stdin.readline())
    urls, headers, stride = job["urls"], job["headers"], job["stride"]
    session = requests.Session()
    session.auth = tuple(job["auth"]) if job["auth"] else None
    part = {"done": 0, "bytes": 0, "errors": [], "codings": [], "cpu_s": 0.0, "end": 0.0}

    def get(i: int) -> int:
        resp = check(session.get(urls[i % len(urls)], headers=headers, timeout=60), "GET")
        coding = resp.headers.get("Content-Encoding", "identity")
        if coding not in part["codings"]:
            part["codings"].append(coding)
        return len(resp.content)

    try:
        get(k)
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        part["errors"].append(f"warm-up: {exc}"[:200])
    print("ready", flush=True)
    end_at, cpu, i = float(sys.stdin.readline()), _cpu_s(), k
    while not part["errors"] and time.monotonic() < end_at:
        try:
            part["bytes"] += get(i)
            part["done"] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            part["errors"].append(str(exc)[:200])
        i += stride
    part["end"], part["cpu_s"] = time.monotonic(), _cpu_s() - cpu
    session.close()
    print(json.dumps(part), flush=True)


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
