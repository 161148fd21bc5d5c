"""DICOMweb searches, rendered images and STOW-RS with credentials in the header, dispatched without middleware.

Under ASGI each of Django's eight middlewares hops to a thread, and the handler spools a request's whole body to
a temporary file before the view starts: about 8 ms a request, more than a small search costs, and a second
copy of every STOW body on disk (docs/PERFORMANCE.md). This ASGI app runs the *very same* DICOMweb view (the
``dicomweb_view`` wrapper from ``archive.urls``: authentication, UID checks, per-study access, capability
checks, audit, every 4xx answer) on a Django request built from the ASGI scope, in one worker thread; STOW's
body is handed to the view as it arrives (parts go straight into staging files while the upload goes on).

What the middleware would have added, it adds: the Host check (anything not in ALLOWED_HOSTS goes to Django,
which answers 400), HTTPS redirects (such requests go to Django), ``nosniff``, ``X-Frame-Options``,
``Referrer-Policy``, COOP, HSTS from the same settings, and CORS through ``lightbox.middleware.apply_cors``.
Only requests that carry an ``Authorization`` header come here: browser sessions (cookies, CSRF) and anonymous
calls keep Django's full stack. The header is resolved with the WADO fast path's credential cache
(``remembered_user``: AUTH_TTL seconds, forgotten at once when a user, token, group or grant changes in this
process); refused credentials reach the view unresolved, and its own check answers 401. An exception in a view is answered as Django answers it
(``response_for_exception``); a GET that fails unexpectedly is simply retried through Django.
"""
from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import re
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from django.core.exceptions import SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import response_for_exception
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import Resolver404, resolve

from lightbox.middleware import apply_cors

from . import sqlrows
from .dbconn import with_connection
from .wado.fastpath import _allowed_hosts, _scheme, _security_headers, connect_signals, remembered_user

logger = logging.getLogger(__name__)

_UID = r"[^/]+"
GET_ROUTES = re.compile(
    r"^/dicomweb/(?:studies|series|instances"  # QIDO at the root
    rf"|studies/{_UID}/(?:series|instances|rendered|thumbnail)"
    rf"|studies/{_UID}/series/{_UID}/(?:instances|rendered|thumbnail)"
    rf"|studies/{_UID}/series/{_UID}/instances/{_UID}/(?:rendered|thumbnail)"
    rf"|studies/{_UID}/series/{_UID}/instances/{_UID}/frames/{_UID}/(?:rendered|thumbnail))$"
)
POST_ROUTES = re.compile(rf"^/dicomweb/studies(?:/{_UID})?$")  # STOW-RS
BODY_QUEUE_MESSAGES = 64  # ASGI body messages held before the upload is paused (about 4 MB with uvicorn)
WAKE_BYTES = 256 * 1024  # the view thread reading a STOW body is woken when this much has arrived (or the end)
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dicomweb-direct")
# A study search at the root runs on the event loop when the index is SQLite, within this many seconds of SQL
# (LIGHTBOX_DICOMWEB_INLINE=0: always in a worker thread); longer searches are interrupted and go to a thread
INLINE_PATHS = frozenset({"/dicomweb/studies"})
INLINE_BUDGET_S = float(os.environ.get("LIGHTBOX_DICOMWEB_INLINE_BUDGET_S", "0.002"))
INLINE_ENABLED = os.environ.get("LIGHTBOX_DICOMWEB_INLINE", "1").strip().lower() not in {"0", "false", "no", "off"}
_inline_connection = None
# searches (path and query) that ran over the budget recently go straight to a thread: no budget spent twice
OVER_BUDGET_MEMORY_S = 60.0
_over_budget: dict[tuple[str, bytes], float] = {}
# URL resolution is the same for a path every time (about 50 us per request otherwise); forgotten with the settings
_resolve = functools.lru_cache(maxsize=4096)(resolve)
_hosts: dict[str, bool] = {}  # Host header -> allowed (ALLOWED_HOSTS), bounded, forgotten with the settings


def _forget(**_kwargs) -> None:
    _resolve.cache_clear()
    _hosts.clear()


setting_changed.connect(_forget, dispatch_uid="archive-direct-forget")


class _BodyStream:
    """A blocking ``read(n)`` over ASGI body messages that the event loop hands in (:meth:`put`) as they arrive.

    The reading thread is woken only once WAKE_BYTES have arrived (or the body ended), not for every message:
    each wake-up is a GIL hand-off between the event loop and the view thread, and a 512 KB part came in
    several messages."""

    def __init__(self) -> None:
        self.chunks: deque[bytes | bytearray] = deque()
        self.queued = 0  # bytes in chunks
        self.ended = False  # the end of the body (or the client went away: the body then reads as truncated)
        self.waiting = False
        self.ready = threading.Condition(threading.Lock())
        self.buffer = bytearray()
        self.done = False

    def put(self, chunk: bytes | bytearray | None) -> None:
        """From the event loop: one more body message; None at the end."""
        with self.ready:
            if chunk is None:
                self.ended = True
            else:
                self.chunks.append(chunk)
                self.queued += len(chunk)
            if self.waiting and (self.ended or self.queued >= WAKE_BYTES or len(self.chunks) >= BODY_QUEUE_MESSAGES):
                self.ready.notify()  # (a full queue pauses the pump: the reader must not wait for more then)

    def _next(self) -> bytes | bytearray | None:
        """The next message, waiting for WAKE_BYTES of them (or the end) when none is there; None at the end."""
        with self.ready:
            if not self.chunks:
                self.waiting = True
                while not self.ended and self.queued < WAKE_BYTES and len(self.chunks) < BODY_QUEUE_MESSAGES:
                    self.ready.wait()
                self.waiting = False
            if not self.chunks:
                return None
            chunk = self.chunks.popleft()
            self.queued -= len(chunk)
            return chunk

    def read(self, size: int = -1, /) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) < size):
            chunk = self._next()
            if chunk is None:
                self.done = True
            else:
                self.buffer += chunk
        if size < 0 or size >= len(self.buffer):
            out, self.buffer = bytes(self.buffer), bytearray()
        else:
            out = bytes(self.buffer[:size])
            del self.buffer[:size]
        return out

    def read1(self, size: int = -1, /) -> bytes | bytearray:
        """Up to ``size`` bytes of what has arrived, waiting only when nothing has; b"" at the end. The body
        messages are handed on as they came, not joined into a buffer first (one copy less of every byte)."""
        if self.buffer:
            return self.read(size if 0 <= size < len(self.buffer) else len(self.buffer))
        while not self.done:
            chunk = self._next()
            if chunk is None:
                self.done = True
            elif size < 0 or len(chunk) <= size:
                return chunk
            else:
                self.buffer += memoryview(chunk)[size:]
                return chunk[:size]
        return b""

    def readline(self, size: int = -1, /) -> bytes:  # pragma: no cover - DICOMweb views never read lines
        raise OSError("not supported")


class DirectDispatch:
    """ASGI app: serve the routes above through their views without middleware; everything else goes to ``app``."""

    def __init__(self, app):
        self.app = app
        self._signals = False
        # LIGHTBOX_DICOMWEB_DIRECT=0 sends every request through Django's middleware (to compare, or rule this out)
        self.enabled = os.environ.get("LIGHTBOX_DICOMWEB_DIRECT", "1").strip().lower() not in {"0", "false", "no", "off"}

    async def __call__(self, scope, receive, send):
        if self.enabled and scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            if ((method == "GET" and GET_ROUTES.match(path)) or (method == "POST" and POST_ROUTES.match(path))):
                headers = dict(scope["headers"])
                if _eligible(scope, headers):
                    if method == "GET":
                        if await self._get(scope, headers, send):
                            return
                    else:
                        await self._post(scope, headers, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _user(self, headers: dict[bytes, bytes]):
        """The caller, from the WADO fast path's credential cache (same rules, same revocation); None when the
        credentials are refused, and the view's own check then answers 401."""
        if not self._signals:
            connect_signals()
            self._signals = True
        return await remembered_user(_run, headers[b"authorization"].decode("latin-1"), "")

    async def _get(self, scope, headers: dict[bytes, bytes], send) -> bool:
        user = await self._user(headers)
        response = _run_inline(scope, user) if scope["path"] in INLINE_PATHS and user is not None else None
        if response is None:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(_EXECUTOR, with_connection, _run_view, scope, None, False, user)
        if response is None:
            return False
        await _send(send, response, _extra_headers(scope, headers))
        return True

    async def _post(self, scope, headers: dict[bytes, bytes], receive, send) -> None:
        user = await self._user(headers)
        loop = asyncio.get_running_loop()
        stream = _BodyStream()
        view = loop.run_in_executor(_EXECUTOR, with_connection, _run_view, scope, stream, True, user)
        pump = asyncio.ensure_future(_pump(receive, stream))
        try:
            response = await view
        finally:
            if not pump.done():
                pump.cancel()
        await _send(send, response, _extra_headers(scope, headers))


def _uvicorn_cycle() -> type | None:
    try:
        from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
    except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency
        return None
    return RequestResponseCycle


_UVICORN_CYCLE = _uvicorn_cycle()


def _body_receiver(receive):
    """``receive``, or for uvicorn's httptools server (pyproject pins uvicorn 0.54.0) the same steps without
    its last copy of the body: uvicorn gathers a request's body in a ``bytearray`` and hands out
    ``bytes(bytearray)``, a fresh copy of up to 256 KB per message (about 12% of the event loop's time in a
    4-client STOW profile: fresh memory costs page faults). Here the gathered ``bytearray`` itself is handed on
    and a new one put in its place, which is all uvicorn does after the copy. Any other server, or a ``receive``
    that something wrapped, is used as it is."""
    cycle = getattr(receive, "__self__", None)
    if _UVICORN_CYCLE is None or type(cycle) is not _UVICORN_CYCLE or \
            getattr(receive, "__func__", None) is not _UVICORN_CYCLE.receive:
        return receive

    async def receive_body():  # uvicorn's RequestResponseCycle.receive (0.54.0), but for the copy
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        if not cycle.disconnected and not cycle.response_complete:
            cycle.flow.resume_reading()
            await cycle.message_event.wait()
            cycle.message_event.clear()
        if cycle.disconnected or cycle.response_complete:
            return {"type": "http.disconnect"}
        body, cycle.body = cycle.body, bytearray()
        return {"type": "http.request", "body": body, "more_body": cycle.more_body}

    return receive_body


async def _pump(receive, stream: _BodyStream) -> None:
    """Move body messages into the reader's queue; pause while the reader is far behind (bounded memory)."""
    receive = _body_receiver(receive)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            if body := message.get("body", b""):
                while len(stream.chunks) >= BODY_QUEUE_MESSAGES:
                    await asyncio.sleep(0.002)
                stream.put(body)
            if not message.get("more_body", False):
                break
    finally:
        stream.put(None)


def _eligible(scope, headers: dict[bytes, bytes]) -> bool:
    """Credentials in the header, an allowed Host, nothing the security middleware would redirect."""
    from django.conf import settings

    if not headers.get(b"authorization"):
        return False
    host = headers.get(b"host", b"").decode("latin-1")
    allowed = _hosts.get(host)
    if allowed is None:
        domain, _port = split_domain_port(host)
        allowed = bool(domain) and validate_host(domain, _allowed_hosts())
        if len(_hosts) >= 256:
            _hosts.clear()
        _hosts[host] = allowed
    if not allowed:
        return False
    return not (getattr(settings, "SECURE_SSL_REDIRECT", False) and _scheme(scope, headers) != "https")


async def _run(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, with_connection, fn, *args)


def _run_view(scope, stream: _BodyStream | None, must_answer: bool, user) -> HttpResponse | None:
    """Resolve and run the DICOMweb view in this thread; None asks the caller to go through Django instead."""
    request = ASGIRequest(scope, stream if stream is not None else io.BytesIO())
    if user is not None:
        request.lightbox_user = user
    if stream is not None:
        request.lightbox_body = stream  # STOW reads it directly: HttpRequest has no read1 to hand messages on
    try:
        match = _resolve(request.path_info)
    except Resolver404:
        return _drained(stream) if must_answer else None
    request.resolver_match = match
    try:
        response = match.func(request, *match.args, **match.kwargs)
        if response.streaming:  # not expected on these routes; joined here so one code path sends answers
            content = b"".join(response.streaming_content)
            response = _copy_headers(response, HttpResponse(content, status=response.status_code))
        return response
    except Exception as exc:
        if not must_answer:
            logger.exception("direct DICOMweb dispatch failed for %s; answering through Django", request.path)
            return None
        return response_for_exception(request, exc)
    finally:
        if stream is not None:
            _drained(stream)


def _inline_reader() -> sqlrows.Inline | None:
    """The event loop's read-only SQLite connection (None with any other database)."""
    global _inline_connection
    connection = connections[DEFAULT_DB_ALIAS]
    if not INLINE_ENABLED or connection.vendor != "sqlite":
        return None
    if _inline_connection is None:
        # opened with Django's own parameters and set-up (functions, pragmas), then made read-only
        with ThreadPoolExecutor(1) as one:  # Django refuses to connect from a thread running an event loop
            _inline_connection = one.submit(_open_inline, connection).result()
    return sqlrows.Inline(DEFAULT_DB_ALIAS, _inline_connection, INLINE_BUDGET_S)


def _open_inline(connection):
    raw = connection.get_new_connection(connection.get_connection_params())
    raw.isolation_level = None  # autocommit: every statement reads the latest committed state
    raw.execute("PRAGMA query_only = ON")
    return raw


def _run_inline(scope, user) -> HttpResponse | None:
    """Run a study search on the event loop itself, reading through the loop's SQLite connection: no thread hop
    for the most common request. None (and nothing sent, nothing audited) when it cannot finish here: a
    database other than SQLite, a read over INLINE_BUDGET_S (that search then goes to a thread for
    OVER_BUDGET_MEMORY_S), or anything that would use Django's connection (the ORM refuses to run on an event
    loop); the caller then runs it in a worker thread as usual."""
    key = (scope["path"], scope.get("query_string", b""))
    if (seen := _over_budget.get(key)) is not None and time.monotonic() - seen < OVER_BUDGET_MEMORY_S:
        return None
    reader = _inline_reader()
    if reader is None:
        return None
    token = sqlrows.inline.set(reader)
    try:
        request = ASGIRequest(scope, io.BytesIO())
        request.lightbox_user = user
        match = _resolve(request.path_info)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
    except sqlite3.OperationalError:
        if len(_over_budget) >= 1024:
            _over_budget.clear()
        _over_budget[key] = time.monotonic()
        return None
    except (SynchronousOnlyOperation, Resolver404):
        return None
    finally:
        sqlrows.inline.reset(token)


def _drained(stream: _BodyStream | None) -> None:
    """Read what is left of a body (a view that answered before reading it all), so the pump can finish."""
    if stream is not None:
        while stream.read(1 << 20):
            pass
    return None


def _copy_headers(source: HttpResponse, target: HttpResponse) -> HttpResponse:
    for name, value in source.items():
        target[name] = value
    return target


def _extra_headers(scope, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """What SecurityMiddleware, XFrameOptionsMiddleware and CorsMiddleware add to an answer."""
    out = _security_headers(_scheme(scope, headers))
    cors: dict[str, str] = {}
    apply_cors(headers.get(b"origin", b"").decode("latin-1"), cors)
    return out + [(k.lower().encode(), v.encode()) for k, v in cors.items()]


async def _send(send, response: HttpResponse, extra: list[tuple[bytes, bytes]]) -> None:
    body = response.content
    out = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    present = {name for name, _ in out}
    out += [(name, value) for name, value in extra if name not in present]
    if b"content-length" not in present:
        out.append((b"content-length", str(len(body)).encode()))
    for cookie in response.cookies.values():
        out.append((b"set-cookie", cookie.output(header="").strip().encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": out})
    await send({"type": "http.response.body", "body": body})
