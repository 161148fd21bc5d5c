"""Write audit records. High-rate actions (frames, thumbnails) are coalesced per user, study and client.

In the web server (``lightbox.asgi`` calls :func:`start_background_writer`) a request does not wait for its
audit insert: :func:`record` stamps the event (who, what, when, from where) and queues it, and a writer thread
inserts what has queued in one transaction a few milliseconds later (``FLUSH_DELAY``; under load, many
requests' events share one insert and one commit). Nothing queued is dropped: :func:`flush` writes everything
queued and waits for inserts in flight (the audit trail API calls it before reading), the server flushes at
shutdown (ASGI lifespan, ``lightbox.lifespan``) and at exit, and an event recorded after that is written at once. A batch the database refuses is retried event by
event, and an event that still fails is logged with its content. Elsewhere (Celery workers, ``manage.py``
commands, tests in process) every event is inserted before :func:`record` returns, as before.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

from django.core.cache import cache
from django.core.exceptions import SynchronousOnlyOperation
from django.db import close_old_connections, connections, router, transaction
from django.utils import timezone

from lightbox.conf import lightbox_setting

from .models import AuditEvent

logger = logging.getLogger(__name__)

# seconds an event may wait for others to share its insert (what a crash of the process could lose); the tests
# set it long to show that nothing queued is lost at exit
FLUSH_DELAY = float(os.environ.get("LIGHTBOX_AUDIT_FLUSH_SECONDS", "0.02"))
MAX_BATCH = 500
_COLUMNS = ("time", "user_id", "username", "action", "study_instance_uid", "series_instance_uid", "source_ip",
            "outcome", "detail")
Event = tuple  # values in _COLUMNS order


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(
    user,
    action: str,
    *,
    request=None,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    outcome: str = "success",
    coalesce: bool = False,
    **detail,
) -> None:
    """Store one audit event. With ``coalesce``, repeats within AUDIT_COALESCE_SECONDS are written once."""
    ip = client_ip(request)
    user_id = getattr(user, "pk", None)
    if coalesce:
        key = f"audit:{action}:{user_id}:{study_instance_uid}:{series_instance_uid}:{ip}"
        if not cache.add(key, 1, lightbox_setting("AUDIT_COALESCE_SECONDS")):
            return
    event = (timezone.now(), user_id, getattr(user, "username", "") or "", action, study_instance_uid or "",
             series_instance_uid or "", ip, outcome, detail)
    writer = _writer
    if writer is not None and writer.add(event):
        return
    _write([event])


def flush() -> None:
    """Write every queued event now and wait for inserts in flight (before reading the audit trail)."""
    if _writer is not None:
        _writer.flush()


def start_background_writer() -> None:
    """Queue events of this process for the writer thread (the web server); idempotent."""
    global _writer
    with _start_lock:
        if _writer is None:
            _writer = _BackgroundWriter()
            atexit.register(_writer.close)


def stop_background_writer() -> None:
    """Write what is queued; from now on each event is written by its caller (server shutdown)."""
    if _writer is not None:
        _writer.close()


# ------------------------------------------------------------------ inserting


def _insert_sql(connection) -> str:
    quote = connection.ops.quote_name
    fields = [AuditEvent._meta.get_field(name) for name in _COLUMNS]
    columns = ", ".join(quote(f.column) for f in fields)
    return (f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})")


def _db_row(event: Event, connection) -> list[Any]:
    return [AuditEvent._meta.get_field(name).get_db_prep_save(value, connection)
            for name, value in zip(_COLUMNS, event, strict=True)]


def _write(events: list[Event]) -> None:
    """Insert ``events`` in one transaction; on failure one by one, so one bad event cannot lose the others.
    Never raises: an audit failure is logged loudly, never turned into a lost response."""
    if not events:
        return
    alias = router.db_for_write(AuditEvent)
    connection = connections[alias]
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.executemany(_insert_sql(connection), [_db_row(e, connection) for e in events])
        return
    except SynchronousOnlyOperation:
        raise  # called on an event loop (archive.direct's inline reads): the caller retries in a thread
    except Exception:
        if len(events) == 1:
            _write_one(events[0], alias)
            return
        logger.warning("audit batch of %d events failed; writing them one by one", len(events), exc_info=True)
    for event in events:
        _write_one(event, alias)


def _write_one(event: Event, alias: str) -> None:
    connection = connections[alias]
    for attempt in (event, (*event[:1], None, *event[2:])):  # the user deleted meanwhile: keep the username
        try:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                cursor.execute(_insert_sql(connection), _db_row(attempt, connection))
            return
        except Exception:
            if attempt[1] is None or event[1] is None:
                break
    logger.exception("could not write audit event %s", dict(zip(_COLUMNS, event, strict=True)))


class _BackgroundWriter:
    """One daemon thread that inserts queued events in batches (group commit)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending: list[Event] = []
        self.in_flight = 0
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self.thread.start()

    def add(self, event: Event) -> bool:
        """Queue ``event``; False once closed (the caller then writes it itself)."""
        with self.cond:
            if self.closed:
                return False
            self.pending.append(event)
            if len(self.pending) == 1 or len(self.pending) >= MAX_BATCH:
                self.cond.notify_all()
        return True

    def _take(self) -> list[Event]:
        batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
        self.in_flight += 1
        return batch

    def _done(self) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
            time.sleep(FLUSH_DELAY)  # let the events of concurrent requests join this batch
            with self.cond:
                batch = self._take()
            try:
                close_old_connections()
                _write(batch)
            finally:
                self._release()
                self._done()

    @staticmethod
    def _release() -> None:
        """Hand a pooled connection back (PostgreSQL); keep SQLite's (closing it checkpoints the WAL)."""
        for connection in connections.all(initialized_only=True):
            if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
                connection.close()

    def flush(self) -> None:
        while True:
            with self.cond:
                if not self.pending:
                    while self.in_flight:
                        self.cond.wait()
                    return
                batch = self._take()
            try:
                _write(batch)
            finally:
                self._done()

    def close(self) -> None:
        """At exit: write what is queued; later events are written by their callers."""
        with self.cond:
            self.closed = True
        try:
            self.flush()
        finally:
            self._release()


_writer: _BackgroundWriter | None = None
_start_lock = threading.Lock()
