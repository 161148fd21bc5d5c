"""A raw ASGI route for ``GET .../frames/{list}`` and ``.../metadata`` that runs before Django, for viewers.

Django's middleware chain costs more per request than reading a 512 KiB frame (shared/STACK.md). This route
serves the common case itself and hands everything else to Django unchanged, so every refusal (400, 401, 403,
404, 406) and every unusual request (no credentials, the ``accept`` query parameter, transcoding, an object
store, plain HTTP where SECURE_SSL_REDIRECT is set) is answered by the very same view code. What the middleware and the view would have done, it
does with the same functions:

- Host checked against ALLOWED_HOSTS (``django.http.request.validate_host``);
- the user from the Authorization header (``user_from_authorization``) or the session cookie
  (``django.contrib.auth.get_user``), remembered for ``AUTH_TTL`` seconds and forgotten at once when a user,
  token, group membership or grant changes in this process, or on logout;
- per-study permission with ``can_view_study`` (remembered the same way);
- frame numbers parsed and range-checked by the view's functions, Accept negotiated by ``frame_choice``;
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options``, ``Referrer-Policy``, COOP, HSTS when configured,
  ``Cache-Control: private``, and CORS through ``lightbox.middleware.apply_cors``;
- the audit record (``wado.frames`` coalesced, ``wado.metadata``) written off the event loop.

Changes made by another process (``manage.py``, another web worker) reach this one within ``AUTH_TTL``.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import re
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.core.signals import setting_changed
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http.request import split_domain_port, validate_host
from rest_framework.authtoken.models import Token

from accounts.access import can_view_study
from accounts.authentication import user_from_authorization
from accounts.models import StudyGrant
from accounts.roles import user_roles
from audit.log import record
from lightbox.middleware import apply_cors

from ..dbconn import with_connection
from ..models import Instance
from ..signals import resource_deleted
from ..storage import get_storage
from . import multipart
from .frames import FrameListError, parse_frame_list
from .metadata import MetadataAnswer, accepts_gzip, build_metadata
from .negotiate import frame_choice, parse_accept, pick

logger = logging.getLogger(__name__)

FRAMES = re.compile(r"^/dicomweb/studies/([^/]+)/series/([^/]+)/instances/([^/]+)/frames/([^/]+)$")
METADATA = re.compile(r"^/dicomweb/studies/([^/]+)(?:/series/([^/]+)(?:/instances/([^/]+))?)?/metadata$")
AUTH_TTL = 2.0  # seconds a resolved user or permission is trusted without asking the database again
INSTANCE_TTL = 30.0
AUDIT_MEMO = 1.0  # at most one hand-off to audit.record per user, series and client per second
CACHE_IMMUTABLE = b"private, max-age=86400"  # as the views: an instance never changes once stored
CACHE_REVALIDATE = b"private, no-cache"
INLINE_READ_BYTES = 4 << 20  # larger reads go to a thread so the event loop never waits on a cold disk
DEFAULT_FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"'
_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wado-fastpath")
# The first frame asked of a series brings the rows of all its instances (up to this many), so that the rest of
# the series is served without a database lookup each, and asks the kernel to read their frames ahead: STOW-RS
# writes around the page cache (storage.direct_io), so a study that just arrived is on disk only, and a read of
# it on the event loop would hold every other request up while the disk answers.
SERIES_ROWS_MAX = 4096
READAHEAD_BYTES = 512 << 20  # frame bytes of one series asked ahead at most
_READAHEAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wado-readahead")


class _TtlCache:
    """A small dict with expiry and a size bound (oldest first out); per process, cleared on changes."""

    def __init__(self, ttl: float, size: int):
        self.ttl, self.size = ttl, size
        self.data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key):
        hit = self.data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key, value) -> None:
        self.data[key] = (time.monotonic() + self.ttl, value)
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()


_users = _TtlCache(AUTH_TTL, 1024)  # hash of credential -> user (or False: refused, Django answers)
_access = _TtlCache(AUTH_TTL, 8192)  # (user pk, study) -> bool
_instances = _TtlCache(INSTANCE_TTL, 8192)  # SOP Instance UID -> row for frames
_audited = _TtlCache(AUDIT_MEMO, 4096)


def forget_credentials(**_kwargs) -> None:
    """Signal receiver: a user, token, group or grant changed, or someone logged out."""
    _users.clear()
    _access.clear()


def forget_instances(**_kwargs) -> None:
    """Signal receiver for ``resource_deleted`` (rare): forget every instance row."""
    _instances.clear()


def connect_signals() -> None:
    User = get_user_model()
    for model in (User, Token, Group, StudyGrant):
        post_save.connect(forget_credentials, sender=model, dispatch_uid=f"wado-fast-save-{model.__name__}")
        post_delete.connect(forget_credentials, sender=model, dispatch_uid=f"wado-fast-del-{model.__name__}")
    m2m_changed.connect(forget_credentials, sender=User.groups.through, dispatch_uid="wado-fast-groups")
    user_logged_out.connect(forget_credentials, dispatch_uid="wado-fast-logout")
    resource_deleted.connect(forget_instances, dispatch_uid="wado-fast-deleted")


# ------------------------------------------------------------------ work done in threads (database)


def _in_thread(fn, *args):
    """Run ``fn`` with a healthy database connection (``archive.dbconn``: kept with SQLite, pooled otherwise)."""
    return with_connection(fn, *args)


def _resolve_user(authorization: str, session_key: str):
    if authorization:
        user = user_from_authorization(authorization)
    else:
        engine = import_module(settings.SESSION_ENGINE)
        user = get_user(SimpleNamespace(session=engine.SessionStore(session_key)))
        user = user if user.is_authenticated and user.is_active else None
    if user is not None:
        user_roles(user)  # looked up now, in this thread, and kept on the remembered user (AUTH_TTL)
    return user


def _resolve_access(user, study: str) -> bool:
    return can_view_study(user, study)


ROW_FIELDS = ("sop_instance_uid", "storage_key", "transfer_syntax_uid", "number_of_frames", "frame_index")


def _frame_row(row: dict, study: str, series: str) -> dict:
    path = get_storage().local_path(row["storage_key"])
    return {
        "study": study,
        "series": series,
        "path": str(path) if path is not None else None,
        "ts": row["transfer_syntax_uid"],
        "frames": row["number_of_frames"] or 0,
        "index": row["frame_index"] or [],
    }


def _resolve_rows(sop: str) -> dict[str, dict]:
    """The frame row of ``sop`` and of the other instances of its series (SOP Instance UID -> row); {} when
    there is no such instance."""
    row = (
        Instance.objects.filter(sop_instance_uid=sop)
        .values("series_id", "series__series_instance_uid", "series__study__study_instance_uid", *ROW_FIELDS)
        .first()
    )
    if row is None:
        return {}
    study, series = row["series__study__study_instance_uid"], row["series__series_instance_uid"]
    siblings = (Instance.objects.filter(series_id=row["series_id"]).exclude(sop_instance_uid=sop)
                .order_by("instance_number", "pk").values(*ROW_FIELDS)[:SERIES_ROWS_MAX - 1])
    return {r["sop_instance_uid"]: _frame_row(r, study, series) for r in (row, *siblings)}


def _readahead(rows: list[dict]) -> None:
    """Ask the kernel to read the frames of ``rows`` into the page cache (at most READAHEAD_BYTES); it reads
    them while the viewer is busy with the first ones. Best effort: a file that is gone or refuses is skipped."""
    budget = READAHEAD_BYTES
    for row in rows:
        if row["path"] is None or budget <= 0:
            continue
        try:
            fd = os.open(row["path"], os.O_RDONLY)
        except OSError:
            continue
        try:
            for fragments in row["index"]:
                for offset, length in fragments:
                    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
                    budget -= length
                if budget <= 0:
                    break
        except OSError:
            pass
        finally:
            os.close(fd)


async def remembered_user(run, authorization: str, session_key: str):
    """The user for an Authorization header or a session key, remembered for AUTH_TTL seconds (and forgotten at
    once on the changes ``connect_signals`` listens to); None when refused. ``run`` runs a function in a thread."""
    # remembered under a hash: no password or token is kept in memory
    credential = hashlib.sha256(f"{authorization}|{session_key}".encode()).digest()
    user = _users.get(credential)
    if user is None:
        user = await run(_resolve_user, authorization, session_key) or False
        _users.put(credential, user)
    return user or None


def _audit(user, action: str, study: str, series: str, ip: str | None, coalesce: bool, detail: dict) -> None:
    record(user, action, request=SimpleNamespace(META={"REMOTE_ADDR": ip}), study_instance_uid=study,
           series_instance_uid=series, coalesce=coalesce, **detail)


# ------------------------------------------------------------------ the route


def _allowed_hosts() -> list[str]:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _security_headers(scheme: str) -> list[tuple[bytes, bytes]]:
    """The headers SecurityMiddleware and XFrameOptionsMiddleware add, from the same settings (computed once per
    scheme; a copy, since callers extend it)."""
    return list(_security_headers_for(scheme))


@functools.lru_cache(maxsize=4)
def _security_headers_for(scheme: str) -> tuple[tuple[bytes, bytes], ...]:
    out = []
    if scheme == "https" and getattr(settings, "SECURE_HSTS_SECONDS", 0):
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if getattr(settings, "SECURE_HSTS_INCLUDE_SUBDOMAINS", False):
            value += "; includeSubDomains"
        if getattr(settings, "SECURE_HSTS_PRELOAD", False):
            value += "; preload"
        out.append((b"strict-transport-security", value.encode()))
    if getattr(settings, "SECURE_CONTENT_TYPE_NOSNIFF", True):
        out.append((b"x-content-type-options", b"nosniff"))
    out.append((b"x-frame-options", getattr(settings, "X_FRAME_OPTIONS", "DENY").encode()))
    if policy := getattr(settings, "SECURE_REFERRER_POLICY", "same-origin"):
        out.append((b"referrer-policy", (policy if isinstance(policy, str) else ",".join(policy)).encode()))
    if coop := getattr(settings, "SECURE_CROSS_ORIGIN_OPENER_POLICY", "same-origin"):
        out.append((b"cross-origin-opener-policy", coop.encode()))
    return tuple(out)


setting_changed.connect(lambda **_kwargs: _security_headers_for.cache_clear(), weak=False,
                        dispatch_uid="wado-fast-security-headers")


def _cookie(headers: dict[bytes, bytes], name: str) -> str:
    for item in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = item.strip().partition("=")
        if key == name:
            return value
    return ""


class WadoFastPath:
    """ASGI app: serve plain frame and metadata requests, pass everything else (and every refusal) to ``app``."""

    def __init__(self, app):
        self.app = app
        self._ready = False
        self._pending: dict[str, asyncio.Future] = {}  # series UID (as in the URL) -> its rows being looked up
        # LIGHTBOX_WADO_FASTPATH=0 sends every request through Django (to compare, or to rule this route out)
        self.enabled = os.environ.get("LIGHTBOX_WADO_FASTPATH", "1").strip().lower() not in {"0", "false", "no", "off"}

    async def __call__(self, scope, receive, send):
        if self.enabled and scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path = scope["path"]
            route = None
            if path.endswith("/metadata") and (match := METADATA.match(path)):
                route = self._metadata
            elif "/frames/" in path and (match := FRAMES.match(path)):
                route = self._frames
            if route is not None:
                try:
                    if await route(scope, send, *match.groups()):
                        return
                except Exception:  # anything unexpected: Django's view gives the considered answer
                    logger.exception("WADO fast path failed for %s; answering through Django", path)
        await self.app(scope, receive, send)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _in_thread, fn, *args)

    async def _authorize(self, scope, headers: dict[bytes, bytes], study: str):
        """The user when the request may go ahead here (allowed host, known user, access to the study)."""
        if not self._ready:
            connect_signals()
            self._ready = True
        if scope.get("query_string") and any(k == "accept" for k, _ in parse_qsl(scope["query_string"].decode("latin-1"))):
            return None
        domain, _port = split_domain_port(headers.get(b"host", b"").decode("latin-1"))
        if not domain or not validate_host(domain, _allowed_hosts()):
            return None
        if getattr(settings, "SECURE_SSL_REDIRECT", False) and _scheme(scope, headers) != "https":
            return None  # SecurityMiddleware redirects
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        session_key = "" if authorization else _cookie(headers, settings.SESSION_COOKIE_NAME)
        if not authorization and not session_key:
            return None
        user = await remembered_user(self._run, authorization, session_key)
        if user is None:
            return None
        allowed = _access.get((user.pk, study))
        if allowed is None:
            allowed = await self._run(_resolve_access, user, study)
            _access.put((user.pk, study), allowed)
        return user if allowed else None

    async def _row(self, sop: str, series: str) -> dict | None:
        """The frame row of ``sop``: remembered, or looked up together with the rest of its series (one lookup of
        a series at a time: a viewer asks for several of its frames at once), whose frames are then read ahead."""
        row = _instances.get(sop)
        if row is not None:
            return row
        if (pending := self._pending.get(series)) is not None:
            await pending
            if (row := _instances.get(sop)) is not None:
                return row
        lookup = asyncio.get_running_loop().create_future()
        self._pending[series] = lookup
        try:
            rows = await self._run(_resolve_rows, sop)
        finally:
            if self._pending.get(series) is lookup:
                del self._pending[series]
            lookup.set_result(None)
        for uid, found in rows.items():
            _instances.put(uid, found)
        if rows:
            _READAHEAD.submit(_readahead, list(rows.values()))
        return rows.get(sop)

    def _common_headers(self, scope, headers: dict[bytes, bytes], cache: bytes) -> list[tuple[bytes, bytes]]:
        out = [(b"cache-control", cache), *_security_headers(_scheme(scope, headers))]
        if b"authorization" not in headers:
            out.append((b"vary", b"Cookie"))
        cors: dict[str, str] = {}
        apply_cors(headers.get(b"origin", b"").decode("latin-1"), cors)
        return out + [(k.lower().encode(), v.encode()) for k, v in cors.items()]

    async def _frames(self, scope, send, study: str, series: str, sop: str, frame_list: str) -> bool:
        headers = dict(scope["headers"])
        user = await self._authorize(scope, headers, study)
        if user is None:
            return False
        try:
            numbers = parse_frame_list(frame_list)
        except FrameListError:
            return False
        row = await self._row(sop, series)
        if row is None:
            return False
        if (row["study"] != study or row["series"] != series or row["path"] is None
                or max(numbers) > row["frames"] or len(row["index"]) < row["frames"]):
            return False  # another path, no such frame, not on local disk, or no byte offsets: Django answers
        try:
            ranges = parse_accept(headers.get(b"accept", b"").decode("latin-1").strip() or DEFAULT_FRAMES_ACCEPT)
        except Exception:
            return False
        choice = frame_choice(ranges, row["ts"], multiple=len(numbers) > 1) if ranges else None
        if choice is None or choice.decode:
            return False  # 406, or decoding (big endian, deflated, compressed to native): Django does it
        runs = [row["index"][n - 1] for n in numbers]
        total = sum(length for fragments in runs for _, length in fragments)
        try:
            if total <= INLINE_READ_BYTES:
                frames = _read(row["path"], runs)
            else:
                frames = await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _read, row["path"], runs)
        except OSError:
            return False  # gone or truncated: Django says which
        client = (scope.get("client") or (None, None))[0]
        memo = (user.pk, study, series, client)
        if _audited.get(memo) is None:  # audit.record coalesces too; this only spares the hand-off
            _audited.put(memo, True)
            asyncio.get_running_loop().run_in_executor(
                _EXECUTOR, _in_thread, _audit, user, "wado.frames", study, series, client, True, {})
        part_type = f"{choice.media_type}; transfer-syntax={choice.transfer_syntax}"
        common = self._common_headers(scope, headers, CACHE_IMMUTABLE)
        if not choice.multipart:
            body = frames[0]
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", part_type.encode()), (b"content-length", str(len(body)).encode()), *common]})
            await send({"type": "http.response.body", "body": body})
            return True
        boundary = multipart.new_boundary()
        length = multipart.body_length(boundary, [(part_type, len(f)) for f in frames])
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", multipart.content_type(choice.media_type, boundary).encode()),
            (b"content-length", str(length).encode()), *common]})
        for data in frames:  # part by part: no copy of the whole body
            await send({"type": "http.response.body", "body": multipart.part_head(boundary, part_type, len(data)),
                        "more_body": True})
            await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": multipart.PART_END, "more_body": True})
        await send({"type": "http.response.body", "body": multipart.tail(boundary)})
        return True

    async def _metadata(self, scope, send, study: str, series: str | None, sop: str | None) -> bool:
        headers = dict(scope["headers"])
        if settings.USE_X_FORWARDED_HOST:
            return False  # the origin of BulkDataURIs then comes from a proxy header: leave it to Django
        user = await self._authorize(scope, headers, study)
        if user is None:
            return False
        try:
            ranges = parse_accept(headers.get(b"accept", b"").decode("latin-1").strip() or "application/dicom+json")
        except Exception:
            return False
        chosen = pick(ranges, ["application/dicom+json", "application/json"]) if ranges else None
        if chosen is None:
            return False
        origin = f"{_scheme(scope, headers)}://{headers[b'host'].decode('latin-1')}"
        gzip = accepts_gzip(headers.get(b"accept-encoding", b"").decode("latin-1"))
        client = (scope.get("client") or (None, None))[0]
        answer = await self._run(_metadata_answer, user, study, series, sop, origin, gzip, client)
        if answer is None:
            return False  # nothing there: Django answers 404
        media_type = chosen[0] if chosen[0] == "application/json" else "application/dicom+json"
        cache = CACHE_IMMUTABLE if sop else CACHE_REVALIDATE
        response_headers = [(b"content-type", media_type.encode()),
                            (b"content-length", str(len(answer.body)).encode()),
                            (b"vary", b"Accept-Encoding"), *self._common_headers(scope, headers, cache)]
        if answer.gzipped:
            response_headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": answer.body})
        return True


def _scheme(scope, headers: dict[bytes, bytes]) -> str:
    """``request.scheme`` as Django computes it (SECURE_PROXY_SSL_HEADER honoured)."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name, value = proxy
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        if header in headers:
            return "https" if headers[header].decode("latin-1").split(",")[0].strip() == value else "http"
    return scope.get("scheme", "http")


def _metadata_answer(user, study: str, series: str | None, sop: str | None, origin: str, gzip: bool,
                     client: str | None) -> MetadataAnswer | None:
    """The views' metadata answer, audited the same way; None when nothing is there."""
    answer = build_metadata(study, series, sop, origin, gzip)
    if answer is not None:
        _audit(user, "wado.metadata", study, series or "", client, False, {"instances": answer.instances})
    return answer


def _read(path: str, runs: list[list[list[int]]]) -> list[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        out = []
        for fragments in runs:
            chunks = [os.pread(fd, length, offset) for offset, length in fragments]
            if any(len(c) != length for c, (_, length) in zip(chunks, fragments, strict=True)):
                raise OSError("stored file shorter than its index")
            out.append(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return out
    finally:
        os.close(fd)
