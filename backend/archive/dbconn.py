"""Database connections in the archive's long-lived threads (store workers, the fast path's executor).

Django opens and closes connections around each request; threads outside a request must do it themselves.
Two cases: with PostgreSQL's connection pool (``OPTIONS["pool"]``), closing hands the connection back to the
pool (microseconds), so a thread gives it back after every job and never sits on one of the pool's slots; with
SQLite, closing the last connection checkpoints the WAL (tens of ms), so the thread keeps its connection unless
it failed or outlived a positive CONN_MAX_AGE.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


def _pooled(conn) -> bool:
    return bool(conn.settings_dict.get("OPTIONS", {}).get("pool"))


def release_connections() -> None:
    """Before and after a job: hand pooled connections back, drop broken or expired ones, keep the rest."""
    for conn in connections.all(initialized_only=True):
        if _pooled(conn):
            if conn.connection is not None and not conn.in_atomic_block:
                conn.close()
        elif conn.settings_dict.get("CONN_MAX_AGE") != 0:
            conn.close_if_unusable_or_obsolete()
        elif conn.connection is not None and conn.errors_occurred and not conn.is_usable():
            conn.close()


def with_connection(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in this thread with a healthy connection, released afterwards as above."""
    release_connections()
    try:
        return fn(*args)
    finally:
        release_connections()
