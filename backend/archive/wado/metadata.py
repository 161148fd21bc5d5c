"""WADO-RS metadata (PS3.18 10.4.1.1.2): DICOM JSON of a study, series or instance from precomputed bytes.

Each instance's DICOM JSON was serialised once at ingest (``Instance.metadata``) with path-only BulkDataURIs;
a response is those bytes joined into one array, with the URIs made absolute in one pass. No file is read and
nothing is parsed or re-serialised per request.

Finished bodies (plain and gzipped) are also kept in a small per-process cache keyed by the instances' primary
keys: an instance never changes once stored and keys are never reused, so the same key list means the same
bytes, and a new or deleted instance changes the key. A repeated request costs one query of the keys.
"""
from __future__ import annotations

import hashlib
import threading
import zlib
from array import array
from collections import OrderedDict
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


class _BodyCache:
    """Least recently used bodies, bounded in bytes; shared by the request threads of one process."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.items: OrderedDict[bytes, MetadataAnswer] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: bytes) -> MetadataAnswer | None:
        with self.lock:
            answer = self.items.get(key)
            if answer is not None:
                self.items.move_to_end(key)
            return answer

    def put(self, key: bytes, answer: MetadataAnswer) -> None:
        if len(answer.body) > self.max_bytes // 4:
            return
        with self.lock:
            if key in self.items:
                return
            self.items[key] = answer
            self.size += len(answer.body)
            while self.size > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.size -= len(old.body)


CACHE_BYTES = 64 << 20
_bodies = _BodyCache(CACHE_BYTES)


def _cache_key(pks: list[int], origin: str, gzip: bool) -> bytes:
    digest = hashlib.blake2b(array("q", pks).tobytes(), digest_size=20).digest()
    return digest + (b"|gzip|" if gzip else b"|identity|") + origin.encode()


def build_metadata(study: str, series: str | None, instance: str | None, origin: str, gzip: bool) -> MetadataAnswer | None:
    """The metadata of a study, series or instance path in display order; None when the path names nothing."""
    qs = instances_in(study, series, instance)
    pks = list(qs.values_list("pk", flat=True))
    if not pks:
        return None
    key = _cache_key(pks, origin, gzip)
    if (hit := _bodies.get(key)) is not None:
        return hit
    rows = list(qs.values_list("pk", "metadata"))
    if not rows:
        return None
    body = join_metadata([m for _, m in rows], origin)
    if gzip and len(body) >= GZIP_MIN_BYTES:
        answer = MetadataAnswer(gzip_bytes(body), True, len(rows))
    else:
        answer = MetadataAnswer(body, False, len(rows))
    if [pk for pk, _ in rows] == pks:  # nothing stored or deleted between the two queries
        _bodies.put(key, answer)
    return answer
