"""Every access to patient data leaves a trace that an administrator can read, and only an administrator."""
from __future__ import annotations

from dicomweb_client import DICOMwebClient
from pydicom import dcmread

from tests.dicomgen import make_ct_series


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
