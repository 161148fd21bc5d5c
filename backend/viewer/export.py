"""Export: read the referenced image headers from the archive, build the SR, store it through archive.ingest."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pydicom

from .models import Measurement
from .sr import SrError, build_measurement_report

logger = logging.getLogger(__name__)


class ExportError(Exception):
    """The SR could not be made or stored; the message is meant for the user."""


def _image_headers(study_uid: str, sop_uids: set[str]) -> dict[str, pydicom.Dataset]:
    from archive.models import Instance
    from archive.storage import get_storage

    storage = get_storage()
    headers: dict[str, pydicom.Dataset] = {}
    rows = Instance.objects.filter(sop_instance_uid__in=sop_uids, series__study__study_instance_uid=study_uid)
    for inst in rows.only("sop_instance_uid", "storage_key"):
        with storage.open(inst.storage_key) as fp:
            headers[inst.sop_instance_uid] = pydicom.dcmread(fp, stop_before_pixels=True)
    return headers


def export_measurements_as_sr(measurements: list[Measurement], study_uid: str, *, observer: str) -> dict:
    from archive.ingest import notify_stored, store_file

    headers = _image_headers(study_uid, {m.sop_instance_uid for m in measurements})
    try:
        sr = build_measurement_report(measurements, headers, observer=observer)
    except SrError as exc:
        raise ExportError(f"The SR could not be built: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="lightbox-sr-") as tmp:
        path = Path(tmp) / "sr.dcm"
        sr.save_as(path, enforce_file_format=True)
        outcome = store_file(path, expected_study_uid=study_uid, consume=True)
    if not outcome.ok:
        raise ExportError(f"The archive refused the SR: {outcome.reason}")
    notify_stored([outcome])
    return {
        "sop_instance_uid": sr.SOPInstanceUID,
        "series_instance_uid": sr.SeriesInstanceUID,
        "measurements": len(measurements),
    }
