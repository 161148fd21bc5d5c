"""Seconds per demo chest CT through ``inference.jobs.analyze_series`` (DICOM files in, SEG + SR out).

    .venv/bin/python bench/ai_speed.py            # 3 runs on the 300 x 512 x 512 demo CT (seed 7), CPU
    .venv/bin/python bench/ai_speed.py --runs 1 --threads 2
    .venv/bin/python bench/ai_speed.py --device cuda   # on a GPU machine (refused where torch sees none)
    .venv/bin/python bench/ai_speed.py --cold      # no warm-up: the first run pays torch's first-call set-up

Prints, per run: wall and CPU seconds for the whole CT, the time to the first partial mask (and the
pipeline's own split of it: headers read before the first slab, the first slab, headers read after it), the first detection, and the pipeline's
breakdown. Before the runs the models are loaded and warmed as a worker does at start (``warm_up``), unless
``--cold``. The machine is whatever runs it: on a shared CPU other processes make figures vary, so the load
average at start and end is reported; report the median and the load. Wrap it in
``flock /tmp/lightbox-bench.lock`` on a shared machine so benchmarks never overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from pydicom import dcmread

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.devices import resolve_device  # noqa: E402
from inference.jobs import analyze_series, get_pipeline  # noqa: E402
from inference.phantoms import make_chest_ct, write_ct_series  # noqa: E402

MODEL = "chest-ct-nodules"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or auto")
    parser.add_argument("--cold", action="store_true", help="skip the warm-up a worker does at start")
    parser.add_argument(
        "--unordered",
        action="store_true",
        help="files in no particular order (every header read before the first slab); by default they are "
        "listed in slice order as the worker lists them from the archive's index",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))  # refuses cuda without a GPU before the phantom is written
    load_start = os.getloadavg()
    t = time.perf_counter()
    phantom = make_chest_ct(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_ct_series(phantom, Path(tmp) / "ct")
        if args.unordered:
            paths = sorted(paths, key=lambda p: hash(p.name))
        else:
            paths = sorted(paths, key=lambda p: float(dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
        print(
            f"demo CT {phantom.shape} {phantom.spacing} mm written in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        t = time.perf_counter()
        pipe = get_pipeline(MODEL, device=device)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        if not args.cold:
            pipe.warm_up()
        warm_s = time.perf_counter() - t
        runs = []
        for run in range(args.runs):
            first: dict[str, float] = {}
            t0, c0 = time.perf_counter(), time.process_time()

            def on_event(kind: str, payload: dict, first=first, t0=t0) -> None:
                if kind == "partial_mask" and "partial" not in first:
                    first["partial"] = time.perf_counter() - t0
                if kind == "detection" and "detection" not in first:
                    first["detection"] = time.perf_counter() - t0

            result = analyze_series(
                MODEL, paths, Path(tmp) / f"out{run}", on_event, device=device, slice_ordered=not args.unordered
            )
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
            timings = result.summary["timings_s"]
            runs.append(
                {
                    "total_s": round(total, 2),
                    "cpu_s": round(cpu, 2),
                    "first_partial_mask_s": round(first.get("partial", float("nan")), 2),
                    "first_partial_split_s": {
                        "headers_before": timings.get("headers"),
                        "first_slab": round(timings.get("first_partial", 0) - timings.get("headers", 0), 3),
                        "headers_after": timings.get("headers_rest", 0.0),
                    },
                    "first_detection_s": round(first.get("detection", float("nan")), 2),
                    "detections": len(result.summary["detections"]),
                    "breakdown_s": timings,
                    "output_bytes": sum(p.stat().st_size for p in result.paths),
                    "load_average_after": [round(v, 2) for v in os.getloadavg()],
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    out = {
        "series": {"shape": list(phantom.shape), "spacing_mm": list(phantom.spacing)},
        "device": device,
        "files": "unordered" if args.unordered else "in slice order (as the worker lists them)",
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "model_load_s": round(load_s, 2),
        "warm_up_s": None if args.cold else round(warm_s, 2),
        "seconds_per_ct_median": round(statistics.median(r["total_s"] for r in runs), 2),
        "cpu_seconds_per_ct_median": round(statistics.median(r["cpu_s"] for r in runs), 2),
        "first_partial_mask_s_median": round(statistics.median(r["first_partial_mask_s"] for r in runs), 2),
        "runs": runs,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
