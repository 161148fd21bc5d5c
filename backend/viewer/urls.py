"""The SPA pages (study list, viewer), its built assets, and the viewer's JSON API."""
from django.urls import path, re_path

from . import spa, views

UID = r"(?P<study_uid>[0-9]+(?:\.[0-9]+)*)"

urlpatterns = [
    path("", spa.app_page, name="study-list"),
    re_path(rf"^viewer/{UID}/?$", spa.app_page, name="viewer"),
    re_path(r"^assets/(?P<path>[A-Za-z0-9._/-]+)$", spa.asset, name="viewer-asset"),
    re_path(rf"^api/viewer/studies/{UID}/measurements/$", views.MeasurementListView.as_view(), name="measurements"),
    re_path(
        rf"^api/viewer/studies/{UID}/measurements/export-sr/$", views.ExportSrView.as_view(), name="measurements-sr"
    ),
    re_path(
        rf"^api/viewer/studies/{UID}/measurements/(?P<uid>[A-Za-z0-9._-]{{1,64}})/$",
        views.MeasurementDetailView.as_view(),
        name="measurement",
    ),
]
