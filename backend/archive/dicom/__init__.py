"""DICOM in one place, free of Django: bytes on disk in, a checked typed record out.

STOW-RS, C-STORE and import all call :func:`parse.parse_file`; QIDO and WADO read what it produced.
"""
from .errors import DicomError, FailureReason
from .parse import ParsedInstance, parse_file
from .uids import is_valid_uid

__all__ = ["DicomError", "FailureReason", "ParsedInstance", "is_valid_uid", "parse_file"]
