"""Seconds per demo chest CT through ``inference.jobs.analyze_series`` (DICOM files in, SEG + SR out).

    .venv/bin/python bench/ai_speed.py            # 2 runs on the 300 x 512 x 512 demo CT (seed 7)
    .venv/bin/python bench/ai_speed.py --runs 1 --threads 2

Prints the time to the first partial mask, the total, and the pipeline's own breakdown. The machine is
whatever runs it: on a shared CPU other processes make figures vary; report the median and the load.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.jobs import analyze_series, get_pipeline  # noqa: E402
from inference.phantoms import make_chest_ct, write_ct_series  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    phantom = make_chest_ct(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_ct_series(phantom, Path(tmp) / "ct")
        print(
            f"demo CT {phantom.shape} {phantom.spacing} mm written in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        t = time.perf_counter()
        get_pipeline("chest-ct-nodules")
        load_s = time.perf_counter() - t
        runs = []
        for run in range(args.runs):
            first: dict[str, float] = {}
            t0 = time.perf_counter()

            def on_event(kind: str, payload: dict, first=first, t0=t0) -> None:
                if kind == "partial_mask" and "partial" not in first:
                    first["partial"] = time.perf_counter() - t0
                if kind == "detection" and "detection" not in first:
                    first["detection"] = time.perf_counter() - t0

            result = analyze_series("chest-ct-nodules", paths, Path(tmp) / f"out{run}", on_event)
            total = time.perf_counter() - t0
            runs.append(
                {
                    "total_s": round(total, 2),
                    "first_partial_mask_s": round(first.get("partial", float("nan")), 2),
                    "first_detection_s": round(first.get("detection", float("nan")), 2),
                    "detections": len(result.summary["detections"]),
                    "breakdown_s": result.summary["timings_s"],
                    "output_bytes": sum(p.stat().st_size for p in result.paths),
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    print(
        json.dumps(
            {
                "series": {"shape": list(phantom.shape), "spacing_mm": list(phantom.spacing)},
                "threads": args.threads,
                "load_average": os.getloadavg(),
                "model_load_s": round(load_s, 2),
                "seconds_per_ct_median": round(statistics.median(r["total_s"] for r in runs), 2),
                "first_partial_mask_s_median": round(
                    statistics.median(r["first_partial_mask_s"] for r in runs), 2
                ),
                "runs": runs,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
