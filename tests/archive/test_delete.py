"""DELETE of studies and series on the live server: who may, what goes (rows and files), what stays."""
from __future__ import annotations

from pathlib import Path

import pydicom
import requests
from pydicom.uid import generate_uid

from tests.archive.ingest_helpers import index_state, multipart, stored_files, unique_id
from tests.dicomgen import make_ct_series


def _store_study(server, tmp_path: Path, series_sizes: list[int]) -> tuple[str, list[str], str]:
    """A study with one CT series per size; returns its UID, the series UIDs and the patient ID."""
    study_uid, patient_id = generate_uid(), unique_id("DEL")
    series = []
    for n in series_sizes:
        paths = make_ct_series(tmp_path / unique_id("s"), slices=n, size=32, study_uid=study_uid,
                               patient_id=patient_id)
        r = server.session("admin").post(f"{server.dicomweb}/studies", data=multipart([p.read_bytes() for p in paths])[0],
                                         headers={"Content-Type": multipart([])[1]}, timeout=30)
        assert r.status_code == 200, r.text
        series.append(pydicom.dcmread(paths[0]).SeriesInstanceUID)
    return study_uid, series, patient_id


def test_only_users_who_may_delete_can(live_server_proc, tmp_path):
    study_uid, _, _ = _store_study(live_server_proc, tmp_path, [2])
    url = f"{live_server_proc.dicomweb}/studies/{study_uid}"
    assert requests.delete(url, timeout=10).status_code == 401
    for role in ("radiologist", "technologist", "resident"):
        r = live_server_proc.session(role).delete(url, timeout=10)
        assert r.status_code == 403, role
    assert index_state(live_server_proc, studies=[study_uid])["studies"][study_uid]["instances"] == 2


def test_deleting_series_updates_the_study_then_removes_it_with_the_last_one(live_server_proc, tmp_path):
    study_uid, (first, second), patient_id = _store_study(live_server_proc, tmp_path, [3, 2])
    admin = live_server_proc.session("admin")
    before = stored_files(live_server_proc)
    r = admin.delete(f"{live_server_proc.dicomweb}/studies/{study_uid}/series/{first}", timeout=30)
    assert r.status_code == 204, r.text
    assert len(before - stored_files(live_server_proc)) == 3  # the series' files are gone, the others stay
    state = index_state(live_server_proc, studies=[study_uid])
    study = state["studies"][study_uid]
    assert study["series"] == 1 and study["instances"] == 2 and study["rows"] == 2
    assert study["series_counts"] == {second: 2} and study["modalities"] == "\\CT\\"
    assert any(a[0] == "archive.delete" and a[2]["instances"] == 3 for a in state["audit"])

    again = admin.delete(f"{live_server_proc.dicomweb}/studies/{study_uid}/series/{first}", timeout=30)
    assert again.status_code == 404
    last = admin.delete(f"{live_server_proc.dicomweb}/studies/{study_uid}/series/{second}", timeout=30)
    assert last.status_code == 204
    state = index_state(live_server_proc, studies=[study_uid], patients=[patient_id])
    assert state["studies"][study_uid] is None and state["patients"] == {patient_id: False}
    assert len(before - stored_files(live_server_proc)) == 5


def test_deleting_a_study_removes_rows_files_and_the_lone_patient(live_server_proc, tmp_path):
    study_uid, _, patient_id = _store_study(live_server_proc, tmp_path, [2, 2])
    before = stored_files(live_server_proc)
    r = live_server_proc.session("admin").delete(f"{live_server_proc.dicomweb}/studies/{study_uid}", timeout=30)
    assert r.status_code == 204, r.text
    assert len(before - stored_files(live_server_proc)) == 4
    assert stored_files(live_server_proc) <= before
    state = index_state(live_server_proc, studies=[study_uid], patients=[patient_id])
    assert state["studies"][study_uid] is None and state["patients"] == {patient_id: False}
    missing = live_server_proc.session("admin").delete(f"{live_server_proc.dicomweb}/studies/{study_uid}", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]


def test_a_series_of_another_study_is_not_found(live_server_proc, tmp_path):
    study_a, (series_a,), _ = _store_study(live_server_proc, tmp_path, [1])
    study_b, _, _ = _store_study(live_server_proc, tmp_path, [1])
    r = live_server_proc.session("admin").delete(f"{live_server_proc.dicomweb}/studies/{study_b}/series/{series_a}",
                                                 timeout=10)
    assert r.status_code == 404
    assert index_state(live_server_proc, studies=[study_a])["studies"][study_a]["instances"] == 1
