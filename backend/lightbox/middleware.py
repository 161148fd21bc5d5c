"""CORS for DICOMweb, so OHIF or another viewer served from elsewhere can use the archive."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from lightbox.conf import lightbox_setting

ALLOWED_HEADERS = "Authorization, Accept, Content-Type, Range, X-Requested-With"
EXPOSED_HEADERS = "Content-Type, Content-Length, Content-Range, Warning, Location"


def cors_origin_allowed(origin: str) -> bool:
    allowed = lightbox_setting("CORS_ALLOWED_ORIGINS")
    return bool(origin) and ("*" in allowed or origin in allowed)


def apply_cors(request_origin: str, headers: dict | HttpResponse) -> None:
    """Set the CORS answer headers on a response (or a header dict) when the origin is configured."""
    if not cors_origin_allowed(request_origin):
        return
    headers["Access-Control-Allow-Origin"] = request_origin
    headers["Access-Control-Allow-Credentials"] = "true"
    headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    headers["Vary"] = "Origin"


class CorsMiddleware:
    """Answer preflights and tag responses for configured origins (``LIGHTBOX_CORS_ORIGINS``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin", "")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            if cors_origin_allowed(origin):
                response["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
                response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
        apply_cors(origin, response)
        return response
