"""The streaming chest CT pipeline with a stand-in network, the DICOM writers and analyze_series."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
import torch
from torch import nn

from inference.errors import InferenceCancelled, InferenceInputError
from inference.jobs import analyze_series
from inference.phantoms import make_brain_mr, make_chest_radiograph, write_cr, write_mr_series
from inference.pipelines.chest_ct import ChestCTPipeline, Detection
from inference.pipelines.dicom_pmap import build_heatmap_map
from inference.pipelines.dicom_series import scan_series
from inference.pipelines.dicom_sr import build_nodule_report
from inference.pipelines.encoding import rle_decode_b64
from inference.registry import get_model_spec


class ThresholdNet(nn.Module):
    """Stands in for the U-Net: 'lung' where the lung-window channel says -960..-580 HU, else background."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lung = ((x[:, :1] > 0.03) & (x[:, :1] < 0.3)).float()
        zeros = torch.zeros_like(lung)
        return torch.cat([1 - lung, lung, zeros, zeros], dim=1) * 10


@pytest.fixture(scope="module")
def stub_pipeline():
    return ChestCTPipeline(get_model_spec("chest-ct-nodules"), network=ThresholdNet(), refiner=False)


def test_partial_masks_stream_and_tile_the_series(small_ct_series, stub_pipeline):
    ph, paths = small_ct_series
    events = []
    result = stub_pipeline.run(paths, lambda kind, payload: events.append((kind, payload)))
    masks = [p for k, p in events if k == "partial_mask"]
    assert len(masks) >= 2, "the series should stream in several slabs"
    assert masks[0]["z_start"] == 0 and masks[-1]["z_end"] == ph.shape[0]
    assert all(a["z_end"] == b["z_start"] for a, b in zip(masks, masks[1:], strict=False))
    decoded = np.concatenate([rle_decode_b64(m["data"], tuple(m["shape"])) for m in masks])
    np.testing.assert_array_equal(decoded, result.labels)
    geometry = scan_series(paths)
    assert sum((m["sop_instance_uids"] for m in masks), []) == geometry.sop_instance_uids
    # A partial mask arrives before the segmentation is over.
    kinds = [k for k, _ in events]
    assert kinds.index("partial_mask") < len(kinds) - 3
    percents = [p["percent"] for k, p in events if k == "progress"]
    assert percents == sorted(percents)
    # The threshold stand-in finds the lungs: the pipeline's geometry round trip is right.
    lung = ph.labels == 1
    overlap = 2 * (lung & (result.labels == 1)).sum() / (lung.sum() + (result.labels == 1).sum())
    assert overlap > 0.8


def test_cancellation_between_slabs(small_ct_series, stub_pipeline):
    _, paths = small_ct_series
    calls = []

    def should_cancel():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(InferenceCancelled):
        stub_pipeline.run(paths, None, should_cancel)
    assert len(calls) == 2


def test_analyze_series_writes_seg_and_sr_referencing_the_source(small_ct_series, stub_pipeline, tmp_path):
    _, paths = small_ct_series
    source_uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}
    events = []
    result = analyze_series(
        "chest-ct-nodules", paths, tmp_path, lambda k, p: events.append(k), pipeline=stub_pipeline
    )
    assert [ds.Modality for ds in result.datasets] == ["SEG", "SR"]
    assert len(result.paths) == 2 and all(p.exists() for p in result.paths)
    seg = hd.seg.segread(next(p for p in result.paths if p.name.startswith("SEG")))
    assert seg.ManufacturerModelName == "chest-ct-nodules" and seg.DeviceSerialNumber and seg.SoftwareVersions
    assert seg.SegmentationType == "BINARY"
    assert {uid for _, _, uid in seg.get_source_image_uids()} <= source_uids
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for frame in seg.PerFrameFunctionalGroupsSequence
        for item in frame.DerivationImageSequence[0].SourceImageSequence
    }
    assert referenced and referenced <= source_uids
    sr = pydicom.dcmread(next(p for p in result.paths if p.name.startswith("SR")))
    evidence = {
        str(i.ReferencedSOPInstanceUID)
        for s in sr.CurrentRequestedProcedureEvidenceSequence
        for series in s.ReferencedSeriesSequence
        for i in series.ReferencedSOPSequence
    }
    assert source_uids <= evidence
    assert result.summary["label_volumes_ml"]["lung"] > 100
    assert "result" in events and events[-1] == "progress"


def test_nodule_report_round_trip(small_ct_series):
    _, paths = small_ct_series
    g = scan_series(paths)
    det = Detection(
        id=1, score=0.93, center_mm=(10.0, 20.0, 30.0), center_voxel=(50.0, 100.0, 100.0),
        box_voxel=((45, 90, 90), (55, 110, 110)), box_mm=((0, 0, 0), (1, 1, 1)), long_axis_mm=10.2,
        short_axis_mm=9.1, equivalent_diameter_mm=9.8, volume_mm3=500.0, long_axis_slice=50,
        long_axis_sop_instance_uid=g.sop_instance_uids[50], long_axis_endpoints_mm=((0, 0, 0), (1, 1, 1)),
        center_sop_instance_uid=g.sop_instance_uids[50],
    )  # fmt: skip
    sr = build_nodule_report(
        g.headers,
        [det],
        model_name="chest-ct-nodules",
        model_version="0.1.0",
        frame_of_reference_uid=g.frame_of_reference_uid,
    )
    buf = io.BytesIO()
    sr.save_as(buf)
    back = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(io.BytesIO(buf.getvalue())))
    (group,) = back.content.get_volumetric_roi_measurement_groups()
    values = {m.name.meaning: m.value for m in group.get_measurements()}
    assert values["Long axis"] == pytest.approx(10.2) and values["Volume"] == pytest.approx(500.0)
    assert values["AI detection confidence"] == pytest.approx(0.93)
    assert group.roi.graphic_type == hd.sr.GraphicTypeValues3D.POINT
    np.testing.assert_allclose(group.roi.graphic_data, [[10.0, 20.0, 30.0]])
    ref = group.roi.source_images_for_segmentation[0].referenced_sop_instance_uid
    assert ref == g.sop_instance_uids[50]


def test_heatmap_parametric_map_references_the_radiograph(tmp_path):
    path = write_cr(make_chest_radiograph(1, size=(128, 128), spacing=2.4), tmp_path / "cr.dcm")
    source = pydicom.dcmread(path, stop_before_pixels=True)
    heat = np.linspace(0, 1, 128 * 128, dtype=np.float32).reshape(128, 128)
    pm = build_heatmap_map(source, heat, model_name="cxr-nodule-classifier", model_version="0.1.0")
    buf = io.BytesIO()
    pm.save_as(buf)
    back = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"
    assert (
        back.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
        == source.SOPInstanceUID
    )
    mapped = back.pixel_array * float(
        back.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0].RealWorldValueSlope
    )
    np.testing.assert_allclose(mapped, heat, atol=1e-4)
    with pytest.raises(ValueError, match="128x128"):
        build_heatmap_map(source, heat[:64], model_name="m", model_version="1")


def test_analyze_series_refuses_an_mr_series_for_the_ct_model(tmp_path, stub_pipeline):
    paths = write_mr_series(make_brain_mr(4, shape=(12, 64, 64)), tmp_path)
    with pytest.raises(InferenceInputError, match="series is MR"):
        analyze_series("chest-ct-nodules", paths, None, pipeline=stub_pipeline)


@pytest.mark.parametrize("order", ["feet-first", "head-first", "shuffled", "wrong-start"])
def test_slice_ordered_series_starts_on_the_first_headers_and_gives_the_same_result(
    small_ct_series, stub_pipeline, monkeypatch, order
):
    """With ``slice_ordered`` the first partial mask needs only its own slices' headers; the rest are read
    after it and checked, so a wrong order hint (shuffled) costs time but never changes the result."""
    import random

    from inference.pipelines import dicom_series

    _, paths = small_ct_series
    expected = stub_pipeline.run(paths)
    sorted_paths = scan_series(paths).paths
    given = {
        "feet-first": list(sorted_paths),
        "head-first": list(sorted_paths[::-1]),
        "shuffled": random.Random(0).sample(list(sorted_paths), len(sorted_paths)),
        # regular, contiguous first slices that are not the lowest: caught after the first slab, redone
        "wrong-start": [*sorted_paths[40:-1], *sorted_paths[:40], sorted_paths[-1]],
    }[order]
    reads = []
    real = dicom_series._read_header
    monkeypatch.setattr(dicom_series, "_read_header", lambda p: reads.append(p) or real(p))
    events = []

    def on_event(kind, payload):
        events.append((kind, payload, len(reads)))

    result = stub_pipeline.run(given, on_event, slice_ordered=True)
    np.testing.assert_array_equal(result.labels, expected.labels)
    assert result.geometry.sop_instance_uids == expected.geometry.sop_instance_uids
    masks = [(p, n) for k, p, n in events if k == "partial_mask"]
    if order == "shuffled":
        assert masks[0][1] >= len(paths)  # the hint did not hold: every header before the first result
    else:
        assert masks[0][1] < len(paths) // 2, "the first slab should not wait for every header"
    assert sum(p["z_start"] == 0 for p, _ in masks) == (2 if order == "wrong-start" else 1)
    # whatever the order given, the slabs that count tile the series with the right images
    final = {}
    for p, _ in masks:
        for i, uid in enumerate(p["sop_instance_uids"]):
            final[p["z_start"] + i] = uid
    assert [final[k] for k in sorted(final)] == expected.geometry.sop_instance_uids
