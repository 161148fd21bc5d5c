"""Content negotiation for WADO-RS (PS3.18 8.7): parse Accept, pick a media type and transfer syntax per part.

Media ranges come from the ``accept`` query parameter first (PS3.18 8.3.3.1, it has priority), then the Accept
header, ordered by q-value and position. ``multipart/related; type="X"; transfer-syntax=Y`` is read as the inner
type X with syntax Y. A transfer syntax of ``*`` means "as stored"; no transfer syntax means the PS3.18 default
for the media type (Explicit VR Little Endian for ``application/dicom`` and ``application/octet-stream``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..dicom import is_valid_uid
from ..http import DicomWebError
from .syntaxes import (
    BIG_ENDIAN,
    DECODABLE,
    DEFLATED,
    EXPLICIT_LE,
    FRAME_MEDIA_TYPE,
    LOSSY,
    NATIVE,
    NOT_ON_THE_WEB,
)

_ALIASES = {"image/x-jls": "image/jls", "image/x-dicom-rle": "image/dicom-rle", "image/jpg": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One acceptable media type. ``media_type`` is the inner type of a multipart range."""

    media_type: str
    multipart: bool
    transfer_syntax: str | None  # a UID, "*", or None (the default of the media type)
    q: float

    def matches(self, concrete: str) -> bool:
        """Does this range (maybe a wildcard such as ``image/*``) accept the concrete media type?"""
        if self.media_type in ("*/*", concrete):
            return True
        major, _, minor = self.media_type.partition("/")
        return minor == "*" and concrete.startswith(major + "/")


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    out, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value.strip()


def _check_ts(value: str) -> str:
    if value != "*" and not is_valid_uid(value, lenient=True):
        raise DicomWebError(400, f"transfer-syntax={value[:70]!r} is neither a Transfer Syntax UID nor '*'.")
    return value


def _parse_one(item: str) -> MediaRange | None:
    pieces = _split(item, ";")
    media_type = pieces[0].strip().lower()
    if not media_type:
        return None
    if "/" not in media_type:
        raise DicomWebError(400, f"Accept: {media_type[:60]!r} is not a media type (type/subtype).")
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, eq, value = piece.partition("=")
        if not eq:
            continue
        params[name.strip().lower()] = _unquote(value)
    q = 1.0
    if "q" in params:
        try:
            q = float(params["q"])
        except ValueError:
            raise DicomWebError(400, f"Accept: q={params['q'][:20]!r} is not a number between 0 and 1.") from None
        if not 0 <= q <= 1:
            raise DicomWebError(400, f"Accept: q={params['q'][:20]!r} is not between 0 and 1.")
    ts = params.get("transfer-syntax")
    multipart = media_type == "multipart/related"
    if multipart:
        inner = params.get("type", "")
        # tolerate type="application/dicom; transfer-syntax=..." (parameters inside the type value)
        inner_pieces = inner.split(";")
        inner = inner_pieces[0].strip().lower() or "*/*"
        for piece in inner_pieces[1:]:
            name, _, value = piece.partition("=")
            if name.strip().lower() == "transfer-syntax" and ts is None:
                ts = _unquote(value)
        media_type = inner
    media_type = _ALIASES.get(media_type, media_type)
    if ts is not None:
        ts = _check_ts(ts)
    return MediaRange(media_type=media_type, multipart=multipart, transfer_syntax=ts, q=q)


@lru_cache(maxsize=256)
def parse_accept(value: str) -> tuple[MediaRange, ...]:
    """Acceptable media ranges, best first; q=0 ranges are dropped. Raises 400 for a malformed header."""
    ranges = [r for part in _split(value, ",") if (r := _parse_one(part)) is not None]
    order = sorted(range(len(ranges)), key=lambda i: (-ranges[i].q, i))
    return tuple(ranges[i] for i in order if ranges[i].q > 0)


def acceptable(request, default: str) -> tuple[MediaRange, ...]:
    """The request's media ranges: ``accept`` query parameter(s) first, then the Accept header, else ``default``."""
    texts = [v for v in request.GET.getlist("accept") if v.strip()]
    header = request.META.get("HTTP_ACCEPT", "").strip()
    if header:
        texts.append(header)
    if not texts:
        texts = [default]
    ranges = parse_accept(", ".join(texts))
    if not ranges:
        raise DicomWebError(406, "Every media type in Accept has q=0: nothing is acceptable.")
    return ranges


def web_form(stored_ts: str) -> str:
    """The syntax an instance is sent in "as stored": implicit VR and big endian are not allowed on the web."""
    return EXPLICIT_LE if stored_ts in NOT_ON_THE_WEB else stored_ts


def instance_syntax(stored_ts: str, wanted: list[str | None]) -> str | None:
    """The transfer syntax to send a stored instance in, given acceptable syntaxes best first; None: impossible.

    ``None`` in ``wanted`` is the PS3.18 default (Explicit VR Little Endian), except that lossy pixel data may be
    sent in its lossy syntax (PS3.18 8.7.3.4) rather than decompressed.
    """
    for ts in wanted:
        if ts == "*":
            return web_form(stored_ts)
        if ts is None:
            keep = stored_ts in LOSSY or stored_ts not in DECODABLE  # 8.7.3.4: lossy, or cannot be decoded here
            return web_form(stored_ts) if keep else EXPLICIT_LE
        if ts == stored_ts and stored_ts not in NOT_ON_THE_WEB:
            return ts
        if ts == EXPLICIT_LE and stored_ts in DECODABLE:
            return ts
    return None


@dataclass(frozen=True, slots=True)
class FrameChoice:
    """How to send pixel data: ``media_type`` of each part, ``transfer_syntax`` of the bytes, ``decode`` or not."""

    media_type: str
    transfer_syntax: str
    decode: bool
    multipart: bool


def frame_choice(ranges: tuple[MediaRange, ...], stored_ts: str, *, multiple: bool) -> FrameChoice | None:
    """Pick the first acceptable way to send frames (or pixel bulk data) stored in ``stored_ts``; None: 406.

    ``multiple``: more than one part will be sent, so a single-part media type cannot be used. A compressed
    media type without a transfer syntax (``image/jpeg``) accepts any syntax of that media type.
    """
    compressed = stored_ts not in NATIVE
    stored_type = FRAME_MEDIA_TYPE.get(stored_ts)
    native_needs_decode = stored_ts in (BIG_ENDIAN, DEFLATED)
    for r in ranges:
        # a bare */* takes the resource's default form, which is multipart (PS3.18 Table 8.7.3-4)
        as_multipart = r.multipart or r.media_type == "*/*"
        if multiple and not as_multipart:
            continue
        ts = r.transfer_syntax
        if compressed and stored_type and r.matches(stored_type) and ts in (None, "*", stored_ts):
            return FrameChoice(stored_type, stored_ts, False, as_multipart)
        if not r.matches("application/octet-stream"):
            continue
        if ts == "*" or (compressed and ts == stored_ts):
            if compressed:  # as stored, labelled with its syntax (Cornerstone's loader asks for this)
                return FrameChoice("application/octet-stream", stored_ts, False, as_multipart)
            return FrameChoice("application/octet-stream", EXPLICIT_LE, native_needs_decode, as_multipart)
        if ts in (None, EXPLICIT_LE) and stored_ts in DECODABLE:
            return FrameChoice("application/octet-stream", EXPLICIT_LE, compressed or native_needs_decode, as_multipart)
    return None


def pick(ranges: tuple[MediaRange, ...], offered: list[str], *, allow_multipart: bool = False) -> tuple[str, bool] | None:
    """First offered concrete media type that an acceptable range matches: (media type, multipart) or None.

    With ``allow_multipart``, a bare ``*/*`` means the multipart default of bulk data resources.
    """
    for r in ranges:
        if r.multipart and not allow_multipart:
            continue
        for media_type in offered:
            if r.matches(media_type):
                return media_type, r.multipart or (allow_multipart and r.media_type == "*/*")
    return None
