"""Train and evaluate the nodule refiner on patches cut from phantoms at the demo spacing.

Patches come from phantoms written exactly as the pipeline reads them (0.7 x 0.7 x 1.25 mm, noise around
20 HU) and are resampled by the same :func:`~inference.pipelines.patches.extract_patch`. Centres: every
nodule (twice, jittered by about 1.5 mm), vessel cores (the hard negatives: a vessel seen end-on is what
stage one confuses with a nodule), and random lung points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from monai.losses import DiceLoss
from torch import nn

from inference.metrics import dice, roc_auc
from inference.phantoms import make_chest_ct
from inference.phantoms.types import CT_LABELS
from inference.pipelines.patches import extract_patch
from inference.pipelines.refine import NoduleRefiner
from inference.pipelines.transforms import hu_to_channels

__all__ = ["RefineTrainConfig", "make_refine_patches", "train_refiner", "evaluate_refiner"]


@dataclass
class RefineTrainConfig:
    steps: int = 600
    batch_size: int = 8
    n_phantoms: int = 40
    phantom_shape: tuple[int, int, int] = (160, 512, 512)
    phantom_spacing: tuple[float, float, float] = (1.25, 0.7, 0.7)
    patch_size: int = 40
    patch_spacing_mm: float = 0.9
    window: tuple[float, float] = (-1000.0, 400.0)
    lr: float = 2e-3
    seed_start: int = 50_000  # CT training range (< 100,000), apart from the segmentation pool's draws
    log_every: int = 25


def make_refine_patches(seeds, cfg: RefineTrainConfig, log: Callable[[str], None] = print):
    """(hu (N, P, P, P) int16, nodule labels (N, P, P, P) uint8, nodule-at-centre flags (N,))."""
    hus, labs, flags = [], [], []
    for n, seed in enumerate(seeds):
        rng = np.random.default_rng(seed + 333)
        ph = make_chest_ct(
            int(seed),
            shape=cfg.phantom_shape,
            spacing=cfg.phantom_spacing,
            n_nodules=int(rng.integers(1, 5)),
            noise_sigma=float(rng.uniform(12, 28)),
        )
        sp = ph.spacing
        centers: list[tuple[np.ndarray, bool]] = []
        for nod in ph.nodules:
            for _ in range(2):
                jitter = rng.normal(scale=1.5, size=3) / np.asarray(sp)
                centers.append((np.asarray(nod.center_voxel) + jitter, True))
        lung = ph.labels == CT_LABELS["lung"]
        vessels = np.flatnonzero(lung & (ph.volume > -150))
        for flat in rng.choice(vessels, size=min(7, vessels.size), replace=False) if vessels.size else []:
            centers.append((np.array(np.unravel_index(flat, ph.shape), dtype=float), False))
        lung_idx = np.flatnonzero(lung)
        for flat in rng.choice(lung_idx, size=2, replace=False):
            centers.append((np.array(np.unravel_index(flat, ph.shape), dtype=float), False))
        nodule_mask = (ph.labels == CT_LABELS["nodule"]).astype(np.float32)
        for c, is_nodule in centers:
            kw = {"size": cfg.patch_size, "spacing": cfg.patch_spacing_mm, "source_spacing": sp}
            hus.append(extract_patch(ph.volume, c, **kw).round().to(torch.int16))
            labs.append((extract_patch(nodule_mask, c, fill=0.0, **kw) >= 0.5).to(torch.uint8))
            # A vessel sample may still see a nodule at its centre by chance.
            flags.append(bool(is_nodule or labs[-1][tuple([cfg.patch_size // 2] * 3)]))
        if (n + 1) % 10 == 0:
            log(f"refiner: patches from {n + 1}/{len(seeds)} phantoms ({len(hus)} patches)")
    return torch.stack(hus), torch.stack(labs), torch.tensor(flags)


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    if rng.random() < 0.5:
        x = x.flip(-1)
    if rng.random() < 0.5:
        x = x.flip(-2)
    if rng.random() < 0.5:
        x = x.transpose(-1, -2)
    return x


def train_refiner(net: nn.Module, cfg: RefineTrainConfig, log: Callable[[str], None] = print) -> dict:
    t0 = time.perf_counter()
    seeds = list(range(cfg.seed_start, cfg.seed_start + cfg.n_phantoms))
    hu, lab, flags = make_refine_patches(seeds, cfg, log)
    log(f"refiner: {len(hu)} patches ({int(flags.sum())} nodule-centred) in {time.perf_counter() - t0:.0f} s")
    dice_loss = DiceLoss(sigmoid=True, batch=True)
    bce = nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    rng = np.random.default_rng(3)
    warmup = max(1, min(30, cfg.steps // 10))
    history, running = [], 0.0
    net.train()
    pos = torch.nonzero(flags).flatten().numpy()
    neg = torch.nonzero(~flags).flatten().numpy()
    for step in range(cfg.steps):
        lr = (
            cfg.lr * (step + 1) / warmup
            if step < warmup
            else 1e-5
            + 0.5 * (cfg.lr - 1e-5) * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.steps - warmup)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        half = cfg.batch_size // 2
        idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, cfg.batch_size - half)])
        x = hu_to_channels(
            hu[idx].float() + torch.as_tensor(rng.normal(0, 10, (len(idx), 1, 1, 1)), dtype=torch.float32),
            [cfg.window],
        )
        x = x.transpose(0, 1)  # (N, 1, P, P, P)
        y = lab[idx].float()[:, None]
        both = _augment(torch.cat([x, y], dim=1), rng)
        x, y = both[:, :1], both[:, 1:]
        opt.zero_grad(set_to_none=True)
        logits = net(x)
        loss = dice_loss(logits, y) + bce(logits, y)
        loss.backward()
        opt.step()
        running += loss.item()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            mean = running / ((step % cfg.log_every) + 1)
            history.append(
                {"step": step + 1, "loss": round(mean, 4), "seconds": round(time.perf_counter() - t0, 1)}
            )
            log(f"refiner: step {step + 1}/{cfg.steps} loss {mean:.4f} ({time.perf_counter() - t0:.0f} s)")
            running = 0.0
    net.eval()
    return {"history": history, "seconds": round(time.perf_counter() - t0, 1), "patches": len(hu)}


def evaluate_refiner(
    net: nn.Module, cfg: RefineTrainConfig, seeds, log: Callable[[str], None] = print
) -> dict:
    """Patch-level AUC (nodule at the centre or not) and Dice on nodule-centred patches, held-out phantoms."""
    hu, lab, flags = make_refine_patches(seeds, cfg, log)
    refiner = NoduleRefiner(
        net, patch_size=cfg.patch_size, patch_spacing_mm=cfg.patch_spacing_mm, window=cfg.window
    )
    x = hu_to_channels(hu.float(), [cfg.window]).transpose(0, 1)
    probs = refiner.predict(x)
    scores = refiner.score(probs).numpy()
    dices = [
        dice(p >= 0.5, t.numpy() > 0) for p, t, f in zip(probs.numpy(), lab, flags.tolist(), strict=True) if f
    ]
    return {
        "patches": len(hu),
        "nodule_centred": int(flags.sum()),
        "auc": round(roc_auc(scores, flags.numpy().astype(int)), 4),
        "dice_nodule_patches_mean": round(float(np.mean(dices)), 4),
        "false_positive_rate_at_0.5": round(float((scores[~flags.numpy()] >= 0.5).mean()), 4),
        "sensitivity_at_0.5": round(float((scores[flags.numpy()] >= 0.5).mean()), 4),
    }
