"""Index rows to DICOM JSON (PS3.18 F.2), and the media type a QIDO-RS client may receive.

Empty values have no "Value" key (F.2.5); PN values are objects with "Alphabetic" (and the ideographic and
phonetic groups when stored); IS and US are JSON numbers. The body is built with orjson.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.http import HttpRequest

from ..http import DicomWebError
from .attributes import Attribute

DICOM_JSON = "application/dicom+json"
JSON = "application/json"
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def _string(value: Any) -> list | None:
    return [value] if value not in (None, "") else None


def _date(value: Any) -> list | None:
    if isinstance(value, dt.date):
        return [f"{value.year:04d}{value.month:02d}{value.day:02d}"]  # strftime is 10x slower
    return _string(value)


def _time(value: Any) -> list | None:
    """Normalised "HHMMSS.ffffff" back to the shortest TM: "101500" or "101500.5"."""
    if not value:
        return None
    main, _, frac = value.partition(".")
    frac = frac.rstrip("0")
    return [f"{main}.{frac}" if frac else main]


def _person(value: Any) -> list | None:
    if not value:
        return None
    groups = value.split("=")
    return [{name: group for name, group in zip(_PN_GROUPS, groups, strict=False) if group}]


def _number(value: Any) -> list | None:
    return None if value is None else [value]


def _codes(value: Any) -> list | None:
    codes = [c for c in (value or "").split("\\") if c]
    return codes or None


_BY_VR: dict[str, Callable[[Any], list | None]] = {
    "DA": _date, "TM": _time, "PN": _person, "IS": _number, "US": _number, "CS": _codes,
}


Writer = tuple[str, str, str | None, Callable[[Any], list | None]]


def column_writers(attributes: Iterable[tuple[Attribute, str | None]]) -> list[Writer]:
    """(tag, VR, row key, converter) per attribute, in tag order, so that rows come out sorted without a sort.

    A row key of None marks a value the caller computes per row (RetrieveURL, InstanceAvailability).
    """
    writers = [(a.tag_hex, a.vr, path, _BY_VR.get(a.vr, _string)) for a, path in attributes]
    return sorted(writers, key=lambda w: w[0])


def write_columns(row: dict, writers: list[Writer], computed: dict[str, list]) -> dict[str, dict]:
    result: dict[str, dict] = {}
    for tag, vr, key, convert in writers:
        values = convert(row[key]) if key is not None else computed[tag]
        result[tag] = {"vr": vr, "Value": values} if values else {"vr": vr}
    return result


def absolute_bulk(element_json: dict, origin: str) -> dict:
    """Metadata keeps path-only BulkDataURIs; a response carries absolute ones."""
    uri = element_json.get("BulkDataURI")
    if uri and uri.startswith("/"):
        return {**element_json, "BulkDataURI": origin + uri}
    return element_json


def dumps(results: list[dict]) -> bytes:
    return orjson.dumps(results)


def negotiate(request: HttpRequest) -> str:
    """The media type to answer with: DICOM JSON unless only plain JSON is acceptable; 406 when neither is.

    The ``accept`` query parameter (PS3.18 8.3.3.1) takes precedence over the Accept header.
    """
    # META rather than request.headers: the same value, without building the whole header mapping
    accept = request.GET.get("accept", "").replace(" ", "+") or request.META.get("HTTP_ACCEPT", "")
    if not accept.strip():
        return DICOM_JSON
    ranges = []
    for position, item in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranges.append((-quality, position, media.lower()))
    for _, _, media in sorted(ranges):
        if media in {DICOM_JSON, "application/*", "*/*"}:
            return DICOM_JSON
        if media == JSON:
            return JSON
    raise DicomWebError(
        406, f"QIDO-RS here answers {DICOM_JSON} (or {JSON}); none is acceptable in Accept: {accept[:200]!r}. "
        "multipart/related; type=\"application/dicom+xml\" is not supported."
    )
