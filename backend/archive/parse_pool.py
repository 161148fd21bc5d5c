"""Parse incoming DICOM files in a few worker processes, so that ingest uses more than one core.

Parsing and checking a file (:func:`archive.dicom.parse_file`) is pure Python under the GIL: about 3-5 ms of CPU
for a 512x512 CT slice, most of what one instance costs to store. In one process every STOW request and C-STORE
association takes turns on one core, however many threads serve them. The parse is Django-free and returns a
small picklable record, so it runs here in ``LIGHTBOX_PARSE_PROCESSES`` processes (default: the number of cores,
at most 4; 0 parses in the calling thread). Files are read by path: nothing large crosses the process boundary.

STOW-RS starts checking each part as soon as it is staged (:func:`check_soon`), so parsing overlaps the upload.
A staging file that is to be moved into the store is also made durable there (``sync``: ``fsync`` once it has
parsed), so that by the time its request has been read, its files only need renaming.

Anything wrong with the pool (cannot start, a process died) falls back to parsing in the calling thread, so an
instance is never refused because of the pool.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from .dicom import DicomError, FailureReason, ParsedInstance, parse_file

logger = logging.getLogger(__name__)

_pool: ProcessPoolExecutor | None = None
_pool_failed = False
_lock = threading.Lock()
_early: dict[tuple, Future] = {}  # staging path -> its check, started while the request was still arriving
EARLY_MAX = 4096


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of parsing one file: ``parsed`` when it can be stored, else the refusal."""

    parsed: ParsedInstance | None = None
    reason: str = ""
    code: int = 0
    unreadable: bool = False  # an OSError reading the file (a storage problem, not a bad instance)
    synced: bool = False  # the file's content is durable (fsync done after it was parsed)


def check_file(path: str | os.PathLike, sync: bool = False) -> Checked:
    """Parse and check one file (in whichever process runs it); ``sync``: then ``fsync`` it, when it can be
    stored."""
    try:
        parsed = parse_file(path)
    except DicomError as exc:
        return Checked(reason=exc.reason, code=int(exc.code))
    try:
        if sync:
            fsync_path(path)
        return Checked(parsed=parsed, synced=sync)
    except OSError as exc:
        return Checked(parsed=parsed, reason=f"The file cannot be read: {exc.strerror or exc}",
                       code=int(FailureReason.PROCESSING_FAILURE), unreadable=True)


def _init_process() -> None:
    """In each parse process: pydicom's value checks on reading only warn, and parse_file ignores warnings;
    skipping them saves 5% of a parse. Values that cannot be decoded still fail as before."""
    import pydicom.config

    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def processes() -> int:
    value = os.environ.get("LIGHTBOX_PARSE_PROCESSES", "").strip()
    if value:
        return max(0, int(value))
    return min(4, os.cpu_count() or 1)


def _executor() -> ProcessPoolExecutor | None:
    global _pool, _pool_failed
    with _lock:
        if _pool is not None or _pool_failed:
            return _pool
        count = processes()
        if count < 1 or multiprocessing.current_process().daemon:  # e.g. a Celery prefork child: no children
            _pool_failed = True
            return None
        try:
            # forkserver: children start from a clean process, not a copy of this threaded server; it imports
            # the parser once, so each child starts at once (the first request after a restart waited seconds)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["archive.dicom.parse", "archive.parse_pool"])
            _pool = ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=_init_process)
        except Exception:
            logger.exception("cannot start the parse processes; parsing in threads")
            _pool_failed = True
        return _pool


def fsync_path(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_soon(path: Path) -> None:
    """Start checking a finished staging file now, while the rest of its request is still arriving, and make
    it durable when it can be stored (``sync``); :func:`check_files` picks the result up. Whoever calls this
    must later pass the path to :func:`check_files` or :func:`forget`."""
    pool = _executor()
    if pool is None:
        return
    try:
        future = pool.submit(check_file, str(path), True)
    except (BrokenProcessPool, RuntimeError):
        return
    with _lock:
        if len(_early) >= EARLY_MAX:  # callers that never came back: drop them rather than grow
            _early.clear()
        _early[_identity(path)] = future


def _identity(path: Path) -> tuple:
    """The path and what it holds (inode, size, modification time): a result is only used for the same file."""
    try:
        st = os.stat(path)
    except OSError:
        return (str(path),)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def forget(path: Path) -> None:
    """A staged file that will not be stored after all (the request was refused)."""
    with _lock:
        future = _early.pop(_identity(path), None)
    if future is not None:
        future.cancel()


def check_files(paths: list[Path], sync: bool = False) -> list[Checked]:
    """:func:`check_file` for each path, in order, spread over the parse processes when there are some.
    Results of :func:`check_soon` are used where there are some (those files are synced whatever ``sync``)."""
    pool = _executor()
    if pool is None or not paths:
        return [check_file(p, sync) for p in paths]
    try:
        keys = [_identity(p) for p in paths]
        with _lock:
            early = [_early.pop(key, None) for key in keys]
        futures: list[Future] = [f or pool.submit(check_file, str(p), sync) for p, f in zip(paths, early, strict=True)]
    except (BrokenProcessPool, RuntimeError):
        _reset(pool)
        return [check_file(p, sync) for p in paths]
    out = []
    for path, future in zip(paths, futures, strict=True):
        try:
            out.append(future.result())
        except BrokenProcessPool:
            _reset(pool)
            out.append(check_file(path, sync))
        except Exception:  # pickling or an unexpected failure in the child: do it here, with the same rules
            logger.exception("parse process failed on %s; parsing in this thread", path)
            out.append(check_file(path, sync))
    return out


def _reset(pool: ProcessPoolExecutor) -> None:
    """A child died: drop the broken pool; the next call starts a new one."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
