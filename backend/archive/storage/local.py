"""Files on local disk: temporary file, fsync, rename into a server-chosen path."""
from __future__ import annotations

import errno
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from lightbox.conf import lightbox_setting

from .base import Storage
from .direct_io import open_direct

# fsync waits on the disk without the GIL; syncing a batch's files at once lets the device merge the flushes
# (0.2-0.8 ms a file against 1.5-6 ms one after another, measured in docs/PERFORMANCE.md)
_SYNC_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lightbox-fsync")


FOLDER_FILES = 16  # files renamed into one new store folder before the next is chosen (see LocalStorage._folder)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or lightbox_setting("STORAGE_ROOT")).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # the folder new files go to, made once and then used for FOLDER_FILES files (key, folder, files left):
        # a new folder per file cost a mkdir each (3% of STOW's web-process CPU); the files still spread evenly
        self._folder: tuple[str, Path, int] = ("", self.root, 0)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key {key!r} points outside the store")
        return path

    def staging_dir(self) -> Path:
        return self.root / ".staging"

    def new_upload_file(self) -> tuple[BinaryIO, Path]:
        """Written around the page cache where the file system allows it (``storage.direct_io``)."""
        directory = self.staging_dir()
        for _ in range(100):
            path = directory / f"{secrets.token_hex(10)}.part"
            try:
                fp = open_direct(path)
            except FileExistsError:
                continue
            except FileNotFoundError:  # the first one (or the folder was removed): make the folder
                directory.mkdir(parents=True, exist_ok=True)
                continue
            if fp is None:
                return self.new_staging_file()
            return fp, path  # type: ignore[return-value]
        raise FileExistsError(errno.EEXIST, "no free staging file name", str(directory))

    def put(self, src: Path) -> str:
        _fsync(src)
        return self._move_in(src)

    def put_many(self, sources: list[Path], synced: list[bool] | None = None) -> list[str | OSError]:
        """Every file made durable first (in parallel; not again when ``synced``), then each renamed into
        place: never visible unsynced."""
        synced = synced or [False] * len(sources)
        unsynced = [src for src, done in zip(sources, synced, strict=True) if not done]
        syncs = {}
        if len(unsynced) > 1:
            syncs = {src: _SYNC_THREADS.submit(_fsync, src) for src in unsynced}
        keys: list[str | OSError] = []
        for src, done in zip(sources, synced, strict=True):
            try:
                if src in syncs:
                    syncs[src].result()
                elif not done:
                    _fsync(src)
                keys.append(self._move_in(src))
            except OSError as exc:
                keys.append(exc)
        return keys

    def _move_in(self, src: Path) -> str:
        """Rename a durable staging file to a new server-chosen key, in the current folder (made when chosen)."""
        prefix, folder, left = self._folder
        if left <= 0:
            prefix = self.new_key().rpartition("/")[0]
            folder = self.root / prefix  # new_key() is hex digits and slashes: nothing to resolve
            folder.mkdir(parents=True, exist_ok=True)
        self._folder = (prefix, folder, left - 1 if left > 0 else FOLDER_FILES - 1)  # threads may race: harmless
        name = f"{secrets.token_hex(16)}.dcm"
        dest = folder / name
        try:
            os.replace(src, dest)
        except FileNotFoundError:  # the folder was removed behind our back: make it again
            if not os.path.exists(src):
                raise
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        return f"{prefix}/{name}" if prefix else name

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
