"""``publish()``: the one way anything (views, tasks, the SCP) sends an event to open websockets.

In embedded mode the channel layer lives in memory inside the ASGI server and is not thread-safe, so a send
from another thread (a Celery worker thread, the DICOM SCP) is handed to the server's event loop
(see shared/STACK.md: 1.5 ms instead of 500 ms). With Redis, any process may send directly.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .names import ALL_GROUP, Event, study_group

logger = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called once by the ASGI app on its loop, so other threads know where to hand sends to."""
    global _server_loop
    with _lock:
        _server_loop = loop


def _message(event: Event | str, study_instance_uid: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "bus.event",
        "event": str(event),
        "study": study_instance_uid,
        "time": time.time(),
        "payload": payload,
    }


async def apublish(event: Event | str, study_instance_uid: str, payload: dict[str, Any] | None = None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = _message(event, study_instance_uid, payload or {})
    await layer.group_send(study_group(study_instance_uid), message)
    await layer.group_send(ALL_GROUP, message)


def publish(event: Event | str, study_instance_uid: str, payload: dict[str, Any] | None = None) -> None:
    """Send an event to every socket on the study (and worklists). Never raises: failures are logged."""
    try:
        loop = _server_loop
        coro = apublish(event, study_instance_uid, payload)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            running.create_task(coro)
        elif loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(coro, loop)
        else:
            async_to_sync(apublish)(event, study_instance_uid, payload)
            coro.close()
    except Exception:
        logger.exception("could not publish %s for study %s", event, study_instance_uid)
