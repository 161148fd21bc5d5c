"""Read one DICOM file into a :class:`ParsedInstance`: the index values, the DICOM JSON and the frame map.

The file is read once, completely: a value that runs past the end of the file, a missing UID or pixel data that
does not fit its declared size is refused here, before anything is stored.
"""
from __future__ import annotations

import datetime as dt
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
from pydicom.uid import UID

from .errors import DicomError, FailureReason
from .fast import fast_values, index_value
from .frames import FrameIndex, encapsulated_frame_index, native_frame_index
from .json import dataset_json
from .names import fuzzy_key, name_search_key
from .uids import is_valid_uid

PIXEL_DATA = 0x7FE00010
EXTENDED_OFFSET_TABLE = 0x7FE00001
SUPPORTED_PIXEL_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired)
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE lossless
}


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    """Everything the index needs about one instance; keys are DICOM keywords in snake case."""

    patient: dict[str, str]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]
    frame_index: FrameIndex = field(default_factory=list)
    metadata_json: bytes = b""  # DICOM JSON, BulkDataURIs relative to the DICOMweb root

    @property
    def study_instance_uid(self) -> str:
        return self.study["study_instance_uid"]

    @property
    def series_instance_uid(self) -> str:
        return self.series["series_instance_uid"]

    @property
    def sop_instance_uid(self) -> str:
        return self.instance["sop_instance_uid"]


_TAGS: dict[str, int] = {}
_NUMBER_VRS = frozenset({"IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})


def _get(ds: Dataset, keyword: str, text: bool = False) -> Any:
    """``ds.get(keyword)``, from the values decoded by :func:`fast_values` when it has the element (numbers
    that are read as text stay with pydicom, whose IS and DS keep their original string)."""
    fast = ds.__dict__.get("_lightbox_fast")
    if fast:
        tag = _TAGS.get(keyword)
        if tag is None:
            tag = _TAGS[keyword] = int(pydicom.datadict.tag_for_keyword(keyword))
        found = fast.get(tag)
        if found is not None and not (text and found[0] in _NUMBER_VRS):
            return index_value(*found)
    return ds.get(keyword)


def _str(ds: Dataset, keyword: str, max_len: int | None = None) -> str:
    try:
        value = _get(ds, keyword, text=True)
    except Exception as exc:  # a malformed value of an optional attribute
        raise DicomError(f"{keyword} cannot be read: {exc}") from exc
    if value is None or value == "":
        return ""
    if isinstance(value, pydicom.multival.MultiValue | list):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text[:max_len] if max_len else text


def _int(ds: Dataset, keyword: str, low: int = -(2**31), high: int = 2**31 - 1) -> int | None:
    """An integer value, or None when absent, invalid or outside ``low..high`` (the index column's range)."""
    try:
        value = _get(ds, keyword)
        if value is None or value == "":
            return None
        if isinstance(value, pydicom.multival.MultiValue | list):
            value = value[0]
        number = int(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return number if low <= number <= high else None


def parse_da(value: str) -> dt.date | None:
    """DA "YYYYMMDD" (also the ACR-NEMA "YYYY.MM.DD") to a date; None when absent or invalid."""
    value = value.replace(".", "").strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def normalise_tm(value: str) -> str:
    """TM to a fixed-width "HHMMSS.ffffff" string that sorts and compares lexically; "" when invalid."""
    value = value.replace(":", "").strip()
    main, _, frac = value.partition(".")
    if not main.isdigit() or len(main) not in (2, 4, 6) or (frac and not frac.isdigit()):
        return ""
    return f"{main.ljust(6, '0')}.{frac[:6].ljust(6, '0')}"


def _uid(ds: Dataset, keyword: str, code: FailureReason = FailureReason.CANNOT_UNDERSTAND) -> str:
    value = _str(ds, keyword)
    if not value:
        raise DicomError(f"{keyword} is missing; every instance needs one.", code)
    if not is_valid_uid(value, lenient=True):
        raise DicomError(f"{keyword} {value[:80]!r} is not a valid UID (digits and dots, at most 64).", code)
    return value


def _read(fp: BinaryIO) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, defer_size=4096)
    except InvalidDicomError as exc:
        raise DicomError(f"Not a DICOM file (no 'DICM' preamble or meta header): {exc}") from exc
    except Exception as exc:  # EOFError, struct.error, zlib.error, BytesLengthException, ValueError...
        raise DicomError(f"The DICOM file cannot be read: {str(exc)[:300]}") from exc
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        raise DicomError("The file has no Transfer Syntax UID in its meta header (PS3.10 file required).")
    return ds


def _check_complete(ds: Dataset, skip: dict[int, Any]) -> None:
    """Decode every value once, so a malformed one is found now rather than at retrieval. Pixel Data is not
    read (its length is checked by :func:`_check_lengths` and the frame index); the decoded values are kept
    in ``ds`` for :func:`dataset_json` and the index values. The elements in ``skip`` were decoded by
    :func:`fast_values` and stay raw."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid values of a VR are common in the wild: store, do not refuse
        try:
            _decode_all(ds, skip)
        except Exception as exc:
            raise DicomError(f"The data set is malformed or truncated: {exc}") from exc


def _decode_all(ds: Dataset, skip: dict[int, Any]) -> None:
    for tag in ds.keys():
        if tag == PIXEL_DATA or tag in skip:
            continue  # Pixel Data: checked by position and length, never read into memory here
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _decode_all(item, {})


def _check_lengths(ds: Dataset, fp: BinaryIO, size: int, ts: str) -> None:
    """A top-level value that claims more bytes than the file holds is refused (pydicom reads what there is,
    or defers the value, without complaint).

    ``dcmread`` walked the element headers once and kept each value's position and length in its raw element.
    Only the last element read can run past the end (the next header would be past it); when that one was
    already decoded while reading (a private creator), its length is gone and the headers are walked again."""
    if ts == "1.2.840.10008.1.2.1.99":
        return  # deflated: the body is compressed; pydicom inflates and checks it while reading
    last_raw = last_decoded = -1
    for tag in ds.keys():
        elem = ds.get_item(tag, keep_deferred=True)  # a deferred value (Pixel Data) is not read here
        if isinstance(elem, RawDataElement):
            _check_length(elem, size)
            last_raw = max(last_raw, elem.value_tell)
        else:
            last_decoded = max(last_decoded, elem.file_tell if elem.file_tell is not None else size)
    if last_decoded > last_raw:
        _walk_lengths(fp, size, ts)


def _check_length(raw: RawDataElement, size: int) -> None:
    length = raw.length
    if length != 0xFFFFFFFF and raw.value_tell + length > size:
        raise DicomError(
            f"Element {raw.tag} claims {length} bytes at byte {raw.value_tell}, past the end of "
            f"the file ({size} bytes): the file is truncated."
        )


def _walk_lengths(fp: BinaryIO, size: int, ts: str) -> None:
    uid = UID(ts)
    try:
        fp.seek(0)
        read_preamble(fp, False)
        _read_file_meta_info(fp)
        for raw in data_element_generator(fp, uid.is_implicit_VR, uid.is_little_endian, defer_size=256):
            if isinstance(raw, RawDataElement):  # sequences come back parsed, without a length
                _check_length(raw, size)
    except DicomError:
        raise
    except Exception as exc:
        raise DicomError(f"The data set is malformed or truncated: {exc}") from exc


def _frame_index(ds: Dataset, fp: BinaryIO, size: int, ts: str) -> FrameIndex:
    elem = ds.get_item(PIXEL_DATA, keep_deferred=True)  # deferred: its position, without reading 512 KB
    if elem is None:
        return []
    if ts not in SUPPORTED_PIXEL_TRANSFER_SYNTAXES:
        raise DicomError(f"Transfer syntax {ts} is not supported for pixel data.", FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED)
    if ts == "1.2.840.10008.1.2.1.99":
        return []  # deflated: no byte offsets in the file; WADO decodes such instances through pydicom
    frames = _int(ds, "NumberOfFrames", 1) or 1
    rows, cols = _int(ds, "Rows", 0) or 0, _int(ds, "Columns", 0) or 0
    bits = _int(ds, "BitsAllocated", 0) or 0
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    if isinstance(elem, RawDataElement):  # not decoded (the usual case: Pixel Data is never read here)
        offset, undefined_length = elem.value_tell, elem.length == 0xFFFFFFFF
    else:
        offset, undefined_length = elem.file_tell, elem.is_undefined_length
    if offset is None:  # small value read into memory: locate it the slow way, by re-reading the file
        return []
    if undefined_length:
        if UID(ts).is_encapsulated is False:
            raise DicomError("Native Pixel Data must not have an undefined length.")
        ext = None
        if EXTENDED_OFFSET_TABLE in ds:
            raw = ds[EXTENDED_OFFSET_TABLE].value
            ext = list(memoryview(raw).cast("Q")) if raw else None
        return encapsulated_frame_index(fp, offset, size, frames, ext)
    value_length = _value_length(fp, offset, size, UID(ts).is_little_endian)
    if bits == 1:
        total = (rows * cols * samples * frames + 7) // 8
        if value_length < total:
            raise DicomError("Single-bit Pixel Data is shorter than Rows x Columns x Frames needs.")
        return [[[offset, total]]] if frames == 1 else []
    frame_bytes = rows * cols * samples * bits // 8
    if _str(ds, "PhotometricInterpretation") == "YBR_FULL_422":
        frame_bytes = frame_bytes * 2 // 3  # two luminance samples share one chroma pair
    return native_frame_index(offset, value_length, frame_bytes, frames)


def _value_length(fp, value_offset: int, size: int, little_endian: bool) -> int:
    """Length of a defined-length element from its header just before ``value_offset``."""
    fp.seek(value_offset - 4)
    length = int.from_bytes(fp.read(4), "little" if little_endian else "big")
    if value_offset + length > size:
        raise DicomError(
            f"Pixel Data declares {length} bytes but only {size - value_offset} remain in the file: truncated."
        )
    return length


def _slice_position(ds: Dataset) -> float | None:
    try:
        ipp = [float(v) for v in _get(ds, "ImagePositionPatient")]
        iop = [float(v) for v in _get(ds, "ImageOrientationPatient")]
    except (AttributeError, TypeError, ValueError):
        return None
    if len(ipp) != 3 or len(iop) != 6:
        return None
    nx = iop[1] * iop[5] - iop[2] * iop[4]
    ny = iop[2] * iop[3] - iop[0] * iop[5]
    nz = iop[0] * iop[4] - iop[1] * iop[3]
    return ipp[0] * nx + ipp[1] * ny + ipp[2] * nz


def parse_file(path: str | os.PathLike) -> ParsedInstance:
    """Parse and check one PS3.10 file. Raises :class:`DicomError` with a reason a sender can act on.

    Malformed input makes pydicom raise many kinds of exceptions (struct, zlib, value conversions); every one of
    them becomes a :class:`DicomError`, so that a bad file is always a refused instance, never a server error.
    """
    try:
        return _parse_file(Path(path))
    except (DicomError, MemoryError):
        raise
    except OSError as exc:  # the file itself could not be read: let the caller report a storage problem
        raise DicomError(f"The file cannot be read: {exc.strerror or exc}", FailureReason.PROCESSING_FAILURE) from exc
    except Exception as exc:
        raise DicomError(f"The data set is malformed: {type(exc).__name__}: {str(exc)[:300]}") from exc


def _parse_file(path: Path) -> ParsedInstance:
    with open(path, "rb") as fp:  # one open file for every pass, deferred values included
        return _parse_open(fp, os.fstat(fp.fileno()).st_size)


def _parse_open(fp: BinaryIO, size: int) -> ParsedInstance:
    if size == 0:
        raise DicomError("The file is empty.")
    ds = _read(fp)
    ts = str(ds.file_meta.TransferSyntaxUID)
    if not is_valid_uid(ts, lenient=True):
        raise DicomError(f"Transfer Syntax UID {ts[:80]!r} is not a valid UID.", FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED)
    _check_lengths(ds, fp, size, ts)
    fast = fast_values(ds, ts)  # the common elements, decoded without pydicom's DataElements
    ds.__dict__["_lightbox_fast"] = fast  # for _get (bypasses Dataset.__setattr__: not a DICOM attribute)
    _check_complete(ds, fast)
    sop_class = _uid(ds, "SOPClassUID", FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
    sop_instance = _uid(ds, "SOPInstanceUID", FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
    meta_sop = str(ds.file_meta.get("MediaStorageSOPInstanceUID", "") or "")
    if meta_sop and meta_sop != sop_instance:
        raise DicomError(
            f"Meta header SOP Instance UID {meta_sop} differs from the data set's {sop_instance}.",
            FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS,
        )
    study_uid = _uid(ds, "StudyInstanceUID", FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
    series_uid = _uid(ds, "SeriesInstanceUID", FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
    frame_index = _frame_index(ds, fp, size, ts)
    patient_name = _str(ds, "PatientName", 324)
    study_date = parse_da(_str(ds, "StudyDate"))
    modality = _str(ds, "Modality", 16)
    return ParsedInstance(
        patient={
            "patient_id": _str(ds, "PatientID", 64),
            "issuer_of_patient_id": _str(ds, "IssuerOfPatientID", 64),
            "patient_name": patient_name,
            "patient_name_search": name_search_key(patient_name),
            "patient_name_fuzzy": fuzzy_key(patient_name),
            "patient_birth_date": _str(ds, "PatientBirthDate", 8),
            "patient_sex": _str(ds, "PatientSex", 16),
        },
        study={
            "study_instance_uid": study_uid,
            "study_date": study_date,
            "study_time": normalise_tm(_str(ds, "StudyTime")),
            "accession_number": _str(ds, "AccessionNumber", 64),
            "referring_physician_name": _str(ds, "ReferringPhysicianName", 324),
            "study_id": _str(ds, "StudyID", 16),
            "study_description": _str(ds, "StudyDescription", 1024),
        },
        series={
            "series_instance_uid": series_uid,
            "modality": modality,
            "series_number": _int(ds, "SeriesNumber"),
            "series_description": _str(ds, "SeriesDescription", 1024),
            "body_part_examined": _str(ds, "BodyPartExamined", 16),
            "performed_procedure_step_start_date": parse_da(_str(ds, "PerformedProcedureStepStartDate")),
            "performed_procedure_step_start_time": normalise_tm(_str(ds, "PerformedProcedureStepStartTime")),
        },
        instance={
            "sop_instance_uid": sop_instance,
            "sop_class_uid": sop_class,
            "instance_number": _int(ds, "InstanceNumber"),
            "rows": _int(ds, "Rows", 0),
            "columns": _int(ds, "Columns", 0),
            "bits_allocated": _int(ds, "BitsAllocated", 0, 32767),
            "number_of_frames": _int(ds, "NumberOfFrames", 0) or (1 if PIXEL_DATA in ds else None),
            "transfer_syntax_uid": ts,
            "photometric_interpretation": _str(ds, "PhotometricInterpretation", 16),
            "slice_position": _slice_position(ds),
        },
        frame_index=frame_index,
        metadata_json=orjson.dumps(dataset_json(ds, study_uid, series_uid, sop_instance, fast)),
    )
