"""Any Django storage (django-storages' S3Boto3Storage for S3-compatible object stores) as a Lightbox store.

Select it with ``LIGHTBOX_STORAGE=archive.storage.django_storage.DjangoStorage`` and configure Django's
``STORAGES['dicom']`` (e.g. bucket, endpoint). Uploads are staged on local disk, then sent whole, so a reader
never sees half an object.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages

from .base import Storage


class DjangoStorage(Storage):
    alias = "dicom"

    def __init__(self, backend=None):
        self.backend = backend if backend is not None else storages[self.alias]
        self._staging = Path(settings.DATA_DIR) / "staging"

    def staging_dir(self) -> Path:
        return self._staging

    def put(self, src: Path) -> str:
        key = self.new_key()
        with open(src, "rb") as fp:
            saved = self.backend.save(key, File(fp))
        Path(src).unlink(missing_ok=True)
        return saved

    def open(self, key: str) -> BinaryIO:
        return self.backend.open(key, "rb")

    def delete(self, key: str) -> None:
        self.backend.delete(key)
