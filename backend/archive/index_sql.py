"""The index write of a batch of instances in a few plain SQL statements, in the caller's transaction.

Why: the ORM's ``get_or_create``, ``bulk_create`` and ``F()`` updates spent more of the web process's CPU building
and compiling queries than the database spent running them (half of STOW-RS's index time under 4 clients).
Here patients, studies and series are read with one statement each per batch, instances go in with one insert,
and each series and study gets one counter update. The rows are those the ORM wrote: every value goes through
its field's ``get_db_prep_save`` unless it already has the column's plain type (str, int, float, None); missing
values take the field's default, ``auto_now``/``auto_now_add`` columns the batch's time. Concurrency is kept as
``get_or_create`` kept it: a new patient, study or series row is inserted with ``ON CONFLICT DO NOTHING`` (which
waits for a concurrent insert of the same key) and then read back; counters are added in the database
(``x = x + n``); modalities are appended to the value read ``FOR UPDATE``.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connections, models
from django.utils import timezone

from .dicom import DicomError, FailureReason, ParsedInstance
from .models import Instance, Patient, Series, Study

INSERT_ROWS = 200  # instance rows per multi-row INSERT (PostgreSQL; SQLite uses executemany)
IN_CHUNK = 500  # values per IN (...) list
OR_CHUNK = 100  # patient identities per OR list


@dataclass(slots=True)
class Item:
    """One instance to index: its parse, its storage key and its file size."""

    parsed: ParsedInstance
    key: str
    size: int


_PLAIN = ((models.CharField, str), (models.IntegerField, int), (models.FloatField, float),
          (models.ForeignKey, int))


@dataclass(frozen=True, slots=True)
class _Table:
    """A model's table: quoted names, and its non-pk fields in insert order with their plain value type."""

    name: str
    quote: Any
    fields: tuple[tuple[models.Field, type | None], ...]
    insert_columns: str

    def col(self, name: str) -> str:
        return self.quote(name)


@functools.lru_cache(maxsize=16)
def _table(alias: str, model: type[models.Model]) -> _Table:
    quote = connections[alias].ops.quote_name
    fields = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        plain = next((t for cls, t in _PLAIN if isinstance(field, cls)), None)
        fields.append((field, plain))
    return _Table(quote(model._meta.db_table), quote, tuple(fields),
                  ", ".join(quote(f.column) for f, _ in fields))


def _row(alias: str, table: _Table, values: dict[str, Any], now: _Clock) -> list[Any]:
    """Insert parameters for one row, converted as ``Model.save``/``bulk_create`` convert them."""
    connection = connections[alias]
    out = []
    for field, plain in table.fields:
        if field.attname in values:
            value = values[field.attname]
        elif field.name in values:
            value = values[field.name]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            out.append(now.value(connection, field))
            continue
        else:
            value = field.get_default()
        if value is not None and (plain is None or type(value) is not plain):
            value = field.get_db_prep_save(value, connection)
        out.append(value)
    return out


class _Clock:
    """The batch's time (``auto_now``/``auto_now_add``), converted once per column: every row shares it."""

    def __init__(self) -> None:
        self.now = timezone.now()
        self._db: dict[models.Field, Any] = {}

    def value(self, connection, field: models.Field) -> Any:
        if field not in self._db:
            self._db[field] = field.get_db_prep_save(self.now, connection)
        return self._db[field]


def _fetch(alias: str, sql: str, params: Sequence[Any]) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(alias: str, sql: str, params: Sequence[Any]) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _select_in(alias: str, select: str, column: str, values: Sequence[Any]) -> list[tuple]:
    rows: list[tuple] = []
    for i in range(0, len(values), IN_CHUNK):
        chunk = values[i:i + IN_CHUNK]
        rows += _fetch(alias, f"{select} WHERE {column} IN ({', '.join(['%s'] * len(chunk))})", chunk)
    return rows


def held_instances(alias: str, sop_instance_uids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{sop_instance_uid: (sha256, storage_key)}`` of those already indexed."""
    if not sop_instance_uids:
        return {}
    t = _table(alias, Instance)
    uid = t.col("sop_instance_uid")
    rows = _select_in(alias, f"SELECT {uid}, {t.col('sha256')}, {t.col('storage_key')} FROM {t.name}", uid,
                      list(sop_instance_uids))
    return {u: (sha, key) for u, sha, key in rows}


def _insert_or_get(alias: str, table: _Table, row: list[Any], where: str, key: Sequence[Any]) -> tuple[int, bool]:
    """``get_or_create`` after a failed get: insert unless a concurrent store did, then read the id."""
    created = _execute(alias, f"INSERT INTO {table.name} ({table.insert_columns}) "
                              f"VALUES ({', '.join(['%s'] * len(row))}) ON CONFLICT DO NOTHING", row) == 1
    found = _fetch(alias, f"SELECT {table.col('id')} FROM {table.name} WHERE {where}", key)
    if not found:
        raise IntegrityError(f"{table.name}: the row for {list(key)} was neither inserted nor found")
    return found[0][0], created


@dataclass(slots=True)
class _StudyState:
    pk: int
    modalities: str  # as read (or created): the ORM's study.modalities_in_study
    instances: int = 0
    series: int = 0
    groups: list[set[str]] | None = None


class _Batch:
    """The rows of one batch, looked up once and created when missing, in the order the ORM path took."""

    def __init__(self, alias: str, groups: list[list[Item]], now: _Clock) -> None:
        self.alias, self.now = alias, now
        self.patient_t, self.study_t = _table(alias, Patient), _table(alias, Study)
        self.series_t = _table(alias, Series)
        firsts = [items[0].parsed for items in groups]
        self.patients = self._patients({(p.patient["patient_id"], p.patient["issuer_of_patient_id"]) for p in firsts})
        st, se = self.study_t, self.series_t
        self.studies = {uid: _StudyState(pk, mods) for pk, uid, mods in _select_in(
            alias, f"SELECT {st.col('id')}, {st.col('study_instance_uid')}, {st.col('modalities_in_study')} "
                   f"FROM {st.name}", st.col("study_instance_uid"), sorted({p.study_instance_uid for p in firsts}))}
        self.series = {uid: (pk, study_pk) for pk, uid, study_pk in _select_in(
            alias, f"SELECT {se.col('id')}, {se.col('series_instance_uid')}, {se.col('study_id')} FROM {se.name}",
            se.col("series_instance_uid"), sorted({p.series_instance_uid for p in firsts}))}

    def _patients(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], list]:
        t = self.patient_t
        pid, issuer = t.col("patient_id"), t.col("issuer_of_patient_id")
        keys_list, rows = sorted(keys), []
        for n in range(0, len(keys_list), OR_CHUNK):  # SQLite's expression depth is limited (1000)
            chunk = keys_list[n:n + OR_CHUNK]
            where = " OR ".join([f"({pid} = %s AND {issuer} = %s)"] * len(chunk))
            rows += _fetch(self.alias, f"SELECT {t.col('id')}, {pid}, {issuer}, {t.col('patient_name')} "
                                       f"FROM {t.name} WHERE {where}", [v for key in chunk for v in key])
        return {(p, i): [pk, name] for pk, p, i, name in rows}

    def patient(self, p: dict[str, str]) -> int:
        """``Patient.get_or_create`` by identity; a nameless row takes the values of one that has a name."""
        t, key = self.patient_t, (p["patient_id"], p["issuer_of_patient_id"])
        held = self.patients.get(key)
        if held is None:
            pk, created = _insert_or_get(self.alias, t, _row(self.alias, t, p, self.now),
                                         f"{t.col('patient_id')} = %s AND {t.col('issuer_of_patient_id')} = %s", key)
            if created:
                self.patients[key] = [pk, p["patient_name"]]
                return pk
            held = self.patients[key] = [pk, _fetch(self.alias, f"SELECT {t.col('patient_name')} FROM {t.name} "
                                                                f"WHERE {t.col('id')} = %s", [pk])[0][0]]
        if not held[1] and p["patient_name"]:
            sets = ", ".join(f"{t.col(f.column)} = %s" for f, _ in t.fields if f.name in p)
            values = [v for (f, _), v in zip(t.fields, _row(self.alias, t, p, self.now), strict=True) if f.name in p]
            _execute(self.alias, f"UPDATE {t.name} SET {sets} WHERE {t.col('id')} = %s", [*values, held[0]])
            held[1] = p["patient_name"]
        return held[0]

    def study(self, parsed: ParsedInstance, patient_pk: int) -> _StudyState:
        uid = parsed.study_instance_uid
        state = self.studies.get(uid)
        if state is None:
            t = self.study_t
            row = _row(self.alias, t, {**parsed.study, "patient_id": patient_pk}, self.now)
            pk, created = _insert_or_get(self.alias, t, row, f"{t.col('study_instance_uid')} = %s", [uid])
            mods = "" if created else _fetch(self.alias, f"SELECT {t.col('modalities_in_study')} FROM {t.name} "
                                                         f"WHERE {t.col('id')} = %s", [pk])[0][0]
            state = self.studies[uid] = _StudyState(pk, mods)
        return state

    def series_row(self, parsed: ParsedInstance, study_pk: int) -> tuple[int, int, bool]:
        """``(series pk, its study's pk, created)``."""
        uid = parsed.series_instance_uid
        held = self.series.get(uid)
        if held is not None:
            return held[0], held[1], False
        t = self.series_t
        row = _row(self.alias, t, {**parsed.series, "study_id": study_pk}, self.now)
        pk, created = _insert_or_get(self.alias, t, row, f"{t.col('series_instance_uid')} = %s", [uid])
        study_of = study_pk if created else _fetch(self.alias, f"SELECT {t.col('study_id')} FROM {t.name} "
                                                               f"WHERE {t.col('id')} = %s", [pk])[0][0]
        self.series[uid] = (pk, study_of)
        return pk, study_of, created


def index_batch(items: Sequence[Item], *, using: str = "default") -> None:
    """Index instances in the caller's transaction. Raises ``DicomError`` for a series that belongs to another
    study (or a series spread over studies), ``IntegrityError`` for a SOP Instance UID or key already held."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.parsed.series_instance_uid, []).append(item)
    if not groups:
        return
    now = _Clock()
    batch = _Batch(using, list(groups.values()), now)
    rows: list[list[Any]] = []
    series_added: dict[int, int] = {}
    touched: list[_StudyState] = []
    inst_t = _table(using, Instance)
    for series_items in groups.values():
        first = series_items[0].parsed
        study = batch.study(first, batch.patient(first.patient))
        series_pk, study_of, created = batch.series_row(first, study.pk)
        if study_of != study.pk:
            raise DicomError(f"Series {first.series_instance_uid} already belongs to another study.",
                             FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
        if any(i.parsed.study_instance_uid != first.study_instance_uid for i in series_items):
            raise DicomError("A series is spread over several studies.", FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS)
        for i in series_items:
            # sha256 is left empty: a re-sent copy is compared with the stored file (dicom.digest)
            rows.append(_row(using, inst_t, {**i.parsed.instance, "series_id": series_pk, "storage_key": i.key,
                                             "file_size": i.size, "sha256": "", "metadata": i.parsed.metadata_json,
                                             "frame_index": i.parsed.frame_index}, now))
        series_added[series_pk] = series_added.get(series_pk, 0) + len(series_items)
        if study.groups is None:
            study.groups = []
            touched.append(study)
        study.instances += len(series_items)
        study.series += int(created)
        study.groups.append({i.parsed.series["modality"] for i in series_items})
    _insert_instances(using, inst_t, rows)
    _count(using, batch, series_added, touched)


def _insert_instances(alias: str, t: _Table, rows: list[list[Any]]) -> None:
    connection = connections[alias]
    one = f"({', '.join(['%s'] * len(t.fields))})"
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":  # executemany prepares once and has no parameter limit
            cursor.executemany(f"INSERT INTO {t.name} ({t.insert_columns}) VALUES {one}", rows)
            return
        for i in range(0, len(rows), INSERT_ROWS):
            chunk = rows[i:i + INSERT_ROWS]
            cursor.execute(f"INSERT INTO {t.name} ({t.insert_columns}) VALUES {', '.join([one] * len(chunk))}",
                           [v for row in chunk for v in row])


def _count(alias: str, batch: _Batch, series_added: dict[int, int], studies: Iterable[_StudyState]) -> None:
    """Counters added in the database; modalities appended in the order the series came, each series' sorted."""
    se, st = batch.series_t, batch.study_t
    n_inst = se.col("number_of_series_related_instances")
    for pk, added in sorted(series_added.items()):
        _execute(alias, f"UPDATE {se.name} SET {n_inst} = {n_inst} + %s WHERE {se.col('id')} = %s", [added, pk])
    lock = " FOR UPDATE" if connections[alias].features.has_select_for_update else ""
    mods_col, s_inst = st.col("modalities_in_study"), st.col("number_of_study_related_instances")
    s_series = st.col("number_of_study_related_series")
    for study in sorted(studies, key=lambda s: s.pk):
        sets = [f"{s_inst} = {s_inst} + %s"]
        params: list[Any] = [study.instances]
        if study.series:
            sets.append(f"{s_series} = {s_series} + %s")
            params.append(study.series)
        groups = study.groups or []
        if any(m and f"\\{m}\\" not in study.modalities for g in groups for m in g):
            current = _fetch(alias, f"SELECT {mods_col} FROM {st.name} WHERE {st.col('id')} = %s{lock}",
                             [study.pk])[0][0]
            updated = current
            for g in groups:
                missing = sorted(m for m in g if m and f"\\{m}\\" not in updated)
                if missing:
                    updated = (updated or "\\") + "".join(f"{m}\\" for m in missing)
            if updated != current:
                sets.append(f"{mods_col} = %s")
                params.append(updated)
        _execute(alias, f"UPDATE {st.name} SET {', '.join(sets)} WHERE {st.col('id')} = %s", [*params, study.pk])
