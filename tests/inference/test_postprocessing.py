"""Candidates, Soft-NMS, measurements and metrics on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest

from inference.metrics import dice, match_detections, roc_auc, sensitivity_at_fp_rate
from inference.pipelines.chest_ct import plan_slabs, upsample_labels
from inference.pipelines.detection import Candidate, box_iou_3d, find_candidates, measure_mask, soft_nms


def _sphere(shape, center, radius_mm, spacing):
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    d2 = (
        ((z - center[0]) * spacing[0]) ** 2
        + ((y - center[1]) * spacing[1]) ** 2
        + ((x - center[2]) * spacing[2]) ** 2
    )
    return d2 <= radius_mm**2


@pytest.mark.parametrize("diameter", [5.0, 10.0, 18.0])
def test_measure_mask_on_spheres(diameter):
    spacing = (1.25, 0.7, 0.7)
    mask = _sphere((40, 60, 60), (20, 30, 30), diameter / 2, spacing)
    m = measure_mask(mask, spacing)
    assert m.equivalent_diameter_mm == pytest.approx(diameter, abs=0.5)
    assert m.long_axis_mm == pytest.approx(diameter, abs=0.8)
    assert m.short_axis_mm == pytest.approx(diameter, abs=1.0)
    assert m.volume_mm3 == pytest.approx(np.pi / 6 * diameter**3, rel=0.12)


def test_candidates_keep_touching_neighbours_apart():
    prob = np.zeros((40, 40, 60), dtype=np.float32)
    a = _sphere(prob.shape, (20, 20, 15), 5, (1, 1, 1))
    b = _sphere(prob.shape, (20, 20, 29), 5, (1, 1, 1))  # touching neighbour
    prob[a] = 0.9
    prob[b] = 0.8
    prob[_sphere(prob.shape, (20, 20, 22), 1.5, (1, 1, 1))] = 0.4  # a faint bridge joins them at 0.3
    cands = find_candidates(prob, thresholds=(0.3, 0.5))
    assert len(cands) == 2  # the blob merged at 0.3 adds nothing: it holds the two found at 0.5
    kept = soft_nms(cands, sigma=0.5)
    centres = sorted(round(c.centroid[2]) for c in kept)
    assert centres == [15, 29]
    assert kept[0].extra["raw_score"] == pytest.approx(0.9)
    faint = np.zeros((20, 20, 20), dtype=np.float32)
    faint[_sphere(faint.shape, (10, 10, 10), 3, (1, 1, 1))] = 0.4
    (only,) = find_candidates(faint, thresholds=(0.3, 0.5))
    assert only.threshold == 0.3 and only.score == pytest.approx(0.4)


def test_box_iou_and_soft_nms_decay():
    assert box_iou_3d((0, 0, 0, 2, 2, 2), (1, 0, 0, 3, 2, 2)) == pytest.approx(1 / 3)
    assert box_iou_3d((0, 0, 0, 1, 1, 1), (2, 2, 2, 3, 3, 3)) == 0.0
    c1 = Candidate((0, 0, 0, 10, 10, 10), 0.9, (5, 5, 5), 100, 0.5)
    c2 = Candidate((2, 0, 0, 12, 10, 10), 0.8, (11, 5, 5), 100, 0.5)  # centre outside c1
    kept = soft_nms([c1, c2], sigma=0.5)
    assert len(kept) == 2 and kept[1].score == pytest.approx(0.8 * np.exp(-((80 / 120) ** 2) / 0.5))
    with pytest.raises(ValueError, match="sigma"):
        soft_nms([c1], sigma=0)


def test_metrics():
    assert dice(np.ones(4, bool), np.ones(4, bool)) == 1.0
    assert dice(np.zeros(4, bool), np.zeros(4, bool)) == 1.0
    assert dice(np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool)) == pytest.approx(2 / 3)
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    m = match_detections(
        [[0, 0, 0], [50, 0, 0]], [6, 12], [[1, 1, 0], [30, 0, 0], [52, 0, 0]], [0.9, 0.8, 0.7]
    )
    assert len(m.tp_scores) == 2 and m.fp_scores == [0.8]
    sens, thr = sensitivity_at_fp_rate([m], max_fp_per_scan=0.0)
    assert sens == pytest.approx(0.5) and thr == pytest.approx(0.9)
    assert sensitivity_at_fp_rate([m], max_fp_per_scan=1.0)[0] == 1.0


def test_plan_slabs_and_label_upsampling():
    slabs = plan_slabs(250, 48, 32)
    assert slabs[0] == (0, 32) and slabs[-1][1] == 250
    assert all(a[1] == b[0] for a, b in zip(slabs, slabs[1:], strict=False))
    import torch

    probs = torch.zeros(4, 2, 20, 20)
    probs[0] = 1
    probs[:, :, 5:10, 5:10] = torch.tensor([0.1, 0.9, 0, 0])[:, None, None, None]
    labels = upsample_labels(probs, 40, 40)
    assert labels.shape == (2, 40, 40) and set(np.unique(labels)) == {0, 1}
    assert labels[:, 10:20, 10:20].all() and not labels[:, :8].any()
