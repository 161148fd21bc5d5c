"""Train and evaluate the chest CT segmentation net (background, lung, nodule, liver) on phantoms."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from monai.losses import DiceCELoss
from scipy import ndimage
from torch import nn

from inference.metrics import dice, match_detections, sensitivity_at_fp_rate
from inference.phantoms.types import CT_LABELS
from inference.pipelines.detection import find_candidates, measure_mask, soft_nms
from inference.pipelines.inferer import VolumeInferer
from inference.pipelines.transforms import hu_to_channels
from inference.train.seg_data import SegPhantomPool, make_model_grid_phantom

__all__ = ["SegTrainConfig", "train_segmentation", "evaluate_segmentation"]


@dataclass
class SegTrainConfig:
    steps: int = 1600
    batch_size: int = 2
    patch: tuple[int, int, int] = (48, 96, 96)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    pool_size: int = 16
    refresh_every: int = 6
    spacing_mm: float = 1.5
    train_seeds: tuple[int, int] = (0, 100_000)  # half-open range; held-out seeds are >= 900_000
    log_every: int = 25


def train_segmentation(net: nn.Module, cfg: SegTrainConfig, log: Callable[[str], None] = print) -> dict:
    """Adam with a warm-up then cosine decay, Dice + cross-entropy; returns a short history."""
    if cfg.steps < 1:
        raise ValueError(f"steps must be >= 1, got {cfg.steps!r}.")
    rng = np.random.default_rng(12345)
    seeds = [
        int(s)
        for s in rng.choice(
            np.arange(*cfg.train_seeds),
            size=cfg.steps // max(cfg.refresh_every, 1) + cfg.pool_size + 1,
            replace=False,
        )
    ]
    t0 = time.perf_counter()
    pool = SegPhantomPool(
        seeds,
        patch=cfg.patch,
        pool_size=cfg.pool_size,
        refresh_every=cfg.refresh_every,
        spacing_mm=cfg.spacing_mm,
    )
    log(f"seg: pool of {cfg.pool_size} phantoms ready in {time.perf_counter() - t0:.1f} s")
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, min(50, cfg.steps // 10))

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, cfg.steps - warmup)
        return 1e-5 + 0.5 * (cfg.lr - 1e-5) * (1 + math.cos(math.pi * progress))

    net.train()
    history = []
    running = 0.0
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        batch = pool.batch(cfg.batch_size)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(batch.image), batch.label)
        loss.backward()
        opt.step()
        running += loss.item()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            mean = running / ((step % cfg.log_every) + 1)
            history.append(
                {"step": step + 1, "loss": round(mean, 4), "seconds": round(time.perf_counter() - t0, 1)}
            )
            log(f"seg: step {step + 1}/{cfg.steps} loss {mean:.4f} ({time.perf_counter() - t0:.0f} s)")
            running = 0.0
    net.eval()
    return {"history": history, "seconds": round(time.perf_counter() - t0, 1)}


def evaluate_segmentation(
    net: nn.Module,
    seeds: list[int],
    *,
    spacing_mm: float = 1.5,
    noise_sigma: float = 8.0,
    score_threshold: float = 0.5,
    roi_depth: int = 80,
    full_fov: bool = True,
) -> dict:
    """Held-out quality at model resolution: Dice per class, nodule detection and diameter error.

    The full pipeline (DICOM in, source resolution out) is measured by ``bench/ai_quality.py``; this one
    runs during training without writing files.
    """
    inferer = VolumeInferer(roi_depth=roi_depth)
    pooled = {name: [0, 0, 0] for name in ("lung", "nodule", "liver")}  # intersection, pred, truth
    matches, diam_err, per_scan = [], [], []
    net.eval()
    for seed in seeds:
        ph = make_model_grid_phantom(
            seed,
            spacing_mm,
            n_nodules=int(np.random.default_rng(seed).integers(0, 5)),
            noise_sigma=noise_sigma,
            full_fov=full_fov,
        )
        with torch.inference_mode():
            probs = inferer(hu_to_channels(ph.volume.astype(np.float32))[None], net)[0].numpy()
        pred = probs.argmax(axis=0)
        scan = {}
        for name in pooled:
            value = CT_LABELS[name]
            p, t = pred == value, ph.labels == value
            pooled[name][0] += int((p & t).sum())
            pooled[name][1] += int(p.sum())
            pooled[name][2] += int(t.sum())
            scan[name] = round(dice(p, t), 4)
        per_scan.append({"seed": seed, "dice": scan, "n_nodules": len(ph.nodules)})
        nodule_prob = probs[CT_LABELS["nodule"]]
        kept = [c for c in soft_nms(find_candidates(nodule_prob)) if c.score >= score_threshold]
        centers = [ph.voxel_to_mm(c.centroid) for c in kept]
        m = match_detections(
            [n.center_mm for n in ph.nodules],
            [n.diameter_mm for n in ph.nodules],
            centers,
            [c.score for c in kept],
        )
        matches.append(m)
        mask_all = nodule_prob >= 0.5
        labelled, _ = ndimage.label(mask_all, structure=np.ones((3, 3, 3)))
        for t_idx, d_idx, _dist in m.pairs:
            z, y, x = (int(round(v)) for v in kept[d_idx].centroid)
            comp_id = labelled[z, y, x]
            if comp_id == 0:
                continue
            meas = measure_mask(labelled == comp_id, (spacing_mm,) * 3)
            diam_err.append(abs(meas.equivalent_diameter_mm - ph.nodules[t_idx].diameter_mm))
    n_truth = sum(m.n_truth for m in matches)
    n_tp = sum(len(m.tp_scores) for m in matches)
    n_fp = sum(len(m.fp_scores) for m in matches)
    sens_at_1fp = sensitivity_at_fp_rate(matches, 1.0)[0] if n_truth else float("nan")
    return {
        "scans": len(seeds),
        "nodules": n_truth,
        "dice": {k: round(2 * v[0] / max(v[1] + v[2], 1), 4) for k, v in pooled.items()},
        "sensitivity": round(n_tp / max(n_truth, 1), 4),
        "false_positives_per_scan": round(n_fp / max(len(seeds), 1), 3),
        "sensitivity_at_1fp_per_scan": round(sens_at_1fp, 4),
        "diameter_abs_error_mm_mean": round(float(np.mean(diam_err)), 3) if diam_err else None,
        "per_scan": per_scan,
    }
