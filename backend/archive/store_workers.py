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


def _store(path: Path, expected_study_uid: str | None, consume: bool) -> StoreOutcome:
    release_connections()
    try:
        return store_files([path], expected_study_uid=expected_study_uid, consume=consume,
                           parse_in_processes=True)[0]
    except Exception as exc:  # the database or the store itself failed: the sender may try again later
        logger.exception("storing %s failed", path)
        return StoreOutcome(status="failed", reason=f"Processing failure: {exc}"[:200],
                            code=FailureReason.PROCESSING_FAILURE)
    finally:
        release_connections()
        if consume:
            path.unlink(missing_ok=True)


def store_one(path: Path, *, expected_study_uid: str | None = None, consume: bool = True) -> StoreOutcome:
    """Store one file in a worker and wait for the outcome. Never raises for bad input or a failing index."""
    return _executor().submit(_store, path, expected_study_uid, consume).result()


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
