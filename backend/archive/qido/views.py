"""QIDO-RS (PS3.18 10.6): the six search resources. ``archive.http.dicomweb_view`` has already authenticated the
user, checked the UIDs in the path and the user's access to a study named there.

An empty result is 200 with ``[]`` (see docs/conformance/qido.md for why not 204). A page cut short by ``limit``
or by QIDO_MAX_LIMIT carries ``Warning: 299``.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from audit.log import record

from .attributes import Level
from .params import parse_query
from .search import Resource, search
from .serialize import dumps, negotiate

TRUNCATED_WARNING = (
    '299 {host}: "The number of results exceeded the maximum supported by the server. '
    'Additional results can be requested."'
)


def _respond(request: HttpRequest, resource: Resource) -> HttpResponse:
    media_type = negotiate(request)
    query = parse_query(request.GET, resource.level)
    page = search(resource, query, request.user, f"{request.scheme}://{request.get_host()}")
    record(
        request.user,
        "qido.search",
        request=request,
        study_instance_uid=resource.study or "",
        series_instance_uid=resource.series or "",
        coalesce=False,
        level=resource.level.name.lower(),
        query=query.summary(),
        results=len(page.results),
    )
    response = HttpResponse(dumps(page.results), content_type=media_type)
    response["Cache-Control"] = "private, no-cache"
    if page.truncated:
        response["Warning"] = TRUNCATED_WARNING.format(host=request.get_host())
    return response


def search_studies(request: HttpRequest) -> HttpResponse:
    return _respond(request, Resource(Level.STUDY))


def search_series(request: HttpRequest, study: str | None = None) -> HttpResponse:
    return _respond(request, Resource(Level.SERIES, study=study))


def search_instances(request: HttpRequest, study: str | None = None, series: str | None = None) -> HttpResponse:
    return _respond(request, Resource(Level.INSTANCE, study=study, series=series))
