"""The shipped demo weights on phantoms they never saw (skipped when the weights are missing)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.jobs import analyze_series
from inference.phantoms import make_chest_radiograph, write_cr
from inference.registry import get_model_spec

CT = get_model_spec("chest-ct-nodules")
CXR = get_model_spec("cxr-nodule-classifier")

needs_ct = pytest.mark.skipif(
    not CT.weights.exists(), reason="run `python -m inference.train` to create the CT weights"
)
needs_cxr = pytest.mark.skipif(
    not CXR.weights.exists(), reason="run `python -m inference.train` to create the CXR weights"
)


@pytest.fixture(scope="module")
def ct_result(small_ct_series, tmp_path_factory):
    _, paths = small_ct_series
    events = []
    result = analyze_series(
        "chest-ct-nodules", paths, tmp_path_factory.mktemp("out"), lambda k, p: events.append((k, p))
    )
    return result, events


@needs_ct
def test_finds_the_known_nodules(small_ct_series, ct_result):
    ph, _ = small_ct_series
    result, events = ct_result
    dets = result.summary["detections"]
    for nod in ph.nodules:
        dist = [np.linalg.norm(np.array(d["center_mm"]) - nod.center_mm) for d in dets]
        assert dist and min(dist) <= 5.0, (
            f"nodule at {nod.center_mm} ({nod.diameter_mm:.1f} mm) missed: {dets}"
        )
        det = dets[int(np.argmin(dist))]
        assert abs(det["equivalent_diameter_mm"] - nod.diameter_mm) <= 2.0, (det, nod)
    assert len(dets) <= len(ph.nodules) + 1
    for det in dets:
        a, b = (np.array(p) for p in det["long_axis_endpoints_mm"])
        assert abs(np.linalg.norm(a - b) - det["long_axis_mm"]) < 1.5
        assert np.linalg.norm((a + b) / 2 - det["center_mm"]) < det["long_axis_mm"] / 2
        assert abs(a[2] - b[2]) < 1e-6  # RECIST: measured on one axial slice
    assert sum(1 for k, _ in events if k == "detection") == len(dets)


@needs_ct
def test_segmentation_overlaps_the_truth(small_ct_series, ct_result):
    ph, _ = small_ct_series
    result, _ = ct_result
    import highdicom as hd

    seg = next(ds for ds in result.datasets if ds.Modality == "SEG")
    seg = hd.seg.Segmentation.from_dataset(seg)
    assert {d.segment_label for d in seg.SegmentSequence} >= {"Lung", "Nodule"}
    assert result.summary["label_volumes_ml"]["lung"] > 200


@needs_cxr
def test_radiograph_classifier_separates_and_points_at_the_nodule(tmp_path):
    probs, hits = {}, []
    for seed in range(520_000, 520_006):
        for present in (True, False):
            r = make_chest_radiograph(seed, nodule=present, nodule_diameter_range=(14.0, 25.0))
            res = analyze_series("cxr-nodule-classifier", [write_cr(r, tmp_path / f"{seed}{present}.dcm")])
            probs.setdefault(present, []).append(res.summary["probability"])
            if present:
                hits.append(bool(r.nodule_mask[tuple(res.summary["heatmap_peak_px"])]))
            assert [ds.Modality for ds in res.datasets] == ["OT", "SR"]
    assert np.mean(probs[True]) > np.mean(probs[False]) + 0.3
    assert np.mean(hits) >= 0.5
