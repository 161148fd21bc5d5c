"""Find the instances a WADO-RS path names, in display order, or answer 404 with a reason."""
from __future__ import annotations

from django.db.models import F, QuerySet

from ..http import DicomWebError
from ..models import Instance

ROW_FIELDS = (
    "pk",
    "sop_instance_uid",
    "sop_class_uid",
    "series__series_instance_uid",
    "series__study__study_instance_uid",
    "storage_key",
    "transfer_syntax_uid",
    "file_size",
    "number_of_frames",
    "bits_allocated",
)
ORDER = (
    F("series__series_number").asc(nulls_last=True),
    "series_id",
    F("instance_number").asc(nulls_last=True),
    "pk",
)


def instances_in(study: str, series: str | None = None, instance: str | None = None) -> QuerySet:
    """The instances under a study, series or instance path, in display order (series, instance number)."""
    qs = Instance.objects.filter(series__study__study_instance_uid=study)
    if series is not None:
        qs = qs.filter(series__series_instance_uid=series)
    if instance is not None:
        qs = qs.filter(sop_instance_uid=instance)
    return qs.order_by(*ORDER)


def missing(study: str, series: str | None = None, instance: str | None = None) -> DicomWebError:
    if instance is not None:
        return DicomWebError(404, f"No instance {instance} in series {series} of study {study}.")
    if series is not None:
        return DicomWebError(404, f"No series {series} in study {study}.")
    return DicomWebError(404, f"No study {study}.")


def instance_rows(study: str, series: str | None = None, instance: str | None = None, *extra: str) -> list[dict]:
    """Rows (``ROW_FIELDS`` plus ``extra``) of the instances a path names; 404 when there are none."""
    rows = list(instances_in(study, series, instance).values(*ROW_FIELDS, *extra))
    if not rows:
        raise missing(study, series, instance)
    return rows


def one_instance(study: str, series: str, instance: str, *extra: str) -> dict:
    return instance_rows(study, series, instance, *extra)[0]


def representative(study: str, series: str | None = None) -> dict:
    """The instance that stands for a study or series in rendered views and thumbnails.

    Series: its middle image. Study: the middle image of the series with the most images (a scout or a
    report is rarely what a user wants to see), ties going to the lower series number.
    """
    qs = instances_in(study, series).filter(number_of_frames__isnull=False)
    if series is None:
        counts: dict[str, int] = {}
        for uid in qs.values_list("series__series_instance_uid", flat=True):
            counts[uid] = counts.get(uid, 0) + 1
        if counts:
            series = max(counts, key=lambda uid: counts[uid])  # dict order = display order: ties keep the first
            qs = qs.filter(series__series_instance_uid=series)
    rows = list(qs.values(*ROW_FIELDS, "frame_index"))
    if not rows:
        if not instances_in(study, series).exists():
            raise missing(study, series)
        raise DicomWebError(404, "Nothing to render: no instance here has pixel data.")
    return rows[len(rows) // 2]
