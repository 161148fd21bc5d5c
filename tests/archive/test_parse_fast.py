"""archive.dicom.fast: the values decoded straight from the raw elements give the same ParsedInstance (index
values, DICOM JSON, frames) as pydicom's DataElements, or the same refusal, on every file we have."""
from __future__ import annotations

from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import archive.dicom.parse as parse_module
from archive.dicom import DicomError, parse_file
from archive.dicom.fast import fast_values
from tests.archive.test_parse import PYDICOM_FILES, _quiet_pydicom  # noqa: F401 - the autouse fixture applies here too


def _outcome(path: Path):
    try:
        return parse_file(path)
    except DicomError as exc:
        return ("refused", exc.code, exc.reason)


def _same_both_ways(path: Path, monkeypatch, refused: bool | None = None) -> bool:
    """Parse with the fast path and without it; True when the fast path decoded anything."""
    decoded: list[int] = []
    real = parse_module.fast_values
    monkeypatch.setattr(parse_module, "fast_values", lambda ds, ts: decoded.append(len(f := real(ds, ts))) or f)
    fast = _outcome(path)
    monkeypatch.setattr(parse_module, "fast_values", lambda ds, ts: {})
    slow = _outcome(path)
    monkeypatch.setattr(parse_module, "fast_values", real)
    assert fast == slow, path.name
    if refused is not None:
        assert isinstance(fast, tuple) == refused, fast
    return bool(decoded and decoded[0])


def test_the_same_instance_with_and_without_the_fast_path_on_every_sample_file(monkeypatch):
    paths = sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())
    used = sum(_same_both_ways(path, monkeypatch) for path in paths)
    assert used > 50


def test_the_same_instance_on_the_demo_ct_mr_and_radiograph(tmp_path, monkeypatch):
    from demo.builders import write_ct, write_mr, write_radiograph

    ct, _truth = write_ct(tmp_path, slices=16)
    mr = write_mr(tmp_path)
    paths = [*ct[:3], *mr[:3], *write_radiograph(tmp_path)]
    assert all(_same_both_ways(path, monkeypatch) for path in paths)


def _odd_dataset() -> Dataset:
    """Values at the edges of what the fast path takes: padding, empty values, multi-values with empty items,
    numbers that are not plain, text in the data set's character set."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Müller^Jörg"
    ds.PatientID = " ID with spaces "
    ds.StudyDescription = "Étude\\second\\"
    ds.SeriesDescription = ""
    ds.add_new(0x00081030, "LO", "ab \\ cd ")
    ds.add_new(0x0008103E, "LO", "   ")
    ds.Modality = "OT "
    ds.ImageType = ["ORIGINAL", "", "AXIAL"]
    ds.add_new(0x00200013, "IS", "+0012 ")
    ds.add_new(0x00200011, "IS", "1.0")  # not a plain integer: pydicom's path
    ds.add_new(0x00200032, "DS", [" 1.5", "-2e3", ".5"])
    ds.add_new(0x00200037, "DS", ["1", "0", "0", "0", "1", "-0"])
    ds.add_new(0x00281050, "DS", ["40", "nan"])  # nan: pydicom's path
    ds.add_new(0x00180050, "DS", "")
    ds.add_new(0x00080090, "PN", "")
    ds.add_new(0x00321060, "LO", "")
    ds.add_new(0x00181000, "LO", b"caf\xe9")
    ds.add_new(0x00204000, "LT", "line one\r\nline two\\still one  ")
    ds.add_new(0x00080054, "AE", [" AE1 ", "AE2"])
    ds.add_new(0x00081190, "UR", "http://x/y  ")
    ds.add_new(0x00324000, "LT", "    ")
    ds.add_new(0x00400280, "ST", "\\ ")
    ds.add_new(0x00280010, "US", 16)
    ds.add_new(0x00280011, "US", 16)
    ds.add_new(0x00281052, "DS", "-1024")
    ds.add_new(0x00281053, "DS", "1")
    ds.add_new(0x00180088, "DS", "1.25")
    ds.add_new(0x00209241, "FL", 0.1)
    ds.add_new(0x00189327, "FD", [1.5, -2.25])
    ds.add_new(0x00280106, "SS", -5)
    ds.add_new(0x00081160, "IS", ["1", "2", "3"])
    ds.add_new(0x00200052, "UI", generate_uid())
    ds.add_new(0x00080012, "DA", "20240102")
    ds.add_new(0x00080013, "TM", "101010.5 ")
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192", None])
@pytest.mark.parametrize("extra", [None, (0x00280030, "DS", "0.5\\"), (0x00200012, "IS", "1\\")])
def test_the_same_instance_on_odd_values(tmp_path, monkeypatch, syntax, charset, extra):
    """An empty item in a multi-valued DS or IS is refused either way (pydicom's JSON cannot make it a number)."""
    ds = _odd_dataset()
    if extra:
        ds.add_new(*extra)
    if charset:
        ds.SpecificCharacterSet = charset
    else:
        del ds.SpecificCharacterSet
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "odd.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert _same_both_ways(path, monkeypatch, refused=extra is not None)


def test_nothing_is_decoded_for_big_endian_or_a_changed_pydicom_configuration(monkeypatch):
    ds = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm", defer_size=4096)
    assert fast_values(ds, str(ds.file_meta.TransferSyntaxUID))
    big = pydicom.dcmread(PYDICOM_FILES / "ExplVR_BigEnd.dcm", defer_size=4096)
    assert not fast_values(big, str(big.file_meta.TransferSyntaxUID))
    monkeypatch.setattr(pydicom.config, "datetime_conversion", True)
    assert not fast_values(ds, str(ds.file_meta.TransferSyntaxUID))
