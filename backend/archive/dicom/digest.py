"""The content hash that tells a re-sent instance (same bytes) from a conflicting one (same UID, other bytes)."""
from __future__ import annotations

import hashlib
import os


def dataset_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of the data set, file meta excluded: the same instance re-sent by another sender (another
    Implementation Class UID or Source AE Title in the meta) is the same content."""
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        fp.seek(_dataset_offset(fp))
        while chunk := fp.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _dataset_offset(fp) -> int:
    """Where the data set starts after preamble and file meta (from the meta's group length), else 0."""
    head = fp.read(144)
    if len(head) == 144 and head[128:132] == b"DICM" and head[132:138] == b"\x02\x00\x00\x00UL":
        return 144 + int.from_bytes(head[140:144], "little")
    return 0
