import pytest


@pytest.fixture(autouse=True)
def _viewer_urls(settings):
    settings.ROOT_URLCONF = "viewer.tests.urls"
