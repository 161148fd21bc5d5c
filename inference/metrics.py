"""Quality measures shared by training, the quality bench and the tests (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["dice", "roc_auc", "match_detections", "DetectionMatch", "sensitivity_at_fp_rate", "hit_radius_mm"]


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty (nothing to find, nothing found)."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    denom = int(pred.sum()) + int(truth.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / denom


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes, got {n_pos} positives and {n_neg} negatives.")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty_like(s)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hit_radius_mm(diameter_mm: float) -> float:
    """A detection hits a nodule when its centre lies within the nodule's radius, and never needs to be
    closer than 5 mm (small nodules would otherwise demand sub-voxel centring)."""
    return max(diameter_mm / 2.0, 5.0)


@dataclass
class DetectionMatch:
    """Result of matching one scan's detections to its ground truth."""

    tp_scores: list[float]
    fp_scores: list[float]
    n_truth: int
    pairs: list[tuple[int, int, float]]  # (truth index, detection index, distance mm)


def match_detections(
    truth_centers_mm: Sequence[Sequence[float]],
    truth_diameters_mm: Sequence[float],
    det_centers_mm: Sequence[Sequence[float]],
    det_scores: Sequence[float],
) -> DetectionMatch:
    """Greedy matching, best score first: each nodule takes the nearest free detection within its hit radius."""
    truth = np.asarray(truth_centers_mm, dtype=np.float64).reshape(-1, 3)
    dets = np.asarray(det_centers_mm, dtype=np.float64).reshape(-1, 3)
    order = np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable")
    taken: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    tp, fp = [], []
    for d in order:
        best, best_dist = None, np.inf
        for t in range(len(truth)):
            if t in taken:
                continue
            dist = float(np.linalg.norm(dets[d] - truth[t]))
            if dist <= hit_radius_mm(truth_diameters_mm[t]) and dist < best_dist:
                best, best_dist = t, dist
        if best is None:
            fp.append(float(det_scores[d]))
        else:
            taken.add(best)
            pairs.append((best, int(d), best_dist))
            tp.append(float(det_scores[d]))
    return DetectionMatch(tp_scores=tp, fp_scores=fp, n_truth=len(truth), pairs=pairs)


def sensitivity_at_fp_rate(
    matches: Sequence[DetectionMatch], max_fp_per_scan: float = 1.0
) -> tuple[float, float]:
    """Best sensitivity over score thresholds keeping false positives per scan <= ``max_fp_per_scan``.

    Returns (sensitivity, threshold): one FROC point.
    """
    n_scans = len(matches)
    n_truth = sum(m.n_truth for m in matches)
    if n_scans == 0 or n_truth == 0:
        raise ValueError(f"need scans with nodules, got {n_scans} scans and {n_truth} nodules.")
    tps = np.array(sorted((s for m in matches for s in m.tp_scores), reverse=True))
    fps = np.array(sorted((s for m in matches for s in m.fp_scores), reverse=True))
    thresholds = np.unique(np.concatenate([tps, fps, [np.inf]]))[::-1]
    best = (0.0, float("inf"))
    for t in thresholds:
        fp_rate = float((fps >= t).sum()) / n_scans
        if fp_rate > max_fp_per_scan:
            break
        sens = float((tps >= t).sum()) / n_truth
        if sens >= best[0]:
            best = (sens, float(t))
    return best
