"""Every event name, defined once. ``frontend/src/realtime/events.ts`` mirrors this list."""
from enum import StrEnum


class Event(StrEnum):
    STUDY_STORED = "study.stored"  # instances were added to a study
    STUDY_DELETED = "study.deleted"
    ANALYSIS_QUEUED = "analysis.queued"
    ANALYSIS_STARTED = "analysis.started"
    ANALYSIS_PROGRESS = "analysis.progress"  # {percent, stage}
    ANALYSIS_PARTIAL = "analysis.partial"  # {kind: "mask" | "detection", ...}
    ANALYSIS_DONE = "analysis.done"  # {result UIDs}
    ANALYSIS_FAILED = "analysis.failed"  # {reason}
    ANALYSIS_CANCELED = "analysis.canceled"
    SNAPSHOT = "snapshot"  # sent once to a socket that joins: the state so far
    WORKLIST_CHANGED = "worklist.changed"


def study_group(study_instance_uid: str) -> str:
    """Channel-layer group of one study (UIDs are digits and dots, so the name is always valid)."""
    return f"study.{study_instance_uid}"


ALL_GROUP = "lightbox.all"  # everything, for worklists; access is filtered per socket
