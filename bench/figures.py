"""The measured figures (issue #2, Proof): each function builds the probe of one figure against one target.

A probe's rounds are interleaved with the other targets' by :func:`bench.probes.run_interleaved`. Every failure
raises :class:`bench.measure.BenchError` (or any exception), which costs one cell of the table, not the run.
"""
from __future__ import annotations

import queue
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

import orjson
import requests

from .data import CtSeries, rerooted
from .measure import BenchError, check, closed_loop, closed_loop_processes, percentile, wrk
from .probes import Probe, latency_probe, rate_finish
from .targets import DICOM_JSON, ENCODINGS, FRAME_ACCEPT, Target

INSTANCE_COUNT_TAG = "00201208"


def _chunks(items: list, n: int) -> list[list]:
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- storing ---------------------------------------------------------------------------------------------------

def stow_bodies(blobs: list[bytes], per_request: int) -> list[tuple[str, bytes, int]]:
    """multipart/related bodies of ``per_request`` instances each: (content type, body, instances)."""
    bodies = []
    for start in range(0, len(blobs), per_request):
        boundary = uuid.uuid4().hex
        chunks = []
        for blob in blobs[start:start + per_request]:
            chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), blob, b"\r\n"]
        chunks.append(f"--{boundary}--\r\n".encode())
        bodies.append((f'multipart/related; type="application/dicom"; boundary={boundary}', b"".join(chunks),
                       len(blobs[start:start + per_request])))
    return bodies


def send_stow(target: Target, bodies: list[tuple[str, bytes, int]], clients: int) -> float:
    """POST every body with ``clients`` concurrent sessions; the seconds it took. Anything but 200 raises."""
    work: queue.Queue = queue.Queue()
    for item in bodies:
        work.put(item)
    errors: list[str] = []

    def client() -> None:
        with target.session() as s:
            while True:
                try:
                    content_type, body, _ = work.get_nowait()
                except queue.Empty:
                    return
                r = s.post(target.url("studies"), data=body, timeout=300,
                           headers={"Content-Type": content_type, "Accept": DICOM_JSON})
                if r.status_code != 200:
                    errors.append(f"HTTP {r.status_code} {r.text[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"STOW: {len(errors)} of {len(bodies)} requests failed, first: {errors[0]}")
    return time.perf_counter() - start


def stow(target: Target, series: CtSeries, clients: int, rounds: int = 2, per_request: int = 10) -> Probe:
    """Instances/s storing ``series`` with STOW-RS, ``clients`` concurrent requests of ``per_request`` instances."""
    bodies = stow_bodies(series.blobs, per_request)
    parts = _chunks(bodies, rounds)

    def step(r: int) -> dict:
        if r >= len(parts):
            return {"done": 0, "seconds": 0.0}
        return {"done": sum(count for _, _, count in parts[r]), "seconds": send_stow(target, parts[r], clients)}

    def finish(results: list[dict]) -> dict:
        expect_stored(target, series.study_uid, len(series.blobs), "STOW answered 200")
        return rate_finish()(results)

    return Probe(step, finish)


def cstore(target: Target, paths: list[Path], processes: int, study_uid: str, rounds: int = 2) -> Probe:
    """Instances/s sending ``paths`` with ``processes`` parallel dcmtk ``storescu`` (one association each)."""
    parts = _chunks(paths, rounds)

    def step(r: int) -> dict:
        if r >= len(parts):
            return {"done": 0, "seconds": 0.0}
        groups = [parts[r][i::processes] for i in range(processes)]
        start = time.perf_counter()
        procs = [subprocess.Popen(
            ["storescu", "-aet", "BENCHSCU", "-aec", target.ae_title, "127.0.0.1", str(target.dicom_port),
             *map(str, group)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for group in groups if group]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        seconds = time.perf_counter() - start
        for p, out in zip(procs, outputs, strict=True):
            if p.returncode != 0:
                raise BenchError(f"storescu exited {p.returncode}: {out[-300:]}")
        return {"done": len(parts[r]), "seconds": seconds}

    def finish(results: list[dict]) -> dict:
        expect_stored(target, study_uid, len(paths), "storescu succeeded")
        return rate_finish()(results)

    return Probe(step, finish)


def study_instance_count(target: Target, study_uid: str) -> int:
    with target.session() as s:
        r = check(s.get(target.url("studies", {"StudyInstanceUID": study_uid, "includefield": INSTANCE_COUNT_TAG}),
                        headers={"Accept": DICOM_JSON}, timeout=60), "QIDO study count")
    found = r.json() if r.content else []
    if not found:
        return 0
    return int(found[0].get(INSTANCE_COUNT_TAG, {}).get("Value", [0])[0])


def expect_stored(target: Target, study_uid: str, count: int, what: str) -> None:
    stored = study_instance_count(target, study_uid)
    if stored != count:
        raise BenchError(f"{what} but the study holds {stored} of {count} instances")


def post_instances_orthanc(orthanc_url: str, blobs: list[bytes], clients: int, deadline_s: float) -> dict:
    """Store one-instance files through Orthanc's REST API (``POST /instances``), in parallel, until done or
    ``deadline_s``: how the 10,000-study index is built for Orthanc."""
    work = iter(blobs)
    lock = threading.Lock()
    stored, errors = [0], []
    stop_at = time.monotonic() + deadline_s

    def client() -> None:
        with requests.Session() as s:
            while time.monotonic() < stop_at:
                with lock:
                    blob = next(work, None)
                if blob is None:
                    return
                r = s.post(f"{orthanc_url}/instances", data=blob, timeout=60)
                with lock:
                    if r.ok:
                        stored[0] += 1
                    else:
                        errors.append(f"HTTP {r.status_code}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"stored": stored[0], "seconds": time.perf_counter() - start, "errors": errors[:5]}


# --- searching -------------------------------------------------------------------------------------------------

def qido(target: Target, params: dict[str, str], path: str = "studies") -> Probe:
    """Latency of one QIDO-RS search (gzip offered, as a browser would; JSON parsed), with its match count."""
    s = target.session()

    def call() -> int:
        r = check(s.get(target.url(path, params), timeout=60,
                        headers={"Accept": DICOM_JSON, "Accept-Encoding": ENCODINGS["gzip"]}), f"QIDO {params}")
        return len(orjson.loads(r.content)) if r.content else 0

    return latency_probe(call, extra={"matches": call()})


def any_patient_id(target: Target, name_prefix: str) -> str:
    """A PatientID in the index (of the first study matching ``name_prefix*``), for the PatientID search."""
    with target.session() as s:
        r = check(s.get(target.url("studies", {"PatientName": f"{name_prefix}*", "limit": "1"}),
                        headers={"Accept": DICOM_JSON}, timeout=60), "QIDO patient")
    found = r.json() if r.content else []
    if not found:
        raise BenchError(f"no study of a patient named {name_prefix}*")
    return found[0]["00100020"]["Value"][0]


# --- retrieving ------------------------------------------------------------------------------------------------

def metadata(target: Target, path: str, encoding: str) -> Probe:
    """Latency of a metadata resource with ``Accept-Encoding: encoding``: the body as sent, and gunzipped and
    parsed as a client must (a browser does both)."""
    headers = {"Accept": DICOM_JSON, "Accept-Encoding": ENCODINGS[encoding]}
    s = target.session()
    seen: dict = {}

    def call() -> None:
        r = check(s.get(target.url(path), headers=headers, timeout=60), f"metadata {path}")
        seen["instances"] = len(orjson.loads(r.content))
        seen["coding"] = r.headers.get("Content-Encoding", "identity")
        seen["wire_bytes"] = int(r.headers.get("Content-Length") or 0) or None

    probe = latency_probe(call)
    probe.extra = seen
    return probe


def frame_paths(target: Target, ct: CtSeries) -> list[str]:
    return [f"{target.instance_path(ct.study_uid, ct.series_uid, sop)}/frames/1" for sop in ct.sop_uids]


def frames(target: Target, ct: CtSeries, clients: int, encoding: str, seconds: float, *,
           processes: bool = False) -> Probe:
    """Frames/s, one frame per request (each instance's frame 1 in turn), ``clients`` keep-alive clients: threads
    of this process, or with ``processes`` separate client processes (independent viewers); each round runs
    ``seconds``. The client's own CPU per frame goes into the JSON: it shows when the client is the limit."""
    paths = frame_paths(target, ct)
    headers = {"Accept": FRAME_ACCEPT, "Accept-Encoding": ENCODINGS[encoding]}
    codings: set[str] = set()

    def step(r: int) -> dict:
        if processes:
            urls = [target.url(p) for p in paths[37 * r % len(paths):] + paths[:37 * r % len(paths)]]
            result = closed_loop_processes(urls, headers, target.auth, clients, seconds)
            codings.update(result.codings)
        else:
            def request(session: requests.Session, i: int) -> int:
                resp = check(session.get(target.url(paths[(i + 37 * r) % len(paths)]), headers=headers, timeout=60),
                             "frame")
                codings.add(resp.headers.get("Content-Encoding", "identity"))
                return len(resp.content)

            result = closed_loop(target.session, request, clients, seconds, max_requests=100_000)
        if result.errors:
            raise BenchError(f"{len(result.errors)} frame requests failed, first: {result.errors[0]}")
        return {"done": result.done, "seconds": result.seconds, "bytes": result.bytes,
                "client_cpu_s": result.client_cpu_s}

    rates = rate_finish()

    def finish(parts: list[dict]) -> dict:
        out = rates(parts)
        out["client_cpu_ms_per_frame"] = 1000 * sum(p["client_cpu_s"] for p in parts) / max(1, out["done"])
        return out

    return Probe(step, finish, {"content_encoding": codings, "clients": "processes" if processes else "threads"})


def fresh_frames(target: Target, ct: CtSeries, roots: list[str], count: int) -> Probe:
    """A viewer opening a study that has just arrived: round r stores the first ``count`` slices of ``ct`` under
    UID root ``roots[r]`` by STOW-RS (untimed), then
    GETs each instance's frame 1 once, in order, one client; the figure is the median and p95 of those first
    reads (nothing of that study has been read before, so no lookup or file read is cached yet)."""
    headers = {"Accept": FRAME_ACCEPT, "Accept-Encoding": "identity"}
    s = target.session()

    def step(r: int) -> dict:
        fresh = rerooted(ct, roots[r], count)
        send_stow(target, stow_bodies(fresh.blobs, 10), clients=1)
        times = []
        for path in frame_paths(target, fresh):
            start = time.perf_counter()
            check(s.get(target.url(path), headers=headers, timeout=60), "frame of a study just stored")
            times.append((time.perf_counter() - start) * 1000)
        return {"times": times}

    def finish(parts: list[dict]) -> dict:
        times = [t for p in parts for t in p["times"]]
        return {"median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95), "n": len(times)}

    return Probe(step, finish)


def frames_wrk(target: Target, ct: CtSeries, connections: int, encoding: str, seconds: float) -> Probe:
    """The server's frame ceiling under ``wrk`` (C client), cycling over every instance's frame 1."""
    root = target.dicomweb.split("//", 1)[1].split("/", 1)[1]  # "dicomweb" or "dicom-web"
    base = target.dicomweb[: -len(root) - 1]
    paths = [f"/{root}/{p}" for p in frame_paths(target, ct)]
    headers = {"Accept": FRAME_ACCEPT, "Accept-Encoding": ENCODINGS[encoding], **target.auth_headers()}
    return Probe(lambda r: wrk(base, paths[r * 37:] + paths[:r * 37], headers, connections, seconds), rate_finish())


def first_frame(target: Target, ct: CtSeries, patient_id: str, encoding: str) -> Probe:
    """Viewer-like time from search to first frame: QIDO studies by PatientID, QIDO series of the study,
    series metadata, then the middle frame (by InstanceNumber), each request waiting for the one before."""
    headers = {"Accept": DICOM_JSON, "Accept-Encoding": ENCODINGS[encoding]}
    s = target.session()

    def call() -> None:
        studies = check(s.get(target.url("studies", {"PatientID": patient_id, "limit": "101"}),
                              headers=headers, timeout=60), "QIDO studies").json()
        if ct.study_uid not in [st["0020000D"]["Value"][0] for st in studies]:
            raise BenchError("the CT study is not among the patient's studies")
        series = check(s.get(target.url(f"studies/{ct.study_uid}/series"), headers=headers, timeout=60),
                       "QIDO series").json()
        series_uid = next(se["0020000E"]["Value"][0] for se in series
                          if se.get("00080060", {}).get("Value", [""])[0] == "CT")
        meta = check(s.get(target.url(f"studies/{ct.study_uid}/series/{series_uid}/metadata"),
                           headers=headers, timeout=60), "series metadata").json()
        meta.sort(key=lambda m: int(m.get("00200013", {}).get("Value", [0])[0]))
        sop = meta[len(meta) // 2]["00080018"]["Value"][0]
        frame = s.get(target.url(f"{target.instance_path(ct.study_uid, series_uid, sop)}/frames/1"),
                      headers={"Accept": FRAME_ACCEPT, "Accept-Encoding": ENCODINGS[encoding]}, timeout=60)
        check(frame, "frame")

    return latency_probe(call, warmup=1)


def rendered(target: Target, ct: CtSeries, resource: str) -> Probe:
    """Latency of ``rendered`` or ``thumbnail`` (image/jpeg) of instances of the CT, a different one each call."""
    if resource == "thumbnail" and not target.thumbnails:
        raise BenchError("n/a: no thumbnail resource")
    calls = iter(range(10**6))
    s = target.session()

    def call() -> None:
        sop = ct.sop_uids[(next(calls) * 7) % len(ct.sop_uids)]
        r = check(s.get(target.url(f"{target.instance_path(ct.study_uid, ct.series_uid, sop)}/{resource}"),
                        headers={"Accept": "image/jpeg"}, timeout=60), resource)
        if not r.content.startswith(b"\xff\xd8"):
            raise BenchError(f"{resource} is not a JPEG ({r.headers.get('Content-Type')})")

    return latency_probe(call)


def floor(target: Target) -> Probe:
    """The smallest authenticated DICOMweb answer: a study search that matches nothing (200, empty list).
    What every request pays before doing real work (routing, authentication, one index lookup)."""
    s = target.session()
    url = target.url("studies", {"StudyInstanceUID": "1.2.826.0.1.3680043.8.498.404"})

    def call() -> None:
        r = check(s.get(url, headers={"Accept": DICOM_JSON}, timeout=60), "QIDO matching nothing")
        if r.content and orjson.loads(r.content):
            raise BenchError("a search for an unknown StudyInstanceUID found something")

    return latency_probe(call)
