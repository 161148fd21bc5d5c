"""WADO-RS metadata (PS3.18 10.4.1.1.2): DICOM JSON of a study, series or instance from precomputed bytes.

Each instance's DICOM JSON was serialised once at ingest (``Instance.metadata``) with path-only BulkDataURIs;
a response is those bytes joined into one array, with the URIs made absolute in one pass. No file is read and
nothing is parsed or re-serialised per request.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from .lookup import instances_in

PATH_ONLY_URI = b'"BulkDataURI":"/dicomweb/'
GZIP_MIN_BYTES = 1024


def join_metadata(rows: list[bytes | memoryview], origin: str) -> bytes:
    """``[row,row,...]`` with every ``/dicomweb/...`` BulkDataURI prefixed by ``origin`` (scheme://host)."""
    if not rows:
        return b"[]"
    parts = [bytes(r) for r in rows]
    parts[0] = b"[" + parts[0]
    parts[-1] = parts[-1] + b"]"  # small copies at the ends instead of two copies of the whole body
    body = b",".join(parts)
    return body.replace(PATH_ONLY_URI, b'"BulkDataURI":"' + origin.encode("ascii") + b"/dicomweb/")


def accepts_gzip(accept_encoding: str) -> bool:
    """True when Accept-Encoding allows gzip (q > 0)."""
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def gzip_bytes(body: bytes) -> bytes:
    """gzip at level 1: a few ms for a megabyte of JSON, which shrinks it 5-10x."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


@dataclass(frozen=True, slots=True)
class MetadataAnswer:
    body: bytes
    gzipped: bool
    instances: int


def build_metadata(study: str, series: str | None, instance: str | None, origin: str, gzip: bool) -> MetadataAnswer | None:
    """The metadata of a study, series or instance path in display order; None when the path names nothing."""
    rows = list(instances_in(study, series, instance).values_list("metadata", flat=True))
    if not rows:
        return None
    body = join_metadata(rows, origin)
    if gzip and len(body) >= GZIP_MIN_BYTES:
        return MetadataAnswer(gzip_bytes(body), True, len(rows))
    return MetadataAnswer(body, False, len(rows))
