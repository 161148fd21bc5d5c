"""Why an instance was refused, with the PS3.4/PS3.18 failure reason codes STOW-RS reports."""
from __future__ import annotations

from enum import IntEnum


class FailureReason(IntEnum):
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
    STUDY_UID_MISMATCH = 0xC409  # instance posted to /studies/{uid} of another study


class DicomError(ValueError):
    """An instance that cannot be stored. ``reason`` is shown to the sender; ``code`` goes into STOW's
    Failure Reason (0008,1197) and the C-STORE status."""

    def __init__(self, reason: str, code: FailureReason = FailureReason.CANNOT_UNDERSTAND):
        super().__init__(reason)
        self.reason = reason
        self.code = code
