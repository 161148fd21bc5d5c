"""WADO-RS retrieve views (to be implemented)."""
from django.http import HttpRequest, HttpResponse

from ..http import DicomWebError


def _todo(request: HttpRequest, **kwargs) -> HttpResponse:
    raise DicomWebError(501, "not implemented yet")


retrieve_study = retrieve_series = retrieve_instance = _todo
study_metadata = series_metadata = instance_metadata = _todo
retrieve_frames = bulkdata = rendered = thumbnail = _todo


def not_found(request: HttpRequest, **kwargs) -> HttpResponse:
    raise DicomWebError(404, f"No DICOMweb resource at {request.path}; see docs/CONFORMANCE.md.")
