"""WADO-RS (PS3.18 10.4): instances, metadata, frames, bulk data, rendered images and thumbnails.

Authentication, UID checks and per-study access happen in :func:`archive.http.dicomweb_view` before these run.
Large answers stream part by part (async iterators, so uvicorn sends each part as it is read); nothing holds a
whole study in memory. Pixel data is never gzipped.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from audit.log import record

from ..http import DicomWebError
from ..models import Instance
from ..storage import get_storage
from . import multipart
from .bulkdata import PIXEL_DATA, BadTag, BulkValue, RangeNotSatisfiable, find_value, parse_range, parse_tag
from .frames import FrameListError, StoredFile, needs_decode, parse_frame_list, read_frames
from .lookup import instance_rows, missing, one_instance, representative
from .metadata import accepts_gzip, build_metadata
from .negotiate import FrameChoice, MediaRange, acceptable, frame_choice, instance_syntax, pick
from .render import (
    NATIVE_LITTLE_ENDIAN,
    RENDERED_TYPES,
    RenderError,
    RenderFailure,
    attributes_from_metadata,
    native_frame,
    parse_params,
    read_attributes,
    render,
    render_pixels,
)
from .syntaxes import EXPLICIT_LE
from .thumbnails import cached_thumbnail
from .transcode import TranscodeError, to_explicit_little_endian

logger = logging.getLogger(__name__)

CHUNK = 4 << 20
# Immutable content (an instance never changes once stored): private caches may keep it for a day.
CACHE_IMMUTABLE = "private, max-age=86400"
CACHE_REVALIDATE = "private, no-cache"  # study/series metadata grows as instances arrive
MAX_FRAMES_IN_MEMORY = 64 << 20


def _wado_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn the ways a stored object can fail into answers with a reason, never a 500."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, **kwargs) -> HttpResponse:
        try:
            return view(request, **kwargs)
        except (FrameListError, BadTag, RenderError) as exc:
            raise DicomWebError(400, str(exc)) from exc
        except (TranscodeError, RenderFailure) as exc:
            logger.error("WADO %s: %s", request.path, exc)
            raise DicomWebError(
                422, f"The stored data of this instance cannot be converted ({exc}); retrieve it as stored "
                "(transfer-syntax=*)."
            ) from exc
        except FileNotFoundError as exc:
            logger.error("WADO %s: stored file missing: %s", request.path, exc)
            raise DicomWebError(410, "The stored file of this instance is gone (deleted meanwhile?).") from exc
        except OSError as exc:
            logger.error("WADO %s: storage error: %s", request.path, exc)
            raise DicomWebError(503, f"The archive could not read the stored file: {exc.strerror or exc}") from exc

    return wrapper


def _origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _audit(request: HttpRequest, action: str, study: str, series: str = "", *, coalesce: bool = False, **detail):
    record(request.user, action, request=request, study_instance_uid=study, series_instance_uid=series or "",
           coalesce=coalesce, **detail)


def _stream(chunks: AsyncIterator[bytes], content_type: str, length: int | None, status: int = 200,
            cache: str = CACHE_IMMUTABLE) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type, status=status)
    if length is not None:
        response["Content-Length"] = str(length)
    response["Cache-Control"] = cache
    return response


def _bytes_response(body: bytes, content_type: str, status: int = 200, cache: str = CACHE_IMMUTABLE) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type, status=status)
    response["Content-Length"] = str(len(body))
    response["Cache-Control"] = cache
    return response


# ---------------------------------------------------------------- instances


def _dicom_ranges(ranges: tuple[MediaRange, ...], *, single_allowed: bool) -> tuple[bool, list[str | None]]:
    """(multipart?, acceptable transfer syntaxes best first) for application/dicom answers; 406 if none."""
    for r in ranges:
        if not (r.matches("application/dicom") and (r.multipart or single_allowed or r.media_type == "*/*")):
            continue
        multipart_wanted = r.multipart or r.media_type == "*/*"
        wanted = [x.transfer_syntax for x in ranges if x.matches("application/dicom") and x.multipart == r.multipart]
        return multipart_wanted, wanted
    offered = 'multipart/related; type="application/dicom"' + (" or application/dicom" if single_allowed else "")
    raise DicomWebError(406, f"Instances are sent as {offered} (with an optional transfer-syntax).")


async def _file_chunks(storage, key: str, expected_size: int) -> AsyncIterator[bytes]:
    path = storage.local_path(key)
    if path is None:
        fp = await asyncio.to_thread(storage.open, key)
        try:
            while chunk := await asyncio.to_thread(fp.read, CHUNK):
                yield chunk
        finally:
            fp.close()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size != expected_size:
            raise OSError(f"stored file {key} has changed size since it was indexed")
        offset = 0
        while offset < expected_size:
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK, expected_size - offset), offset)
            if not chunk:
                raise OSError(f"stored file {key} is shorter than indexed")
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def _transcoded(storage, key: str, stored_ts: str) -> bytes:
    with StoredFile(storage, key) as stored:
        src = stored.source()
        try:
            return to_explicit_little_endian(src, stored_ts)
        finally:
            if not isinstance(src, str):
                src.close()


async def _instance_parts(plan: list[tuple[dict, str]], boundary: str) -> AsyncIterator[bytes]:
    storage = get_storage()
    for row, ts in plan:
        stored_ts = row["transfer_syntax_uid"]
        part_type = f"application/dicom; transfer-syntax={ts}"
        try:
            if ts == stored_ts:
                yield multipart.part_head(boundary, part_type, row["file_size"])
                async for chunk in _file_chunks(storage, row["storage_key"], row["file_size"]):
                    yield chunk
            else:
                data = await asyncio.to_thread(_transcoded, storage, row["storage_key"], stored_ts)
                yield multipart.part_head(boundary, part_type, len(data))
                yield data
        except Exception:
            # The status line is gone already: abort the body so the client sees an incomplete transfer
            # rather than a study silently missing an instance.
            logger.exception("WADO retrieve aborted at instance %s", row["sop_instance_uid"])
            raise
        yield multipart.PART_END
    yield multipart.tail(boundary)


def _retrieve(request: HttpRequest, study: str, series: str | None = None, instance: str | None = None):
    ranges = acceptable(request, 'multipart/related; type="application/dicom"')
    multipart_wanted, wanted = _dicom_ranges(ranges, single_allowed=instance is not None)
    rows = instance_rows(study, series, instance)
    plan, refused = [], []
    for row in rows:
        ts = instance_syntax(row["transfer_syntax_uid"], wanted)
        (plan if ts is not None else refused).append((row, ts))
    if not plan:
        stored = sorted({r["transfer_syntax_uid"] for r, _ in refused})
        raise DicomWebError(
            406, f"None of the requested transfer syntaxes can be produced from the stored {', '.join(stored)}; "
            f"ask for transfer-syntax=* (as stored) or {EXPLICIT_LE} (Explicit VR Little Endian)."
        )
    _audit(request, "wado.retrieve", study, series or "", instances=len(plan),
           **({"sop_instance_uid": instance} if instance else {}))
    status = 206 if refused else 200
    if not multipart_wanted:  # a single instance as application/dicom
        row, ts = plan[0]
        if ts == row["transfer_syntax_uid"]:
            body = _file_chunks(get_storage(), row["storage_key"], row["file_size"])
            response = _stream(body, f"application/dicom; transfer-syntax={ts}", row["file_size"])
        else:
            data = _transcoded(get_storage(), row["storage_key"], row["transfer_syntax_uid"])
            response = _bytes_response(data, f"application/dicom; transfer-syntax={ts}")
        return response
    boundary = multipart.new_boundary()
    length = None
    if all(ts == row["transfer_syntax_uid"] for row, ts in plan):
        length = multipart.body_length(
            boundary, [(f"application/dicom; transfer-syntax={ts}", row["file_size"]) for row, ts in plan]
        )
    response = _stream(_instance_parts(plan, boundary), multipart.content_type("application/dicom", boundary),
                       length, status=status, cache="private, no-store")
    if refused:
        response["Warning"] = (f'299 lightbox "{len(refused)} instance(s) could not be sent in an acceptable '
                               'transfer syntax and were left out"')
    return response


@_wado_errors
def retrieve_study(request: HttpRequest, study: str) -> HttpResponse:
    return _retrieve(request, study)


@_wado_errors
def retrieve_series(request: HttpRequest, study: str, series: str) -> HttpResponse:
    return _retrieve(request, study, series)


@_wado_errors
def retrieve_instance(request: HttpRequest, study: str, series: str, instance: str) -> HttpResponse:
    return _retrieve(request, study, series, instance)


# ---------------------------------------------------------------- metadata


def _metadata(request: HttpRequest, study: str, series: str | None = None, instance: str | None = None):
    ranges = acceptable(request, "application/dicom+json")
    chosen = pick(ranges, ["application/dicom+json", "application/json"])
    if chosen is None:
        raise DicomWebError(406, "Metadata is sent as application/dicom+json (DICOM JSON); XML is not offered.")
    gzip = accepts_gzip(request.META.get("HTTP_ACCEPT_ENCODING", ""))
    answer = build_metadata(study, series, instance, _origin(request), gzip)
    if answer is None:
        raise missing(study, series, instance)
    _audit(request, "wado.metadata", study, series or "", instances=answer.instances)
    media_type = chosen[0] if chosen[0] == "application/json" else "application/dicom+json"
    response = _bytes_response(answer.body, media_type, cache=CACHE_IMMUTABLE if instance else CACHE_REVALIDATE)
    if answer.gzipped:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    return response


@_wado_errors
def study_metadata(request: HttpRequest, study: str) -> HttpResponse:
    return _metadata(request, study)


@_wado_errors
def series_metadata(request: HttpRequest, study: str, series: str) -> HttpResponse:
    return _metadata(request, study, series)


@_wado_errors
def instance_metadata(request: HttpRequest, study: str, series: str, instance: str) -> HttpResponse:
    return _metadata(request, study, series, instance)


# ---------------------------------------------------------------- frames and pixel bulk data


def _check_frames(row: dict, numbers: list[int]) -> None:
    count = row["number_of_frames"] or 0
    if not count:
        raise DicomWebError(404, f"Instance {row['sop_instance_uid']} has no pixel data, so no frames.")
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise DicomWebError(404, f"Frame {beyond[0]} does not exist: the instance has {count} frame(s), numbered from 1.")


def _no_frame_choice(row: dict, many: bool) -> DicomWebError:
    ts = row["transfer_syntax_uid"]
    hint = ("multipart/related; type=\"application/octet-stream\" (uncompressed), or transfer-syntax=* for the "
            f"frames as stored ({ts})")
    if many:
        hint += "; several frames need a multipart/related media type"
    return DicomWebError(406, f"No acceptable media type can carry these frames: ask for {hint}.")


def _part_type(choice: FrameChoice) -> str:
    return f"{choice.media_type}; transfer-syntax={choice.transfer_syntax}"


async def _frame_parts(row: dict, numbers: list[int], choice: FrameChoice, boundary: str) -> AsyncIterator[bytes]:
    part_type = _part_type(choice)
    with StoredFile(get_storage(), row["storage_key"]) as stored:
        for n in numbers:
            (data,) = await asyncio.to_thread(
                read_frames, stored, row["transfer_syntax_uid"], row["frame_index"], [n],
                decode=choice.decode, bits_allocated=row["bits_allocated"] or 8,
            )
            yield multipart.part_head(boundary, part_type, len(data))
            yield data
            yield multipart.PART_END
    yield multipart.tail(boundary)


def frames_response(row: dict, numbers: list[int], choice: FrameChoice) -> HttpResponse:
    """The answer with frames ``numbers`` of an instance row (with ``frame_index``), sent as ``choice`` says."""
    frame_index = row["frame_index"] or []
    stored_size = sum(length for n in numbers if n <= len(frame_index) for _, length in frame_index[n - 1])
    if choice.multipart and (stored_size > MAX_FRAMES_IN_MEMORY or (choice.decode and len(numbers) > 16)):
        boundary = multipart.new_boundary()
        length = None
        if not choice.decode and not needs_decode(row["transfer_syntax_uid"], frame_index):  # sizes known
            sizes = [sum(n for _, n in frame_index[i - 1]) for i in numbers]
            length = multipart.body_length(boundary, [(_part_type(choice), n) for n in sizes])
        return _stream(_frame_parts(row, numbers, choice, boundary),
                       multipart.content_type(choice.media_type, boundary), length)
    with StoredFile(get_storage(), row["storage_key"]) as stored:
        data = read_frames(stored, row["transfer_syntax_uid"], frame_index, numbers, decode=choice.decode,
                           bits_allocated=row["bits_allocated"] or 8)
    if not choice.multipart:
        return _bytes_response(data[0], _part_type(choice))
    boundary = multipart.new_boundary()
    body = multipart.join(boundary, [(_part_type(choice), d) for d in data])
    return _bytes_response(body, multipart.content_type(choice.media_type, boundary))


@_wado_errors
def retrieve_frames(request: HttpRequest, study: str, series: str, instance: str, frames: str) -> HttpResponse:
    numbers = parse_frame_list(frames)
    ranges = acceptable(request, 'multipart/related; type="application/octet-stream"')
    row = one_instance(study, series, instance, "frame_index")
    _check_frames(row, numbers)
    choice = frame_choice(ranges, row["transfer_syntax_uid"], multiple=len(numbers) > 1)
    if choice is None:
        raise _no_frame_choice(row, len(numbers) > 1)
    _audit(request, "wado.frames", study, series, coalesce=True)
    return frames_response(row, numbers, choice)


def _value_chunks(storage, key: str, value: BulkValue, start: int, end: int) -> list[bytes]:
    if value.data is not None:
        return [value.data[start:end + 1]]
    with StoredFile(storage, key) as stored:
        return stored.read_ranges([[value.offset + start, end - start + 1]])


def _pixel_bulk(request: HttpRequest, row: dict, ranges: tuple[MediaRange, ...]) -> HttpResponse:
    """Pixel Data as bulk data: native data in one part (all frames), compressed frames one part each."""
    count = row["number_of_frames"] or 0
    if not count:
        raise DicomWebError(404, "This instance has no Pixel Data.")
    numbers = list(range(1, count + 1))
    choice = frame_choice(ranges, row["transfer_syntax_uid"], multiple=False)
    if choice is not None and choice.transfer_syntax == EXPLICIT_LE:
        frame_index = row["frame_index"] or []
        if not choice.decode and frame_index and all(len(f) == 1 for f in frame_index):
            first, last = frame_index[0][0], frame_index[-1][0]
            value = BulkValue(length=last[0] + last[1] - first[0], offset=first[0])
            if value.length == sum(f[0][1] for f in frame_index):
                return _bulk_value_response(request, row, value, choice.multipart)
        with StoredFile(get_storage(), row["storage_key"]) as stored:
            data = b"".join(read_frames(stored, row["transfer_syntax_uid"], frame_index, numbers,
                                        decode=choice.decode, bits_allocated=row["bits_allocated"] or 8))
        return _bulk_value_response(request, row, BulkValue(length=len(data), data=data), choice.multipart)
    choice = frame_choice(ranges, row["transfer_syntax_uid"], multiple=True)
    if choice is None:
        raise _no_frame_choice(row, count > 1)
    return frames_response(row, numbers, choice)


def _bulk_value_response(request: HttpRequest, row: dict, value: BulkValue, multipart_wanted: bool) -> HttpResponse:
    try:
        selected = parse_range(request.META.get("HTTP_RANGE", ""), value.length)
    except RangeNotSatisfiable as exc:
        response = _bytes_response(f'{{"error": "{exc}"}}'.encode(), "application/json", status=416)
        response["Content-Range"] = f"bytes */{value.length}"
        return response
    start, end = selected if selected is not None else (0, value.length - 1)
    data = b"".join(_value_chunks(get_storage(), row["storage_key"], value, start, end)) if value.length else b""
    status = 206 if selected is not None else 200
    part_type = "application/octet-stream"
    if multipart_wanted:
        boundary = multipart.new_boundary()
        extra = {"Content-Range": f"bytes {start}-{end}/{value.length}"} if selected else None
        body = (multipart.part_head(boundary, part_type, len(data), extra) + data + multipart.PART_END
                + multipart.tail(boundary))
        response = _bytes_response(body, multipart.content_type(part_type, boundary), status=status)
    else:
        response = _bytes_response(data, part_type, status=status)
    if selected is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{value.length}"
    response["Accept-Ranges"] = "bytes"
    return response


@_wado_errors
def bulkdata(request: HttpRequest, study: str, series: str, instance: str, tag: str) -> HttpResponse:
    number = parse_tag(tag)
    ranges = acceptable(request, 'multipart/related; type="application/octet-stream"')
    row = one_instance(study, series, instance, "frame_index")
    _audit(request, "wado.bulkdata", study, series, coalesce=True)
    if number == PIXEL_DATA:
        return _pixel_bulk(request, row, ranges)
    chosen = pick(ranges, ["application/octet-stream"], allow_multipart=True)
    if chosen is None:
        raise DicomWebError(406, 'Bulk data is sent as application/octet-stream (single part or multipart/related).')
    with StoredFile(get_storage(), row["storage_key"]) as stored:
        src = stored.source()
        try:
            value = find_value(src, row["transfer_syntax_uid"], number)
        finally:
            if not isinstance(src, str):
                src.close()
    if value is None:
        raise DicomWebError(404, f"Instance {instance} has no bulk data element ({tag[:4]},{tag[4:]}).")
    return _bulk_value_response(request, row, value, chosen[1])


# ---------------------------------------------------------------- rendered and thumbnails


def _render_target(study: str, series: str | None, instance: str | None, frames: str | None) -> tuple[dict, int]:
    """(instance row, 0-based frame) to render for a study, series, instance or frame path."""
    if instance is None:
        return representative(study, series), 0
    row = one_instance(study, series, instance, "frame_index", "metadata")  # one read for the native path
    if frames is None:
        numbers = [1]
    else:
        numbers = parse_frame_list(frames)
        if len(numbers) != 1:
            raise DicomWebError(400, "A rendered frame is one frame: give a single frame number.")
    _check_frames(row, numbers)
    return row, numbers[0] - 1


def _rendered_media_type(request: HttpRequest) -> str:
    chosen = pick(acceptable(request, "image/jpeg"), RENDERED_TYPES)
    if chosen is None:
        raise DicomWebError(406, "Rendered images are sent as image/jpeg (default), image/png or image/gif.")
    return chosen[0]


def _render_row(row: dict, frame: int, params) -> bytes:
    fast = _render_native(row, frame, params)
    if fast is not None:
        return fast
    with StoredFile(get_storage(), row["storage_key"]) as stored:
        src = stored.source()
        try:
            attributes = read_attributes(src)
            if not isinstance(src, str):
                src.seek(0)
            return render(src, attributes, frame, params)
        finally:
            if not isinstance(src, str):
                src.close()


def _render_native(row: dict, frame: int, params) -> bytes | None:
    """A single-frame native grayscale instance: attributes from the stored metadata, pixels from the frame index
    (no parse of the file). None for everything else, which takes the general path."""
    index = row.get("frame_index") or []
    if row["transfer_syntax_uid"] not in NATIVE_LITTLE_ENDIAN or frame != 0 or len(index) != 1 or len(index[0]) != 1:
        return None
    metadata = row["metadata"] if "metadata" in row else (
        Instance.objects.filter(pk=row["pk"]).values_list("metadata", flat=True).first())
    ds = attributes_from_metadata(bytes(metadata)) if metadata else None
    if ds is None:
        return None
    try:
        data = get_storage().read_ranges(row["storage_key"], index[0])[0]
    except OSError:
        return None  # the general path says what is wrong with the stored file
    arr = native_frame(ds, data)
    return None if arr is None else render_pixels(ds, arr, params)


@_wado_errors
def rendered(request: HttpRequest, study: str, series: str | None = None, instance: str | None = None,
             frames: str | None = None) -> HttpResponse:
    media_type = _rendered_media_type(request)
    params = parse_params(request.GET, media_type)
    row, frame = _render_target(study, series, instance, frames)
    _audit(request, "wado.rendered", study, series or "", coalesce=True)
    return _bytes_response(_render_row(row, frame, params), media_type)


@_wado_errors
def thumbnail(request: HttpRequest, study: str, series: str | None = None, instance: str | None = None,
              frames: str | None = None) -> HttpResponse:
    media_type = _rendered_media_type(request)
    params = parse_params(request.GET, media_type, default_viewport=(128, 128))
    row, frame = _render_target(study, series, instance, frames)
    _audit(request, "wado.rendered", study, series or "", coalesce=True, thumbnail=True)
    body = cached_thumbnail(row["sop_instance_uid"], frame, params, lambda: _render_row(row, frame, params))
    return _bytes_response(body, media_type)


def not_found(request: HttpRequest, **kwargs) -> HttpResponse:
    raise DicomWebError(404, f"No DICOMweb resource at {request.path}; see docs/CONFORMANCE.md.")

