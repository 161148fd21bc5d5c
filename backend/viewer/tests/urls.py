"""Only the viewer's routes (and login), so these tests do not depend on the other apps' URL maps."""
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("", include("viewer.urls")),
]
