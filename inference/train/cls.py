"""Train and evaluate the chest radiograph nodule classifier on phantoms rendered at the model's input size."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inference.metrics import roc_auc
from inference.phantoms import make_chest_radiograph
from inference.pipelines.gradcam import GradCAM
from inference.pipelines.transforms import radiograph_to_input

__all__ = ["ClsTrainConfig", "make_cxr_set", "train_classifier", "evaluate_classifier"]

_FOV_MM = 1024 * 0.3  # the demo radiograph's field of view; the model sees it at 256 px (1.2 mm)


@dataclass
class ClsTrainConfig:
    steps: int = 400
    batch_size: int = 24
    n_train: int = 2000
    size: int = 256
    lr: float = 2e-3
    train_seeds_start: int = 0
    log_every: int = 50


def make_cxr_set(
    seeds, size: int = 256, noise_range=(0.3, 2.0)
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(inputs (N, 1, size, size), labels (N,), nodule masks (N, size, size)) for the given seeds."""
    rng = np.random.default_rng(int(seeds[0]) + 17)
    images, labels, masks = [], [], []
    for seed in seeds:
        r = make_chest_radiograph(
            int(seed), size=(size, size), spacing=_FOV_MM / size, noise_sigma=float(rng.uniform(*noise_range))
        )
        images.append(radiograph_to_input(r.image, (size, size))[0])
        labels.append(float(r.has_nodule))
        masks.append(r.nodule_mask)
    return torch.stack(images), torch.tensor(labels), np.stack(masks)


def train_classifier(net: nn.Module, cfg: ClsTrainConfig, log: Callable[[str], None] = print) -> dict:
    """Image label and nodule map both supervised (the map with the phantoms' masks at 1/4 resolution)."""
    t0 = time.perf_counter()
    x, y, masks = make_cxr_set(
        list(range(cfg.train_seeds_start, cfg.train_seeds_start + cfg.n_train)), cfg.size
    )
    targets = F.max_pool2d(torch.as_tensor(masks, dtype=torch.float32)[:, None], 4)
    log(
        f"cls: {len(x)} training radiographs in {time.perf_counter() - t0:.0f} s ({int(y.sum())} with a nodule)"
    )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    pos_weight = torch.tensor(20.0)
    rng = np.random.default_rng(1)
    warmup = max(1, min(30, cfg.steps // 10))
    history, running = [], 0.0
    net.train()
    for step in range(cfg.steps):
        lr = (
            cfg.lr * (step + 1) / warmup
            if step < warmup
            else 1e-5
            + 0.5 * (cfg.lr - 1e-5) * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.steps - warmup)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.as_tensor(rng.choice(len(x), cfg.batch_size, replace=False))
        xb, yb, tb = x[idx].clone(), y[idx], targets[idx].clone()
        flip = torch.as_tensor(rng.random(cfg.batch_size) < 0.5)
        xb[flip], tb[flip] = xb[flip].flip(-1), tb[flip].flip(-1)
        opt.zero_grad(set_to_none=True)
        logits, maps = net.forward_maps(xb)
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], yb) + F.binary_cross_entropy_with_logits(
            maps, tb, pos_weight=pos_weight
        )
        loss.backward()
        opt.step()
        running += loss.item()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            mean = running / ((step % cfg.log_every) + 1)
            history.append(
                {"step": step + 1, "loss": round(mean, 4), "seconds": round(time.perf_counter() - t0, 1)}
            )
            log(f"cls: step {step + 1}/{cfg.steps} loss {mean:.4f} ({time.perf_counter() - t0:.0f} s)")
            running = 0.0
    net.eval()
    return {"history": history, "seconds": round(time.perf_counter() - t0, 1)}


def evaluate_classifier(
    net: nn.Module, seeds, size: int = 256, gradcam_layer: str = "features.context", threshold: float = 0.5
) -> dict:
    """AUC, accuracy at ``threshold`` and how often the Grad-CAM peak lies inside the nodule (positives)."""
    x, y, masks = make_cxr_set(list(seeds), size, noise_range=(0.3, 0.6))
    net.eval()
    cam = GradCAM(net, gradcam_layer)
    probs, hits = [], []
    for start in range(0, len(x), 32):
        logits, maps = cam(x[start : start + 32])
        probs.extend(torch.sigmoid(logits[:, 0]).tolist())
        for i, m in enumerate(maps.numpy()):
            j = start + i
            if y[j] > 0:
                r, c = np.unravel_index(int(np.argmax(m)), m.shape)
                hits.append(bool(masks[j][r, c]))
    probs_a, labels = np.array(probs), y.numpy().astype(int)
    return {
        "images": len(labels),
        "positives": int(labels.sum()),
        "auc": round(roc_auc(probs_a, labels), 4),
        "accuracy": round(float(((probs_a >= threshold) == labels.astype(bool)).mean()), 4),
        "sensitivity": round(float((probs_a[labels == 1] >= threshold).mean()), 4),
        "specificity": round(float((probs_a[labels == 0] < threshold).mean()), 4),
        "heatmap_peak_in_nodule": round(float(np.mean(hits)), 4) if hits else None,
    }
