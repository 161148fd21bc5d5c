"""UID syntax (PS3.5 9.1): digits and dots, at most 64 characters, no empty or zero-led components."""
from __future__ import annotations

import re

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
# Some modalities write components with leading zeros; accept them on ingest, never in URLs.
_LENIENT_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def is_valid_uid(value: str, *, lenient: bool = False) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return False
    return bool((_LENIENT_UID if lenient else _UID).match(value))
