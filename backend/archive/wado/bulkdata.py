"""Bulk data (PS3.18 10.4.1.1.5): the value of one top-level binary element, located in the stored file.

Values are sent from their place in the file when the file is little endian (with HTTP Range support);
big-endian and deflated files are decoded through pydicom and their words put in little-endian order.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR

from ..dicom.json import BULK_VRS
from .syntaxes import BIG_ENDIAN, DEFLATED

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_WORD_SIZE = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
PIXEL_DATA = 0x7FE00010


class BadTag(ValueError):
    pass


def parse_tag(text: str) -> int:
    """``7FE00010`` -> 0x7FE00010 (eight hexadecimal digits, as in the BulkDataURIs this server writes)."""
    if not _TAG.match(text):
        raise BadTag(f"Bulk data tag {text[:20]!r} is not eight hexadecimal digits (e.g. 7FE00010).")
    return int(text, 16)


@dataclass(frozen=True, slots=True)
class BulkValue:
    """Where a value is: ``offset``/``length`` in the stored file, or its little-endian bytes in ``data``."""

    length: int
    offset: int | None = None
    data: bytes | None = None


def _vr(tag: int, raw_vr: str | None) -> str:
    if raw_vr:
        return raw_vr
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def find_value(src: str | BinaryIO, stored_ts: str, tag: int) -> BulkValue | None:
    """The top-level binary value ``tag`` of an instance, or None when there is none to send."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if stored_ts in (BIG_ENDIAN, DEFLATED):
            ds = pydicom.dcmread(src)
            if tag not in ds:
                return None
            elem = ds[tag]
            if not any(vr in BULK_VRS for vr in elem.VR.split(" or ")) or not isinstance(elem.value, bytes):
                return None
            value = elem.value
            size = _WORD_SIZE.get(elem.VR)
            if stored_ts == BIG_ENDIAN and size and len(value) % size == 0:
                value = np.frombuffer(value, dtype=f">u{size}").astype(f"<u{size}").tobytes()
            return BulkValue(length=len(value), data=value)
        # values are located, not read; elements after Pixel Data need a walk past it
        ds = pydicom.dcmread(src, defer_size=64, stop_before_pixels=tag < PIXEL_DATA)
        raw = ds.get_item(tag, keep_deferred=True)
    if raw is None:
        return None
    vr = _vr(tag, getattr(raw, "VR", None))
    if not any(v in BULK_VRS for v in vr.split(" or ")):
        return None
    length = getattr(raw, "length", None)
    offset = getattr(raw, "value_tell", None)
    if length is None or offset is None or length == 0xFFFFFFFF:
        return None  # undefined length (encapsulated): not a plain byte run
    return BulkValue(length=length, offset=offset)


class RangeNotSatisfiable(ValueError):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (start, end inclusive); None to send everything (no or ignored Range).

    Ranges in another unit and multi-range requests are ignored (RFC 9110 14.2 allows it); a malformed or
    unsatisfiable byte range raises :class:`RangeNotSatisfiable` (answered 416).
    """
    header = header.strip()
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or (not first and not last):
        raise RangeNotSatisfiable(f"Range {header[:60]!r} is not bytes=first-last, bytes=first- or bytes=-suffix.")
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable("A zero-length suffix range selects nothing.")
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(f"Range {header[:60]!r} lies outside the {size} bytes of the value.")
    return start, end
