"""Nodule candidates from a segmentation probability map, Soft-NMS, and size measurements.

Why not a detector network: MONAI's RetinaNet with a ResNet-FPN costs about 20 s per 192 x 192 x 80 patch on
this CPU (minutes per CT), while the segmentation net already outputs a nodule probability for every voxel
in about 10 s. Candidates are its connected components at two thresholds: the higher one keeps touching
nodules apart, the lower one adds faint small nodules the higher one missed. Soft-NMS then keeps the
best-scored candidate of each overlapping group without deleting a genuine neighbour outright, and a
centre-in-box rule drops the duplicates a lobulated nodule split in two would leave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import cdist

__all__ = ["Candidate", "find_candidates", "box_iou_3d", "soft_nms", "measure_mask", "NoduleMeasurement"]

_STRUCTURE = np.ones((3, 3, 3), dtype=bool)


@dataclass
class Candidate:
    """A candidate in voxel units of the map it came from. ``box`` is (z0, y0, x0, z1, y1, x1), end-exclusive."""

    box: tuple[int, int, int, int, int, int]
    score: float
    centroid: tuple[float, float, float]
    n_voxels: int
    threshold: float
    extra: dict = field(default_factory=dict)

    def contains(self, point: Sequence[float]) -> bool:
        z0, y0, x0, z1, y1, x1 = self.box
        z, y, x = point
        return z0 - 0.5 <= z <= z1 - 0.5 and y0 - 0.5 <= y <= y1 - 0.5 and x0 - 0.5 <= x <= x1 - 0.5


def find_candidates(
    prob: np.ndarray,
    thresholds: Sequence[float] = (0.3, 0.5),
    *,
    min_voxels: int = 2,
    top_k: int = 8,
    offset: tuple[int, int, int] = (0, 0, 0),
) -> list[Candidate]:
    """Connected components (26-connected) of ``prob >= t`` for each threshold, highest first; a component
    at a lower threshold becomes a candidate only if it holds no higher-threshold candidate.

    The score is the mean of the ``top_k`` highest probabilities in the component: one hot voxel of noise
    does not make a detection, a small real nodule still scores high. ``offset`` is added to boxes and
    centroids (for maps that are crops of a bigger volume).
    """
    if prob.ndim != 3:
        raise ValueError(f"prob must be a 3D map, got shape {prob.shape!r}.")
    if not thresholds or any(not 0 < t < 1 for t in thresholds):
        raise ValueError(f"thresholds must be in (0, 1), got {thresholds!r}.")
    out: list[Candidate] = []
    oz, oy, ox = offset
    for t in sorted(thresholds, reverse=True):
        labels, n = ndimage.label(prob >= t, structure=_STRUCTURE)
        if n == 0:
            continue
        for index, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            comp = labels[sl] == index
            count = int(comp.sum())
            if count < min_voxels:
                continue
            values = prob[sl][comp]
            k = min(top_k, values.size)
            score = float(np.partition(values, values.size - k)[-k:].mean())
            zz, yy, xx = np.nonzero(comp)
            w = values.astype(np.float64)
            centroid = (
                float((zz * w).sum() / w.sum()) + sl[0].start + oz,
                float((yy * w).sum() / w.sum()) + sl[1].start + oy,
                float((xx * w).sum() / w.sum()) + sl[2].start + ox,
            )
            box = (
                sl[0].start + oz,
                sl[1].start + oy,
                sl[2].start + ox,
                sl[0].stop + oz,
                sl[1].stop + oy,
                sl[2].stop + ox,
            )
            cand = Candidate(box=box, score=score, centroid=centroid, n_voxels=count, threshold=t)
            # A lower threshold only adds what the higher ones missed: a blob that already holds a
            # higher-threshold candidate would merge neighbours the higher threshold kept apart.
            if any(cand.contains(c.centroid) for c in out if c.threshold > t):
                continue
            out.append(cand)
    return out


def box_iou_3d(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (z0, y0, x0, z1, y1, x1) boxes."""
    inter = 1.0
    for i in range(3):
        lo, hi = max(a[i], b[i]), min(a[i + 3], b[i + 3])
        if hi <= lo:
            return 0.0
        inter *= hi - lo
    vol_a = math.prod(a[i + 3] - a[i] for i in range(3))
    vol_b = math.prod(b[i + 3] - b[i] for i in range(3))
    return inter / (vol_a + vol_b - inter)


def soft_nms(candidates: Sequence[Candidate], sigma: float = 0.5, min_score: float = 0.05) -> list[Candidate]:
    """Gaussian Soft-NMS (Bodla et al., 2017) followed by removal of candidates centred inside a kept box.

    Scores of overlapping candidates decay by ``exp(-iou**2 / sigma)`` instead of dropping to zero, so two
    touching nodules both survive; the centre-in-box rule then removes what is left of a nested duplicate.
    Returns new :class:`Candidate` objects, best first, with decayed scores (the original in ``extra``).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}.")
    pool = [
        Candidate(c.box, c.score, c.centroid, c.n_voxels, c.threshold, {**c.extra, "raw_score": c.score})
        for c in candidates
    ]
    kept: list[Candidate] = []
    while pool:
        best_i = max(range(len(pool)), key=lambda i: pool[i].score)
        best = pool.pop(best_i)
        if best.score < min_score:
            break
        if any(k.contains(best.centroid) for k in kept):
            continue
        kept.append(best)
        for c in pool:
            iou = box_iou_3d(best.box, c.box)
            if iou > 0:
                c.score *= math.exp(-(iou * iou) / sigma)
    return kept


@dataclass(frozen=True)
class NoduleMeasurement:
    """Sizes of a segmented nodule: ``long_axis_mm`` is the largest in-plane (axial) diameter, RECIST style;
    ``equivalent_diameter_mm`` the diameter of a sphere of the same volume."""

    volume_mm3: float
    equivalent_diameter_mm: float
    long_axis_mm: float
    short_axis_mm: float
    long_axis_slice: int
    long_axis_endpoints: tuple[
        tuple[float, float], tuple[float, float]
    ]  # (row, col) voxel coordinates on that slice


def _axis_on_slice(mask2d: np.ndarray, spacing_yx: tuple[float, float]) -> tuple[float, float, tuple]:
    edge = mask2d & ~ndimage.binary_erosion(mask2d)
    pts = np.argwhere(edge).astype(np.float64)
    if len(pts) == 0:
        return 0.0, 0.0, ((0.0, 0.0), (0.0, 0.0))
    if len(pts) > 600:
        pts = pts[np.linspace(0, len(pts) - 1, 600).astype(int)]
    mm = pts * np.asarray(spacing_yx)
    if len(pts) == 1:
        return float(min(spacing_yx)), float(min(spacing_yx)), ((*pts[0],), (*pts[0],))
    d = cdist(mm, mm)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    axis = mm[j] - mm[i]
    length = float(np.linalg.norm(axis))
    # Short axis: extent of the mask perpendicular to the long axis.
    all_mm = np.argwhere(mask2d) * np.asarray(spacing_yx)
    perp = np.array([-axis[1], axis[0]]) / (length or 1.0)
    proj = all_mm @ perp
    short = float(proj.max() - proj.min())
    half_pixel = 0.5 * float(np.mean(spacing_yx))
    return length + half_pixel, short + half_pixel, ((*pts[i],), (*pts[j],))


def measure_mask(mask: np.ndarray, spacing: tuple[float, float, float]) -> NoduleMeasurement:
    """Volume, equivalent diameter and axial long/short axes of a binary 3D mask (z, y, x) with ``spacing`` mm.

    Distances between boundary pixel centres are extended by half a pixel, the mean gap between the outermost
    centre and the object's edge over all directions.
    """
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {mask.shape!r}.")
    mask = mask.astype(bool)
    sz, sy, sx = spacing
    count = int(mask.sum())
    volume = count * sz * sy * sx
    eq = (6 * volume / math.pi) ** (1 / 3) if count else 0.0
    best = (0.0, 0.0, 0, ((0.0, 0.0), (0.0, 0.0)))
    areas = mask.sum(axis=(1, 2))
    for z in np.nonzero(areas)[0]:
        long_axis, short_axis, ends = _axis_on_slice(mask[z], (sy, sx))
        if long_axis > best[0]:
            best = (long_axis, short_axis, int(z), ends)
    return NoduleMeasurement(
        volume_mm3=float(volume),
        equivalent_diameter_mm=float(eq),
        long_axis_mm=float(best[0]),
        short_axis_mm=float(best[1]),
        long_axis_slice=best[2],
        long_axis_endpoints=best[3],
    )
