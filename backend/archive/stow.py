"""STOW-RS (to be implemented)."""
from django.http import HttpRequest, HttpResponse

from .http import DicomWebError


def store(request: HttpRequest, study: str | None = None) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")
