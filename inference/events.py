"""Event kinds a pipeline reports while it runs, and the helper that delivers them.

``on_event(kind, payload)`` is a notification: the payload is JSON-ready, a handler that raises is logged
and ignored (a dropped websocket must not kill an analysis). The Django side maps kinds to its bus names
(``analysis.progress`` ...).

Payloads:

``progress``
    ``{"percent": float 0-100, "stage": str, "message": str}``; stages: ``reading``, ``segmenting``,
    ``detecting``, ``classifying``, ``writing``, ``done``.
``partial_mask``
    ``{"z_start", "z_end", "shape", "encoding", "data", "labels", "sop_instance_uids", "resolution",
    "orientation"}``: labels of source slices ``z_start:z_end`` (end exclusive) of the series sorted by
    position along the slice normal from feet to head (ascending patient z), rows and columns as stored in
    the images;
    ``sop_instance_uids[i]`` is the image of slice ``z_start + i``. ``data`` is base64 of
    :mod:`inference.pipelines.encoding` runs.
``detection``
    :meth:`inference.pipelines.chest_ct.Detection.as_dict`: id, label, score, centre and box in patient mm
    and stored voxel indices, long/short axis, equivalent diameter, volume, the SOP Instance UID of the slice
    with the long axis.
``classification``
    ``{"label", "probability", "positive", "threshold", "heatmap_peak_px", "heatmap_peak_mm"}``.
``result``
    ``{"sop_class_uid", "sop_instance_uid", "series_instance_uid", "modality", "description"}`` for each
    DICOM object produced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

__all__ = ["EventKind", "EventHandler", "emit"]

logger = logging.getLogger(__name__)

EventHandler = Callable[[str, dict[str, Any]], None]


class EventKind(StrEnum):
    PROGRESS = "progress"
    PARTIAL_MASK = "partial_mask"
    DETECTION = "detection"
    CLASSIFICATION = "classification"
    RESULT = "result"


def emit(handler: EventHandler | None, kind: EventKind | str, payload: dict[str, Any]) -> None:
    """Deliver one event; log, never raise, if the handler fails."""
    if handler is None:
        return
    try:
        handler(str(kind), payload)
    except Exception:  # a notification handler must not stop the analysis
        logger.exception("event handler failed for %s", kind)
