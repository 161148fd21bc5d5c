"""Phantoms: sizes, HU ranges, nodules inside lungs, determinism and DICOM geometry."""

from __future__ import annotations

import json
import time

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from inference.phantoms import (
    CT_LABELS,
    DEMO_CT_SHAPE,
    make_brain_mr,
    make_chest_ct,
    make_chest_radiograph,
    write_cr,
    write_ct_series,
    write_ground_truth,
    write_mr_series,
)


def test_demo_ct_size_speed_and_hu_ranges():
    start = time.perf_counter()
    ph = make_chest_ct(1, n_nodules=2)
    elapsed = time.perf_counter() - start
    assert elapsed < 15, f"demo phantom took {elapsed:.1f} s"
    assert ph.volume.shape == DEMO_CT_SHAPE and ph.volume.dtype == np.int16
    assert ph.labels.shape == DEMO_CT_SHAPE and ph.labels.dtype == np.uint8
    assert ph.spacing == (1.25, 0.7, 0.7)
    vol, lab = ph.volume, ph.labels
    assert vol.min() >= -1024 and vol.max() <= 3071
    assert abs(np.median(vol[0, :8, :8]) + 1000) < 30  # air in the corner
    lung_hu = np.median(vol[lab == CT_LABELS["lung"]])
    assert -900 < lung_hu < -780
    liver_hu = np.median(vol[lab == CT_LABELS["liver"]])
    assert 45 < liver_hu < 80
    assert (vol > 600).sum() > 1000  # bone exists
    nodule_hu = np.median(vol[lab == CT_LABELS["nodule"]])
    assert 0 < nodule_hu < 60
    # Noise about 20 HU in air
    assert 14 < vol[:, :20, :20].std() < 26


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_nodules_are_inside_lungs_and_match_labels(seed):
    ph = make_chest_ct(seed, shape=(100, 256, 256), spacing=(1.5, 1.5, 1.5), n_nodules=3)
    assert len(ph.nodules) == 3
    nodule_mask = ph.labels == CT_LABELS["nodule"]
    components, n = ndimage.label(nodule_mask)
    assert n == 3
    ring = ndimage.binary_dilation(nodule_mask, iterations=2) & ~nodule_mask
    assert np.all(ph.labels[ring] == CT_LABELS["lung"]), "a nodule touches something other than lung"
    for nod in ph.nodules:
        k, i, j = np.rint(nod.center_voxel).astype(int)
        assert ph.labels[k, i, j] == CT_LABELS["nodule"]
        assert 4.0 <= nod.diameter_mm <= 20.0
        np.testing.assert_allclose(ph.voxel_to_mm(nod.center_voxel), nod.center_mm, atol=1e-6)
        expected = np.pi / 6 * nod.diameter_mm**3
        assert 0.6 * expected < nod.volume_mm3 < 1.45 * expected


def test_same_seed_same_phantom_and_default_nodule_count():
    a = make_chest_ct(7, shape=(64, 128, 128), spacing=(2.5, 2.0, 2.0))
    b = make_chest_ct(7, shape=(64, 128, 128), spacing=(2.5, 2.0, 2.0))
    np.testing.assert_array_equal(a.volume, b.volume)
    assert a.nodules == b.nodules
    assert 0 <= len(a.nodules) <= 4


def test_argument_checks_quote_the_value():
    with pytest.raises(ValueError, match="n_nodules"):
        make_chest_ct(1, n_nodules=12)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        make_chest_ct(1, shape=(1, 2))
    with pytest.raises(TypeError, match="seed"):
        make_chest_ct("x")  # type: ignore[arg-type]


def test_ct_series_geometry_maps_nodule_voxel_to_mm(small_ct_series, tmp_path):
    ph, paths = small_ct_series
    assert len(paths) == ph.shape[0]
    datasets = [pydicom.dcmread(p) for p in paths]
    first = datasets[0]
    assert first.SOPClassUID == pydicom.uid.CTImageStorage
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert str(first.PatientName) == "Phantom^Test"
    assert first.AccessionNumber == "ACC1"
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    assert len({d.FrameOfReferenceUID for d in datasets}) == 1
    assert [int(d.InstanceNumber) for d in datasets] == list(range(1, len(datasets) + 1))
    # Sort by position along the slice normal, the way a reader must.
    by_z = sorted(datasets, key=lambda d: float(d.ImagePositionPatient[2]))
    nod = ph.nodules[0]
    k, i, j = (int(round(v)) for v in nod.center_voxel)
    ds = by_z[k]
    ipp = np.array(ds.ImagePositionPatient, dtype=float)
    row_cos = np.array(ds.ImageOrientationPatient[:3], dtype=float)
    col_cos = np.array(ds.ImageOrientationPatient[3:], dtype=float)
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    xyz = ipp + j * col_spacing * row_cos + i * row_spacing * col_cos
    np.testing.assert_allclose(xyz, ph.voxel_to_mm((k, i, j)), atol=1e-3)
    assert np.linalg.norm(xyz - np.array(nod.center_mm)) < 1.5
    hu = ds.pixel_array.astype(np.int32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(hu, ph.volume[k])
    assert float(ds.SliceThickness) == pytest.approx(ph.spacing[0])

    gt = json.loads(
        write_ground_truth(ph, tmp_path / "gt.json", StudyInstanceUID=first.StudyInstanceUID).read_text()
    )
    assert gt["StudyInstanceUID"] == first.StudyInstanceUID
    assert gt["nodules"][0]["center_mm"] == pytest.approx(list(nod.center_mm), abs=1e-2)


def test_chest_radiograph_and_cr_writer(tmp_path):
    pos = make_chest_radiograph(3, nodule=True)
    neg = make_chest_radiograph(3, nodule=False)
    assert pos.image.shape == (1024, 1024) and pos.image.dtype == np.uint16 and pos.image.max() <= 4095
    assert pos.has_nodule and not neg.has_nodule
    row, col = (int(round(v)) for v in pos.nodules[0].center_px)
    assert pos.nodule_mask[row, col]
    # The nodule adds attenuation where it is.
    assert pos.image[row, col] > neg.image[row, col] + 50
    mono2 = pydicom.dcmread(write_cr(pos, tmp_path / "cr.dcm"))
    assert mono2.PhotometricInterpretation == "MONOCHROME2" and mono2.Modality == "CR"
    np.testing.assert_array_equal(mono2.pixel_array, pos.image)
    mono1 = pydicom.dcmread(write_cr(pos, tmp_path / "dx.dcm", modality="DX", monochrome1=True))
    assert mono1.PhotometricInterpretation == "MONOCHROME1" and mono1.Modality == "DX"
    np.testing.assert_array_equal(mono1.pixel_array, 4095 - pos.image)
    small = make_chest_radiograph(3, size=(256, 256), spacing=1.2, nodule=True)
    assert small.nodules[0].diameter_mm == pytest.approx(pos.nodules[0].diameter_mm)


def test_brain_mr_series(tmp_path):
    ph = make_brain_mr(1)
    assert ph.volume.shape == (24, 256, 256) and ph.modality == "MR"
    paths = write_mr_series(ph, tmp_path)
    ds = pydicom.dcmread(paths[0])
    assert ds.Modality == "MR" and ds.SOPClassUID == pydicom.uid.MRImageStorage
    with pytest.raises(ValueError, match="MR"):
        write_ct_series(ph, tmp_path / "x")
