"""``python -m inference.train``: train the registry's demo models on phantoms, evaluate on held-out seeds,
write weights and ``metrics.json``.

Seeds: CT training phantoms use seeds below 100,000 and held-out CT evaluation seeds from 900,000; radiograph
training uses seeds below ``n_train`` and evaluation seeds from 500,000. Demo data may use any seed, but
quality figures come only from held-out seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from inference.registry import DEFAULT_REGISTRY, get_model_spec, instantiate
from inference.train.cls import ClsTrainConfig, evaluate_classifier, train_classifier
from inference.train.refine import RefineTrainConfig, evaluate_refiner, train_refiner
from inference.train.seg import SegTrainConfig, evaluate_segmentation, train_segmentation

SEG_MODEL = "chest-ct-nodules"
CLS_MODEL = "cxr-nodule-classifier"
SEG_HELD_OUT = 900_000
CLS_HELD_OUT = 500_000


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.train", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a few steps of each, to check the plumbing (~2 min)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="weights folder (default inference/weights; with --quick a temp folder)",
    )
    parser.add_argument(
        "--only", choices=("seg", "refine", "cls"), help="train one network, keep the others' metrics"
    )
    parser.add_argument("--refine-steps", type=int, default=None)
    parser.add_argument("--seg-steps", type=int, default=None)
    parser.add_argument("--cls-steps", type=int, default=None)
    parser.add_argument("--eval-scans", type=int, default=None, help="held-out CT phantoms to evaluate on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--seg-init", type=Path, help="start the segmentation net from these weights (fine-tuning)"
    )
    parser.add_argument("--seg-lr", type=float, default=None)
    args = parser.parse_args(argv)
    if args.out is None:
        # A quick run must never overwrite the shipped weights by accident.
        default = DEFAULT_REGISTRY.parent / "weights"
        args.out = Path(tempfile.gettempdir()) / "lightbox-quick-weights" if args.quick else default
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_path = args.out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics["environment"] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "quick": args.quick,
        "data": "synthetic phantoms only (inference.phantoms); not clinical data",
    }

    if args.only in (None, "seg"):
        spec = get_model_spec(SEG_MODEL)
        net = instantiate(spec.network)
        if args.seg_init:
            net.load_state_dict(torch.load(args.seg_init, map_location="cpu", weights_only=True))
            _log(f"seg: starting from {args.seg_init}")
        cfg = SegTrainConfig()
        if args.quick:
            cfg = SegTrainConfig(steps=20, pool_size=3, patch=(48, 96, 96), log_every=5)
        if args.seg_steps:
            cfg.steps = args.seg_steps
        if args.seg_lr:
            cfg.lr = args.seg_lr
        result = train_segmentation(net, cfg, _log)
        path = args.out / "chest_ct_seg.pt"
        torch.save(net.state_dict(), path)
        _log(f"seg: weights written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
        n_eval = args.eval_scans or (2 if args.quick else 10)
        t0 = time.perf_counter()
        ev = evaluate_segmentation(
            net,
            list(range(SEG_HELD_OUT, SEG_HELD_OUT + n_eval)),
            score_threshold=spec.postprocessing.get("score_threshold", 0.5),
        )
        _log(
            f"seg: held-out {json.dumps({k: v for k, v in ev.items() if k != 'per_scan'})} ({time.perf_counter() - t0:.0f} s)"
        )
        metrics = (
            json.loads(metrics_path.read_text()) if metrics_path.exists() else metrics
        )  # another run may have written
        metrics[SEG_MODEL] = {
            "weights": path.name,
            "train": {
                "steps": cfg.steps,
                "batch_size": cfg.batch_size,
                "patch": list(cfg.patch),
                "lr": cfg.lr,
                "initialised_from": str(args.seg_init) if args.seg_init else None,
                "earlier_runs": (
                    metrics.get(SEG_MODEL, {}).get("train", {}).get("earlier_runs", [])
                    + [metrics[SEG_MODEL]["train"]]
                )
                if args.seg_init and SEG_MODEL in metrics
                else [],
                **result,
            },
            "held_out_model_grid": ev,
        }
        metrics_path.write_text(json.dumps(metrics, indent=2))

    if args.only in (None, "refine"):
        spec = get_model_spec(SEG_MODEL).component("refiner")
        net = instantiate(spec.network)
        params = get_model_spec(SEG_MODEL).components["refiner"]
        cfg = RefineTrainConfig(
            patch_size=int(params["patch_size"]),
            patch_spacing_mm=float(params["patch_spacing_mm"]),
            window=tuple(params["window"]),
        )
        if args.quick:
            cfg.steps, cfg.n_phantoms, cfg.phantom_shape, cfg.log_every = 10, 2, (80, 256, 256), 5
        if args.refine_steps:
            cfg.steps = args.refine_steps
        result = train_refiner(net, cfg, _log)
        path = args.out / "chest_ct_refiner.pt"
        torch.save(net.state_dict(), path)
        _log(f"refiner: weights written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
        n_eval = 2 if args.quick else 12
        ev = evaluate_refiner(net, cfg, list(range(SEG_HELD_OUT + 100, SEG_HELD_OUT + 100 + n_eval)), _log)
        _log(f"refiner: held-out {json.dumps(ev)}")
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else metrics
        metrics[SEG_MODEL + "/refiner"] = {
            "weights": path.name,
            "train": {"steps": cfg.steps, "batch_size": cfg.batch_size, "phantoms": cfg.n_phantoms, **result},
            "held_out_patches": ev,
        }
        metrics_path.write_text(json.dumps(metrics, indent=2))

    if args.only in (None, "cls"):
        spec = get_model_spec(CLS_MODEL)
        net = instantiate(spec.network)
        cfg = ClsTrainConfig()
        if args.quick:
            cfg = ClsTrainConfig(steps=20, n_train=160, log_every=5)
        if args.cls_steps:
            cfg.steps = args.cls_steps
        result = train_classifier(net, cfg, _log)
        path = args.out / "cxr_nodule_cls.pt"
        torch.save(net.state_dict(), path)
        _log(f"cls: weights written to {path} ({path.stat().st_size / 1e6:.2f} MB)")
        n_eval = 100 if args.quick else 600
        ev = evaluate_classifier(
            net,
            range(CLS_HELD_OUT, CLS_HELD_OUT + n_eval),
            gradcam_layer=spec.postprocessing["gradcam_layer"],
        )
        _log(f"cls: held-out {json.dumps(ev)}")
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else metrics
        metrics[CLS_MODEL] = {
            "weights": path.name,
            "train": {"steps": cfg.steps, "batch_size": cfg.batch_size, "n_train": cfg.n_train, **result},
            "held_out": ev,
        }
        metrics_path.write_text(json.dumps(metrics, indent=2))
    _log(f"metrics written to {metrics_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
