"""Store an analysis' DICOM results (SEG, SR, parametric map) through the archive's one way in."""
from __future__ import annotations

from pydicom.dataset import Dataset

from archive.dicom import DicomError, FailureReason
from archive.ingest import StoreOutcome, notify_stored, store_file
from archive.storage import get_storage


def store_datasets(datasets: list[Dataset]) -> list[StoreOutcome]:
    """Write each data set as a PS3.10 file into staging and store it; raise if any is refused."""
    storage = get_storage()
    outcomes = []
    for ds in datasets:
        fp, path = storage.new_staging_file()
        with fp:
            ds.save_as(fp, enforce_file_format=True)
        outcomes.append(store_file(path, consume=True))
    notify_stored(outcomes)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise DicomError(f"The archive refused a result object: {failed[0].reason}", FailureReason.PROCESSING_FAILURE)
    return outcomes
