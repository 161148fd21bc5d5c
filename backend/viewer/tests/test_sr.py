"""Measurements -> TID 1500 SR: geometry conversion and the content tree."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.dicomgen import make_ct_series
from viewer.models import Measurement
from viewer.sr import ImageGeometry, SrError, build_measurement_report


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    paths = make_ct_series(tmp_path_factory.mktemp("sr-ct"), slices=3, size=32)
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]


def _m(ds, kind, points, stats):
    return Measurement(
        uid=generate_uid()[-20:], kind=kind, study_instance_uid=ds.StudyInstanceUID,
        series_instance_uid=ds.SeriesInstanceUID, sop_instance_uid=ds.SOPInstanceUID, frame_number=1,
        frame_of_reference_uid=ds.FrameOfReferenceUID, points=points, stats=stats,
    )


def _world(ds, col, row):
    g = ImageGeometry.from_dataset(ds)
    return list(g.position + col * g.spacing[1] * g.row_cosines + row * g.spacing[0] * g.column_cosines)


def test_world_to_pixel_is_the_inverse_of_the_plane_equation(ct):
    ds = ct[0]
    g = ImageGeometry.from_dataset(ds)
    px = g.to_pixels([_world(ds, 3, 7), _world(ds, 10.5, 2)])
    np.testing.assert_allclose(px, [[3.5, 7.5], [11.0, 2.5]], atol=1e-9)


def test_report_has_one_group_per_measurement(ct):
    ds = ct[1]
    ms = [
        _m(ds, "length", [_world(ds, 2, 2), _world(ds, 12, 2)], {"length": 7.0, "unit": "mm"}),
        _m(ds, "ellipse", [_world(ds, 8, 4), _world(ds, 8, 12), _world(ds, 4, 8), _world(ds, 12, 8)],
           {"area": 38.5, "mean": 12.5, "stdDev": 3.0, "min": 0.0, "max": 200.0, "unit": "HU"}),
        _m(ds, "probe", [_world(ds, 5, 5)], {"value": 0.0, "unit": "HU"}),
    ]
    sr = build_measurement_report(ms, {ds.SOPInstanceUID: ds}, observer="Doe^Jane")
    assert sr.StudyInstanceUID == ds.StudyInstanceUID
    assert sr.PatientID == ds.PatientID
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report
    groups = [
        item
        for container in sr.ContentSequence
        if container.ConceptNameCodeSequence[0].CodeValue == "126010"  # Imaging Measurements
        for item in container.ContentSequence
    ]
    assert len(groups) == 3
    # The length's region is a polyline on the referenced image, in pixel coordinates.
    scoords = [i for i in groups[0].ContentSequence if i.ValueType == "SCOORD"]
    assert scoords[0].GraphicType == "POLYLINE"
    np.testing.assert_allclose(scoords[0].GraphicData, [2.5, 2.5, 12.5, 2.5], atol=1e-4)
    ref = scoords[0].ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == ds.SOPInstanceUID
    nums = {
        i.ConceptNameCodeSequence[0].CodeMeaning: float(i.MeasuredValueSequence[0].NumericValue)
        for i in groups[1].ContentSequence
        if i.ValueType == "NUM"
    }
    assert nums["Area"] == 38.5 and nums["Mean"] == 12.5 and nums["Maximum"] == 200.0


def test_unknown_image_is_a_clear_error(ct):
    ds = ct[0]
    with pytest.raises(SrError, match="not in the archive"):
        build_measurement_report([_m(ds, "probe", [[0, 0, 0]], {})], {}, observer="x")
    with pytest.raises(SrError, match="no measurements"):
        build_measurement_report([], {}, observer="x")
