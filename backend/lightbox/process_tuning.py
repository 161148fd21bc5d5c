"""Process-wide settings of the web server process that make large uploads (STOW-RS) cheaper.

They belong to the process, not to a view: ``lightbox.asgi`` applies them once when the server starts.
"""

from __future__ import annotations

import ctypes
import os

# uvicorn (httptools) stops reading a connection once 64 KB of its request body wait unread, and starts again at
# the next receive(): for a STOW body that is a pause, an event-loop round trip and a thread wake-up every 64 KB
# (80 for ten CT slices). 256 KB: a quarter of them, 4% less CPU per instance (docs/PERFORMANCE.md); the body
# queue of archive.direct (64 messages) then holds at most 16 MB per upload.
UVICORN_BODY_BUFFER = 256 * 1024
# A request body goes through several buffers of 64 KB to 1 MB (uvicorn's, the body queue's, the multipart
# reader's). glibc serves blocks over 128 KB (its starting threshold) with fresh mmap()s, and gives freed memory
# back to the kernel above 128 KB: every buffer then costs page faults on first touch, a third of the kernel time
# of an upload. Blocks up to 4 MB come from the heap, which keeps up to 32 MB free: 6-7% less CPU per instance.
# MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment take precedence.
MALLOC_MMAP_THRESHOLD = 4 << 20
MALLOC_TRIM_THRESHOLD = 32 << 20


def tune_for_uploads() -> None:
    """Apply both settings; called once when the ASGI application is built (``lightbox.asgi``)."""
    try:
        from uvicorn.protocols.http import httptools_impl
    except ImportError:  # pragma: no cover - another server
        httptools_impl = None
    if httptools_impl is not None and getattr(httptools_impl, "HIGH_WATER_LIMIT", 0) < UVICORN_BODY_BUFFER:
        httptools_impl.HIGH_WATER_LIMIT = UVICORN_BODY_BUFFER
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc; elsewhere there is none and nothing changes
    except (OSError, AttributeError):
        return
    mallopt(-1, MALLOC_TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    mallopt(-3, MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
