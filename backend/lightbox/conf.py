"""Lazy access to the ``LIGHTBOX`` settings dict (read when used, never at import time)."""
from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "DICOM_AE_TITLE": "LIGHTBOX",
    "DICOM_PORT": 11112,
    "DICOM_ALLOWED_AES": [],  # calling AE titles the C-STORE SCP accepts; empty: any
    "STOW_MAX_BYTES": 4 << 30,
    "CORS_ALLOWED_ORIGINS": [],
    "QIDO_MAX_LIMIT": 1000,
    "STORAGE_BACKEND": "archive.storage.local.LocalStorage",
    "STORAGE_ROOT": None,
    "AUDIT_COALESCE_SECONDS": 60,
}


def lightbox_setting(name: str) -> Any:
    """Return ``settings.LIGHTBOX[name]``, falling back to the default; unknown names are a bug."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown LIGHTBOX setting {name!r}; known: {', '.join(sorted(DEFAULTS))}")
    return getattr(settings, "LIGHTBOX", {}).get(name, DEFAULTS[name])
