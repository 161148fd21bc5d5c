"""The ORM index write that ``archive.index_sql`` replaced (``ingest._index_batch`` before it), kept as the
reference its rows are compared with."""
from __future__ import annotations

from collections import defaultdict

from django.db.models import F

from archive.dicom import DicomError, FailureReason, ParsedInstance
from archive.index_sql import Item
from archive.models import Instance, Patient, Series, Study


def _rows(parsed: ParsedInstance) -> tuple[Study, Series, bool]:
    p = parsed.patient
    patient, created = Patient.objects.get_or_create(
        patient_id=p["patient_id"], issuer_of_patient_id=p["issuer_of_patient_id"], defaults=p
    )
    if not created and not patient.patient_name and p["patient_name"]:
        Patient.objects.filter(pk=patient.pk).update(**p)
    study, _ = Study.objects.get_or_create(
        study_instance_uid=parsed.study_instance_uid, defaults={**parsed.study, "patient": patient}
    )
    series, series_created = Series.objects.get_or_create(
        series_instance_uid=parsed.series_instance_uid, defaults={**parsed.series, "study": study}
    )
    if series.study_id != study.pk:
        raise DicomError(f"Series {series.series_instance_uid} already belongs to another study.",
                         FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
    return study, series, series_created


def _count(study: Study, series: Series, added: int, series_created: bool, modalities: set[str]) -> None:
    Series.objects.filter(pk=series.pk).update(
        number_of_series_related_instances=F("number_of_series_related_instances") + added
    )
    study_update = {"number_of_study_related_instances": F("number_of_study_related_instances") + added}
    if series_created:
        study_update["number_of_study_related_series"] = F("number_of_study_related_series") + 1
    new = {m for m in modalities if m and f"\\{m}\\" not in study.modalities_in_study}
    if new:
        current = Study.objects.select_for_update().values_list("modalities_in_study", flat=True).get(pk=study.pk)
        missing = sorted(m for m in new if f"\\{m}\\" not in current)
        if missing:
            study_update["modalities_in_study"] = (current or "\\") + "".join(f"{m}\\" for m in missing)
    Study.objects.filter(pk=study.pk).update(**study_update)


def orm_index_batch(staged: list[Item]) -> None:
    by_series: dict[str, list[Item]] = defaultdict(list)
    for item in staged:
        by_series[item.parsed.series_instance_uid].append(item)
    for items in by_series.values():
        study, series, series_created = _rows(items[0].parsed)
        if any(item.parsed.study_instance_uid != study.study_instance_uid for item in items):
            raise DicomError("A series is spread over several studies.", FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
        Instance.objects.bulk_create([
            Instance(series=series, storage_key=i.key, file_size=i.size, sha256="", metadata=i.parsed.metadata_json,
                     frame_index=i.parsed.frame_index, **i.parsed.instance)
            for i in items
        ])
        _count(study, series, len(items), series_created, {i.parsed.series["modality"] for i in items})
