"""Run one QIDO-RS search: filters, access, order and page in SQL, then DICOM JSON.

Every returned column comes from one query (``values()`` across the patient/study/series joins). When
includefield asks for attributes that are not columns, the same query also fetches the DICOM JSON of a
representative instance (the first stored of the study or series) through a correlated subquery: no N+1.
On SQLite, a search with filters may run one query before it, to find few matches without walking the sort order.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson
from django.db import connections
from django.db.models import BinaryField, F, OuterRef, Q, QuerySet, Subquery

from accounts.access import visible_study_uids

from ..dicom.json import DICOMWEB_ROOT
from ..models import Instance, Patient, Series, Study
from . import rawsql
from .attributes import BY_TAG, DEFAULT_TAGS, PER_LEVEL, Attribute, Level, column_attributes, in_level_module
from .matching import match_filter
from .params import QidoQuery
from .rawsql import NARROW_MAX, PATIENT_LIST_MAX
from .serialize import absolute_bulk, column_writers, write_columns

P, ST, SE, IN = Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE
MODELS = {ST: Study, SE: Series, IN: Instance}
# How each level's columns are reached from the model searched.
PREFIXES: dict[Level, dict[Level, str]] = {
    P: {P: ""},
    ST: {P: "patient__", ST: ""},
    SE: {P: "study__patient__", ST: "study__", SE: ""},
    IN: {P: "series__study__patient__", ST: "series__study__", SE: "series__", IN: ""},
}
UID_COLUMNS = {ST: "study_instance_uid", SE: "series_instance_uid", IN: "sop_instance_uid"}
REPRESENTATIVE = "_representative_metadata"


@dataclass(frozen=True, slots=True)
class Resource:
    """One of the six search resources: the level searched and the UIDs named in the path."""

    level: Level
    study: str | None = None
    series: str | None = None

    @property
    def scope(self) -> Level | None:
        return SE if self.series else ST if self.study else None


def column_path(attribute: Attribute, level: Level) -> str:
    return PREFIXES[level][attribute.level] + attribute.column


def _ordering(resource: Resource) -> list:
    study_order = [F("study_date").desc(nulls_last=True), F("study_time").desc(), F("pk").desc()]
    if resource.level == ST:
        return study_order
    series_order = [F("series_number").asc(nulls_last=True), F("pk").asc()]
    if resource.level == SE:
        if resource.study:
            return series_order
        return [_prefixed(o, "study__") for o in study_order] + series_order
    instance_order = [F("instance_number").asc(nulls_last=True), F("pk").asc()]
    if resource.series:
        return instance_order
    in_study = [_prefixed(o, "series__") for o in series_order] + instance_order
    if resource.study:
        return in_study
    return [_prefixed(o, "series__study__") for o in study_order] + in_study


def _prefixed(order, prefix: str):
    copy = order.copy()
    copy.expression = F(prefix + order.expression.name)
    return copy


def _representative(level: Level) -> Subquery:
    if level == ST:
        instances = Instance.objects.filter(series__study=OuterRef("pk"))
    else:
        instances = Instance.objects.filter(series=OuterRef("pk"))
    return Subquery(instances.order_by("pk").values("metadata")[:1], output_field=BinaryField())


def base_queryset(resource: Resource, query: QidoQuery, user) -> QuerySet:
    """Filtered by the path UIDs, the match keys and what ``user`` may see; ordered; not yet paged."""
    level = resource.level
    model = MODELS[level]
    qs = model.objects.all()
    prefixes = PREFIXES[level]
    if resource.study:
        qs = qs.filter(**{prefixes[ST] + "study_instance_uid": resource.study})
    if resource.series:
        qs = qs.filter(**{prefixes[SE] + "series_instance_uid": resource.series})
    # SQLite plans ORDER BY ... LIMIT by walking the date index; help it when few rows match (see _narrowed).
    narrow = resource.scope is None and connections[qs.db].vendor == "sqlite"
    filtered = False
    patient_keys = []
    for attribute, value in query.matches:
        if attribute.level == P:
            if _filter(attribute, value, P, query) is not None:  # not universal matching
                patient_keys.append((attribute, value))
            continue
        q = _filter(attribute, value, level, query)
        if q is not None:
            qs = qs.filter(q)
            filtered = True
            if attribute.keyword == "StudyDate" and level == ST:
                narrow = False  # a date range bounds the walk of the date index already
    if patient_keys:
        patients = _patients(patient_keys, query) if narrow else None
        if patients is None:  # many patients match: join, and walk the sort order
            qs = qs.filter(_combined(patient_keys, level, query))
            narrow = False
        else:
            qs = qs.filter(**{prefixes[P] + "pk__in": patients})
        filtered = True
    visible = visible_study_uids(user)
    if visible is not None:
        qs = qs.filter(**{prefixes[ST] + "study_instance_uid__in": visible})
        filtered = True
    if filtered and narrow:
        qs = _narrowed(model, qs)
    return qs.order_by(*_ordering(resource))


def _filter(attribute: Attribute, value: str, level: Level, query: QidoQuery) -> Q | None:
    return match_filter(
        attribute, column_path(attribute, level), value, fuzzy=query.fuzzy, empty=query.empty_value_matching
    )


def _combined(keys: list[tuple[Attribute, str]], level: Level, query: QidoQuery) -> Q:
    q = Q()
    for attribute, value in keys:
        q &= _filter(attribute, value, level, query) or Q()
    return q


def _patients(keys: list[tuple[Attribute, str]], query: QidoQuery) -> list[int] | None:
    """The patients matching the patient keys, or None when more than PATIENT_LIST_MAX do.

    Few patients: their studies come through the patient index. Many: the study-date walk meets matches soon.
    """
    matching = Patient.objects.filter(_combined(keys, P, query)).order_by()
    ids = list(matching.values_list("pk", flat=True)[:PATIENT_LIST_MAX + 1])
    return ids if len(ids) <= PATIENT_LIST_MAX else None


def _narrowed(model, qs: QuerySet) -> QuerySet:
    """Find the matches first, unordered, when there are few of them.

    Ordered by date with a LIMIT, SQLite walks the date index and tests every row: quick when many rows match,
    but a walk through the whole archive when few do (a rare name, a grant or two). Unordered, it picks the index
    that suits the filter (patient, accession, grants) or one sequential scan; the few matches are then sorted.
    When more than NARROW_MAX match, the ordered walk finds a page quickly and is kept. PostgreSQL's planner,
    with its statistics, already chooses well (measured: no gain there).
    """
    ids = list(qs.order_by().values_list("pk", flat=True)[:NARROW_MAX + 1])
    if len(ids) > NARROW_MAX:
        return qs
    return model.objects.filter(pk__in=ids)


@dataclass(slots=True)
class Page:
    results: list[dict]
    truncated: bool  # more results match beyond this page


@functools.lru_cache(maxsize=512)
def _plan(level: Level, scope: Level | None, match_tags: tuple[int, ...], include_tags: tuple[int, ...],
          include_all: bool) -> tuple[list, dict, frozenset, tuple[str, ...]]:
    """What a search of this shape returns: column writers, UID paths, the values() fields, metadata tags."""
    tags = list(DEFAULT_TAGS[(level, scope)])
    tags += match_tags
    tags += include_tags
    if include_all:
        tags += [a.tag for a in column_attributes(level)]
    columns: dict[int, Attribute] = {}
    computed: list[Attribute] = []
    from_metadata: list[str] = []
    for tag in dict.fromkeys(tags):
        attribute = BY_TAG.get(tag)
        if attribute is not None and tag in PER_LEVEL:
            computed.append(attribute)
        elif attribute is not None and attribute.column and attribute.level <= level:
            columns[tag] = attribute
        else:
            from_metadata.append(f"{tag:08X}")
    writers = column_writers(
        [(a, column_path(a, level)) for a in columns.values()] + [(a, None) for a in computed]
    )
    uid_paths = {lvl: PREFIXES[level][lvl] + UID_COLUMNS[lvl] for lvl in (ST, SE, IN) if lvl <= level}
    fields = frozenset({w[2] for w in writers if w[2]} | set(uid_paths.values()))
    return writers, uid_paths, fields, tuple(from_metadata)


def search(resource: Resource, query: QidoQuery, user, origin: str) -> Page:
    """Run the search; ``origin`` is scheme://host for RetrieveURL and BulkDataURI."""
    level = resource.level
    writers, uid_paths, fields, from_metadata = _plan(
        level, resource.scope, tuple(a.tag for a, _ in query.matches), tuple(query.include_tags), query.include_all)
    needs_metadata = bool(from_metadata) or query.include_all
    rows = None
    if level == ST and resource.scope is None and not needs_metadata:
        rows = rawsql.study_rows(query, user, fields, column_path)  # None: not a search it takes
    if rows is None:
        qs = base_queryset(resource, query, user)
        fields = set(fields)
        if needs_metadata:
            if level == IN:
                fields.add("metadata")
            else:
                qs = qs.annotate(**{REPRESENTATIVE: _representative(level)})
                fields.add(REPRESENTATIVE)
        rows = list(qs.values(*fields)[query.offset:query.offset + query.limit + 1])
    truncated = len(rows) > query.limit
    del rows[query.limit:]

    root = origin + DICOMWEB_ROOT
    per_row = {"00080056": ["ONLINE"]}
    results = []
    for row in rows:
        per_row["00081190"] = [_retrieve_url(root, row, uid_paths, level)]
        dataset = write_columns(row, writers, per_row)
        if needs_metadata and _add_metadata(dataset, row, level, list(from_metadata), query.include_all, origin):
            dataset = dict(sorted(dataset.items()))
        results.append(dataset)
    return Page(results=results, truncated=truncated)


def _retrieve_url(root: str, row: dict, uid_paths: dict[Level, str], level: Level) -> str:
    url = f"{root}/studies/{row[uid_paths[ST]]}"
    if level >= SE:
        url += f"/series/{row[uid_paths[SE]]}"
    if level == IN:
        url += f"/instances/{row[uid_paths[IN]]}"
    return url


def _add_metadata(dataset: dict, row: dict, level: Level, tags: list[str], everything: bool, origin: str) -> bool:
    """Add attributes read from the stored DICOM JSON (indexed columns win over it); True if any was added."""
    raw = row.get("metadata" if level == IN else REPRESENTATIVE)
    if not raw:
        return False
    metadata = orjson.loads(bytes(raw))
    size = len(dataset)
    for tag in tags:
        if tag not in dataset and tag in metadata:
            dataset[tag] = absolute_bulk(metadata[tag], origin)
    if everything:
        for tag, value in metadata.items():
            if tag in dataset or "BulkDataURI" in value or not in_level_module(int(tag, 16), level):
                continue
            dataset[tag] = value
    return len(dataset) > size
