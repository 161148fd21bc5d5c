"""The storage contract. Keys are chosen by the server (random), never derived from anything a client sent."""
from __future__ import annotations

import os
import secrets
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO


class Storage(ABC):
    """Stores whole files atomically and reads byte ranges of them back."""

    @abstractmethod
    def put(self, src: Path) -> str:
        """Take a finished file from :meth:`staging_dir` (consumed) and return its new key. Atomic."""

    def put_many(self, sources: list[Path], synced: list[bool] | None = None) -> list[str | OSError]:
        """:meth:`put` for several files: each one's key, or the error that kept it out. ``synced``: which
        sources were already made durable (``fsync``) by the caller. Backends that can make files durable
        together (the local disk: fsync in parallel) override it."""
        keys: list[str | OSError] = []
        for src in sources:
            try:
                keys.append(self.put(src))
            except OSError as exc:
                keys.append(exc)
        return keys

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open a stored file for binary reading (seekable)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a stored file; a missing file is not an error."""

    @abstractmethod
    def staging_dir(self) -> Path:
        """A local folder for uploads in progress (on the same file system as the store, where there is one)."""

    def local_path(self, key: str) -> Path | None:
        """A path on this machine for zero-copy reads, or None (object stores)."""
        return None

    def read_ranges(self, key: str, ranges: list[list[int]]) -> list[bytes]:
        """The bytes at each ``[offset, length]``, read through one open file."""
        with self.open(key) as fp:
            out = []
            for offset, length in ranges:
                fp.seek(offset)
                data = fp.read(length)
                if len(data) != length:
                    raise OSError(f"stored file {key} is shorter than its index says")
                out.append(data)
            return out

    def new_staging_file(self, suffix: str = ".part") -> tuple[BinaryIO, Path]:
        directory = self.staging_dir()
        try:
            fd, name = tempfile.mkstemp(dir=directory, suffix=suffix)
        except FileNotFoundError:  # the first one (or the folder was removed): make the folder
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=directory, suffix=suffix)
        return os.fdopen(fd, "wb"), Path(name)

    def new_upload_file(self) -> tuple[BinaryIO, Path]:
        """A staging file for an upload that is written once, front to back, and only closed (STOW-RS parts):
        backends may write it in a cheaper way than :meth:`new_staging_file`'s (no seek, tell or read)."""
        return self.new_staging_file()

    @staticmethod
    def new_key() -> str:
        token = secrets.token_hex(16)
        return f"{token[:2]}/{token[2:4]}/{token}.dcm"
