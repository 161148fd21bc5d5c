"""Write an upload into a new staging file around the page cache (``O_DIRECT``).

Why: a buffered write of a new file copies every byte into freshly allocated page-cache pages, and on the
virtual machines Lightbox is measured on that first touch of fresh memory costs the writer about 1-2 ms of
kernel CPU per 512 KB CT slice (docs/PERFORMANCE.md), the largest single cost of STOW-RS in the web process.
With ``O_DIRECT`` the disk reads the bytes from one reused, page-aligned buffer instead. Nothing else changes:
the file is still made durable (``fsync``) before it is renamed into the store, and read back like any other.

``O_DIRECT`` needs block-aligned lengths: the last, partial block is written through the page cache. Where it
is not available (tmpfs, other systems, an odd device), the file is written through the page cache as before.
"""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from pathlib import Path

BLOCK = 4096  # a multiple of every logical block size in use; mmap buffers are page-aligned
BUFFER = 1 << 20
_free: list[mmap.mmap] = []  # aligned buffers, reused: fresh memory is what costs (see above)
_free_lock = threading.Lock()
FREE_MAX = 8
_unsupported: set[Path] = set()  # folders where O_DIRECT was refused


def _buffer() -> mmap.mmap:
    with _free_lock:
        if _free:
            return _free.pop()
    return mmap.mmap(-1, BUFFER)


def _release(buf: mmap.mmap) -> None:
    with _free_lock:
        if len(_free) < FREE_MAX:
            _free.append(buf)
            return
    buf.close()


class DirectFile:
    """A write-only binary file (``write``, ``close``, ``with``) filled through an aligned buffer."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf: mmap.mmap | None = _buffer()
        self.fill = 0  # bytes waiting in the buffer
        self.size = 0  # bytes of the file so far
        self.direct = True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n, pos = len(view), 0
        buf = self.buf
        if buf is None:
            raise ValueError("write to a closed file")
        while pos < n:
            take = min(n - pos, BUFFER - self.fill)
            buf[self.fill:self.fill + take] = view[pos:pos + take]
            self.fill += take
            pos += take
            if self.fill == BUFFER:
                self._flush(BUFFER)
                self.fill = 0
        self.size += n
        return n

    def _flush(self, length: int) -> None:
        """Write ``buf[:length]`` (block-aligned unless the file is no longer direct) at the end of the file."""
        view = memoryview(self.buf)[:length]
        try:
            done = 0
            while done < length:
                try:
                    written = os.write(self.fd, view[done:])
                except OSError as exc:
                    if exc.errno != errno.EINVAL or not self.direct or done:
                        raise
                    self._buffered()  # the device refuses this alignment: through the page cache instead
                    continue
                if written <= 0:
                    raise OSError(errno.EIO, "short write")
                done += written
                if done < length and self.direct and done % BLOCK:
                    self._buffered()  # a short, unaligned write (disk nearly full): go on unaligned
        finally:
            view.release()

    def _tail(self, start: int) -> None:
        """The last, partial block through the page cache (one page), where the file ends: no padding to cut
        off afterwards (``ftruncate`` of a block written around the cache made ext4 read that block back from
        the disk to zero its end, a synchronous read per file)."""
        self._buffered()
        self._write_all(memoryview(self.buf)[start:self.fill])

    def _write_all(self, view: memoryview) -> None:
        try:
            done, length = 0, len(view)
            while done < length:
                written = os.write(self.fd, view[done:])
                if written <= 0:
                    raise OSError(errno.EIO, "short write")
                done += written
        finally:
            view.release()

    def _buffered(self) -> None:
        """Go on through the page cache (O_DIRECT off for this file)."""
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        self.direct = False

    def close(self) -> None:
        if self.buf is None:
            return
        try:
            if self.fill:
                whole = self.fill // BLOCK * BLOCK if self.direct else self.fill
                if whole:
                    self._flush(whole)
                if whole < self.fill:
                    self._tail(whole)
        finally:
            buf, self.buf = self.buf, None
            _release(buf)
            os.close(self.fd)

    def __enter__(self) -> DirectFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_direct(path: Path) -> DirectFile | None:
    """``path`` created (it must not exist) for writing with ``O_DIRECT``; None where that is not supported."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag or path.parent in _unsupported:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flag, 0o600)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        _unsupported.add(path.parent)
        return None
    return DirectFile(fd)
