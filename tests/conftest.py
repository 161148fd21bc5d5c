"""Fixtures shared by every test: a live server process and small synthetic DICOM data."""
from __future__ import annotations

from pathlib import Path

import pytest

from inference.phantoms import make_chest_ct, write_ct_series
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


@pytest.fixture(scope="session")
def small_chest_ct(tmp_path_factory) -> list[Path]:
    """64 slices of 512x512 at the demo spacing, two nodules: the real model reads it in a few seconds."""
    phantom = make_chest_ct(23, shape=(64, 512, 512), n_nodules=2)
    return write_ct_series(phantom, tmp_path_factory.mktemp("ai-ct"), patient_name="Phantom^Small",
                           patient_id="LBX-AI-SMALL", accession_number="AI-1")
