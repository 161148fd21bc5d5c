"""Authentication for plain Django views (DICOMweb), with the same rules as the DRF classes."""
from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, JsonResponse

from .authentication import user_from_authorization


def request_user(request: HttpRequest):
    """The authenticated user of a request (Authorization header first, then the session), or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        return user_from_authorization(header)
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated and user.is_active else None


def unauthorized(reason: str = "Authentication required: log in, or send HTTP Basic or a Bearer token.") -> JsonResponse:
    response = JsonResponse({"detail": reason}, status=401)
    response["WWW-Authenticate"] = 'Basic realm="Lightbox"'
    return response


def login_required_api(view: Callable) -> Callable:
    """Answer 401 (not a redirect) to unauthenticated API calls; sets ``request.user``."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request_user(request)
        if user is None:
            return unauthorized()
        request.user = user
        return view(request, *args, **kwargs)

    return wrapper
