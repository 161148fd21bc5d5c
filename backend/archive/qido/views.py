"""QIDO-RS search views (to be implemented)."""
from django.http import HttpRequest, HttpResponse

from ..http import DicomWebError


def search_studies(request: HttpRequest) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")


def search_series(request: HttpRequest, study: str | None = None) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")


def search_instances(request: HttpRequest, study: str | None = None, series: str | None = None) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")
