"""Quality of the demo AI models on held-out synthetic phantoms, through the real pipelines (DICOM in).

    .venv/bin/python bench/ai_quality.py                 # 12 chest CTs at the demo geometry + 400 radiographs
    .venv/bin/python bench/ai_quality.py --scans 4 --radiographs 100   # quicker
    .venv/bin/python bench/ai_quality.py --write-metrics  # also store the figures in inference/weights/metrics.json

CT phantoms use seeds from 910,000 and radiographs from 510,000: never used in training (training seeds are
below 100,000 for CT and below 3,000 for radiographs) nor in the training-time evaluation (900,000+ and
500,000+). Figures are on synthetic phantoms only; they say nothing about clinical performance.

Definitions:
- nodule Dice: voxels labelled nodule by the pipeline vs the phantom's nodule labels, at source resolution,
  pooled over all scans (also reported per nodule, averaged);
- a detection hits a nodule when its centre is within max(radius, 5 mm) of the nodule centre;
- sensitivity at <= 1 false positive per scan: the best FROC point at or below one FP per scan, and the
  sensitivity and FP rate at the registry's score threshold;
- diameter error: |equivalent-sphere diameter - phantom diameter| for hit nodules (the phantom's diameter is
  that of the sphere its lobulated surface averages to); long-axis error is reported too;
- classification AUC over radiographs, half with a nodule; heatmap hit: the Grad-CAM peak lies inside the
  nodule's disc, over positives.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.metrics import dice, match_detections, roc_auc, sensitivity_at_fp_rate  # noqa: E402
from inference.phantoms import make_chest_ct, make_chest_radiograph, write_cr, write_ct_series  # noqa: E402
from inference.phantoms.types import CT_LABELS  # noqa: E402
from inference.registry import get_model_spec  # noqa: E402

CT_SEED0 = 910_000
CR_SEED0 = 510_000


def evaluate_ct(n_scans: int, shape, log, device: str = "cpu") -> dict:
    spec = get_model_spec("chest-ct-nodules")
    pipeline = spec.build_pipeline(device=device)
    pooled = {k: [0, 0, 0] for k in ("lung", "nodule", "liver")}
    matches, diam_err, long_err, per_nodule_dice, seconds = [], [], [], [], []
    for i in range(n_scans):
        seed = CT_SEED0 + i
        n_nodules = int(np.random.default_rng(seed).integers(0, 5))
        ph = make_chest_ct(seed, shape=shape, n_nodules=n_nodules)
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_ct_series(ph, tmp)
            t0 = time.perf_counter()
            result = pipeline.run(paths)
            seconds.append(time.perf_counter() - t0)
        labels = result.labels  # sorted feet to head like the phantom's z
        for name in pooled:
            p, t = labels == CT_LABELS[name], ph.labels == CT_LABELS[name]
            pooled[name][0] += int((p & t).sum())
            pooled[name][1] += int(p.sum())
            pooled[name][2] += int(t.sum())
        dets = result.detections
        m = match_detections(
            [n.center_mm for n in ph.nodules],
            [n.diameter_mm for n in ph.nodules],
            [d.center_mm for d in dets],
            [d.score for d in dets],
        )
        matches.append(m)
        truth_components, _ = ndimage.label(ph.labels == CT_LABELS["nodule"])
        for t_idx, d_idx, _dist in m.pairs:
            nod, det = ph.nodules[t_idx], dets[d_idx]
            diam_err.append(abs(det.equivalent_diameter_mm - nod.diameter_mm))
            long_err.append(abs(det.long_axis_mm - nod.diameter_mm))
            k, r, c = (int(round(v)) for v in nod.center_voxel)
            comp = truth_components == truth_components[k, r, c]
            (z0, z1), (y0, y1), (x0, x1) = [(int(a.min()) - 3, int(a.max()) + 4) for a in np.nonzero(comp)]
            box = (slice(max(z0, 0), z1), slice(max(y0, 0), y1), slice(max(x0, 0), x1))
            per_nodule_dice.append(dice(labels[box] == CT_LABELS["nodule"], comp[box]))
        log(
            f"ct {i + 1}/{n_scans} seed {seed}: {len(ph.nodules)} nodules, {len(dets)} detections, "
            f"{len(m.tp_scores)} hits, {len(m.fp_scores)} FP, {seconds[-1]:.1f} s"
        )
    n_truth = sum(m.n_truth for m in matches)
    sens_froc, thr = sensitivity_at_fp_rate(matches, 1.0) if n_truth else (float("nan"), float("nan"))
    return {
        "scans": n_scans,
        "shape": list(shape),
        "nodules": n_truth,
        "dice_pooled": {k: round(2 * v[0] / max(v[1] + v[2], 1), 4) for k, v in pooled.items()},
        "nodule_dice_per_nodule_mean": round(float(np.mean(per_nodule_dice)), 4) if per_nodule_dice else None,
        "sensitivity_at_threshold": round(sum(len(m.tp_scores) for m in matches) / max(n_truth, 1), 4),
        "false_positives_per_scan_at_threshold": round(sum(len(m.fp_scores) for m in matches) / n_scans, 3),
        "sensitivity_at_1fp_per_scan": round(sens_froc, 4),
        "froc_threshold": thr,
        "diameter_abs_error_mm": {
            "mean": round(float(np.mean(diam_err)), 3) if diam_err else None,
            "max": round(float(np.max(diam_err)), 3) if diam_err else None,
        },
        "long_axis_abs_error_mm_mean": round(float(np.mean(long_err)), 3) if long_err else None,
        "seconds_per_scan_mean": round(float(np.mean(seconds)), 2),
    }


def evaluate_cxr(n_images: int, log, device: str = "cpu") -> dict:
    spec = get_model_spec("cxr-nodule-classifier")
    pipeline = spec.build_pipeline(device=device)
    probs, labels, hits = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_images):
            seed = CR_SEED0 + i
            r = make_chest_radiograph(seed, nodule=bool(i % 2))
            path = write_cr(r, Path(tmp) / f"{i}.dcm")
            result = pipeline.run([path])
            probs.append(result.probability)
            labels.append(int(r.has_nodule))
            if r.has_nodule:
                hits.append(bool(r.nodule_mask[result.peak_px]))
            if (i + 1) % 50 == 0:
                log(f"cxr {i + 1}/{n_images}")
    p, y = np.array(probs), np.array(labels)
    threshold = pipeline.threshold
    return {
        "images": n_images,
        "positives": int(y.sum()),
        "auc": round(roc_auc(p, y), 4),
        "sensitivity": round(float((p[y == 1] >= threshold).mean()), 4),
        "specificity": round(float((p[y == 0] < threshold).mean()), 4),
        "heatmap_peak_in_nodule": round(float(np.mean(hits)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=12)
    parser.add_argument("--radiographs", type=int, default=400)
    parser.add_argument(
        "--small", action="store_true", help="CTs of 120x320x320 at the demo spacing (faster)"
    )
    parser.add_argument("--write-metrics", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or auto")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    out: dict = {"data": "held-out synthetic phantoms; not clinical", "device": args.device}
    if args.scans:
        out["chest-ct-nodules"] = evaluate_ct(
            args.scans, (120, 320, 320) if args.small else (300, 512, 512), log, args.device
        )
    if args.radiographs:
        out["cxr-nodule-classifier"] = evaluate_cxr(args.radiographs, log, args.device)
    print(json.dumps(out, indent=2))
    if args.write_metrics:
        path = ROOT / "inference" / "weights" / "metrics.json"
        metrics = json.loads(path.read_text()) if path.exists() else {}
        for name in ("chest-ct-nodules", "cxr-nodule-classifier"):
            if name in out:
                metrics.setdefault(name, {})["held_out_pipeline"] = out[name]
        path.write_text(json.dumps(metrics, indent=2))
        log(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
