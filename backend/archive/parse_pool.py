"""Parse incoming DICOM files in a few worker processes, so that ingest uses more than one core.

Parsing and checking a file (:func:`archive.dicom.parse_file`) is pure Python under the GIL: about 3-5 ms of CPU
for a 512x512 CT slice, most of what one instance costs to store. In one process every STOW request and C-STORE
association takes turns on one core, however many threads serve them. The parse is Django-free and returns a
small picklable record, so it runs here in ``LIGHTBOX_PARSE_PROCESSES`` processes (default: the number of cores,
at most 4; 0 parses in the calling thread). Files are read by path: nothing large crosses the process boundary.

STOW-RS starts checking each part as soon as it is staged (:func:`check_soon`), so parsing overlaps the upload.
A staging file that is to be moved into the store is also made durable there (``sync``: ``fsync`` once it has
parsed), so that by the time its request has been read, its files only need renaming.

Why not ``ProcessPoolExecutor``: its queue-management and feeder threads cost about four thread wake-ups (GIL
hand-offs) per file in the web process, which is the busiest core under load. Here each process has a pipe of
requests, written by the caller's own thread, and a pipe of results, read by one small thread per process that
resolves the callers' futures: one wake-up per file.

Anything wrong with the pool (cannot start, a process died) falls back to parsing in the calling thread, so an
instance is never refused because of the pool; a process that died is replaced by the next call.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from .dicom import DicomError, FailureReason, ParsedInstance, parse_file

logger = logging.getLogger(__name__)

_pool: _Pool | None = None
_pool_failed = False
_exit_registered = False
_lock = threading.Lock()
_early: dict[str, Future] = {}  # staging path -> its check, started while the request was still arriving
EARLY_MAX = 4096
REPLACEMENTS_MAX = 16  # processes that died and were replaced; beyond that something kills them: stop trying


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of parsing one file: ``parsed`` when it can be stored, else the refusal."""

    parsed: ParsedInstance | None = None
    reason: str = ""
    code: int = 0
    unreadable: bool = False  # an OSError reading the file (a storage problem, not a bad instance)
    synced: bool = False  # the file's content is durable (fsync done after it was parsed)


class WorkerLost(Exception):
    """The parse process died (or the pool was shut down) before answering: parse in the calling thread."""


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


def _serve(requests: Connection, results: Connection) -> None:
    """A parse process: answer each request (a sync flag byte and the path) in order, until the server closes
    the pipe or says stop. SIGINT (Ctrl-C reaches the whole process group) is the server's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_process()
    while True:
        try:
            message = requests.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        try:
            result: Checked | str = check_file(os.fsdecode(message[1:]), message[:1] == b"1")
        except BaseException as exc:  # noqa: BLE001 - any failure goes back to the caller, which parses itself
            result = f"{type(exc).__name__}: {exc}"
        try:
            results.send(result)
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a result that does not pickle
            results.send(f"{type(exc).__name__}: {exc}")


class _Worker:
    """One parse process, the server's ends of its two pipes, and the futures it still owes, in order."""

    def __init__(self, process: multiprocessing.process.BaseProcess, requests: Connection, results: Connection):
        self.process = process
        self.requests = requests
        self.results = results
        self.pending: deque[Future] = deque()
        self.lock = threading.Lock()  # one writer at a time; pending in the order of the requests
        self.alive = True
        self.answered = 0
        self._reap_lock = threading.Lock()

    def reap(self, timeout: float) -> None:
        """Wait for the process to end, killing it after ``timeout``; one thread at a time reads its exit."""
        with self._reap_lock:
            self.process.join(timeout=timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=timeout)

    def submit(self, path: str, sync: bool) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()  # sent: it will be answered (cancel() now refuses)
        message = (b"1" if sync else b"0") + os.fsencode(path)
        with self.lock:
            if not self.alive:
                raise WorkerLost
            self.pending.append(future)
            try:
                self.requests.send_bytes(message)
            except OSError:  # the process died: the reader fails what it owed, this one included
                self.alive = False
                raise WorkerLost from None
        return future

    def read(self, on_lost) -> None:
        """The reader thread: resolve the futures as the answers come, then fail what is left."""
        try:
            while True:
                result = self.results.recv()
                future = self.pending.popleft()
                self.answered += 1
                if isinstance(result, str):
                    future.set_exception(RuntimeError(f"parse process failed: {result}"))
                else:
                    future.set_result(result)
        except (EOFError, OSError):
            pass
        with self.lock:
            self.alive = False
            owed, self.pending = list(self.pending), deque()
        self.results.close()
        for future in owed:
            future.set_exception(WorkerLost())
        on_lost(self)

    def stop(self) -> None:
        with self.lock:
            self.alive = False
            try:
                self.requests.send_bytes(b"")
            except OSError:
                pass
            self.requests.close()


class _Pool:
    """``count`` parse processes; each call goes to the one that owes the fewest answers."""

    def __init__(self, count: int, context):
        self.context = context
        self.workers: list[_Worker | None] = [None] * count
        self.lock = threading.Lock()
        self.closed = False
        self.replaced = 0
        try:
            for slot in range(count):
                self.workers[slot] = self._start(slot)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, slot: int) -> _Worker:
        requests_r, requests_w = self.context.Pipe(duplex=False)
        results_r, results_w = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_serve, args=(requests_r, results_w), name=f"lightbox-parse-{slot}",
                                       daemon=True)
        try:
            process.start()
        finally:
            requests_r.close()  # the child's ends: a child that dies then closes its pipes for good
            results_w.close()
        worker = _Worker(process, requests_w, results_r)
        threading.Thread(target=worker.read, args=(self._lost,), name=f"lightbox-parse-results-{slot}",
                         daemon=True).start()
        return worker

    def _lost(self, worker: _Worker) -> None:
        if not self.closed:
            worker.reap(timeout=5)
            logger.warning("parse process %s exited (code %s); it is replaced on the next call",
                           worker.process.pid, worker.process.exitcode)

    def pick(self) -> _Worker | None:
        """The live process that owes the fewest answers, after replacing dead ones; None: parse in the thread."""
        with self.lock:
            if self.closed:
                return None
            for slot, worker in enumerate(self.workers):
                if worker is not None and not worker.alive:
                    if self.replaced >= REPLACEMENTS_MAX:
                        logger.error("parse processes died %d times; parsing in threads from now on", self.replaced)
                        self.closed = True
                        return None
                    self.replaced += 1
                    self.workers[slot] = self._start(slot)
            live = [w for w in self.workers if w is not None and w.alive]
            return min(live, key=lambda w: len(w.pending)) if live else None

    def submit(self, path: str, sync: bool) -> Future:
        worker = self.pick()
        if worker is None:
            raise WorkerLost
        return worker.submit(path, sync)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w is not None and w.alive]

    def shutdown(self) -> None:
        """Ask every process to stop, wait a little, then kill what is left; every one is reaped."""
        with self.lock:
            self.closed = True
            workers = [w for w in self.workers if w is not None]
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.reap(timeout=3)


def processes() -> int:
    value = os.environ.get("LIGHTBOX_PARSE_PROCESSES", "").strip()
    if value:
        return max(0, int(value))
    return min(4, os.cpu_count() or 1)


def _executor() -> _Pool | None:
    global _pool, _pool_failed, _exit_registered
    pool = _pool
    if pool is not None and pool.closed:  # it gave up after repeated deaths
        _disable(pool)
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
            _pool = _Pool(count, context)
            if not _exit_registered:
                atexit.register(shutdown)  # runs before multiprocessing's exit hook, which would terminate them
                _exit_registered = True
        except Exception:
            logger.exception("cannot start the parse processes; parsing in threads")
            _pool_failed = True
        return _pool


def _submit(pool: _Pool, path: Path, sync: bool) -> Future | None:
    """Send one file to a parse process; None when none can take it (the caller parses it itself)."""
    try:
        return pool.submit(str(path), sync)
    except WorkerLost:
        return None
    except Exception:
        logger.exception("cannot start a parse process; parsing in threads")
        _disable(pool)
        return None


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
    future = _submit(pool, path, True)
    if future is None:
        return
    with _lock:
        if len(_early) >= EARLY_MAX:  # callers that never came back: drop them rather than grow
            _early.clear()
        _early[_identity(path)] = future


def _identity(path: Path) -> str:
    """What an early result is filed under: the staging path alone. Staging files have fresh random names,
    created exclusively and never written again once handed to :func:`check_soon` (a ``stat`` of each file
    here and in :func:`check_files` was two syscalls per STOW part)."""
    return str(path)


def forget(path: Path) -> None:
    """A staged file that will not be stored after all (the request was refused): its answer is dropped."""
    with _lock:
        _early.pop(_identity(path), None)


def check_files(paths: list[Path], sync: bool = False) -> list[Checked]:
    """:func:`check_file` for each path, in order, spread over the parse processes when there are some.
    Results of :func:`check_soon` are used where there are some (those files are synced whatever ``sync``)."""
    pool = _executor()
    if pool is None or not paths:
        return [check_file(p, sync) for p in paths]
    keys = [_identity(p) for p in paths]
    with _lock:
        early = [_early.pop(key, None) for key in keys]
    futures = [f or _submit(pool, p, sync) for p, f in zip(paths, early, strict=True)]
    out = []
    for path, future in zip(paths, futures, strict=True):
        if future is None:
            out.append(check_file(path, sync))
            continue
        try:
            out.append(future.result())
        except WorkerLost:
            out.append(check_file(path, sync))
        except Exception:  # an unexpected failure in the child: do it here, with the same rules
            logger.exception("parse process failed on %s; parsing in this thread", path)
            out.append(check_file(path, sync))
    return out


def worker_pids() -> list[int]:
    """The live parse processes (for tests and diagnostics)."""
    pool = _pool
    return pool.pids() if pool is not None else []


def _disable(pool: _Pool) -> None:
    global _pool, _pool_failed
    with _lock:
        if _pool is pool:
            _pool, _pool_failed = None, True
    pool.shutdown()


def shutdown() -> None:
    """Stop the parse processes (at exit, or in tests); the next call starts new ones."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()


def _after_fork_in_child() -> None:
    """A forked copy of this process does not own the parent's processes or threads: it starts its own."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()
    _early.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
