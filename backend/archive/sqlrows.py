"""Plain SQL for the hottest index reads, with the ORM's column names and value conversions.

Building and compiling a queryset costs more CPU than running its statement (0.2-0.5 ms against tens of
microseconds for a small indexed read). The few reads every search or rendered image makes are written here
once per shape; rows come back as ``values()`` would give them: the same keys (``series__study__...``), and each
column passed through the converters Django applies (dates stored as text on SQLite, JSON columns decoded).
"""
from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connections
from django.db.models import Model


@dataclass(frozen=True, slots=True)
class Column:
    sql: str  # "table"."column", quoted for the database
    field: object  # the model field
    converters: tuple  # (col expression, Django converters)


@functools.lru_cache(maxsize=64)
def columns(alias: str, model: type[Model], relations: tuple[tuple[str, type[Model]], ...] = ()) -> dict[str, Column]:
    """Every concrete column of ``model`` and of the related ``(prefix, model)`` tables, keyed by the path
    ``values()`` uses ("pk", "storage_key", "series__series_instance_uid", ...)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    out: dict[str, Column] = {}
    for prefix, related in ((("", model),) + relations):
        table = related._meta.db_table
        for field in related._meta.concrete_fields:
            col = field.get_col(table)
            convert = tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            out[prefix + field.name] = Column(f"{quote(table)}.{quote(field.column)}", field, (col, convert))
        out[prefix + "pk"] = out[prefix + related._meta.pk.name]
    return out


def select_list(cols: dict[str, Column], paths: Iterable[str]) -> tuple[str, tuple[str, ...], tuple]:
    """SQL select list, the paths in that order, and their converters; KeyError for an unknown path."""
    paths = tuple(paths)
    chosen = [cols[p] for p in paths]
    return ", ".join(c.sql for c in chosen), paths, tuple(c.converters for c in chosen)


class Inline:
    """A read-only SQLite connection for reads made on the event loop (``archive.direct``), with a time budget:
    a statement still running when the budget is spent is interrupted (``sqlite3.OperationalError``), and the
    caller answers from a worker thread instead. Only SQLite: its reads are CPU work in this process."""

    def __init__(self, alias: str, connection, budget_s: float) -> None:
        self.alias, self.connection = alias, connection
        self.deadline = time.perf_counter() + budget_s
        connection.set_progress_handler(self._over_budget, 1000)  # checked every 1000 SQLite VM steps

    def _over_budget(self) -> int:
        return 1 if time.perf_counter() > self.deadline else 0

    def fetch(self, sql: str, params: Sequence) -> list[tuple]:
        from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

        if self._over_budget():
            raise sqlite3.OperationalError("interrupted: the inline budget is spent")
        cursor = self.connection.execute(FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%"), tuple(params))
        try:
            return cursor.fetchall()
        finally:
            cursor.close()


inline: ContextVar[Inline | None] = ContextVar("archive_sqlrows_inline", default=None)


def fetch(alias: str, sql: str, params: Sequence) -> list[tuple]:
    reader = inline.get()
    if reader is not None and reader.alias == alias:
        return reader.fetch(sql, params)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_dicts(alias: str, rows: list[tuple], paths: tuple[str, ...], converters: tuple) -> list[dict]:
    connection = connections[alias]
    out = []
    for row in rows:
        values = {}
        for path, value, (col, convert) in zip(paths, row, converters, strict=True):
            for converter in convert:
                value = converter(value, col, connection)
            values[path] = value
        out.append(values)
    return out
