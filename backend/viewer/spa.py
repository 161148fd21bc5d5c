"""Serving the built single-page app: index.html for the SPA routes, hashed assets with long cache lifetimes."""
from __future__ import annotations

import gzip
import mimetypes
import threading
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

# Types the browser insists on (wasm streaming compilation, module workers); the OS table may lack them.
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
COMPRESSIBLE = {".js", ".mjs", ".css", ".wasm", ".json", ".map", ".svg"}
IMMUTABLE = "public, max-age=31536000, immutable"
_gzip_lock = threading.Lock()


def _dist() -> Path:
    return Path(settings.FRONTEND_DIST)


class FrontendNotBuilt(Exception):
    pass


def _index_html() -> bytes:
    path = _dist() / "index.html"
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FrontendNotBuilt(str(path)) from exc


@require_safe
@login_required
@ensure_csrf_cookie
def app_page(request: HttpRequest, study_uid: str | None = None) -> HttpResponse:
    """The study list (`/`) and the viewer (`/viewer/<uid>`): the same page, routed in the browser."""
    try:
        body = _index_html()
    except FrontendNotBuilt as exc:
        return HttpResponse(
            f"The viewer is not built ({exc} is missing). Run `npm ci && npm run build` in frontend/.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    # The page names the current hashed assets: always revalidate it.
    response["Cache-Control"] = "no-cache"
    response["Referrer-Policy"] = "same-origin"
    return response


@lru_cache(maxsize=64)
def _gzipped(path: str, mtime_ns: int) -> bytes:  # mtime in the key: a rebuilt file is compressed anew
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


@require_safe
def asset(request: HttpRequest, path: str) -> HttpResponse:
    """Files under dist/assets/. Their names carry a content hash, so they are cached for a year."""
    root = (_dist() / "assets").resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        raise Http404("No such asset")
    suffix = target.suffix.lower()
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    if suffix in COMPRESSIBLE and accepts_gzip:
        stat = target.stat()
        with _gzip_lock:
            body = _gzipped(str(target), stat.st_mtime_ns)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(len(body))
    else:
        response = FileResponse(open(target, "rb"), content_type=content_type)
    response["Cache-Control"] = IMMUTABLE
    response["Vary"] = "Accept-Encoding"
    # Workers and wasm are fetched same-origin; allow them to be embedded by cross-origin-isolated pages too.
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
