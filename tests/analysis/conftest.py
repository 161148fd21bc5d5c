"""Fixtures for the AI loop: a small synthetic chest CT with known nodules, stored in the live server."""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from dicomweb_client import DICOMwebClient
from pydicom import dcmread

from inference.phantoms import make_chest_ct, write_ct_series


@pytest.fixture(scope="session")
def small_chest_ct(tmp_path_factory) -> list[Path]:
    """64 slices of 512x512 at the demo spacing, two nodules: the real model reads it in a few seconds."""
    phantom = make_chest_ct(23, shape=(64, 512, 512), n_nodules=2)
    return write_ct_series(phantom, tmp_path_factory.mktemp("ai-ct"), patient_name="Phantom^Small",
                           patient_id="LBX-AI-SMALL", accession_number="AI-1")


def store(server, paths: list[Path], role: str = "radiologist") -> str:
    client = DICOMwebClient(url=server.dicomweb, session=server.session(role))
    datasets = [dcmread(p) for p in paths]
    client.store_instances(datasets)
    return str(datasets[0].StudyInstanceUID)


def auth_header(server, role: str = "radiologist") -> dict[str, str]:
    user, password = server.auth(role)
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def collect(ws, until: set[str], job_id: str | None, timeout: float) -> list[dict]:
    """Receive events until one named in ``until`` (for ``job_id``) arrives; return them all in order."""
    events: list[dict] = []

    async def run():
        while True:
            message = json.loads(await ws.recv())
            events.append(message)
            payload = message.get("payload") or {}
            if message["event"] in until and (job_id is None or payload.get("job") == job_id):
                return

    await asyncio.wait_for(run(), timeout)
    return events
