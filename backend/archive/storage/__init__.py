"""Where DICOM files live. One small interface; the local disk and any Django storage (S3) implement it."""
from functools import cache

from django.utils.module_loading import import_string

from lightbox.conf import lightbox_setting

from .base import Storage

__all__ = ["Storage", "get_storage"]


@cache
def get_storage() -> Storage:
    """The configured storage backend (``LIGHTBOX['STORAGE_BACKEND']``), built once per process."""
    return import_string(lightbox_setting("STORAGE_BACKEND"))()
