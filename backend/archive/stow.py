"""STOW-RS (PS3.18 10.5): ``POST /dicomweb/studies`` and ``/dicomweb/studies/{study}``.

The body is read part by part into staging files (never held in memory); only once the whole body has been
read and found well-formed is any part stored, so a malformed request stores nothing. The parts are then stored
by the archive's store workers (:func:`archive.store_workers.store_all`, batches indexed in one transaction):
each part succeeds or fails on its own, so a part that is not valid DICOM fails alone and the others are stored.
See docs/conformance/stow.md for the status and failure-reason policy.
"""
from __future__ import annotations

from collections import Counter

import orjson
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import parse_header_parameters

from accounts.roles import Capability, has_capability
from audit.log import record
from lightbox.conf import lightbox_setting

from .http import DicomWebError
from .ingest import StoreOutcome, notify_stored
from .multipart import BodyTooLarge, MultipartError, Part, iter_parts
from .parse_pool import check_soon, forget
from .storage import get_storage
from .store_workers import store_all

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
MAX_WARNING_HEADERS = 10
def store(request: HttpRequest, study: str | None = None) -> HttpResponse:
    """Store the instances of a ``multipart/related; type="application/dicom"`` body."""
    if not has_capability(request.user, Capability.STORE):
        raise DicomWebError(403, "Storing instances needs the 'store' capability (admin, radiologist, technologist).")
    boundary = _boundary(request.META.get("CONTENT_TYPE", ""))
    max_bytes = int(lightbox_setting("STOW_MAX_BYTES"))
    declared = _content_length(request)
    if declared is not None and declared > max_bytes:
        raise DicomWebError(413, f"The request body ({declared} bytes) is larger than the limit of {max_bytes} bytes "
                                 "(LIGHTBOX_STOW_MAX_BYTES): send the instances in several requests.")
    if declared == 0:
        raise DicomWebError(400, "The request body is empty.")
    parts = _read_parts(request, boundary, max_bytes)
    outcomes = store_all([part.path for part in parts], expected_study_uid=study, consume=True)
    notify_stored(outcomes)
    _audit(request, outcomes)
    return _response(request, outcomes, study, [part.index for part in parts])


def _boundary(content_type: str) -> str:
    """Check the request's media type (415 with the reason) and return its boundary (400 when absent)."""
    if not content_type:
        raise DicomWebError(415, 'No Content-Type: STOW-RS expects multipart/related; type="application/dicom".')
    media_type, params = parse_header_parameters(content_type)
    media_type = media_type.lower()
    if media_type in {DICOM, DICOM_JSON, "application/dicom+xml"}:
        raise DicomWebError(415, f"A bare {media_type} body is not supported: send multipart/related; "
                                 f'type="application/dicom" with one instance per part.')
    if media_type != "multipart/related":
        raise DicomWebError(415, f'Content-Type {media_type!r} is not supported: STOW-RS expects multipart/related; '
                                 'type="application/dicom".')
    part_type = params.get("type", "").split(";")[0].strip().lower()
    if part_type and part_type != DICOM:
        raise DicomWebError(415, f"multipart/related of type {part_type!r} is not supported: only "
                                 "application/dicom parts are supported (no DICOM JSON or XML with bulk data).")
    boundary = params.get("boundary", "")
    if not boundary:
        raise DicomWebError(400, "The Content-Type has no boundary parameter: multipart/related needs one.")
    return boundary


def _content_length(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH") or ""
    try:
        return int(value) if value else None
    except ValueError:
        raise DicomWebError(400, f"Content-Length {value[:40]!r} is not a number.") from None


def _read_parts(request: HttpRequest, boundary: str, max_bytes: int) -> list[Part]:
    """Stage every part; on any problem remove what was staged and answer 400, 413 or 415."""
    parts: list[Part] = []
    try:
        for part in iter_parts(_body(request), boundary, get_storage().new_upload_file, max_bytes=max_bytes):
            parts.append(part)
            part_type = parse_header_parameters(part.content_type)[0].lower() if part.content_type else DICOM
            if part_type != DICOM:
                raise DicomWebError(415, f"Part {part.index} has Content-Type {part_type!r}: only application/dicom "
                                         "parts are supported (no DICOM JSON with bulk data). Nothing was stored.")
            check_soon(part.path)  # parse it now in a parse process, while the next parts arrive
    except BodyTooLarge as exc:
        _discard(parts)
        raise DicomWebError(413, f"{exc.reason} (LIGHTBOX_STOW_MAX_BYTES): send the instances in several requests.") from None
    except MultipartError as exc:
        _discard(parts)
        raise DicomWebError(400, f"Malformed multipart/related body: {exc.reason} Nothing was stored.") from None
    except BaseException:
        _discard(parts)
        raise
    return parts


def _body(request: HttpRequest):
    """What the parts are read from: the direct route's body stream when there is one (its ``read1`` hands on
    the server's messages as they came; ``HttpRequest`` has no ``read1``, so reading through it joined them
    into 1 MB blocks), else the request itself."""
    stream = getattr(request, "lightbox_body", None)
    if stream is None:
        return request
    request._read_started = True  # as HttpRequest.read marks it: request.body now refuses, as it would
    return stream


def _discard(parts: list[Part]) -> None:
    for part in parts:
        if part.path is not None:
            forget(part.path)
            part.path.unlink(missing_ok=True)


def _audit(request: HttpRequest, outcomes: list[StoreOutcome]) -> None:
    stored: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for o in outcomes:
        (stored if o.ok else failed)[o.study_instance_uid] += 1
    for study_uid in sorted(set(stored) | set(failed)):
        record(
            request.user, "stow.store", request=request, study_instance_uid=study_uid,
            outcome="success" if not failed[study_uid] else ("partial" if stored[study_uid] else "failure"),
            stored=stored[study_uid], failed=failed[study_uid],
        )


def _uid(value: str) -> dict:
    return {"vr": "UI", "Value": [value]}


def _url(value: str) -> dict:
    return {"vr": "UR", "Value": [value]}


def _response(request: HttpRequest, outcomes: list[StoreOutcome], study: str | None, indexes: list[int],
              ) -> HttpResponse:
    """The Store Instances Response (PS3.18 10.5.3) as DICOM JSON; 200, 202 or 409 by what was stored."""
    root = request.build_absolute_uri(reverse("studies"))  # .../dicomweb/studies
    referenced, failed, warnings = [], [], []
    for index, o in zip(indexes, outcomes, strict=True):
        if o.ok:
            instance_url = (f"{root}/{o.study_instance_uid}/series/{o.series_instance_uid}"
                            f"/instances/{o.sop_instance_uid}")
            referenced.append({"00081150": _uid(o.sop_class_uid), "00081155": _uid(o.sop_instance_uid),
                               "00081190": _url(instance_url)})
            continue
        item: dict = {}
        if o.sop_class_uid:
            item["00081150"] = _uid(o.sop_class_uid)
        if o.sop_instance_uid:
            item["00081155"] = _uid(o.sop_instance_uid)
        item["00081197"] = {"vr": "US", "Value": [o.code]}
        failed.append(item)
        warnings.append(f"part {index}" + (f" ({o.sop_instance_uid})" if o.sop_instance_uid else "") + f": {o.reason}")
    body: dict = {}
    studies = {o.study_instance_uid for o in outcomes if o.ok}
    if study or len(studies) == 1:
        body["00081190"] = _url(f"{root}/{study or next(iter(studies))}")
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    status = 200 if not failed else (202 if referenced else 409)
    response = HttpResponse(orjson.dumps(body), status=status, content_type=DICOM_JSON)
    if warnings:
        response["Warning"] = ", ".join(_warning(text) for text in warnings[:MAX_WARNING_HEADERS])
    return response


def _warning(text: str) -> str:
    """One ``299`` warning value (RFC 7234 5.5): a quoted string of printable latin-1 characters."""
    clean = "".join(c if " " <= c <= "~" else " " for c in text)[:300].replace("\\", "\\\\").replace('"', '\\"')
    return f'299 lightbox "{clean}"'

