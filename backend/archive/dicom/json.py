"""DICOM JSON (PS3.18 F.2) of an instance, built once at ingest.

Large binary values of the top-level data set become ``BulkDataURI``s under the DICOMweb root, written as
path-only URIs (``/dicomweb/...``) that the metadata view prefixes with the request's scheme and host.
Small or nested binary values stay inline.

The common value representations (strings, numbers, sequences) are converted here directly; every other one
(PN, AT, binary, ambiguous VRs) goes through pydicom's ``DataElement.to_json_dict``. The output is the same as
pydicom's ``Dataset.to_json_dict`` (tests/archive/test_parse.py compares them on pydicom's sample files), at
about a quarter of the CPU time: this runs once for every stored instance.
"""
from __future__ import annotations

from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.jsonrep import convert_to_python_number
from pydicom.multival import MultiValue

BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
BULK_THRESHOLD = 1024
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
DICOMWEB_ROOT = "/dicomweb"
_NO_BULK = 1 << 62  # threshold that keeps every binary value inline (with no handler, pydicom ignores it)

_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
_NUMBER_VRS = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV", "DS", "FD", "FL"})


def instance_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    return f"{DICOMWEB_ROOT}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def _is_bulk(ds: Dataset, tag: int) -> bool:
    if tag in PIXEL_TAGS:
        return True
    elem = ds.get_item(tag)
    if elem is None or elem.VR not in BULK_VRS:
        return False
    length = getattr(elem, "length", None)
    if length is None:
        value = ds[tag].value
        length = len(value) if isinstance(value, bytes | bytearray) else 0
    return length > BULK_THRESHOLD


def _bulk_vr(ds: Dataset, tag: int) -> str:
    """``ds.get_item(tag).VR`` without reading a deferred value (Pixel Data, 512 KB of a CT slice) when the
    file states its VR: converting keeps an explicit VR; an implicit or UN one is still resolved by pydicom."""
    elem = ds.get_item(tag, keep_deferred=True)
    if isinstance(elem, RawDataElement) and elem.value is None and (not elem.VR or elem.VR == "UN"):
        return ds[tag].VR
    return elem.VR


def element_json(elem: DataElement) -> dict[str, Any]:
    """``elem.to_json_dict(None, ...)``: the same dictionary, faster for strings, numbers and sequences."""
    vr = elem.VR
    if vr == "SQ":
        return {"vr": vr, "Value": [_items_json(item) for item in elem.value]}
    if vr in _STRING_VRS or vr in _NUMBER_VRS:
        value = elem.value
        if value is None:
            return {"vr": vr}
        if isinstance(value, str):
            if not value:
                return {"vr": vr}
            values = [value]
        elif isinstance(value, MultiValue | list | tuple):
            if not value:
                return {"vr": vr}
            values = list(value)
        elif isinstance(value, int | float):
            values = [value]
        else:  # bytes where a string was expected, or another oddity: exactly as pydicom does it
            return elem.to_json_dict(None, _NO_BULK)
        if vr in _NUMBER_VRS:
            values = convert_to_python_number(values, vr)
        return {"vr": vr, "Value": values}
    return elem.to_json_dict(None, _NO_BULK)


def _items_json(ds: Dataset) -> dict[str, Any]:
    """A sequence item, as ``Dataset.to_json_dict`` gives it (keys in the item's order)."""
    return {f"{int(tag):08X}": element_json(ds[tag]) for tag in ds.keys()}


def dataset_json(ds: Dataset, study_uid: str, series_uid: str, sop_uid: str,
                 fast: dict[int, tuple[str, list]] | None = None) -> dict[str, Any]:
    """The instance's DICOM JSON; ``fast`` holds the elements that :func:`archive.dicom.fast.fast_values`
    decoded (never bulk data), the others are read from ``ds``."""
    base = instance_path(study_uid, series_uid, sop_uid)
    result: dict[str, Any] = {}
    fast = fast or {}
    for tag in ds.keys():
        tag = int(tag)
        key = f"{tag:08X}"
        found = fast.get(tag)
        if found is not None:
            vr, values = found
            result[key] = {"vr": vr, "Value": values} if values else {"vr": vr}
        elif _is_bulk(ds, tag):
            vr = _bulk_vr(ds, tag)
            result[key] = {"vr": vr if vr in BULK_VRS else "OB", "BulkDataURI": f"{base}/bulkdata/{key}"}
        else:
            result[key] = element_json(ds[tag])
    return dict(sorted(result.items()))
