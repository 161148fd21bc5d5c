"""Searches, rendered images and STOW-RS sent with credentials in the header skip Django's middleware
(archive/direct.py). Browser sessions still go through the whole stack, so every answer here is compared with
the same request made with a logged-in browser session: same status, same reason, same results, same headers.
"""
from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import pytest
import requests

from tests.archive.ingest_helpers import index_state, multipart, staging_files, unique_id
from tests.dicomgen import make_ct_series

HEADERS_OF_THE_MIDDLEWARE = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                             "Cross-Origin-Opener-Policy")


@pytest.fixture(scope="module")
def study(live_server_proc, tmp_path_factory) -> dict:
    paths = make_ct_series(tmp_path_factory.mktemp("direct"), slices=3, size=32, patient_id=unique_id("DIRECT"),
                           patient_name="DIRECT^DISPATCH")
    body, content_type = multipart([p.read_bytes() for p in paths])
    r = live_server_proc.session().post(f"{live_server_proc.dicomweb}/studies", data=body,
                                        headers={"Content-Type": content_type}, timeout=30)
    assert r.status_code == 200, r.text
    import pydicom

    ds = pydicom.dcmread(paths[0])
    return {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID,
            "paths": paths, "patient_id": ds.PatientID}


def _browser(server, role: str = "radiologist") -> requests.Session:
    """A logged-in browser session (cookie + CSRF token): Django's full middleware stack answers it."""
    browser = requests.Session()
    login = f"{server.url}/accounts/login/"
    browser.get(login, timeout=10)
    name, password = server.auth(role)
    browser.post(login, data={"username": name, "password": password,
                              "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                 headers={"Referer": login}, timeout=10)
    assert "sessionid" in browser.cookies
    browser.headers.update({"X-CSRFToken": browser.cookies["csrftoken"], "Referer": login})
    return browser


def _same_answer(direct: requests.Response, django: requests.Response) -> None:
    assert direct.status_code == django.status_code, (direct.text, django.text)
    assert direct.headers.get("Content-Type") == django.headers.get("Content-Type")
    if direct.headers.get("Content-Type", "").endswith("json"):
        assert direct.json() == django.json()
    for name in ("Cache-Control", "Warning", "WWW-Authenticate", *HEADERS_OF_THE_MIDDLEWARE):
        assert direct.headers.get(name) == django.headers.get(name), name


def test_searches_answer_as_through_django(live_server_proc, study):
    http, browser = live_server_proc.session(), _browser(live_server_proc)
    base = live_server_proc.dicomweb
    for path, params in [
        ("studies", {"PatientID": study["patient_id"]}),
        ("studies", {"PatientName": "direct*", "includefield": "all"}),
        ("studies", {"StudyInstanceUID": "1.2.3.404"}),
        ("studies", {"limit": "1"}),  # cut short: Warning 299
        (f"studies/{study['study']}/series", {}),
        (f"studies/{study['study']}/series/{study['series']}/instances", {}),
        ("instances", {"SOPInstanceUID": study["sop"]}),
        ("studies", {"StudyDate": "2020-01-01"}),  # 400: not a DA range
        ("studies", {"limit": "x"}),
        ("studies/not-a-uid/series", {}),
    ]:
        direct = http.get(f"{base}/{path}", params=params, timeout=10)
        _same_answer(direct, browser.get(f"{base}/{path}", params=params, timeout=10))
        assert direct.headers["X-Content-Type-Options"] == "nosniff"
        assert direct.status_code in {200, 400}, (path, params, direct.text)
        if direct.status_code == 200:
            assert direct.headers["Cache-Control"] == "private, no-cache"
        else:
            assert direct.json()["error"]


def test_credentials_and_access_are_checked(live_server_proc, study):
    base = live_server_proc.dicomweb
    urls = [f"{base}/studies", f"{base}/studies/{study['study']}/series",
            f"{base}/studies/{study['study']}/series/{study['series']}/instances/{study['sop']}/rendered"]
    for url in urls:
        anonymous = requests.get(url, timeout=10)  # no Authorization header: Django answers
        for auth in [("rad", "wrong-password"), ("nobody", "x")]:
            _same_answer(requests.get(url, auth=auth, timeout=10), anonymous)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
        _same_answer(requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10), anonymous)
    for url in urls[1:]:  # a resident without a grant: 403, however the request comes
        direct = live_server_proc.session("resident").get(url, timeout=10)
        _same_answer(direct, _browser(live_server_proc, "resident").get(url, timeout=10))
        assert direct.status_code == 403 and direct.json()["error"]
    # the resident's own search simply finds nothing of that study
    found = live_server_proc.session("resident").get(urls[0], params={"StudyInstanceUID": study["study"]}, timeout=10)
    assert found.status_code == 200 and found.json() == []


def test_host_header_is_checked(live_server_proc, study):
    http = live_server_proc.session()
    url = f"{live_server_proc.dicomweb}/studies"
    assert http.get(url, headers={"Host": "evil.example"}, timeout=10).status_code == 400
    ok = http.get(url, headers={"Host": f"localhost:{live_server_proc.port}"}, params={"StudyInstanceUID": study["study"]},
                  timeout=10)
    assert ok.status_code == 200
    assert ok.json()[0]["00081190"]["Value"][0].startswith(f"http://localhost:{live_server_proc.port}/dicomweb/")


def test_revoked_token_is_refused_within_seconds(live_server_proc, study):
    import time

    out = live_server_proc.manage("shell", "-c", textwrap.dedent("""
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token
        print("TOKEN", Token.objects.create(user=get_user_model().objects.get(username="tech")).key)
    """)).stdout
    token = next(ln for ln in out.splitlines() if ln.startswith("TOKEN ")).split()[1]
    url = f"{live_server_proc.dicomweb}/studies"
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=bearer, timeout=10).status_code == 200
    live_server_proc.manage("shell", "-c", f"from rest_framework.authtoken.models import Token; "
                                           f"Token.objects.filter(key={token!r}).delete()")
    deadline = time.monotonic() + 10  # another process revoked it: this one trusts what it knew for 2 s at most
    while requests.get(url, headers=bearer, timeout=10).status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still works"
        time.sleep(0.2)
    assert requests.get(url, headers=bearer, timeout=10).status_code == 401


def test_searches_and_renderings_are_audited(live_server_proc, study):
    http = live_server_proc.session()
    base = live_server_proc.dicomweb
    assert http.get(f"{base}/studies/{study['study']}/series", timeout=10).status_code == 200
    rendered = http.get(f"{base}/studies/{study['study']}/series/{study['series']}/instances/{study['sop']}/rendered",
                        timeout=10)
    assert rendered.status_code == 200 and rendered.content.startswith(b"\xff\xd8")
    out = live_server_proc.manage("shell", "-c", textwrap.dedent(f"""
        import json
        from audit.models import AuditEvent
        rows = AuditEvent.objects.filter(study_instance_uid={study['study']!r}, username="rad")
        print("AUDIT " + json.dumps(sorted(set(rows.values_list("action", flat=True)))))
    """)).stdout
    actions = json.loads(next(ln for ln in out.splitlines() if ln.startswith("AUDIT ")).removeprefix("AUDIT "))
    assert "qido.search" in actions and "stow.store" in actions
    assert any(a.startswith("wado.") for a in actions)


def test_bad_stow_bodies_answer_as_through_django(live_server_proc, tmp_path):
    http, browser = live_server_proc.session(), _browser(live_server_proc)
    url = f"{live_server_proc.dicomweb}/studies"
    blob = make_ct_series(tmp_path / "bad", slices=1, size=16, patient_id=unique_id("BAD"))[0].read_bytes()
    body, content_type = multipart([blob])
    cases = [
        (body[: len(body) // 2], content_type),  # truncated: no closing boundary
        (body, content_type.replace("lightbox-test-boundary", "other-boundary")),  # boundary not in the body
        (body, "application/dicom"),  # 415: a bare instance
        (body, 'multipart/related; type="application/dicom+xml"; boundary=lightbox-test-boundary'),
        (b"", content_type),  # empty
        (multipart([blob], part_type="application/json")[0], content_type),  # 415: a JSON part
    ]
    for data, ctype in cases:
        direct = http.post(url, data=data, headers={"Content-Type": ctype}, timeout=30)
        _same_answer(direct, browser.post(url, data=data, headers={"Content-Type": ctype}, timeout=30))
        assert direct.status_code in {400, 415}, (ctype, direct.text)
        assert direct.json()["error"]
    assert staging_files(live_server_proc) == []
    # storing needs the store capability: a resident is refused before anything is read
    refused = live_server_proc.session("resident").post(url, data=body, headers={"Content-Type": content_type},
                                                        timeout=30)
    _same_answer(refused, _browser(live_server_proc, "resident").post(url, data=body,
                                                                      headers={"Content-Type": content_type}, timeout=30))
    assert refused.status_code == 403


def test_stow_streams_parts_of_a_chunked_upload(live_server_proc, tmp_path):
    """A body sent in small chunks of unknown total length (no Content-Length) is stored as it arrives."""
    paths = make_ct_series(tmp_path / "chunked", slices=4, size=32, patient_id=unique_id("CHUNK"))
    body, content_type = multipart([p.read_bytes() for p in paths])

    def chunks():
        for start in range(0, len(body), 1000):
            yield body[start:start + 1000]

    r = live_server_proc.session().post(f"{live_server_proc.dicomweb}/studies", data=chunks(),
                                        headers={"Content-Type": content_type}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert len(r.json()["00081199"]["Value"]) == 4
    import pydicom

    study_uid = pydicom.dcmread(paths[0]).StudyInstanceUID
    state = index_state(live_server_proc, studies=[study_uid])
    assert state["studies"][study_uid]["instances"] == 4
    assert staging_files(live_server_proc) == []


def test_stow_into_a_named_study_through_both_paths(live_server_proc, tmp_path):
    paths = make_ct_series(tmp_path / "named", slices=2, size=16, patient_id=unique_id("NAMED"))
    body, content_type = multipart([p.read_bytes() for p in paths])
    other = "1.2.826.0.1.3680043.8.498.1"
    direct = live_server_proc.session().post(f"{live_server_proc.dicomweb}/studies/{other}", data=body,
                                             headers={"Content-Type": content_type}, timeout=30)
    django = _browser(live_server_proc).post(f"{live_server_proc.dicomweb}/studies/{other}", data=body,
                                             headers={"Content-Type": content_type}, timeout=30)
    assert direct.status_code == django.status_code == 409
    assert direct.json() == django.json()
    assert direct.headers["Warning"] == django.headers["Warning"]


def test_paths_outside_the_routes_still_work(live_server_proc, study: dict, tmp_path: Path):
    """A bad UID in the path of a STOW is Django's wrapper's 400, and unknown resources are 404 either way."""
    http, browser = live_server_proc.session(), _browser(live_server_proc)
    body, content_type = multipart([study["paths"][0].read_bytes()])
    url = f"{live_server_proc.dicomweb}/studies/not-a-uid"
    _same_answer(http.post(url, data=body, headers={"Content-Type": content_type}, timeout=30),
                 browser.post(url, data=body, headers={"Content-Type": content_type}, timeout=30))
    missing = f"{live_server_proc.dicomweb}/studies/1.2.3/series/4.5.6/instances/7.8.9/rendered"
    direct = http.get(missing, timeout=10)
    assert direct.status_code == 404
    _same_answer(direct, browser.get(missing, timeout=10))


def test_searches_over_the_inline_budget_are_answered_from_a_thread(tmp_path):
    """On SQLite a study search runs on the event loop within a time budget (archive.direct._run_inline); with
    no budget at all every such search is interrupted and answered from a worker thread, the same answer, and
    audited once."""
    from tests.livesrv import make_live_server

    server = make_live_server(tmp_path / "srv", production=False)
    server.env["LIGHTBOX_DICOMWEB_INLINE_BUDGET_S"] = "0"
    server.start()
    try:
        patient = unique_id("INLINE")
        paths = make_ct_series(tmp_path / "ct", slices=2, size=16, patient_id=patient, patient_name="INLINE^BUDGET")
        body, content_type = multipart([p.read_bytes() for p in paths])
        http = server.session()
        assert http.post(f"{server.dicomweb}/studies", data=body, headers={"Content-Type": content_type},
                         timeout=30).status_code == 200
        for params in [{"PatientID": patient}, {"PatientName": "inline*"}]:
            found = http.get(f"{server.dicomweb}/studies", params=params, timeout=10)
            assert found.status_code == 200 and [s["00100020"]["Value"][0] for s in found.json()] == [patient]
        resident = server.session("resident").get(f"{server.dicomweb}/studies", params={"PatientID": patient},
                                                  timeout=10)
        assert resident.status_code == 200 and resident.json() == []
        events = server.session("admin").get(f"{server.url}/api/audit/events/",
                                             params={"action": "qido.search"}, timeout=10).json()
        assert sorted(e["username"] for e in events) == ["rad", "rad", "resident"]
    finally:
        server.stop()


@pytest.mark.parametrize("sizes", [[1], [7, 3], [65536], [1 << 20], [5, 1 << 20, 1]])
def test_body_stream_hands_on_every_byte_in_order(sizes):
    """The STOW body reader (read1 hands on the messages as they came, read joins): whatever mix of calls and
    message sizes, the bytes come out once each, in order, and the end reads as b""."""
    from archive.direct import _BodyStream

    body = bytes(range(256)) * 4099
    cuts = [0, 1, 2, 700, 65536, 65537, 300_000, len(body) - 3, len(body)]
    stream = _BodyStream()
    for start, end in itertools.pairwise(cuts):
        stream.put(body[start:end])
    stream.put(None)
    out, i = bytearray(), 0
    while True:
        size = sizes[i % len(sizes)]
        chunk = stream.read1(size) if i % 3 else stream.read(size)
        i += 1
        if not chunk:
            break
        assert len(chunk) <= size
        out += chunk
    assert bytes(out) == body
    assert stream.read1(10) == b"" and stream.read(10) == b""


def test_stow_reads_the_direct_routes_stream_as_its_messages_came(tmp_path):
    """STOW-RS on the direct route reads its parts through the body stream's read1 (the server's messages as
    they came), never through read, which joins them into 1 MB blocks."""
    from django.test import RequestFactory

    from archive import stow
    from archive.direct import _BodyStream
    from archive.storage import get_storage

    paths = make_ct_series(tmp_path / "ct", slices=3, size=64)
    blobs = [p.read_bytes() for p in paths]
    body, content_type = multipart(blobs)
    stream = _BodyStream()
    for start in range(0, len(body), 65536):
        stream.put(body[start:start + 65536])
    stream.put(None)
    stream.read = None  # type: ignore[assignment] - any call of read fails the test
    request = RequestFactory().post("/dicomweb/studies", data=b"", content_type=content_type)
    request.lightbox_body = stream
    parts = stow._read_parts(request, stow._boundary(content_type), 1 << 30)
    try:
        assert [part.path.read_bytes() for part in parts] == blobs
        assert all(part.path.parent == get_storage().staging_dir() for part in parts)
    finally:
        stow._discard(parts)


@pytest.mark.parametrize("size", [1, 100, 65536, 300_000])
def test_body_stream_wakes_its_reader_for_small_messages_and_a_full_queue(size):
    """The reader is woken once WAKE_BYTES have arrived, at the end, or when the queue is full (the pump then
    waits for the reader): many tiny messages, a slow trickle and big ones all come through, in order."""
    import threading
    import time

    from archive.direct import BODY_QUEUE_MESSAGES, _BodyStream

    body = bytes(range(256)) * 2000
    stream = _BodyStream()

    def pump():  # as direct._pump: pause while the queue is full
        for start in range(0, len(body), size):
            while len(stream.chunks) >= BODY_QUEUE_MESSAGES:
                time.sleep(0.001)
            stream.put(body[start:start + size])
            if start < 3 * size:
                time.sleep(0.01)  # a slow start: the reader waits with less than WAKE_BYTES queued
        stream.put(None)

    thread = threading.Thread(target=pump)
    thread.start()
    out = bytearray()
    while chunk := stream.read1(1 << 20):
        out += chunk
    thread.join(timeout=30)
    assert bytes(out) == body and not thread.is_alive()


def test_the_uvicorn_body_receiver_is_uvicorns_receive_without_the_copy():
    """For uvicorn's httptools cycle the pump uses a receive that hands on the gathered bytearray itself; its
    messages are the same as uvicorn's own (body, more_body, 100-continue, disconnect); any other receive is
    used as it is."""
    import asyncio
    from unittest import mock

    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from archive.direct import _body_receiver

    async def run(fast: bool, disconnect: bool = False):
        transport = mock.Mock()
        transport.is_closing.return_value = False
        event = asyncio.Event()
        cycle = RequestResponseCycle({"type": "http"}, transport, FlowControl(transport), mock.Mock(), mock.Mock(),
                                     False, [], event, True, True, lambda: None)
        receive = _body_receiver(cycle.receive) if fast else cycle.receive
        assert (receive == cycle.receive) is not fast
        out = []
        cycle.body += b"abc"
        event.set()
        out.append(await receive())
        cycle.body += b"de"
        cycle.more_body = False
        event.set()
        if disconnect:
            cycle.disconnected = True
        out.append(await receive())
        return out, transport.write.call_args_list

    for disconnect in (False, True):
        plain, fast = asyncio.run(run(False, disconnect)), asyncio.run(run(True, disconnect))
        assert plain == fast
    (first, _second), _ = asyncio.run(run(True))
    assert isinstance(first["body"], bytearray) and first == {"type": "http.request", "body": b"abc", "more_body": True}

    async def other(): ...

    assert _body_receiver(other) is other
