"""Every access to patient data leaves a trace that an administrator can read, and only an administrator."""
from __future__ import annotations

import datetime as dt
import json
import textwrap

from dicomweb_client import DICOMwebClient
from pydicom import dcmread

from tests.dicomgen import make_ct_series
from tests.livesrv import make_live_server


def test_retrieval_is_audited_with_who_what_and_where(live_server_proc, tmp_path):
    files = make_ct_series(tmp_path, slices=3, size=32, patient_name="Audit^Alice")
    uid = dcmread(files[0]).StudyInstanceUID
    rad = DICOMwebClient(url=live_server_proc.dicomweb, session=live_server_proc.session("radiologist"))
    rad.store_instances([dcmread(p) for p in files])
    rad.retrieve_study_metadata(uid)

    admin = live_server_proc.session("admin")
    rows = admin.get(f"{live_server_proc.url}/api/audit/events/", params={"study": uid}, timeout=10).json()
    retrievals = [r for r in rows if r["action"].startswith("wado.") and r["username"] == "rad"]
    assert retrievals, rows
    assert retrievals[0]["source_ip"] == "127.0.0.1"
    assert any(r["action"].startswith("stow.") for r in rows)


def test_only_administrators_read_the_audit_trail(live_server_proc):
    r = live_server_proc.session("radiologist").get(f"{live_server_proc.url}/api/audit/events/", timeout=10)
    assert r.status_code == 403


def _audited(server, marker: str) -> list[dict]:
    """The qido.search events whose PatientID key is ``marker``, read from the database by another process."""
    code = textwrap.dedent(f"""
        import json
        from audit.models import AuditEvent
        rows = AuditEvent.objects.filter(action="qido.search", detail__query__match__PatientID={marker!r})
        print("AUDIT " + json.dumps([[r.username, r.source_ip, r.time.isoformat()] for r in rows]))
    """)
    out = server.manage("shell", "-c", code).stdout
    return json.loads(next(ln for ln in out.splitlines() if ln.startswith("AUDIT ")).removeprefix("AUDIT "))


def test_queued_audit_events_are_read_by_the_api_and_written_at_exit(tmp_path):
    """The web server queues audit events for a writer thread (audit.log). With a writer that would wait 60 s,
    the audit API still shows every event (it flushes first), and events still queued when the server stops
    are written before the process exits."""
    server = make_live_server(tmp_path / "srv", production=False)
    server.env["LIGHTBOX_AUDIT_FLUSH_SECONDS"] = "60"
    server.start()
    try:
        rad, admin = server.session("radiologist"), server.session("admin")
        before = dt.datetime.now(dt.UTC)
        assert rad.get(f"{server.dicomweb}/studies", params={"PatientID": "AUDIT-API"}, timeout=10).status_code == 200
        rows = admin.get(f"{server.url}/api/audit/events/", params={"action": "qido.search"}, timeout=10).json()
        (event,) = [r for r in rows if r["detail"]["query"]["match"] == {"PatientID": "AUDIT-API"}]
        assert event["username"] == "rad" and event["source_ip"] == "127.0.0.1" and event["outcome"] == "success"
        assert before - dt.timedelta(seconds=1) <= dt.datetime.fromisoformat(event["time"]) <= dt.datetime.now(dt.UTC)

        assert rad.get(f"{server.dicomweb}/studies", params={"PatientID": "AUDIT-EXIT"}, timeout=10).status_code == 200
        assert _audited(server, "AUDIT-EXIT") == []  # still queued: the writer waits
    finally:
        server.stop()
    ((username, ip, _time),) = _audited(server, "AUDIT-EXIT")
    assert (username, ip) == ("rad", "127.0.0.1")
