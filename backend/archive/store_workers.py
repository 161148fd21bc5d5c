"""A small pool of long-lived threads that run :func:`archive.ingest.store_file` for STOW-RS and C-STORE.

Why a pool: storing an instance is part CPU (parsing, done in :mod:`archive.parse_pool`'s processes) and part
waiting (fsync, the database commit); four workers overlap several requests' or associations' waits and parses.
Why few and long-lived: every request or association shares them, which bounds the writers the database sees,
and their database connections are reused rather than opened per association and leaked with its thread.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .dbconn import release_connections
from .dicom import FailureReason
from .ingest import StoreOutcome, store_files

logger = logging.getLogger(__name__)

MIN_BATCH = 16
WORKERS = 4  # parsing runs in archive.parse_pool's processes: the workers mostly wait (disk, database)
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="lightbox-store")
        return _pool


_waiting: list[tuple[Path, str | None, bool, Future]] = []  # single files (C-STORE) not yet taken by a worker
_waiting_lock = threading.Lock()
GROUP_MAX = 32


def store_one(path: Path, *, expected_study_uid: str | None = None, consume: bool = True) -> StoreOutcome:
    """Store one file in a worker and wait for the outcome. Never raises for bad input or a failing index.

    Files that arrive while every worker is busy (several associations sending at once) are stored together by
    the next free worker, as one batch (one transaction, one lookup per series): a group commit.
    """
    future: Future = Future()
    with _waiting_lock:
        _waiting.append((path, expected_study_uid, consume, future))
    _executor().submit(_store_waiting)
    return future.result()


def _store_waiting() -> None:
    """Take the files waiting with the same options as the first one, store them as one batch."""
    with _waiting_lock:
        if not _waiting:
            return  # another worker took them
        key = _waiting[0][1:3]
        group = [item for item in _waiting if item[1:3] == key][:GROUP_MAX]
        for item in group:
            _waiting.remove(item)
    try:
        outcomes = _store_batch([path for path, *_ in group], key[0], key[1])
    except BaseException as exc:
        for *_, future in group:
            future.set_exception(exc)
        raise
    for (*_, future), outcome in zip(group, outcomes, strict=True):
        future.set_result(outcome)


def store_all(paths: list[Path], *, expected_study_uid: str | None = None, consume: bool = True,
              ) -> list[StoreOutcome]:
    """Store files, outcomes in the order of ``paths``: in batches of at least ``MIN_BATCH`` files, each indexed
    in one transaction (:func:`archive.ingest.store_files`); the batches of a large request go to several workers.
    Parsing is spread over the parse processes whatever the batch size, so small batches would only add
    database round trips."""
    size = max(MIN_BATCH, -(-len(paths) // WORKERS))
    batches = [paths[i:i + size] for i in range(0, len(paths), size)]
    futures = [_executor().submit(_store_batch, batch, expected_study_uid, consume) for batch in batches]
    return [outcome for future in futures for outcome in future.result()]


def _store_batch(paths: list[Path], expected_study_uid: str | None, consume: bool) -> list[StoreOutcome]:
    release_connections()
    try:
        return store_files(paths, expected_study_uid=expected_study_uid, consume=consume, parse_in_processes=True)
    except Exception as exc:
        logger.exception("storing a batch of %d files failed", len(paths))
        return [StoreOutcome(status="failed", reason=f"Processing failure: {exc}"[:200],
                             code=FailureReason.PROCESSING_FAILURE) for _ in paths]
    finally:
        release_connections()
        if consume:
            for path in paths:
                path.unlink(missing_ok=True)


def run_in_worker(fn: Callable[..., Any], *args: Any) -> Future:
    """Run follow-up work that needs the database (notifications) in a worker; exceptions are logged."""

    def job() -> Any:
        release_connections()
        try:
            return fn(*args)
        except Exception:
            logger.exception("background work %s failed", getattr(fn, "__name__", fn))
        finally:
            release_connections()

    return _executor().submit(job)
