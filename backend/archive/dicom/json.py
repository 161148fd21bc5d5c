"""DICOM JSON (PS3.18 F.2) of an instance, built once at ingest.

Large binary values of the top-level data set become ``BulkDataURI``s under the DICOMweb root, written as
path-only URIs (``/dicomweb/...``) that the metadata view prefixes with the request's scheme and host.
Small or nested binary values stay inline.
"""
from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
BULK_THRESHOLD = 1024
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
DICOMWEB_ROOT = "/dicomweb"


def instance_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    return f"{DICOMWEB_ROOT}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def _is_bulk(ds: Dataset, tag: int) -> bool:
    elem = ds.get_item(tag)
    if tag in PIXEL_TAGS:
        return True
    if elem is None or elem.VR not in BULK_VRS:
        return False
    length = getattr(elem, "length", None)
    if length is None:
        value = ds[tag].value
        length = len(value) if isinstance(value, bytes | bytearray) else 0
    return length > BULK_THRESHOLD


def dataset_json(ds: Dataset, study_uid: str, series_uid: str, sop_uid: str) -> dict[str, Any]:
    base = instance_path(study_uid, series_uid, sop_uid)
    inline = Dataset()
    bulk: dict[str, dict[str, str]] = {}
    for tag in ds.keys():
        if _is_bulk(ds, int(tag)):
            vr = ds.get_item(tag).VR
            bulk[f"{int(tag):08X}"] = {"vr": vr if vr in BULK_VRS else "OB", "BulkDataURI": f"{base}/bulkdata/{int(tag):08X}"}
        else:
            inline[tag] = ds[tag]
    result = inline.to_json_dict(bulk_data_threshold=1 << 62, bulk_data_element_handler=None)
    result.update(bulk)
    return dict(sorted(result.items()))
