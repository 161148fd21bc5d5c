"""archive.dicom.parse_file on good and bad files: every bad file is a DicomError with a reason, never a crash."""
from __future__ import annotations

import random
import warnings
from pathlib import Path

import pydicom
import pydicom.data
import pytest

from archive.dicom import DicomError, FailureReason, parse_file
from tests.dicomgen import make_ct_series

# pydicom's bundled test files, read from the package folder so that nothing is ever downloaded
PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


@pytest.fixture(autouse=True)
def _quiet_pydicom():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def ct(tmp_path) -> Path:
    return make_ct_series(tmp_path / "ct", slices=1, size=16)[0]


def _write(tmp_path: Path, data: bytes, name: str = "f.dcm") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path: Path, code: FailureReason = FailureReason.CANNOT_UNDERSTAND) -> str:
    with pytest.raises(DicomError) as caught:
        parse_file(path)
    assert caught.value.code == code
    assert caught.value.reason
    return caught.value.reason.lower()


def test_a_good_file_gives_its_uids_and_where_its_pixels_are(ct):
    parsed = parse_file(ct)
    ds = pydicom.dcmread(ct)
    assert parsed.sop_instance_uid == ds.SOPInstanceUID and parsed.study_instance_uid == ds.StudyInstanceUID
    ((offset, length),) = parsed.frame_index[0]
    assert ct.read_bytes()[offset:offset + length] == ds.PixelData
    assert parsed.metadata_json.startswith(b"{")


def test_pixel_data_is_located_not_read(tmp_path, monkeypatch):
    """A large Pixel Data value stays deferred: its frames, its length check and its DICOM JSON entry come from
    its position in the file (reading it would cost a 512 KB read for every CT slice stored)."""
    import pydicom.filereader

    path = make_ct_series(tmp_path / "big", slices=1, size=128)[0]  # 32 KB of pixels: deferred
    reads: list[int] = []
    real = pydicom.filereader.read_deferred_data_element
    monkeypatch.setattr(pydicom.filereader, "read_deferred_data_element",
                        lambda *args, **kw: reads.append(1) or real(*args, **kw))
    parsed = parse_file(path)
    assert not reads
    ds = pydicom.dcmread(path)
    ((offset, length),) = parsed.frame_index[0]
    assert path.read_bytes()[offset:offset + length] == ds.PixelData
    assert b'"7FE00010":{"vr":"OW","BulkDataURI"' in parsed.metadata_json
    cut = _write(tmp_path, path.read_bytes()[:-100], "cut.dcm")
    assert "truncated" in _refused(cut)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm",
                                  "image_dfl.dcm", "reportsi.dcm", "ExplVR_BigEnd.dcm"])
def test_pydicom_sample_files_parse(name):
    parsed = parse_file(PYDICOM_FILES / name)
    assert parsed.sop_instance_uid


def test_empty_and_text_files_are_not_dicom(tmp_path):
    assert "empty" in _refused(_write(tmp_path, b""))
    assert "not a dicom file" in _refused(_write(tmp_path, b"hello, this is text\n" * 20))


def test_missing_meta_or_transfer_syntax_is_refused():
    assert "not a dicom file" in _refused(PYDICOM_FILES / "no_meta.dcm")
    assert "transfer syntax" in _refused(PYDICOM_FILES / "meta_missing_tsyntax.dcm")


@pytest.mark.parametrize("name", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_truncated_sample_files_are_refused(name):
    assert "truncated" in _refused(PYDICOM_FILES / name)


def test_a_cut_file_is_refused(ct, tmp_path):
    data = ct.read_bytes()
    for cut in (140, 400, len(data) - 1):
        assert _refused(_write(tmp_path, data[:cut]))


def test_an_element_longer_than_the_file_is_refused(ct, tmp_path):
    data = ct.read_bytes() + b"\xe1\x7f\x10\x00OB\x00\x00" + (1 << 20).to_bytes(4, "little") + b"abc"
    assert "past the end of the file" in _refused(_write(tmp_path, data))


def test_pixel_data_shorter_than_rows_by_columns_is_refused(ct, tmp_path):
    ds = pydicom.dcmread(ct)
    ds.Rows = 64  # 64x16 pixels declared, 16x16 present
    out = tmp_path / "short.dcm"
    ds.save_as(out)
    assert "pixel data" in _refused(out)


@pytest.mark.parametrize(("keyword", "value"), [("SOPInstanceUID", "1.2.abc"), ("StudyInstanceUID", "../../etc"),
                                                ("SeriesInstanceUID", "1." + "2" * 70), ("SOPClassUID", "")])
def test_missing_or_malformed_uids_are_refused(ct, tmp_path, keyword, value):
    ds = pydicom.dcmread(ct)
    setattr(ds, keyword, value)
    if keyword == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = value
    out = tmp_path / "uid.dcm"
    ds.save_as(out)
    assert keyword.lower() in _refused(out, FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)


def test_meta_and_data_set_disagreeing_on_the_instance_is_refused(ct, tmp_path):
    ds = pydicom.dcmread(ct)
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    out = tmp_path / "meta.dcm"
    ds.save_as(out)
    assert "meta header" in _refused(out, FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)


def test_out_of_range_numbers_do_not_reach_the_index(ct, tmp_path):
    ds = pydicom.dcmread(ct)
    ds.InstanceNumber = "99999999999"
    ds.SeriesNumber = "-99999999999"
    out = tmp_path / "big.dcm"
    ds.save_as(out)
    parsed = parse_file(out)
    assert parsed.instance["instance_number"] is None and parsed.series["series_number"] is None


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle_2frame.dcm", "image_dfl.dcm",
                                  "reportsi.dcm", "JPEG2000.dcm"])
def test_damaged_files_are_parsed_or_refused_never_crash(tmp_path, name):
    """Random byte flips, cuts and lengths: the parser either accepts the file or raises DicomError."""
    data = (PYDICOM_FILES / name).read_bytes()
    rnd = random.Random(name)
    for _ in range(60):
        damaged = bytearray(data)
        kind = rnd.choice(["flip", "cut", "length"])
        if kind == "flip":
            for _ in range(rnd.randint(1, 8)):
                damaged[rnd.randrange(132, len(damaged))] = rnd.randrange(256)
        elif kind == "cut":
            damaged = damaged[: rnd.randrange(133, len(damaged))]
        else:
            pos = rnd.randrange(132, min(len(damaged), 3000))
            damaged[pos:pos + 4] = rnd.randrange(2**32).to_bytes(4, "little")
        path = _write(tmp_path, bytes(damaged))
        try:
            parse_file(path)
        except DicomError as exc:
            assert exc.reason


def _pydicom_json(ds: pydicom.Dataset) -> dict:
    """What dataset_json gave when it went through pydicom's Dataset.to_json_dict (bulk data left aside)."""
    from archive.dicom.json import BULK_VRS, _is_bulk

    inline = pydicom.Dataset()
    bulk = {}
    for tag in ds.keys():
        if _is_bulk(ds, int(tag)):
            vr = ds.get_item(tag).VR
            bulk[f"{int(tag):08X}"] = {"vr": vr if vr in BULK_VRS else "OB",
                                       "BulkDataURI": f"/dicomweb/studies/1/series/2/instances/3/bulkdata/{int(tag):08X}"}
        else:
            inline[tag] = ds[tag]
    out = inline.to_json_dict(bulk_data_threshold=1 << 62, bulk_data_element_handler=None)
    out.update(bulk)
    return dict(sorted(out.items()))


def test_dicom_json_is_the_same_as_pydicoms_on_every_sample_file(ct):
    import orjson

    from archive.dicom.json import dataset_json

    compared = 0
    for path in [ct, *sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())]:
        try:
            expected = orjson.dumps(_pydicom_json(pydicom.dcmread(path, defer_size=4096, force=True)))
        except Exception:  # noqa: BLE001 - files pydicom itself cannot turn into JSON are not compared
            continue
        assert orjson.dumps(dataset_json(pydicom.dcmread(path, defer_size=4096, force=True), "1", "2", "3")) \
            == expected, path.name
        compared += 1
    assert compared > 100
