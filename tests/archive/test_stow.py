"""STOW-RS against the live server, with dicomweb-client and hand-built multipart bodies.

Every bad request gets a 4xx with a reason, the server keeps serving, and nothing is half-stored: no index row
and no file appears for a part that failed.
"""
from __future__ import annotations

import http.client
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from tests.archive.ingest_helpers import (  # noqa: F401 (restricted_server is a fixture)
    index_state,
    multipart,
    restricted_server,
    staging_files,
    stored_files,
    unique_id,
)
from tests.dicomgen import make_ct_series

REFERENCED = "00081199"
FAILED = "00081198"
RETRIEVE_URL = "00081190"
SOP_INSTANCE = "00081155"
FAILURE_REASON = "00081197"


def _series(tmp_path: Path, n: int = 3, **kw) -> list[Path]:
    return make_ct_series(tmp_path / unique_id("s"), slices=n, size=32, patient_id=unique_id("STOW"), **kw)


def _post(server, body: bytes, content_type: str, *, study: str | None = None, role: str = "radiologist"):
    url = f"{server.dicomweb}/studies" + (f"/{study}" if study else "")
    return server.session(role).post(url, data=body, headers={"Content-Type": content_type}, timeout=30)


def _failures(response) -> dict[str, int]:
    """SOP Instance UID (or "?" when unknown) -> Failure Reason."""
    items = response.json().get(FAILED, {}).get("Value", [])
    return {item.get(SOP_INSTANCE, {}).get("Value", ["?"])[0]: item[FAILURE_REASON]["Value"][0] for item in items}


def _stored(response) -> list[str]:
    return [item[SOP_INSTANCE]["Value"][0] for item in response.json().get(REFERENCED, {}).get("Value", [])]


def test_dicomweb_client_stores_a_series_that_is_then_indexed(live_server_proc, tmp_path):
    paths = _series(tmp_path, 6)
    datasets = [pydicom.dcmread(p) for p in paths]
    client = DICOMwebClient(live_server_proc.dicomweb)
    client._session.auth = live_server_proc.auth("radiologist")
    result = client.store_instances(datasets)
    study_uid = datasets[0].StudyInstanceUID
    assert sorted(item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence) == sorted(
        ds.SOPInstanceUID for ds in datasets
    )
    assert result.RetrieveURL.endswith(f"/dicomweb/studies/{study_uid}")
    assert "FailedSOPSequence" not in result
    state = index_state(live_server_proc, studies=[study_uid])
    study = state["studies"][study_uid]
    assert study["series"] == 1 and study["instances"] == 6 and study["rows"] == 6
    assert study["modalities"] == "\\CT\\"
    assert ("stow.store", "success", {"stored": 6, "failed": 0}) in [tuple(a) for a in state["audit"]]
    assert staging_files(live_server_proc) == []


def test_hand_built_body_answers_dicom_json_with_instance_urls(live_server_proc, tmp_path):
    paths = _series(tmp_path, 2)
    body, content_type = multipart([p.read_bytes() for p in paths])
    r = _post(live_server_proc, body, content_type)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/dicom+json")
    ds = pydicom.dcmread(paths[0])
    urls = [item[RETRIEVE_URL]["Value"][0] for item in r.json()[REFERENCED]["Value"]]
    assert any(url.endswith(f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
                            f"{ds.SOPInstanceUID}") for url in urls)
    assert r.json()[RETRIEVE_URL]["Value"][0] == f"{live_server_proc.dicomweb}/studies/{ds.StudyInstanceUID}"


@pytest.mark.parametrize("content_type", [
    "multipart/related; type=application/dicom; boundary=b0undary",  # unquoted type
    'Multipart/Related; boundary="b0undary"; type="application/dicom"',  # quoted boundary, any order and case
    "multipart/related; boundary=b0undary",  # no type: the parts say application/dicom
])
def test_content_type_variants_are_accepted(live_server_proc, tmp_path, content_type):
    path = _series(tmp_path, 1)[0]
    body, _ = multipart([path.read_bytes()], boundary="b0undary")
    r = _post(live_server_proc, body, content_type)
    assert r.status_code == 200, r.text
    assert _stored(r) == [pydicom.dcmread(path).SOPInstanceUID]


def test_parts_without_content_type_are_taken_as_dicom(live_server_proc, tmp_path):
    path = _series(tmp_path, 1)[0]
    body, content_type = multipart([path.read_bytes()], part_type=None)
    assert _post(live_server_proc, body, content_type).status_code == 200


def _truncated(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) * 2 // 3]


def _length_past_end(path: Path) -> bytes:
    """A valid file with one more element whose length claims far more bytes than follow."""
    return path.read_bytes() + b"\xe1\x7f\x10\x00OB\x00\x00" + (1_000_000).to_bytes(4, "little") + b"short"


def _bad_uid(tmp_path: Path) -> tuple[bytes, str]:
    ds = pydicom.dcmread(_series(tmp_path, 1)[0])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.abc"
    out = tmp_path / "bad-uid.dcm"
    ds.save_as(out)
    return out.read_bytes(), "1.2.abc"


def test_bad_parts_fail_alone_and_leave_nothing_behind(live_server_proc, tmp_path):
    good = _series(tmp_path, 2)
    broken = _series(tmp_path, 2)
    bad_uid_bytes, _ = _bad_uid(tmp_path)
    parts = [
        good[0].read_bytes(),
        b"this is a text file, not DICOM\n" * 10,
        _truncated(broken[0]),
        _length_past_end(broken[1]),
        bad_uid_bytes,
        good[1].read_bytes(),
    ]
    before = stored_files(live_server_proc)
    r = _post(live_server_proc, *multipart(parts))
    assert r.status_code == 202, r.text
    good_uids = [pydicom.dcmread(p).SOPInstanceUID for p in good]
    broken_uids = [pydicom.dcmread(p).SOPInstanceUID for p in broken]
    assert sorted(_stored(r)) == sorted(good_uids)
    failures = _failures(r)
    assert len(r.json()[FAILED]["Value"]) == 4
    assert failures.get("1.2.abc", failures.get("?")) in {0xA900, 0xC000}
    assert set(failures.values()) <= {0xA900, 0xC000}
    assert "299" in r.headers["Warning"] and "part 2: not a dicom file" in r.headers["Warning"].lower()
    assert len(stored_files(live_server_proc) - before) == 2  # the good parts' files only
    assert staging_files(live_server_proc) == []
    state = index_state(live_server_proc, instances=good_uids + broken_uids + ["1.2.abc"])
    assert all(state["instances"][uid] for uid in good_uids)
    assert not any(state["instances"][uid] for uid in broken_uids + ["1.2.abc"])


def test_all_parts_failing_is_409(live_server_proc, tmp_path):
    r = _post(live_server_proc, *multipart([b"not dicom", b"\x00" * 200]))
    assert r.status_code == 409
    assert list(_failures(r).values()) == [0xC000, 0xC000] or len(r.json()[FAILED]["Value"]) == 2
    assert REFERENCED not in r.json()


def test_instance_of_another_study_fails_when_posting_to_a_study(live_server_proc, tmp_path):
    study_uid = generate_uid()
    mine = _series(tmp_path, 2, study_uid=study_uid)
    other = _series(tmp_path, 1)
    other_uid = pydicom.dcmread(other[0]).SOPInstanceUID
    body, content_type = multipart([p.read_bytes() for p in [mine[0], other[0], mine[1]]])
    r = _post(live_server_proc, body, content_type, study=study_uid)
    assert r.status_code == 202, r.text
    assert len(_stored(r)) == 2
    assert _failures(r) == {other_uid: 0xC409}
    assert r.json()[RETRIEVE_URL]["Value"][0].endswith(f"/studies/{study_uid}")
    assert "not " + study_uid in r.headers["Warning"]
    assert index_state(live_server_proc, instances=[other_uid])["instances"][other_uid] is None


def test_duplicates_same_bytes_succeed_different_bytes_are_refused(live_server_proc, tmp_path):
    path = _series(tmp_path, 1)[0]
    body, content_type = multipart([path.read_bytes()])
    assert _post(live_server_proc, body, content_type).status_code == 200
    before = stored_files(live_server_proc)
    again = _post(live_server_proc, body, content_type)
    assert again.status_code == 200 and len(_stored(again)) == 1  # same bytes: success, nothing added
    ds = pydicom.dcmread(path)
    ds.PatientName = "Changed^Name"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    conflict = _post(live_server_proc, *multipart([changed.read_bytes()]))
    assert conflict.status_code == 409
    assert _failures(conflict) == {ds.SOPInstanceUID: 0x0111}
    assert "already stored with different content" in conflict.headers["Warning"]
    assert stored_files(live_server_proc) == before


def test_an_instance_the_index_refuses_fails_alone_in_a_large_request(live_server_proc, tmp_path):
    """Parts are indexed in batches; when one is refused (its series belongs to another study) the others of
    its batch are still stored. The same part twice in one request counts once."""
    first = _series(tmp_path, 1)
    clash = pydicom.dcmread(_series(tmp_path, 1)[0])
    clash.SeriesInstanceUID = pydicom.dcmread(first[0]).SeriesInstanceUID  # a series of another study
    clash_path = tmp_path / "clash.dcm"
    clash.save_as(clash_path)
    assert _post(live_server_proc, *multipart([first[0].read_bytes()])).status_code == 200
    good = _series(tmp_path, 9)
    parts = [p.read_bytes() for p in good[:4]] + [clash_path.read_bytes()] + [p.read_bytes() for p in good[4:]]
    r = _post(live_server_proc, *multipart(parts + parts[:1]))
    assert r.status_code == 202, r.text
    assert _failures(r) == {clash.SOPInstanceUID: 0xA900}
    assert sorted(_stored(r)) == sorted([pydicom.dcmread(p).SOPInstanceUID for p in good] +
                                        [pydicom.dcmread(good[0]).SOPInstanceUID])
    study_uid = pydicom.dcmread(good[0]).StudyInstanceUID
    state = index_state(live_server_proc, studies=[study_uid], instances=[clash.SOPInstanceUID])
    assert state["studies"][study_uid]["instances"] == 9 and state["studies"][study_uid]["rows"] == 9
    assert state["instances"][clash.SOPInstanceUID] is None
    assert staging_files(live_server_proc) == []


def _assert_refused(server, response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words.lower() in response.json()["error"].lower()
    assert staging_files(server) == []


@pytest.mark.parametrize(("content_type", "status", "words"), [
    ("application/dicom", 415, "multipart/related"),
    ("application/json", 415, "not supported"),
    ('multipart/related; type="application/dicom+json"; boundary=b0undary', 415, "only application/dicom parts"),
    ('multipart/related; type="application/dicom"', 400, "boundary"),
    ('multipart/related; type="application/dicom"; boundary=other-boundary', 400, "boundary"),
    ("", 415, "Content-Type"),
])
def test_bad_content_types_are_refused_with_a_reason(live_server_proc, tmp_path, content_type, status, words):
    path = _series(tmp_path, 1)[0]
    body, _ = multipart([path.read_bytes()], boundary="b0undary")
    before = stored_files(live_server_proc)
    r = _post(live_server_proc, body, content_type)
    _assert_refused(live_server_proc, r, status, words)
    assert stored_files(live_server_proc) == before


def test_malformed_bodies_store_nothing(live_server_proc, tmp_path):
    paths = _series(tmp_path, 2)
    good, content_type = multipart([p.read_bytes() for p in paths])
    before = stored_files(live_server_proc)
    cases = {
        "empty": (b"", "empty"),
        "no closing boundary": (good[: good.rindex(b"--lightbox-test-boundary--")], "closing boundary"),
        "cut inside the part headers": (b"--lightbox-test-boundary\r\nContent-Type: appl", "truncated"),
        "json part": (multipart([b"{}"], part_type="application/dicom+json")[0], "only application/dicom"),
    }
    for name, (body, words) in cases.items():
        r = _post(live_server_proc, body, content_type)
        status = 415 if name == "json part" else 400
        _assert_refused(live_server_proc, r, status, words)
    assert stored_files(live_server_proc) == before
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in paths]
    assert not any(index_state(live_server_proc, instances=uids)["instances"].values())
    assert _post(live_server_proc, good, content_type).status_code == 200  # still serving


def test_credentials_and_the_store_capability_are_required(live_server_proc, tmp_path):
    body, content_type = multipart([_series(tmp_path, 1)[0].read_bytes()])
    anonymous = requests.post(f"{live_server_proc.dicomweb}/studies", data=body,
                              headers={"Content-Type": content_type}, timeout=10)
    assert anonymous.status_code == 401
    resident = _post(live_server_proc, body, content_type, role="resident")
    assert resident.status_code == 403 and "store" in resident.json()["error"]
    assert _post(live_server_proc, body, content_type, role="technologist").status_code == 200


@pytest.mark.parametrize("path", [
    "/dicomweb/studies/..%2F..%2Fetc",
    "/dicomweb/studies/1.2.3/series/../../x",
    "/dicomweb/studies/1.2.3%2F..%2F..",
    "/dicomweb/studies/not-a-uid",
])
def test_path_like_uids_in_the_url_are_refused(live_server_proc, tmp_path, path):
    body, content_type = multipart([_series(tmp_path, 1)[0].read_bytes()])
    before = stored_files(live_server_proc)
    conn = http.client.HTTPConnection(live_server_proc.host, live_server_proc.port, timeout=10)
    import base64

    token = base64.b64encode(":".join(live_server_proc.auth("radiologist")).encode()).decode()
    conn.request("POST", path, body=body, headers={"Content-Type": content_type, "Authorization": f"Basic {token}"})
    response = conn.getresponse()
    assert 400 <= response.status < 500
    assert response.read()
    conn.close()
    assert stored_files(live_server_proc) == before


def test_a_body_over_the_size_limit_is_413(restricted_server, tmp_path):  # noqa: F811
    paths = _series(tmp_path, 10)  # ~2.2 kB each with 32x32 pixels: make them bigger
    big = make_ct_series(tmp_path / "big", slices=4, size=256)
    body, content_type = multipart([p.read_bytes() for p in big + paths])
    assert len(body) > 200_000
    r = _post(restricted_server, body, content_type)
    _assert_refused(restricted_server, r, 413, "limit")
    assert stored_files(restricted_server) == set()
    chunked = restricted_server.session().post(f"{restricted_server.dicomweb}/studies", data=iter([body]),
                                               headers={"Content-Type": content_type}, timeout=30)
    _assert_refused(restricted_server, chunked, 413, "limit")
    small, small_type = multipart([paths[0].read_bytes()])
    assert _post(restricted_server, small, small_type).status_code == 200


def test_technologist_can_store_into_a_named_study(live_server_proc, tmp_path):
    """A technologist sees no studies but sends images: STOW to /studies/{uid} must work for the store role."""
    from dicomweb_client import DICOMwebClient
    from pydicom import dcmread

    from tests.dicomgen import make_ct_series

    files = make_ct_series(tmp_path, slices=2, size=16, patient_name="Tech^Send")
    uid = dcmread(files[0]).StudyInstanceUID
    tech = DICOMwebClient(url=live_server_proc.dicomweb, session=live_server_proc.session("technologist"))
    tech.store_instances([dcmread(p) for p in files], study_instance_uid=uid)
    rad = DICOMwebClient(url=live_server_proc.dicomweb, session=live_server_proc.session("radiologist"))
    assert len(rad.search_for_instances(study_instance_uid=uid)) == 2
    # ...but storing does not let the technologist read the study back
    r = live_server_proc.session("technologist").get(f"{live_server_proc.dicomweb}/studies/{uid}/metadata", timeout=10)
    assert r.status_code == 403


def test_the_same_instance_twice_in_one_request_is_compared_byte_for_byte(live_server_proc, tmp_path):
    """No hash per instance: a repeated SOP Instance UID is compared with the first copy's bytes."""
    path = _series(tmp_path, 1)[0]
    ds = pydicom.dcmread(path)
    other_meta = tmp_path / "other-meta.dcm"  # another sender: other Implementation Class UID, same data set
    ds.file_meta.ImplementationClassUID = "1.2.3.4.5.6.7"
    ds.file_meta.ImplementationVersionName = "OTHER_SENDER"
    ds.save_as(other_meta, enforce_file_format=True)
    changed = tmp_path / "changed.dcm"
    ds.InstitutionName = "Somewhere Else"
    ds.save_as(changed, enforce_file_format=True)
    before = stored_files(live_server_proc)
    r = _post(live_server_proc, *multipart([path.read_bytes(), other_meta.read_bytes(), changed.read_bytes()]))
    assert r.status_code == 202, r.text
    assert _stored(r) == [ds.SOPInstanceUID, ds.SOPInstanceUID]  # the first copy, then the same data set
    assert _failures(r) == {ds.SOPInstanceUID: 0x0111}  # the third: same UID, other bytes
    assert len(stored_files(live_server_proc) - before) == 1
    # and once stored: the other sender's copy is the same instance, the changed one conflicts
    again = _post(live_server_proc, *multipart([other_meta.read_bytes()]))
    assert again.status_code == 200 and _stored(again) == [ds.SOPInstanceUID]
    assert _post(live_server_proc, *multipart([changed.read_bytes()])).status_code == 409
    assert len(stored_files(live_server_proc) - before) == 1
    assert staging_files(live_server_proc) == []


def test_rows_indexed_with_a_hash_are_still_compared_by_it(live_server_proc, tmp_path):
    """Instances indexed before the byte comparison carry the SHA-256 of their data set: a re-sent copy is
    compared with that hash (here set by hand: right for one instance, wrong for another)."""
    from archive.dicom.digest import dataset_sha256

    same, other = _series(tmp_path, 2)
    body, content_type = multipart([same.read_bytes(), other.read_bytes()])
    assert _post(live_server_proc, body, content_type).status_code == 200
    uid_same, uid_other = (str(pydicom.dcmread(p).SOPInstanceUID) for p in (same, other))
    live_server_proc.manage("shell", "-c", (
        "from archive.models import Instance; "
        f"Instance.objects.filter(sop_instance_uid={uid_same!r}).update(sha256={dataset_sha256(same)!r}); "
        f"Instance.objects.filter(sop_instance_uid={uid_other!r}).update(sha256={'0' * 64!r})"))
    r = _post(live_server_proc, body, content_type)
    assert r.status_code == 202, r.text
    assert _stored(r) == [uid_same] and _failures(r) == {uid_other: 0x0111}
