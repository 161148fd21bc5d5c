"""Frames of a stored instance: parse a frame list, read the bytes of each frame, decode when asked.

Frames are read with ``os.pread`` at the offsets found at ingest (``Instance.frame_index``), one open per
request, or through the store's ``read_ranges`` where there is no local path (object stores). Instances whose
bytes are not usable as they lie on disk (big endian, deflated, no index) go through pydicom.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..storage import Storage
from .syntaxes import EXPLICIT_LE, IMPLICIT_LE, NATIVE
from .transcode import decoded_frames

MAX_FRAMES_PER_REQUEST = 10_000


class FrameListError(ValueError):
    """A frame list that is not a comma-separated list of distinct positive integers."""


def parse_frame_list(text: str) -> list[int]:
    """``"1,3,2"`` -> [1, 3, 2]; frame numbers are 1-based and must not repeat (PS3.18 8.3.3.1)."""
    items = text.replace("%2C", ",").replace("%2c", ",").split(",")
    if len(items) > MAX_FRAMES_PER_REQUEST:
        raise FrameListError(f"At most {MAX_FRAMES_PER_REQUEST} frames may be asked for in one request.")
    numbers: list[int] = []
    for item in items:
        item = item.strip()
        if not item.isascii() or not item.isdigit() or len(item) > 9:
            raise FrameListError(f"Frame number {item[:20]!r} is not a positive integer; frames are numbered from 1.")
        n = int(item)
        if n < 1:
            raise FrameListError("Frame numbers start at 1.")
        numbers.append(n)
    if len(set(numbers)) != len(numbers):
        raise FrameListError("A frame number appears twice in the frame list.")
    return numbers


class StoredFile:
    """One stored file, opened at most once: ``pread`` on local disk, else the store's ``read_ranges``."""

    def __init__(self, storage: Storage, key: str):
        self.storage = storage
        self.key = key
        self.path: Path | None = storage.local_path(key)
        self._fd: int | None = None

    def __enter__(self) -> StoredFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read_ranges(self, ranges: Sequence[Sequence[int]]) -> list[bytes]:
        if self.path is None:
            return self.storage.read_ranges(self.key, [list(r) for r in ranges])
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        out = []
        for offset, length in ranges:
            data = os.pread(self._fd, length, offset)
            if len(data) != length:
                raise OSError(f"stored file {self.key} is shorter than its index says")
            out.append(data)
        return out

    def source(self):
        """Something pydicom can read: the local path, or an open file from the store."""
        return str(self.path) if self.path is not None else self.storage.open(self.key)


def needs_decode(stored_ts: str, frame_index: list) -> bool:
    """True when the frame bytes cannot be sent as they lie in the file (no index, or not little endian)."""
    return stored_ts in NATIVE and (not frame_index or stored_ts not in {IMPLICIT_LE, EXPLICIT_LE})


def read_frames(
    stored: StoredFile, stored_ts: str, frame_index: list, numbers: Sequence[int], *, decode: bool, bits_allocated: int
) -> list[bytes]:
    """The bytes of each frame (1-based ``numbers``): as stored, or decoded to native little endian."""
    if decode or needs_decode(stored_ts, frame_index):
        src = stored.source()
        try:
            return decoded_frames(src, stored_ts, [n - 1 for n in numbers], bits_allocated)
        finally:
            if not isinstance(src, str):
                src.close()
    if stored.path is not None:
        out = []
        for n in numbers:
            fragments = frame_index[n - 1]
            chunks = stored.read_ranges(fragments)
            out.append(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return out
    flat = [r for n in numbers for r in frame_index[n - 1]]
    chunks = iter(stored.read_ranges(flat))
    return [b"".join(next(chunks) for _ in frame_index[n - 1]) for n in numbers]
