"""The event bus as a viewer sees it: login and per-study access at connect, a snapshot first, live events."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest
from dicomweb_client import DICOMwebClient
from pydicom import dcmread
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.dicomgen import make_ct_series


def _auth_header(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _next_event(ws, name: str, timeout: float = 10.0) -> dict:
    async def wait():
        while True:
            message = json.loads(await ws.recv())
            if message["event"] == name:
                return message

    return await asyncio.wait_for(wait(), timeout)


@pytest.fixture(scope="module")
def study_files(tmp_path_factory):
    return make_ct_series(tmp_path_factory.mktemp("ws-ct"), slices=4, size=32, patient_name="Socket^Sam")


def test_socket_without_login_is_refused(live_server_proc, study_files):
    uid = dcmread(study_files[0]).StudyInstanceUID

    async def run():
        with pytest.raises(InvalidStatus):
            async with connect(f"{live_server_proc.ws_url}/ws/studies/{uid}/"):
                pass

    asyncio.run(run())


def test_user_without_access_cannot_subscribe(live_server_proc, study_files):
    uid = dcmread(study_files[0]).StudyInstanceUID

    async def run():
        with pytest.raises(InvalidStatus):
            async with connect(f"{live_server_proc.ws_url}/ws/studies/{uid}/",
                                          additional_headers=_auth_header(*live_server_proc.auth("resident"))):
                await asyncio.wait_for(ws_recv_forever(), 5)

    async def ws_recv_forever():
        await asyncio.sleep(10)

    asyncio.run(run())


def test_every_open_socket_sees_a_store_live(live_server_proc, study_files):
    uid = dcmread(study_files[0]).StudyInstanceUID
    url = f"{live_server_proc.ws_url}/ws/studies/{uid}/"
    headers = _auth_header(*live_server_proc.auth("radiologist"))

    async def run():
        async with connect(url, additional_headers=headers) as a, \
                connect(url, additional_headers=headers) as b:
            for ws in (a, b):
                snapshot = await _next_event(ws, "snapshot")
                assert snapshot["study"] == uid and "analysis" in snapshot["payload"]
            client = DICOMwebClient(url=live_server_proc.dicomweb, session=live_server_proc.session("radiologist"))
            await asyncio.to_thread(client.store_instances, [dcmread(p) for p in study_files])
            for ws in (a, b):
                event = await _next_event(ws, "study.stored")
                assert event["study"] == uid
                assert event["payload"]["instances"] == len(study_files)

    asyncio.run(run())


def test_browser_socket_from_a_foreign_origin_is_refused(live_server_proc, study_files):
    """Cross-site websocket hijacking: a page elsewhere cannot ride on the user's credentials."""
    uid = dcmread(study_files[0]).StudyInstanceUID
    headers = {**_auth_header(*live_server_proc.auth("radiologist")), "Origin": "http://evil.example"}

    async def run():
        with pytest.raises(InvalidStatus):
            async with connect(f"{live_server_proc.ws_url}/ws/studies/{uid}/", additional_headers=headers):
                pass
        same_site = {**headers, "Origin": live_server_proc.url}
        async with connect(f"{live_server_proc.ws_url}/ws/studies/{uid}/", additional_headers=same_site) as ws:
            assert (await _next_event(ws, "snapshot"))["study"] == uid

    asyncio.run(run())
