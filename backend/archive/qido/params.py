"""Parse and check the query string of a QIDO-RS request (PS3.18 8.3.4): match keys, includefield, fuzzymatching,
emptyvaluematching, limit and offset. Anything unknown or malformed raises a 400 with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.http import QueryDict
from pydicom.datadict import tag_for_keyword

from lightbox.conf import lightbox_setting

from ..http import DicomWebError
from .attributes import BY_TAG, Attribute, Level

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_BOOLEANS = {"true": True, "false": False}
# Parameters that are not match keys. "accept" and "charset" are the PS3.18 8.3.3 query forms of the headers.
CONTROL_PARAMETERS = {
    "includefield", "fuzzymatching", "emptyvaluematching", "multiplevaluematching", "limit", "offset", "accept",
    "charset",
}


@dataclass(slots=True)
class QidoQuery:
    """A checked QIDO-RS query."""

    matches: list[tuple[Attribute, str]] = field(default_factory=list)
    include_tags: list[int] = field(default_factory=list)
    include_all: bool = False
    fuzzy: bool = False
    empty_value_matching: bool = False
    limit: int = 0  # results on this page (already capped)
    offset: int = 0

    def summary(self) -> dict:
        """What the audit record keeps of the query."""
        return {
            "match": {a.keyword: v for a, v in self.matches},
            "includefield": "all" if self.include_all else [f"{t:08X}" for t in self.include_tags],
            "fuzzymatching": self.fuzzy,
            "limit": self.limit,
            "offset": self.offset,
        }


def tag_of(name: str) -> int | None:
    """The tag named by a keyword ("PatientName") or eight hex digits ("00100010"); None if neither."""
    if _TAG.match(name):
        return int(name, 16)
    return tag_for_keyword(name)


def _boolean(params: QueryDict, name: str) -> bool:
    value = params.get(name, "false").strip().lower()
    if value not in _BOOLEANS:
        raise DicomWebError(400, f"{name} must be true or false, not {value[:40]!r}.")
    return _BOOLEANS[value]


def _uint(params: QueryDict, name: str) -> int | None:
    values = params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise DicomWebError(400, f"{name} is given {len(values)} times; give it once.")
    value = values[0].strip()
    if not value.isdigit() or len(value) > 12:
        raise DicomWebError(400, f"{name} must be a non-negative integer, not {value[:40]!r}.")
    return int(value)


def _include(params: QueryDict) -> tuple[list[int], bool]:
    tags: list[int] = []
    for raw in params.getlist("includefield"):
        for item in raw.split(","):
            name = item.strip()
            if not name:
                continue
            if name.lower() == "all":
                return [], True
            top = name.split(".", 1)[0]  # a sequence path returns the whole top-level sequence
            tag = tag_of(top)
            if tag is None:
                raise DicomWebError(400, f"includefield {name[:64]!r} is neither a DICOM keyword nor a tag (8 hex digits).")
            if tag not in tags:
                tags.append(tag)
    return tags, False


def _match_key(name: str, level: Level) -> Attribute:
    if "." in name:
        raise DicomWebError(400, f"{name[:64]!r}: sequence matching is not supported; match on top-level attributes.")
    tag = tag_of(name)
    if tag is None:
        raise DicomWebError(
            400, f"Unknown query parameter {name[:64]!r}: neither a DICOM keyword, a tag (8 hex digits) nor one of "
            f"{', '.join(sorted(CONTROL_PARAMETERS))}."
        )
    attribute = BY_TAG.get(tag)
    if attribute is None or attribute.match is None or attribute.level > level:
        supported = ", ".join(a.keyword for a in BY_TAG.values() if a.match is not None and a.level <= level)
        raise DicomWebError(
            400, f"{name[:64]} cannot be matched at the {level.name.lower()} level; "
            f"match keys here: {supported}. Use includefield to return other attributes."
        )
    return attribute


def parse_query(params: QueryDict, level: Level) -> QidoQuery:
    """Check every parameter of ``params`` for a search at ``level``."""
    query = QidoQuery()
    seen: set[int] = set()
    for name, values in params.lists():
        if any("\x00" in v for v in [name, *values]):
            raise DicomWebError(400, f"Parameter {name[:64]!r} contains a NUL character.")
    for name, values in params.lists():
        if name in CONTROL_PARAMETERS:
            continue
        attribute = _match_key(name, level)
        if attribute.tag in seen or len(values) > 1:
            raise DicomWebError(400, f"{attribute.keyword} is given more than once; give one value (or a list).")
        seen.add(attribute.tag)
        query.matches.append((attribute, values[0]))
    query.include_tags, query.include_all = _include(params)
    query.fuzzy = _boolean(params, "fuzzymatching")
    query.empty_value_matching = _boolean(params, "emptyvaluematching")
    _boolean(params, "multiplevaluematching")  # lists always match any of their values
    maximum = int(lightbox_setting("QIDO_MAX_LIMIT"))
    limit = _uint(params, "limit")
    query.limit = maximum if not limit else min(limit, maximum)
    query.offset = _uint(params, "offset") or 0
    return query
