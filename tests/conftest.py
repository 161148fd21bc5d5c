"""Fixtures shared by every test: a live server process and small synthetic DICOM data."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.dicomgen import make_ct_series
from tests.livesrv import LiveServer, make_live_server


@pytest.fixture(scope="session")
def live_server_proc(tmp_path_factory) -> LiveServer:
    """One real `manage.py serve` for the session (embedded mode, or production when the env says so)."""
    server = make_live_server(tmp_path_factory.mktemp("lightbox-live")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_ct(tmp_path_factory) -> list[Path]:
    """20 CT slices of 64x64 with known geometry, as PS3.10 files."""
    return make_ct_series(tmp_path_factory.mktemp("small-ct"), slices=20, size=64)
