"""DRF exception handler: every error is JSON with a readable ``detail``; nothing becomes a 500 silently."""
from __future__ import annotations

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 401:
        response["WWW-Authenticate"] = 'Basic realm="Lightbox"'
    return response
