"""Shared plumbing of the DICOMweb views: login, UID checks, per-study access, errors with reasons."""
from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

from accounts.access import can_view_study
from accounts.http import request_user, unauthorized

from .dicom import is_valid_uid


class DicomWebError(Exception):
    """Raised anywhere in a DICOMweb view; becomes a JSON error answer with the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def error_response(status: int, reason: str) -> JsonResponse:
    response = JsonResponse({"error": reason}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Lightbox"'
    return response


def check_uid(value: str, what: str) -> str:
    if not is_valid_uid(value, lenient=True):
        raise DicomWebError(400, f"{what} {value[:80]!r} is not a valid UID (digits and dots, at most 64 characters).")
    return value


def check_study_access(request: HttpRequest, study_uid: str) -> None:
    """403 for a study the user may not read, whether or not it exists (existence is not disclosed)."""
    if not can_view_study(request.user, study_uid):
        raise DicomWebError(403, "You do not have access to this study.")


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_csrf = CsrfViewMiddleware(lambda request: None)

UID_KWARGS = {"study": "Study Instance UID", "series": "Series Instance UID", "instance": "SOP Instance UID"}


def dicomweb_view(methods: dict[str, Callable[..., HttpResponse]]) -> Callable[..., HttpResponse]:
    """Build a view that authenticates, checks every UID in the path, and dispatches on the HTTP method."""

    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        handler = methods.get(request.method or "")
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            response = error_response(405, f"{request.method} is not supported here; use {', '.join(methods)}.")
            response["Allow"] = ", ".join(methods)
            return response
        # archive.direct resolves the Authorization header with the fast path's short-lived cache
        user = getattr(request, "lightbox_user", None) or request_user(request)
        if user is None:
            return unauthorized()
        if request.method not in SAFE_METHODS and "HTTP_AUTHORIZATION" not in request.META:
            # a browser session: unsafe methods need the CSRF token, as everywhere else in Django
            rejected = _csrf.process_view(request, None, (), {})
            if rejected is not None:
                return error_response(403, "CSRF token missing or wrong: send the X-CSRFToken header.")
        request.user = user
        try:
            for key, what in UID_KWARGS.items():
                if key in kwargs:
                    check_uid(kwargs[key], what)
            if "study" in kwargs and request.method != "POST":
                # reading or deleting needs access to the study; storing into it (STOW) needs the store
                # capability, which stow.store checks, so a technologist can send to /studies/{uid}
                check_study_access(request, kwargs["study"])
            return handler(request, **kwargs)
        except DicomWebError as exc:
            return error_response(exc.status, exc.reason)

    functools.update_wrapper(view, next(iter(methods.values())))
    view.csrf_exempt = True  # DICOMweb clients use Basic/Bearer; session callers are same-origin GETs or STOW
    return view
