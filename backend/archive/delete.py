"""DELETE of studies and series (``/dicomweb/studies/{study}[/series/{series}]``), for users who may delete.

PS3.18 defines no DELETE transaction; this follows common archives (dcm4chee): 204 No Content when removed,
404 when absent. The index rows go in one transaction (counters of the study recomputed, the study removed with
its last series, the patient with its last study); the files are removed only after that transaction commits,
so a failed deletion never leaves rows pointing to missing files.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import ProtectedError, Sum
from django.db.models.deletion import RestrictedError
from django.http import HttpRequest, HttpResponse

from accounts.roles import Capability, has_capability
from audit.log import record
from events.bus import publish
from events.names import Event

from .http import DicomWebError
from .models import Instance, Patient, Series, Study
from .signals import resource_deleted
from .storage import get_storage

logger = logging.getLogger(__name__)


def delete_study(request: HttpRequest, study: str) -> HttpResponse:
    _require_delete(request)
    with _index_transaction():
        study_row = Study.objects.select_for_update().filter(study_instance_uid=study).first()
        if study_row is None:
            raise DicomWebError(404, f"Study {study} is not in the archive.")
        keys = _storage_keys(Instance.objects.filter(series__study=study_row))
        _delete_study_rows(study_row)
        transaction.on_commit(lambda: _after_delete(keys, study, None, study_deleted=True))
    record(request.user, "archive.delete", request=request, study_instance_uid=study, instances=len(keys))
    return HttpResponse(status=204)


def delete_series(request: HttpRequest, study: str, series: str) -> HttpResponse:
    _require_delete(request)
    with _index_transaction():
        study_row = Study.objects.select_for_update().filter(study_instance_uid=study).first()
        series_row = (
            Series.objects.filter(series_instance_uid=series, study=study_row).first() if study_row else None
        )
        if series_row is None:
            raise DicomWebError(404, f"Series {series} of study {study} is not in the archive.")
        keys = _storage_keys(Instance.objects.filter(series=series_row))
        Instance.objects.filter(series=series_row).delete()
        series_row.delete()
        study_deleted = not Series.objects.filter(study=study_row).exists()
        if study_deleted:
            _delete_study_rows(study_row)
        else:
            _recount(study_row)
        transaction.on_commit(lambda: _after_delete(keys, study, series, study_deleted=study_deleted))
    record(request.user, "archive.delete", request=request, study_instance_uid=study, series_instance_uid=series,
           instances=len(keys), study_deleted=study_deleted)
    return HttpResponse(status=204)


def _require_delete(request: HttpRequest) -> None:
    if not has_capability(request.user, Capability.DELETE):
        raise DicomWebError(403, "Deleting studies and series needs the 'delete' capability (administrators).")


@contextmanager
def _index_transaction() -> Iterator[None]:
    """``transaction.atomic()`` that turns a deletion refused by another table's PROTECT into a 409."""
    try:
        with transaction.atomic():
            yield
    except (ProtectedError, RestrictedError) as exc:
        raise DicomWebError(409, f"Other records still refer to this resource: {exc.args[0]}") from exc


def _storage_keys(instances) -> list[str]:
    return list(instances.values_list("storage_key", flat=True))


def _delete_study_rows(study_row: Study) -> None:
    """Remove a study with its series and instances, and its patient when no other study is left."""
    patient_id = study_row.patient_id
    Instance.objects.filter(series__study=study_row).delete()
    Series.objects.filter(study=study_row).delete()
    study_row.delete()
    if not Study.objects.filter(patient_id=patient_id).exists():
        Patient.objects.filter(pk=patient_id).delete()


def _recount(study_row: Study) -> None:
    """Recompute the study's denormalised counters and modalities from the series that remain."""
    remaining = Series.objects.filter(study=study_row)
    modalities = sorted({m for m in remaining.values_list("modality", flat=True) if m})
    Study.objects.filter(pk=study_row.pk).update(
        number_of_study_related_series=remaining.count(),
        number_of_study_related_instances=remaining.aggregate(n=Sum("number_of_series_related_instances"))["n"] or 0,
        modalities_in_study="\\" + "\\".join(modalities) + "\\" if modalities else "",
    )


def _after_delete(keys: list[str], study: str, series: str | None, *, study_deleted: bool) -> None:
    """After commit: remove the files, then tell listeners (websockets, caches, other apps)."""
    storage = get_storage()
    for key in keys:
        try:
            storage.delete(key)
        except (OSError, ValueError):
            logger.exception("could not remove stored file %s after deleting it from the index", key)
    publish(Event.STUDY_DELETED, study, {"series": series, "study_deleted": study_deleted, "instances": len(keys)})
    try:
        resource_deleted.send(sender=Study, study_instance_uid=study, series_instance_uid=series)
    except Exception:
        logger.exception("a resource_deleted receiver failed")
