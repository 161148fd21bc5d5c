"""Files on local disk: temporary file, fsync, rename into a server-chosen path."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from lightbox.conf import lightbox_setting

from .base import Storage


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or lightbox_setting("STORAGE_ROOT")).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key {key!r} points outside the store")
        return path

    def staging_dir(self) -> Path:
        return self.root / ".staging"

    def put(self, src: Path) -> str:
        key = self.new_key()
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(src, dest)
        return key

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
