"""Thumbnails cached on disk under ``LIGHTBOX_DATA/cache/thumbnails``, keyed by SOP Instance UID, frame and
parameters. Instances never change once stored, so nothing is ever invalidated; a deleted instance may leave
its thumbnails behind (a few kilobytes each), which a cache sweep can remove at any time.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from .render import RenderParams

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(settings.DATA_DIR) / "cache" / "thumbnails"


def _path(sop_instance_uid: str, frame: int, params: RenderParams) -> Path:
    digest = hashlib.sha256(f"{sop_instance_uid}|{frame}|{params.cache_key()}".encode()).hexdigest()
    return cache_dir() / digest[:2] / f"{digest}.bin"


def cached_thumbnail(sop_instance_uid: str, frame: int, params: RenderParams, make: Callable[[], bytes]) -> bytes:
    """The cached thumbnail, or ``make()``'s, written atomically for the next request."""
    path = _path(sop_instance_uid, frame, params)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        os.replace(tmp, path)
    except OSError as exc:  # a full or read-only cache only costs speed
        logger.warning("could not cache a thumbnail in %s: %s", path.parent, exc)
    return data
