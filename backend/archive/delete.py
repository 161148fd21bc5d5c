"""DELETE of studies and series, for administrators (to be implemented)."""
from django.http import HttpRequest, HttpResponse

from .http import DicomWebError


def delete_study(request: HttpRequest, study: str) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")


def delete_series(request: HttpRequest, study: str, series: str) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")
