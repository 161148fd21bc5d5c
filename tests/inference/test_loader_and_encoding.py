"""The DICOM series loader (sorting, HU, geometry, refusals) and the partial-mask encoding."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pydicom
import pytest

from inference.errors import InferenceInputError
from inference.phantoms import make_brain_mr, write_mr_series
from inference.pipelines.dicom_series import load_volume, read_radiograph, scan_series
from inference.pipelines.encoding import RLE_ENCODING, rle_decode, rle_decode_b64, rle_encode, rle_encode_b64


def test_loader_sorts_shuffled_files_and_rescales_to_hu(small_ct_series):
    ph, paths = small_ct_series
    shuffled = list(paths)
    random.Random(0).shuffle(shuffled)
    geometry, hu = load_volume(shuffled)
    assert geometry.shape == ph.shape
    np.testing.assert_array_equal(hu, ph.volume.astype(np.float32))
    assert geometry.spacing == pytest.approx(ph.spacing)
    np.testing.assert_allclose(geometry.origin, ph.origin, atol=1e-3)
    for nod in ph.nodules:
        np.testing.assert_allclose(geometry.index_to_patient(nod.center_voxel), nod.center_mm, atol=1e-3)
        np.testing.assert_allclose(geometry.patient_to_index(nod.center_mm), nod.center_voxel, atol=1e-3)
    assert len(set(geometry.sop_instance_uids)) == len(paths)


def test_loader_undoes_flipped_columns(small_ct_series, tmp_path):
    ph, paths = small_ct_series
    flipped = []
    for p in paths[:20]:
        ds = pydicom.dcmread(p)
        cols = ds.Columns
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0] + (cols - 1) * float(ds.PixelSpacing[1]), ipp[1], ipp[2]]
        ds.ImageOrientationPatient = [-1, 0, 0, 0, 1, 0]
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[:, ::-1]).tobytes()
        out = tmp_path / p.name
        ds.save_as(out)
        flipped.append(out)
    geometry, hu = load_volume(flipped)
    assert geometry.flip_columns and not geometry.flip_rows
    top = ph.shape[0] - 20
    np.testing.assert_array_equal(hu, ph.volume[top:].astype(np.float32))
    np.testing.assert_allclose(geometry.origin, ph.voxel_to_mm((top, 0, 0)), atol=1e-3)
    np.testing.assert_array_equal(geometry.to_stored(hu)[:, :, ::-1], hu)


def test_loader_refuses_mr_for_a_ct_model(tmp_path):
    paths = write_mr_series(make_brain_mr(3, shape=(10, 64, 64)), tmp_path)
    with pytest.raises(InferenceInputError, match="reads CT images; the series is MR"):
        scan_series(paths)


def test_loader_refuses_corrupt_pixel_data(small_ct_series, tmp_path):
    _, paths = small_ct_series
    copies = [shutil.copy(p, tmp_path / p.name) for p in paths[:12]]
    ds = pydicom.dcmread(copies[5])
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    ds.save_as(copies[5])
    with pytest.raises(InferenceInputError, match="cannot be decoded") as info:
        load_volume(copies)
    assert "CT" in info.value.reason


def test_loader_refuses_gaps_duplicates_and_non_dicom(small_ct_series, tmp_path):
    _, paths = small_ct_series
    with pytest.raises(InferenceInputError, match="irregular"):
        scan_series(paths[:10] + paths[11:20])
    with pytest.raises(InferenceInputError, match="share position"):
        scan_series(paths[:10] + [paths[3]])
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all" * 20)
    with pytest.raises(InferenceInputError, match="not a DICOM file"):
        scan_series([junk] + paths[:10])
    with pytest.raises(InferenceInputError, match="no files"):
        scan_series([])


def test_radiograph_reader_inverts_monochrome1(tmp_path):
    from inference.phantoms import make_chest_radiograph, write_cr

    r = make_chest_radiograph(2, size=(128, 128), spacing=2.4)
    mono1 = read_radiograph(write_cr(r, tmp_path / "a.dcm", monochrome1=True, modality="DX"))
    mono2 = read_radiograph(write_cr(r, tmp_path / "b.dcm"))
    np.testing.assert_allclose(mono1.image - mono1.image.mean(), mono2.image - mono2.image.mean(), atol=1e-3)
    with pytest.raises(InferenceInputError, match="radiographs"):
        read_radiograph(tmp_path / "a.dcm", modalities=("CR",))


def test_rle_round_trip_and_byte_layout():
    labels = np.zeros((2, 3, 4), dtype=np.uint8)
    labels[1, 1, 1:3] = 2
    data = rle_encode(labels)
    assert RLE_ENCODING == "rle-u8-u32le"
    # runs: 17 zeros, 2 twos, 5 zeros; each run is 1 value byte + 4 little-endian length bytes
    assert data == bytes([0, 17, 0, 0, 0, 2, 2, 0, 0, 0, 0, 5, 0, 0, 0])
    np.testing.assert_array_equal(rle_decode(data, labels.shape), labels)
    big = np.random.default_rng(0).integers(0, 4, (5, 64, 64)).astype(np.uint8)
    np.testing.assert_array_equal(rle_decode_b64(rle_encode_b64(big), big.shape), big)
    with pytest.raises(ValueError, match="cover"):
        rle_decode(data, (2, 3, 5))
