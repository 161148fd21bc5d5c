"""The common QIDO-RS search, all studies, in plain SQL: the same statements the ORM path runs, without building
and compiling a queryset per request (about half of a small search's CPU time).

It takes a search at the study level with no UID in the path, by a user who sees every study, whose attributes
all come from index columns (no includefield that needs the stored DICOM JSON). Each match key is turned into
a filter by ``matching.match_filter``, the one definition of the matching rules; this module only translates
the few lookups those filters use (=, IN, >=, <=, IS NULL, LIKE for ``contains``, and the DICOM wild card
through ``matching.wildcard_sql``) with the operators and value conversions of Django's own backend, and
follows ``search.base_queryset`` step by step (SQLite's narrowing, patient keys through the patient table).
Anything else returns None and the ORM path answers. ``tests/archive/test_qido.py`` checks that both
paths give the same rows for a battery of searches, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import functools
import os

from django.db import connections
from django.db.models import F, Q
from django.db.models.functions import Upper

from accounts.access import visible_study_uids

from .. import sqlrows
from ..models import Patient, Study
from .attributes import Level
from .matching import DicomWildcard, match_filter, wildcard_sql
from .params import QidoQuery

ST, P = Level.STUDY, Level.PATIENT
# shared with the ORM path (search.py), so both plan a search the same way
NARROW_MAX = 1000  # matches beyond which a search walks the sort order instead (see search._narrowed)
PATIENT_LIST_MAX = 1000  # patients matched by patient keys beyond which the search joins instead
_OPERATORS = {"exact": "exact", "in": "in", "gte": "gte", "lte": "lte", "isnull": "isnull", "contains": "contains"}
# LIGHTBOX_QIDO_RAW_SQL=0 sends every search through the ORM (to compare, or to rule this path out)
ENABLED = os.environ.get("LIGHTBOX_QIDO_RAW_SQL", "1").strip().lower() not in {"0", "false", "no", "off"}


class Unsupported(Exception):
    """A filter this module does not translate: the ORM path answers."""


class _Tables:
    """Quoted table and column names of the study search, per database alias."""

    def __init__(self, alias: str) -> None:
        quote = connections[alias].ops.quote_name
        self.study = quote(Study._meta.db_table)
        self.patient = quote(Patient._meta.db_table)
        self.columns = sqlrows.columns(alias, Study, (("patient__", Patient),))
        self.patient_columns = sqlrows.columns(alias, Patient)
        self.order = (f"{self.columns['study_date'].sql} DESC NULLS LAST, {self.columns['study_time'].sql} DESC, "
                      f"{self.columns['pk'].sql} DESC")
        self.join = (f"{self.study} INNER JOIN {self.patient} ON "
                     f"({self.columns['patient'].sql} = {self.columns['patient__pk'].sql})")


@functools.lru_cache(maxsize=8)
def _tables(alias: str) -> _Tables:
    return _Tables(alias)


@functools.lru_cache(maxsize=256)
def _select(alias: str, fields: frozenset[str]) -> tuple[str, tuple[str, ...], tuple]:
    try:
        return sqlrows.select_list(_tables(alias).columns, sorted(fields))
    except KeyError as exc:
        raise Unsupported(str(exc)) from None


def _where(q: Q, columns: dict, connection) -> tuple[str, list]:
    """SQL for a filter built by ``match_filter`` (the subset of lookups it uses), as Django writes it."""
    if q.negated:
        raise Unsupported("negated")
    parts, params = [], []
    for child in q.children:
        if isinstance(child, Q):
            if not child.children:
                raise Unsupported("empty Q")
            sql, child_params = _where(child, columns, connection)
            sql = f"({sql})"
        elif isinstance(child, tuple):
            sql, child_params = _lookup(child[0], child[1], columns, connection)
        elif isinstance(child, DicomWildcard):
            sql, child_params = _wildcard(child, columns, connection)
        else:
            raise Unsupported(repr(child))
        parts.append(sql)
        params += child_params
    if not parts:
        raise Unsupported("empty Q")
    return f" {q.connector} ".join(parts), params


def _lookup(key: str, value, columns: dict, connection) -> tuple[str, list]:
    path, _, name = key.rpartition("__")
    if name not in _OPERATORS or not path:
        path, name = key, "exact"
    if path not in columns:
        raise Unsupported(path)
    column, field = columns[path].sql, columns[path].field
    ops = connection.ops
    lhs = ops.lookup_cast(name, field.get_internal_type()) % column
    if name == "isnull":
        if value is not True:
            raise Unsupported("isnull False")
        return f"{column} IS NULL", []
    if name == "in":
        values = list(dict.fromkeys(v for v in value if v is not None))  # as Django's In: no None, no repeats
        if not values:
            raise Unsupported("empty IN")
        prepped = [field.get_db_prep_value(field.get_prep_value(v), connection, prepared=True) for v in values]
        return f"{lhs} IN ({', '.join(['%s'] * len(prepped))})", prepped
    if value is None:
        raise Unsupported("None")
    if name == "contains":
        pattern = f"%{ops.prep_for_like_query(value)}%"
        return f"{lhs} {connection.operators['contains'] % '%s'}", [pattern]
    prepped = field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)
    return f"{lhs} {connection.operators[name] % '%s'}", [prepped]


def _wildcard(lookup: DicomWildcard, columns: dict, connection) -> tuple[str, list]:
    lhs = lookup.lhs
    upper = isinstance(lhs, Upper)
    if upper:
        (lhs,) = lhs.get_source_expressions()
    if not isinstance(lhs, F) or lhs.name not in columns or not isinstance(lookup.rhs, str):
        raise Unsupported(repr(lookup))
    column = columns[lhs.name].sql
    return wildcard_sql(f"UPPER({column})" if upper else column, "%s", [lookup.rhs], connection.vendor)


def study_rows(query: QidoQuery, user, fields: set[str], column_path) -> list[dict] | None:
    """The rows ``search.search`` would fetch for a study search with no path UIDs (``limit + 1`` of them from
    ``offset``), or None when this search must take the ORM path."""
    if not ENABLED:
        return None
    alias = Study.objects.db
    connection = connections[alias]
    if visible_study_uids(user) is not None:
        return None  # only granted studies: the ORM path (and its subquery) answers
    tables = _tables(alias)
    try:
        select, paths, converters = _select(alias, frozenset(fields))
        narrow = connection.vendor == "sqlite"  # as base_queryset: SQLite, no UID in the path
        where: list[str] = []
        params: list = []
        patient_keys: list[Q] = []
        for attribute, value in query.matches:
            q = match_filter(attribute, column_path(attribute, P if attribute.level == P else ST), value,
                             fuzzy=query.fuzzy, empty=query.empty_value_matching)
            if q is None:
                continue
            if attribute.level == P:
                patient_keys.append(q)
                continue
            sql, ps = _where(q, tables.columns, connection)
            where.append(f"({sql})")
            params += ps
            if attribute.keyword == "StudyDate":
                narrow = False
        if patient_keys:
            combined = Q()
            for q in patient_keys:
                combined &= q
            patient_sql, patient_params = _where(combined, tables.patient_columns, connection)
            patients = None
            if narrow:
                found = sqlrows.fetch(alias, f"SELECT {tables.patient_columns['pk'].sql} FROM {tables.patient} "
                             f"WHERE {patient_sql} LIMIT {PATIENT_LIST_MAX + 1}", patient_params)
                if len(found) <= PATIENT_LIST_MAX:
                    patients = [row[0] for row in found]
            if patients is None:  # many patients: join, and walk the sort order
                where.append(f"({patient_sql})")  # the same columns, reached through the join
                params += patient_params
                narrow = False
            elif not patients:
                return []
            else:
                where.append(f"{tables.columns['patient'].sql} IN ({', '.join(['%s'] * len(patients))})")
                params += patients
    except Unsupported:
        return None
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if where and narrow:
        pk = tables.columns["pk"].sql
        ids = sqlrows.fetch(alias, f"SELECT {pk} FROM {tables.study}{clause} LIMIT {NARROW_MAX + 1}", params)
        if len(ids) <= NARROW_MAX:
            if not ids:
                return []
            clause = f" WHERE {pk} IN ({', '.join(['%s'] * len(ids))})"
            params = [row[0] for row in ids]
    limit = f" LIMIT {query.limit + 1}" + (f" OFFSET {query.offset}" if query.offset else "")
    rows = sqlrows.fetch(alias, f"SELECT {select} FROM {tables.join}{clause} ORDER BY {tables.order}{limit}", params)
    return sqlrows.as_dicts(alias, rows, paths, converters)
