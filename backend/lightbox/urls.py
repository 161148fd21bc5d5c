"""URL map: DICOMweb at /dicomweb, JSON APIs under /api, the SPA (study list, viewer) at the root."""
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("api/accounts/", include("accounts.api_urls")),
    path("dicomweb/", include("archive.urls")),
    path("api/archive/", include("archive.api_urls")),
    path("api/analysis/", include("analysis.urls")),
    path("api/audit/", include("audit.urls")),
    path("", include("viewer.urls")),
]
