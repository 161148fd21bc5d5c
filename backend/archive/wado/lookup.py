"""Find the instances a WADO-RS path names, in display order, or answer 404 with a reason."""
from __future__ import annotations

import functools

from django.db import connections
from django.db.models import F, QuerySet

from .. import sqlrows
from ..http import DicomWebError
from ..models import Instance, Series, Study

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


@functools.lru_cache(maxsize=32)
def _one_sql(alias: str, fields: tuple[str, ...]) -> tuple[str, tuple[str, ...], tuple]:
    """One statement for an instance row by its three UIDs, as ``instance_rows`` fetches it (one row at most)."""
    cols = sqlrows.columns(alias, Instance, (("series__", Series), ("series__study__", Study)))
    select, paths, converters = sqlrows.select_list(cols, fields)
    quote = connections[alias].ops.quote_name
    instance, series, study = (quote(m._meta.db_table) for m in (Instance, Series, Study))
    sql = (f"SELECT {select} FROM {instance} "
           f"INNER JOIN {series} ON ({cols['series'].sql} = {cols['series__pk'].sql}) "
           f"INNER JOIN {study} ON ({cols['series__study'].sql} = {cols['series__study__pk'].sql}) "
           f"WHERE {cols['series__study__study_instance_uid'].sql} = %s "
           f"AND {cols['series__series_instance_uid'].sql} = %s AND {cols['sop_instance_uid'].sql} = %s")
    return sql, paths, converters


def one_instance(study: str, series: str, instance: str, *extra: str) -> dict:
    """The row (``ROW_FIELDS`` plus ``extra``) of one instance; 404 when it is not there. Plain SQL: this read
    comes before every frame, bulk data and rendered image that Django serves."""
    alias = Instance.objects.db
    sql, paths, converters = _one_sql(alias, ROW_FIELDS + extra)
    rows = sqlrows.as_dicts(alias, sqlrows.fetch(alias, sql, [study, series, instance]), paths, converters)
    if not rows:
        raise missing(study, series, instance)
    return rows[0]


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
