"""Values of the common top-level elements straight from pydicom's RawDataElements, without DataElements.

pydicom turns each raw element into a DataElement through hooks, a converter per VR, MultiValue and value
classes (IS, DSfloat, UID): about 20 us an element, most of a CT slice's parse. For the common VRs this module
decodes the bytes the way pydicom's converters do (``pydicom.values``) into the values that the DICOM JSON
holds (``str``, ``int``, ``float``) and the index reads, for explicit and implicit VR little endian only.

Anything unusual stays on pydicom's path: sequences, PN, AT, binary and ambiguous VRs, UN, private tags in
implicit VR, deferred values, LUT descriptors, text with ISO 2022 escapes or that does not decode, an IS or DS
value that is not a plain number, a binary number whose length is not a multiple of its size, and every element
when pydicom's configuration or hooks are not the defaults this mirrors. The result is compared with pydicom's
on every sample file (tests/archive/test_parse.py).
"""
from __future__ import annotations

import re
import struct
from typing import Any

import pydicom.config as config
from pydicom import hooks as hooks_module
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import hooks

LITTLE_ENDIAN_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_SKIP_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009, 0x00281101, 0x00281102, 0x00281103, 0x00283002}

_STRIP_SPLIT = frozenset({"AS", "CS", "DA", "DT", "TM", "UI"})  # convert_string / convert_UI
_TEXT = frozenset({"SH", "LO", "UC"})  # convert_text: the character set, split, each value rstripped
_SINGLE_TEXT = frozenset({"ST", "LT", "UT"})  # convert_single_string
_BINARY = {"US": ("H", 2), "SS": ("h", 2), "UL": ("L", 4), "SL": ("l", 4), "FL": ("f", 4), "FD": ("d", 8),
           "SV": ("q", 8), "UV": ("Q", 8)}
FAST_VRS = _STRIP_SPLIT | _TEXT | _SINGLE_TEXT | {"AE", "UR", "IS", "DS"} | set(_BINARY)

# What int() and float() of pydicom's IS and DSfloat accept, less the oddities (underscores, nan, inf, tabs)
_IS = re.compile(r" *[+-]?[0-9]+ *")
_DS = re.compile(r" *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *")
_LATIN = "iso8859"  # pydicom.charset.default_encoding

_implicit_vrs: dict[int, str | None] = {}


def _defaults() -> bool:
    """pydicom is configured as this module assumes (the parse processes never change it)."""
    return (config.settings.reading_validation_mode != config.RAISE and not config.datetime_conversion
            and not config.use_DS_numpy and not config.use_IS_numpy and not config.use_DS_decimal
            and config.data_element_callback is None
            and hooks.raw_element_vr is hooks_module.raw_element_vr
            and hooks.raw_element_value is hooks_module.raw_element_value)


def _implicit_vr(tag: int) -> str | None:
    try:
        return _implicit_vrs[tag]
    except KeyError:
        pass
    vr: str | None = None
    if not (tag >> 16) & 1:  # private tags need their creator: pydicom's path
        try:
            vr = str(dictionary_VR(tag))
        except KeyError:
            vr = None
    _implicit_vrs[tag] = vr if vr in FAST_VRS else None
    return _implicit_vrs[tag]


def _text(data: bytes, encoding: str) -> str | None:
    if b"\x1b" in data:
        return None  # ISO 2022 code extensions
    try:
        return data.decode(encoding)
    except (UnicodeError, LookupError):
        return None  # pydicom warns and replaces, or falls back: its path


def _numbers(text: str, pattern: re.Pattern[str], kind: type) -> list | None:
    if not text:
        return []
    values = []
    for item in text.split("\\"):
        if not pattern.fullmatch(item):
            return None
        values.append(kind(item))
    return values


def decode(vr: str, data: bytes, encoding: str) -> list | None:
    """The element's values as its DICOM JSON "Value" holds them ([] when empty), or None for pydicom's path."""
    if not data:
        return []
    if vr in _BINARY:
        fmt, size = _BINARY[vr]
        if len(data) % size:
            return None
        return list(struct.unpack(f"<{len(data) // size}{fmt}", data))
    if vr in _TEXT:
        text = _text(data, encoding)
        if text is None:
            return None
        values = [v.rstrip("\0 ") for v in text.split("\\")]
        return values if len(values) > 1 or values[0] else []
    if vr in _SINGLE_TEXT:
        text = _text(data, encoding)
        if text is None:
            return None
        text = text.rstrip("\0 ")
        return [text] if text else []
    text = data.decode(_LATIN)
    if vr in _STRIP_SPLIT:
        values = text.rstrip(" \0").split("\\")
        return values if len(values) > 1 or values[0] else []
    if vr == "IS":
        return _numbers(text.rstrip(" \0"), _IS, int)
    if vr == "DS":
        return _numbers(text.strip().rstrip(" \0"), _DS, float)
    if vr == "AE":
        values = [v.strip() for v in text.split("\\")]
        return values if len(values) > 1 or values[0] else []
    if vr == "UR":
        text = text.rstrip()
        return [text] if text else []
    return None


def fast_values(ds: Dataset, transfer_syntax: str) -> dict[int, tuple[str, list]]:
    """``{tag: (VR, values)}`` for the top-level elements of ``ds`` that are decoded here; the others are left
    raw in ``ds`` for pydicom. Nothing in ``ds`` is converted or changed."""
    if transfer_syntax not in LITTLE_ENDIAN_SYNTAXES or not _defaults():
        return {}
    charset = ds.original_character_set or ds._character_set
    encoding = charset if isinstance(charset, str) else (charset[0] if charset else _LATIN)
    implicit = transfer_syntax == "1.2.840.10008.1.2"
    out: dict[int, tuple[str, list]] = {}
    for tag, raw in ds._dict.items():
        if type(raw) is not RawDataElement or raw.value is None or tag in _SKIP_TAGS:
            continue
        if raw.is_implicit_VR != implicit or not raw.is_little_endian:
            continue
        vr = _implicit_vr(tag) if raw.VR is None else raw.VR
        if vr not in FAST_VRS:
            continue
        values = decode(vr, raw.value, _LATIN if tag == 0x00080005 else encoding)
        if values is not None:
            out[int(tag)] = (vr, values)
    return out


def index_value(vr: str, values: list) -> Any:
    """What ``ds.get(keyword)`` gives for the parse's index helpers: "" when empty, one value, or a list."""
    if not values:
        return ""
    return values[0] if len(values) == 1 else values
