"""Helpers for the AI loop tests: store a series, authenticate a websocket, collect events."""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from dicomweb_client import DICOMwebClient
from pydicom import dcmread


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
